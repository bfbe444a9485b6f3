--- nn.Siamese(encoder, {distance = "euclidean", head = nil, eps = 1e-7})
-- One encoder applied to 2 or 3 inputs of equal shape [N, ...]. The inputs
-- are stacked into one batch [k*N, ...], so the weights are shared by
-- construction and the parameter gradients are summed over the branches.
--
--   forward{x1, x2}     → distances [N] (distance = "euclidean",
--                         "sqeuclidean", "cosine"), or |e1 - e2| [N,D]
--                         (distance = "absdiff"); with a head, the head's
--                         output on those ([N,1] distances or [N,D]), e.g.
--                         Sequential{Linear(1, 1), Sigmoid()} for P(same).
--   forward{a, p, n}    → {ea, ep, en} embeddings, for a triplet loss.
--   backward(inputs, g) → {g1, g2[, g3]}; g as the loss gives it (nil
--                         after skipInputGrad()).
local class = require "siamese.class"
local Module = require "siamese.nn.Module"
local T = require "siamese.tensor"
local PairwiseDistance = require "siamese.nn.PairwiseDistance"
local AbsDiff = require "siamese.nn.AbsDiff"

local Siamese = class("Siamese", Module)

function Siamese:__init(encoder, opts)
  Module.__init(self)
  opts = opts or {}
  if type(encoder) ~= "table" or not encoder.updateOutput then
    error("Siamese: expects an encoder module, got " .. tostring(encoder), 2)
  end
  self.encoder, self.head = encoder, opts.head
  self.distance = opts.distance or "euclidean"
  self.measure = self.distance == "absdiff" and AbsDiff() or PairwiseDistance(self.distance, opts.eps)
end

function Siamese:children()
  return {self.encoder, self.head}
end

function Siamese:parameters()
  local p, g = self.encoder:parameters()
  if self.head then
    local hp, hg = self.head:parameters()
    for i = 1, #hp do p[#p + 1], g[#g + 1] = hp[i], hg[i] end
  end
  return p, g
end

function Siamese:state()
  local s = {}
  for k, v in pairs(self.encoder:state()) do s["encoder." .. k] = v end
  if self.head then
    for k, v in pairs(self.head:state()) do s["head." .. k] = v end
  end
  return s
end

--- The encoder alone: embeddings of one batch.
function Siamese:embed(x)
  return self.encoder:forward(x)
end

function Siamese:updateOutput(inputs)
  local k = #inputs
  if k ~= 2 and k ~= 3 then self:fail("expects a list of 2 or 3 input batches, got %d", k) end
  local n = inputs[1]:shape(1)
  for i = 2, k do
    if inputs[i]:shape(1) ~= n then self:fail("input batches differ in size: %d and %d", n, inputs[i]:shape(1)) end
  end
  self.stacked = T.cat(inputs, 1)
  local e = self.encoder:forward(self.stacked)
  self.embeddings = {}
  for i = 1, k do self.embeddings[i] = e:narrow(1, (i - 1) * n + 1, n) end
  if k == 3 then
    self.output = self.embeddings
    return self.output
  end
  local d = self.measure:forward(self.embeddings)
  if self.head then
    self.head_input = d:dim() == 1 and d:view(n, 1) or d
    self.output = self.head:forward(self.head_input)
  else
    self.output = d
  end
  return self.output
end

function Siamese:backward(inputs, gradOutput, scale)
  local k, n = #inputs, inputs[1]:shape(1)
  local grads
  if k == 3 then
    grads = gradOutput
  else
    local gd = gradOutput
    if self.head then
      gd = self.head:backward(self.head_input, gradOutput, scale)
      if self.measure.output:dim() == 1 then gd = gd:contiguous():view(n) end
    end
    grads = self.measure:backward(self.embeddings, gd, scale)
  end
  local ge = self.encoder:backward(self.stacked, T.cat(grads, 1), scale)
  if not ge then -- skipInputGrad: the inputs are data
    self.gradInput = nil
    return nil
  end
  self.gradInput = {}
  for i = 1, k do self.gradInput[i] = ge:narrow(1, (i - 1) * n + 1, n) end
  return self.gradInput
end

--- Training on data: backward computes no gradient for the input batches
-- (it returns nil), which saves the first layer's input-gradient pass.
function Siamese:skipInputGrad(flag)
  Module.skipInputGrad(self, flag)
  self.encoder:skipInputGrad(flag)
  return self
end

function Siamese:__tostring()
  return string.format("Siamese(%s, %s%s)", tostring(self.encoder):gsub("\n", "\n  "), self.distance,
    self.head and (", head " .. tostring(self.head)) or "")
end

return Siamese
