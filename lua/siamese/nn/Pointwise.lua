--- Shared parts of the element-wise activations (ReLU, LeakyReLU, Sigmoid,
-- Tanh): any input shape, output of the same shape.
local class = require "siamese.class"
local Module = require "siamese.nn.Module"
local util = require "siamese.nn.util"
local K = require("siamese.core").nn

local Pointwise = class("Pointwise", Module)

function Pointwise:__init(kind, slope)
  Module.__init(self)
  self.kind, self.slope = kind, slope or 0
end

function Pointwise:updateOutput(input)
  local x = util.contiguous(input)
  self.output = Module.buffer(self.output, x:shape())
  K.activation_forward(self.output, x, self.kind, self.slope)
  return self.output
end

function Pointwise:updateGradInput(input, gradOutput)
  local x = util.contiguous(input)
  self.gradInput = Module.buffer(self.gradInput, x:shape())
  self.gradInput:zero()
  K.activation_backward(self.gradInput, util.contiguous(gradOutput), x, self.output, self.kind, self.slope)
  return self.gradInput
end

return Pointwise
