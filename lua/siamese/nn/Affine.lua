--- nn.Affine(channels, {bias = true}): per-channel y = x w[c] + b[c] over
-- [N,C,...] — a folded batch-norm (BatchNorm:fold()) or face-api's "scale".
local class = require "siamese.class"
local Module = require "siamese.nn.Module"
local T = require "siamese.tensor"
local util = require "siamese.nn.util"
local K = require("siamese.core").nn

local Affine = class("Affine", Module)

function Affine:__init(channels, opts)
  Module.__init(self)
  self.channels = util.check_int(channels, "Affine: channels")
  self.weight, self.gradWeight = T.ones{channels}, T.zeros{channels}
  if not (opts and opts.bias == false) then
    self.bias, self.gradBias = T.zeros{channels}, T.zeros{channels}
  end
end

function Affine:check(x)
  local s = x:shape()
  if #s < 2 or s[2] ~= self.channels then
    self:fail("expected input [N,%d,...], got %s", self.channels, util.shape_str(x))
  end
  return util.contiguous(x)
end

function Affine:updateOutput(input)
  local x = self:check(input)
  self.output = Module.buffer(self.output, x:shape())
  K.affine_forward(self.output, x, self.weight, self.bias)
  return self.output
end

function Affine:updateGradInput(input, gradOutput)
  local x = self:check(input)
  self.gradInput = Module.buffer(self.gradInput, x:shape())
  self.gradInput:zero()
  K.affine_backward(self.gradInput, nil, nil, util.contiguous(gradOutput), x, self.weight, 1)
  return self.gradInput
end

function Affine:accGradParameters(input, gradOutput, scale)
  K.affine_backward(nil, self.gradWeight, self.gradBias, util.contiguous(gradOutput), self:check(input),
    self.weight, scale or 1)
end

function Affine:__tostring()
  return string.format("Affine(%d)", self.channels)
end

return Affine
