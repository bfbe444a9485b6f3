--- Shared parts of BatchNorm1d ([N,C] or [N,C,L]) and BatchNorm2d ([N,C,H,W]).
-- Training normalises with batch statistics and updates running ones
-- (running = (1-momentum) running + momentum batch, unbiased variance);
-- evaluation uses the running statistics. fold() returns the equivalent
-- per-channel Affine for inference.
local class = require "siamese.class"
local Module = require "siamese.nn.Module"
local T = require "siamese.tensor"
local util = require "siamese.nn.util"
local K = require("siamese.core").nn

local BatchNorm = class("BatchNorm", Module)

function BatchNorm:__init(channels, opts, dims)
  Module.__init(self)
  opts = opts or {}
  self.channels = util.check_int(channels, self.__name .. ": channels")
  self.dims = dims
  self.eps = opts.eps or 1e-5
  self.momentum = opts.momentum or 0.1
  if opts.affine ~= false then
    self.weight, self.gradWeight = T.ones{channels}, T.zeros{channels}
    self.bias, self.gradBias = T.zeros{channels}, T.zeros{channels}
  end
  self.running_mean, self.running_var = T.zeros{channels}, T.ones{channels}
  self.save_mean, self.save_invstd = T.zeros{channels}, T.zeros{channels}
end

function BatchNorm:check(x)
  local s = x:shape()
  local ok = s[2] == self.channels and (#s == self.dims[1] or #s == self.dims[2])
  if not ok then
    self:fail("expected input with %s dimensions and %d channels, got %s",
      self.dims[1] == self.dims[2] and self.dims[1] or (self.dims[1] .. " or " .. self.dims[2]),
      self.channels, util.shape_str(x))
  end
  return util.contiguous(x)
end

function BatchNorm:updateOutput(input)
  local x = self:check(input)
  self.output = Module.buffer(self.output, x:shape())
  if self.train then
    if x:shape(1) * (x:numel() // (x:shape(1) * self.channels)) < 2 then
      self:fail("training needs more than one value per channel, got %s", util.shape_str(x))
    end
    K.batchnorm_forward_train(self.output, self.save_mean, self.save_invstd, self.running_mean,
      self.running_var, x, self.weight, self.bias, self.momentum, self.eps)
  else
    K.batchnorm_forward_eval(self.output, x, self.running_mean, self.running_var, self.weight, self.bias, self.eps)
  end
  return self.output
end

-- The evaluation transform is the affine x w + b: its gradient is w.
function BatchNorm:eval_affine()
  local w = self.running_var:add(self.eps)
  for c = 1, self.channels do w:set(c, 1 / math.sqrt(w:get(c))) end
  if self.weight then w:mul_(self.weight) end
  local b = self.running_mean:mul(w):scale(-1)
  if self.bias then b:add_(self.bias) end
  return w, b
end

function BatchNorm:updateGradInput(input, gradOutput)
  local x = self:check(input)
  self.gradInput = Module.buffer(self.gradInput, x:shape())
  self.gradInput:zero()
  local go = util.contiguous(gradOutput)
  if self.train then
    K.batchnorm_backward_train(self.gradInput, nil, nil, go, x, self.save_mean, self.save_invstd, self.weight, 1)
  else
    local w = self:eval_affine()
    K.affine_backward(self.gradInput, nil, nil, go, x, w, 1)
  end
  return self.gradInput
end

--- Training backward in one pass of the kernel: the statistics' sums
-- serve both the input and the parameter gradients.
function BatchNorm:backward(input, gradOutput, scale)
  if not (self.train and self.weight and not self.frozen and not self.skip_input_grad) then
    return Module.backward(self, input, gradOutput, scale)
  end
  local x = self:check(input)
  self.gradInput = Module.buffer(self.gradInput, x:shape())
  self.gradInput:zero()
  K.batchnorm_backward_train(self.gradInput, self.gradWeight, self.gradBias, util.contiguous(gradOutput), x,
    self.save_mean, self.save_invstd, self.weight, scale or 1)
  return self.gradInput
end

function BatchNorm:accGradParameters(input, gradOutput, scale)
  if not self.weight then return end
  local x, go = self:check(input), util.contiguous(gradOutput)
  if self.train then
    K.batchnorm_backward_train(nil, self.gradWeight, self.gradBias, go, x, self.save_mean, self.save_invstd,
      self.weight, scale or 1)
  else
    -- y = gamma (x - mean) invstd + beta with running statistics
    local invstd = self.running_var:add(self.eps)
    for c = 1, self.channels do invstd:set(c, 1 / math.sqrt(invstd:get(c))) end
    K.batchnorm_backward_train(nil, self.gradWeight, self.gradBias, go, x, self.running_mean, invstd,
      self.weight, scale or 1)
  end
end

function BatchNorm:state()
  local s = Module.state(self)
  s.running_mean, s.running_var = self.running_mean, self.running_var
  return s
end

--- The per-channel Affine equal to this layer in evaluation mode.
function BatchNorm:fold()
  local Affine = require "siamese.nn.Affine"
  local w, b = self:eval_affine()
  local a = Affine(self.channels)
  a.weight:copy(w)
  a.bias:copy(b)
  return a
end

function BatchNorm:__tostring()
  return string.format("%s(%d, eps %g, momentum %g%s)", self.__name, self.channels, self.eps, self.momentum,
    self.weight and "" or ", no affine")
end

return BatchNorm
