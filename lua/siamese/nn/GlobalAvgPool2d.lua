--- nn.GlobalAvgPool2d(): [N,C,H,W] → [N,C], the mean over each plane.
local class = require "siamese.class"
local Module = require "siamese.nn.Module"
local util = require "siamese.nn.util"
local K = require("siamese.core").nn

local GlobalAvgPool2d = class("GlobalAvgPool2d", Module)

local function params(s)
  return {s[3], s[4], 1, 1, 0, 0, 0, 0, 1}
end

function GlobalAvgPool2d:updateOutput(input)
  local s = input:shape()
  if #s ~= 4 then self:fail("expected input [N,C,H,W], got %s", util.shape_str(input)) end
  self.output = Module.buffer(self.output, {s[1], s[2]})
  K.avgpool2d_forward(self.output:view(s[1], s[2], 1, 1), util.contiguous(input), params(s))
  return self.output
end

function GlobalAvgPool2d:updateGradInput(input, gradOutput)
  local s = input:shape()
  self.gradInput = Module.buffer(self.gradInput, s)
  self.gradInput:zero()
  K.avgpool2d_backward(self.gradInput, util.contiguous(gradOutput):view(s[1], s[2], 1, 1), params(s))
  return self.gradInput
end

return GlobalAvgPool2d
