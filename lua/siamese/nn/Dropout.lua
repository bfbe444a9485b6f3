--- nn.Dropout(p = 0.5): in training, zeroes each element with probability p
-- and scales the rest by 1/(1-p) (seeded by siamese.manual_seed); identity
-- in evaluation.
local class = require "siamese.class"
local Module = require "siamese.nn.Module"
local util = require "siamese.nn.util"
local K = require("siamese.core").nn

local Dropout = class("Dropout", Module)

function Dropout:__init(p)
  Module.__init(self)
  self.p = p or 0.5
  if type(self.p) ~= "number" or self.p < 0 or self.p >= 1 then
    error("Dropout: p must be in [0, 1), got " .. tostring(p), 2)
  end
end

function Dropout:updateOutput(input)
  if not self.train or self.p == 0 then
    self.output = input
    return input
  end
  local x = util.contiguous(input)
  self.output = Module.buffer(self.output ~= input and self.output or nil, x:shape())
  self.mask = Module.buffer(self.mask, x:shape())
  K.dropout_forward(self.output, self.mask, x, self.p)
  return self.output
end

function Dropout:updateGradInput(input, gradOutput)
  if not self.train or self.p == 0 then
    self.gradInput = gradOutput
    return gradOutput
  end
  self.gradInput = Module.buffer(self.gradInput ~= gradOutput and self.gradInput or nil, input:shape())
  self.gradInput:zero()
  K.mul_accumulate(self.gradInput, util.contiguous(gradOutput), self.mask)
  return self.gradInput
end

function Dropout:__tostring()
  return string.format("Dropout(%g)", self.p)
end

return Dropout
