--- nn.Sequential{m1, m2, ...}: applies the modules in order.
local class = require "siamese.class"
local Container = require "siamese.nn.Container"
local Module = require "siamese.nn.Module"

local Sequential = class("Sequential", Container)

function Sequential:updateOutput(input)
  local x = input
  for _, m in ipairs(self.modules) do x = m:forward(x) end
  self.output = x
  return x
end

-- The input that module i saw in the last forward.
function Sequential:input_of(i, input)
  return i > 1 and self.modules[i - 1].output or input
end

-- The first module skips its input gradient when this container does.
function Sequential:skipInputGrad(flag)
  Module.skipInputGrad(self, flag)
  if self.modules[1] then self.modules[1]:skipInputGrad(flag) end
  return self
end

function Sequential:backward(input, gradOutput, scale)
  local g = gradOutput
  for i = #self.modules, 1, -1 do
    g = self.modules[i]:backward(self:input_of(i, input), g, scale)
  end
  self.gradInput = g
  return g
end

function Sequential:updateGradInput(input, gradOutput)
  local g = gradOutput
  for i = #self.modules, 1, -1 do
    g = self.modules[i]:updateGradInput(self:input_of(i, input), g)
  end
  self.gradInput = g
  return g
end

function Sequential:accGradParameters(input, gradOutput, scale)
  local g = gradOutput
  for i = #self.modules, 1, -1 do
    local m = self.modules[i]
    if not m.frozen then m:accGradParameters(self:input_of(i, input), g, scale) end
    g = m.gradInput
  end
end

return Sequential
