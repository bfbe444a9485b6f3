--- siamese.loss: criteria with forward(input, target) → mean loss and
-- backward(input, target) → gradient with respect to input.
--   ContrastiveLoss{margin = 1}           input distances [N], target 1 = same, 0 = different
--   TripletLoss{margin = 0.2, squared}    input {a, p, n} embeddings [N,D]
--   BCELoss{logits = false}               input probabilities (or logits) [N] or [N,1]
--   BatchTripletLoss{margin, squared, mining = "semihard" | "hard" | "all"}
--                                         input embeddings [B,D], target identity labels [B]
--                                         (a P x K batch; the triplets are mined in C)
local class = require "siamese.class"
local T = require "siamese.tensor"
local K = require("siamese.core").nn

local loss = {}

-- Targets may be tensors or Lua lists of numbers.
local function as_tensor(y, n, who)
  if T.is_tensor(y) then
    if y:numel() ~= n then error(string.format("%s: target has %d values, input %d", who, y:numel(), n), 3) end
    return y:is_contiguous() and y or y:contiguous()
  end
  if type(y) ~= "table" or #y ~= n then
    error(string.format("%s: target must be a tensor or a list of %d numbers", who, n), 3)
  end
  return T.new(y)
end

local function flat(x)
  return (x:is_contiguous() and x or x:contiguous()):view(-1)
end

local Criterion = class("Criterion")

function Criterion:__init(opts)
  self.opts = opts or {}
end

function Criterion:__tostring()
  return self.__name
end

loss.Criterion = Criterion

--- Hadsell et al. contrastive loss on distances.
local ContrastiveLoss = class("ContrastiveLoss", Criterion)
loss.ContrastiveLoss = ContrastiveLoss

function ContrastiveLoss:__init(opts)
  Criterion.__init(self, opts)
  self.margin = self.opts.margin or 1
end

function ContrastiveLoss:forward(d, y)
  self.output = K.contrastive_loss(nil, flat(d), as_tensor(y, d:numel(), self.__name), self.margin)
  return self.output
end

function ContrastiveLoss:backward(d, y)
  self.gradInput = T.zeros(d:shape())
  K.contrastive_loss(self.gradInput:view(-1), flat(d), as_tensor(y, d:numel(), self.__name), self.margin)
  return self.gradInput
end

--- FaceNet triplet loss on {anchor, positive, negative} embeddings.
local TripletLoss = class("TripletLoss", Criterion)
loss.TripletLoss = TripletLoss

function TripletLoss:__init(opts)
  Criterion.__init(self, opts)
  self.margin = self.opts.margin or 0.2
  self.squared = self.opts.squared and true or false
  self.eps = self.opts.eps or 1e-7
end

local function triplet_inputs(x)
  assert(type(x) == "table" and #x == 3, "TripletLoss: input must be {anchor, positive, negative}")
  local c = {}
  for i = 1, 3 do c[i] = x[i]:is_contiguous() and x[i] or x[i]:contiguous() end
  return c
end

function TripletLoss:forward(x)
  local c = triplet_inputs(x)
  self.output = K.triplet_loss(nil, nil, nil, c[1], c[2], c[3], self.margin, self.squared, self.eps)
  return self.output
end

function TripletLoss:backward(x)
  local c = triplet_inputs(x)
  self.gradInput = {T.zeros(c[1]:shape()), T.zeros(c[1]:shape()), T.zeros(c[1]:shape())}
  K.triplet_loss(self.gradInput[1], self.gradInput[2], self.gradInput[3], c[1], c[2], c[3], self.margin,
    self.squared, self.eps)
  return self.gradInput
end

--- Binary cross-entropy (probabilities, or logits with {logits = true}).
local BCELoss = class("BCELoss", Criterion)
loss.BCELoss = BCELoss

function BCELoss:__init(opts)
  Criterion.__init(self, opts)
  self.logits = self.opts.logits and true or false
  self.eps = self.opts.eps or 1e-7
end

function BCELoss:forward(p, y)
  self.output = K.bce_loss(nil, flat(p), as_tensor(y, p:numel(), self.__name), self.logits, self.eps)
  return self.output
end

function BCELoss:backward(p, y)
  self.gradInput = T.zeros(p:shape())
  K.bce_loss(self.gradInput:view(-1), flat(p), as_tensor(y, p:numel(), self.__name), self.logits, self.eps)
  return self.gradInput
end

--- Triplet loss over a P x K batch with online mining, in C (src/loss.c):
--  "semihard": every anchor-positive pair with the nearest negative that is
--              farther than the positive but within the margin, or the
--              nearest negative when there is none (FaceNet, OpenFace);
--  "hard":     per anchor, the farthest positive and the nearest negative
--              (batch-hard, Hermans et al.);
--  "all":      every valid triplet, averaged over the active ones.
local BatchTripletLoss = class("BatchTripletLoss", Criterion)
loss.BatchTripletLoss = BatchTripletLoss

function BatchTripletLoss:__init(opts)
  Criterion.__init(self, opts)
  self.margin = self.opts.margin or 0.2
  self.squared = self.opts.squared and true or false
  self.mining = self.opts.mining or "hard"
  self.eps = self.opts.eps or 1e-7
  if self.mining ~= "hard" and self.mining ~= "all" and self.mining ~= "semihard" then
    error("BatchTripletLoss: mining must be 'semihard', 'hard' or 'all', got " .. tostring(self.mining), 3)
  end
end

function BatchTripletLoss:forward(e, labels)
  local l
  l, self.active = K.batch_triplet_loss(nil, e:is_contiguous() and e or e:contiguous(),
    as_tensor(labels, e:shape(1), self.__name), self.margin, self.squared, self.eps, self.mining)
  self.output = l
  return l
end

function BatchTripletLoss:backward(e, labels)
  self.gradInput = T.zeros(e:shape())
  K.batch_triplet_loss(self.gradInput, e:is_contiguous() and e or e:contiguous(),
    as_tensor(labels, e:shape(1), self.__name), self.margin, self.squared, self.eps, self.mining)
  return self.gradInput
end

return loss
