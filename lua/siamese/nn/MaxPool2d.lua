--- nn.MaxPool2d(kernel, {stride = kernel, padding = 0 | "same" | "valid"})
-- Padded positions never win. Forward keeps the argmax for backward.
local class = require "siamese.class"
local Module = require "siamese.nn.Module"
local Pool2d = require "siamese.nn.Pool2d"
local util = require "siamese.nn.util"
local K = require("siamese.core").nn

local MaxPool2d = class("MaxPool2d", Pool2d)

function MaxPool2d:updateOutput(input)
  local _, p, oshape = self:geometry(input)
  self.output = Module.buffer(self.output, oshape)
  local n = self.output:numel()
  if not self.indices or self.nindices < n then
    self.indices, self.nindices = K.intbuffer(n), n
  end
  K.maxpool2d_forward(self.output, self.indices, util.contiguous(input), p)
  return self.output
end

function MaxPool2d:updateGradInput(input, gradOutput)
  local s, p = self:geometry(input)
  self.gradInput = Module.buffer(self.gradInput, s)
  self.gradInput:zero()
  K.maxpool2d_backward(self.gradInput, util.contiguous(gradOutput), self.indices, p)
  return self.gradInput
end

return MaxPool2d
