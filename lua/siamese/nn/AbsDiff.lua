--- nn.AbsDiff(): {a, b} → |a - b| element-wise (Koch et al.'s Siamese head
-- input). Backward returns {grad_a, grad_b}.
local class = require "siamese.class"
local Module = require "siamese.nn.Module"
local util = require "siamese.nn.util"
local K = require("siamese.core").nn

local AbsDiff = class("AbsDiff", Module)

function AbsDiff:pair(input)
  local a, b = input[1], input[2]
  if not (a and b) or a:numel() ~= b:numel() or a:dim() ~= b:dim() then
    self:fail("expects {a, b} of equal shape, got %s and %s", a and util.shape_str(a) or "nil",
      b and util.shape_str(b) or "nil")
  end
  return util.contiguous(a), util.contiguous(b)
end

function AbsDiff:updateOutput(input)
  local a, b = self:pair(input)
  self.output = Module.buffer(self.output, a:shape())
  K.absdiff_forward(self.output, a, b)
  return self.output
end

function AbsDiff:updateGradInput(input, gradOutput)
  local a, b = self:pair(input)
  self.gradInput = self.gradInput or {}
  self.gradInput[1] = Module.buffer(self.gradInput[1], a:shape()):zero()
  self.gradInput[2] = Module.buffer(self.gradInput[2], a:shape()):zero()
  K.absdiff_backward(self.gradInput[1], self.gradInput[2], util.contiguous(gradOutput), a, b)
  return self.gradInput
end

return AbsDiff
