--- nn.L2Normalize(eps = 1e-12): each row of [N,D] divided by its norm
-- (embeddings on the unit sphere, as FaceNet/OpenFace).
local class = require "siamese.class"
local Module = require "siamese.nn.Module"
local util = require "siamese.nn.util"
local K = require("siamese.core").nn

local L2Normalize = class("L2Normalize", Module)

function L2Normalize:__init(eps)
  Module.__init(self)
  self.eps = eps or 1e-12
end

function L2Normalize:updateOutput(input)
  if input:dim() ~= 2 then self:fail("expected input [N,D], got %s", util.shape_str(input)) end
  self.output = Module.buffer(self.output, input:shape())
  self.norms = Module.buffer(self.norms, {input:shape(1)})
  K.l2normalize_forward(self.output, self.norms, util.contiguous(input), self.eps)
  return self.output
end

function L2Normalize:updateGradInput(input, gradOutput)
  self.gradInput = Module.buffer(self.gradInput, input:shape())
  self.gradInput:zero()
  K.l2normalize_backward(self.gradInput, util.contiguous(gradOutput), self.output, self.norms, self.eps)
  return self.gradInput
end

return L2Normalize
