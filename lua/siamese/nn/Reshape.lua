--- nn.Reshape(d1, d2, ...): reshapes each sample, keeping the batch
-- dimension: [N, ...] → [N, d1, d2, ...] (one size may be -1).
local class = require "siamese.class"
local Module = require "siamese.nn.Module"
local util = require "siamese.nn.util"

local Reshape = class("Reshape", Module)

function Reshape:__init(...)
  Module.__init(self)
  self.size = type(...) == "table" and {table.unpack((...))} or {...}
end

function Reshape:updateOutput(input)
  local shape = {input:shape(1)}
  for _, d in ipairs(self.size) do shape[#shape + 1] = d end
  local ok, out = pcall(function() return util.contiguous(input):view(shape) end)
  if not ok then
    self:fail("cannot reshape %s to [N,%s]", util.shape_str(input), table.concat(self.size, ","))
  end
  self.output = out
  return out
end

function Reshape:updateGradInput(input, gradOutput)
  self.gradInput = util.contiguous(gradOutput):view(input:shape())
  return self.gradInput
end

function Reshape:__tostring()
  return "Reshape(" .. table.concat(self.size, ",") .. ")"
end

return Reshape
