--- Shared parts of the element-wise activations (ReLU, ReLU6, LeakyReLU, Sigmoid,
-- Tanh): any input shape, output of the same shape. In place (inplace =
-- true) the output overwrites the input tensor; backward stays exact since
-- each derivative can be read from the output (sign of ReLU/leaky outputs
-- equals that of their inputs), but the layer before must not need its own
-- output for its backward.
local class = require "siamese.class"
local Module = require "siamese.nn.Module"
local util = require "siamese.nn.util"
local K = require("siamese.core").nn

local Pointwise = class("Pointwise", Module)

function Pointwise:__init(kind, slope, inplace)
  Module.__init(self)
  self.kind, self.slope, self.inplace = kind, slope or 0, inplace and true or false
end

function Pointwise:updateOutput(input)
  if self.inplace and input:is_contiguous() then
    K.activation_forward(input, input, self.kind, self.slope)
    self.output = input
    return input
  end
  local x = util.contiguous(input)
  self.output = Module.buffer(self.output ~= input and self.output or nil, x:shape())
  K.activation_forward(self.output, x, self.kind, self.slope)
  return self.output
end

function Pointwise:updateGradInput(input, gradOutput)
  -- in place, input is the output: its signs are the input's (see above)
  local x = self.inplace and self.output or util.contiguous(input)
  self.gradInput = Module.buffer(self.gradInput, x:shape())
  -- written, not accumulated: no zeroing pass over the buffer
  K.activation_grad(self.gradInput, util.contiguous(gradOutput):view(x:shape()), x, self.output, self.kind, self.slope)
  return self.gradInput
end

return Pointwise
