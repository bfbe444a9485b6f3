--- nn.Concat(dim, {branch1, branch2, ...}): the branches' outputs, each
-- applied to the same input, concatenated along dim (2 = channels).
local class = require "siamese.class"
local Branches = require "siamese.nn.Branches"
local T = require "siamese.tensor"

local Concat = class("Concat", Branches)

function Concat:__init(dim, modules)
  Branches.__init(self, modules)
  self.dim = dim
end

function Concat:updateOutput(input)
  local outs = {}
  for i, m in ipairs(self.modules) do outs[i] = m:forward(input) end
  local ok, out = pcall(T.cat, outs, self.dim)
  if not ok then self:fail("%s", out) end
  self.output = out
  return out
end

-- Branch i's slice of the gradient along dim.
function Concat:part(i, gradOutput)
  local at = 1
  for j = 1, i - 1 do at = at + self.modules[j].output:shape(self.dim) end
  return gradOutput:narrow(self.dim, at, self.modules[i].output:shape(self.dim)):contiguous()
end

return Concat
