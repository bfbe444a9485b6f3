--- nn.PairwiseDistance(metric = "euclidean", eps = 1e-7): {a, b} of [N,D]
-- → d [N], row n's distance. euclidean = sqrt(max(sum (a-b)^2, eps)) (the
-- seeds' Keras epsilon inside the root), "sqeuclidean", or "cosine"
-- (1 - cos). Backward returns {grad_a, grad_b}.
local class = require "siamese.class"
local Module = require "siamese.nn.Module"
local util = require "siamese.nn.util"
local K = require("siamese.core").nn

local PairwiseDistance = class("PairwiseDistance", Module)

local metrics = {euclidean = true, sqeuclidean = true, cosine = true}

function PairwiseDistance:__init(metric, eps)
  Module.__init(self)
  self.metric = metric or "euclidean"
  if not metrics[self.metric] then
    error("PairwiseDistance: metric must be euclidean, sqeuclidean or cosine, got " .. tostring(metric), 2)
  end
  self.eps = eps or 1e-7
end

function PairwiseDistance:pair(input)
  local a, b = input[1], input[2]
  if not (a and b) or a:dim() ~= 2 or b:dim() ~= 2 or a:shape(1) ~= b:shape(1) or a:shape(2) ~= b:shape(2) then
    self:fail("expects {a, b} of equal shape [N,D], got %s and %s", a and util.shape_str(a) or "nil",
      b and util.shape_str(b) or "nil")
  end
  return util.contiguous(a), util.contiguous(b)
end

function PairwiseDistance:updateOutput(input)
  local a, b = self:pair(input)
  self.output = Module.buffer(self.output, {a:shape(1)})
  K.pair_distance_forward(self.output, a, b, self.metric, self.eps)
  return self.output
end

function PairwiseDistance:updateGradInput(input, gradOutput)
  local a, b = self:pair(input)
  self.gradInput = self.gradInput or {}
  self.gradInput[1] = Module.buffer(self.gradInput[1], a:shape()):zero()
  self.gradInput[2] = Module.buffer(self.gradInput[2], a:shape()):zero()
  K.pair_distance_backward(self.gradInput[1], self.gradInput[2], util.contiguous(gradOutput):view(-1), a, b,
    self.output, self.metric, self.eps)
  return self.gradInput
end

function PairwiseDistance:__tostring()
  return "PairwiseDistance(" .. self.metric .. ")"
end

return PairwiseDistance
