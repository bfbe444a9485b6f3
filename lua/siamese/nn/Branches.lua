--- Shared parts of Concat and Add: every branch sees the same input and
-- the input's gradient is the sum over branches. Subclasses define
-- part(i, gradOutput), branch i's share of the output gradient.
local class = require "siamese.class"
local Container = require "siamese.nn.Container"
local Module = require "siamese.nn.Module"

local Branches = class("Branches", Container)

-- Sums the branch gradients step(m, part) into self.gradInput.
function Branches:sum_gradients(input, gradOutput, step)
  for i, m in ipairs(self.modules) do
    local g = step(m, self:part(i, gradOutput))
    if i == 1 then
      self.gradInput = Module.buffer(self.gradInput, input:shape())
      self.gradInput:copy(g)
    else
      self.gradInput:add_(g)
    end
  end
  return self.gradInput
end

function Branches:backward(input, gradOutput, scale)
  return self:sum_gradients(input, gradOutput, function(m, g) return m:backward(input, g, scale) end)
end

function Branches:updateGradInput(input, gradOutput)
  return self:sum_gradients(input, gradOutput, function(m, g) return m:updateGradInput(input, g) end)
end

function Branches:accGradParameters(input, gradOutput, scale)
  for i, m in ipairs(self.modules) do
    if not m.frozen then m:accGradParameters(input, self:part(i, gradOutput), scale) end
  end
end

return Branches
