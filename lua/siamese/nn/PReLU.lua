--- nn.PReLU(channels = 1, init = 0.25): x > 0 ? x : a[c] * x with a learnt
-- slope per channel (dimension 2 of [N,C,...]; one shared slope if 1).
local class = require "siamese.class"
local Module = require "siamese.nn.Module"
local T = require "siamese.tensor"
local util = require "siamese.nn.util"
local K = require("siamese.core").nn

local PReLU = class("PReLU", Module)

function PReLU:__init(channels, init)
  Module.__init(self)
  self.channels = util.check_int(channels or 1, "PReLU: channels")
  self.weight = T.full({self.channels}, init or 0.25)
  self.gradWeight = T.zeros{self.channels}
end

-- A single slope applies to every element: view the input as [1,1,n].
function PReLU:shaped(x)
  x = util.contiguous(x)
  if self.channels == 1 then return x:view(1, 1, x:numel()) end
  local s = x:shape()
  if #s < 2 or s[2] ~= self.channels then
    self:fail("expected input [N,%d,...], got %s", self.channels, util.shape_str(x))
  end
  return x
end

function PReLU:updateOutput(input)
  local x = self:shaped(input)
  self.output = Module.buffer(self.output, input:shape())
  K.prelu_forward(self:shaped(self.output), x, self.weight)
  return self.output
end

function PReLU:updateGradInput(input, gradOutput)
  self.gradInput = Module.buffer(self.gradInput, input:shape())
  self.gradInput:zero()
  K.prelu_backward(self:shaped(self.gradInput), nil, self:shaped(gradOutput), self:shaped(input), self.weight, 1)
  return self.gradInput
end

function PReLU:accGradParameters(input, gradOutput, scale)
  K.prelu_backward(nil, self.gradWeight, self:shaped(gradOutput), self:shaped(input), self.weight, scale or 1)
end

return PReLU
