--- nn.MaxPool2d(kernel, {stride = kernel, padding = 0 | "same" | "valid"})
-- Padded positions never win. Forward keeps the argmax for backward.
local class = require "siamese.class"
local Module = require "siamese.nn.Module"
local Pool2d = require "siamese.nn.Pool2d"
local util = require "siamese.nn.util"
local K = require("siamese.core").nn

local MaxPool2d = class("MaxPool2d", Pool2d)

-- The argmax buffer, grown to the output's size.
function MaxPool2d:index_buffer()
  local n = self.output:numel()
  if not self.indices or self.nindices < n then
    self.indices, self.nindices = K.intbuffer(n), n
  end
  return self.indices
end

-- In evaluation mode the argmax is skipped (a faster kernel); a backward
-- after such a forward recomputes it first.
function MaxPool2d:updateOutput(input)
  local _, p, oshape = self:geometry(input)
  self.output = Module.buffer(self.output, oshape)
  self.has_indices = self.train
  K.maxpool2d_forward(self.output, self.train and self:index_buffer() or nil, util.contiguous(input), p)
  return self.output
end

function MaxPool2d:updateGradInput(input, gradOutput)
  local s, p = self:geometry(input)
  if not self.has_indices then
    K.maxpool2d_forward(self.output, self:index_buffer(), util.contiguous(input), p)
    self.has_indices = true
  end
  self.gradInput = Module.buffer(self.gradInput, s)
  self.gradInput:zero()
  K.maxpool2d_backward(self.gradInput, util.contiguous(gradOutput), self.indices, p)
  return self.gradInput
end

return MaxPool2d
