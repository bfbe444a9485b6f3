--- nn.AvgPool2d(kernel, {stride = kernel, padding, count_include_pad})
local class = require "siamese.class"
local Module = require "siamese.nn.Module"
local Pool2d = require "siamese.nn.Pool2d"
local util = require "siamese.nn.util"
local K = require("siamese.core").nn

local AvgPool2d = class("AvgPool2d", Pool2d)

function AvgPool2d:updateOutput(input)
  local _, p, oshape = self:geometry(input)
  self.output = Module.buffer(self.output, oshape)
  K.avgpool2d_forward(self.output, util.contiguous(input), p)
  return self.output
end

function AvgPool2d:updateGradInput(input, gradOutput)
  local s, p = self:geometry(input)
  self.gradInput = Module.buffer(self.gradInput, s)
  self.gradInput:zero()
  K.avgpool2d_backward(self.gradInput, util.contiguous(gradOutput), p)
  return self.gradInput
end

return AvgPool2d
