--- nn.Add{branch1, branch2, ...}: the sum of the branches' outputs, each
-- applied to the same input — residual blocks are
-- Add{Sequential{conv, bn, relu, conv, bn}, Identity()} followed by ReLU.
local class = require "siamese.class"
local Branches = require "siamese.nn.Branches"
local Module = require "siamese.nn.Module"
local util = require "siamese.nn.util"

local Add = class("Add", Branches)

function Add:updateOutput(input)
  for i, m in ipairs(self.modules) do
    local y = m:forward(input)
    if i == 1 then
      self.output = Module.buffer(self.output, y:shape())
      self.output:copy(y)
    else
      if y:numel() ~= self.output:numel() or #y:shape() ~= #self.output:shape() then
        self:fail("branch %d gives %s, branch 1 gave %s", i, util.shape_str(y), util.shape_str(self.output))
      end
      self.output:add_(y)
    end
  end
  return self.output
end

function Add:part(_, gradOutput)
  return gradOutput
end

return Add
