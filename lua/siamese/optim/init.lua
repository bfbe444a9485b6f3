--- siamese.optim: optimisers (update loops in C), schedules, clipping.
--   local opt = optim.Adam(model, {lr = 1e-3})   -- a module, or {params, grads}
--   model:zeroGradParameters(); ...; model:backward(x, g); opt:step()
local class = require "siamese.class"
local T = require "siamese.tensor"
local K = require("siamese.core").nn

local optim = {}

local Optimizer = class("Optimizer")
optim.Optimizer = Optimizer

function Optimizer:__init(target, opts, defaults)
  if type(target) == "table" and target.parameters then
    self.params, self.grads = target:parameters()
  elseif type(target) == "table" and type(target[1]) == "table" and type(target[2]) == "table" then
    self.params, self.grads = target[1], target[2]
  else
    error(self.__name .. ": expects a module or {params, grads}", 3)
  end
  opts = opts or {}
  for k, v in pairs(defaults) do self[k] = opts[k] == nil and v or opts[k] end
  for k in pairs(opts) do
    if defaults[k] == nil then error(string.format("%s: unknown option '%s'", self.__name, k), 3) end
  end
  if type(self.lr) ~= "number" or self.lr < 0 then error(self.__name .. ": lr must be a non-negative number", 3) end
  self.t = 0
  self.state = {}
end

-- Per-parameter state tensors named by kind, created on first use.
function Optimizer:slot(kind, i)
  self.state[kind] = self.state[kind] or {}
  local s = self.state[kind][i]
  if not s then
    s = T.zeros(self.params[i]:shape())
    self.state[kind][i] = s
  end
  return s
end

function Optimizer:step()
  self.t = self.t + 1
  for i, w in ipairs(self.params) do self:update(i, w, self.grads[i]) end
end

function Optimizer:zero_grad()
  for _, g in ipairs(self.grads) do g:zero() end
end

function Optimizer:set_lr(lr)
  self.lr = lr
end

--- torch.optim.SGD: {lr, momentum = 0, weight_decay = 0, nesterov = false}
optim.SGD = class("SGD", Optimizer)
function optim.SGD:__init(target, opts)
  Optimizer.__init(self, target, opts, {lr = 0.01, momentum = 0, weight_decay = 0, nesterov = false})
  if self.nesterov and self.momentum <= 0 then error("SGD: nesterov needs momentum > 0", 2) end
end
function optim.SGD:update(i, w, g)
  K.sgd_step(w, self.momentum ~= 0 and self:slot("velocity", i) or nil, g, self.lr, self.momentum,
    self.weight_decay, self.nesterov)
end

--- Adam: {lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0 (L2)}
optim.Adam = class("Adam", Optimizer)
function optim.Adam:__init(target, opts)
  Optimizer.__init(self, target, opts, {lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0})
end
function optim.Adam:update(i, w, g)
  K.adam_step(w, self:slot("m", i), self:slot("v", i), g, self.lr, self.beta1, self.beta2, self.eps,
    self.weight_decay, self.decoupled or false, self.t)
end

--- AdamW: Adam with decoupled weight decay (default 0.01).
optim.AdamW = class("AdamW", optim.Adam)
function optim.AdamW:__init(target, opts)
  Optimizer.__init(self, target, opts, {lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.01})
  self.decoupled = true
end

--- RMSprop: {lr = 1e-3, rho = 0.9, eps = 1e-7, weight_decay = 0} (Keras'
-- defaults, as the seeds used; torch's are rho 0.99, eps 1e-8).
optim.RMSprop = class("RMSprop", Optimizer)
function optim.RMSprop:__init(target, opts)
  Optimizer.__init(self, target, opts, {lr = 1e-3, rho = 0.9, eps = 1e-7, weight_decay = 0})
end
function optim.RMSprop:update(i, w, g)
  K.rmsprop_step(w, self:slot("square", i), g, self.lr, self.rho, self.eps, self.weight_decay)
end

--- Scales the gradients so their global L2 norm is at most max_norm;
-- returns the norm before clipping.
function optim.clip_grad_norm(grads, max_norm)
  local s = 0
  for _, g in ipairs(grads) do s = s + K.sumsq(g) end
  local norm = math.sqrt(s)
  if norm > max_norm and norm > 0 then
    for _, g in ipairs(grads) do g:scale_(max_norm / norm) end
  end
  return norm
end

--- Learning-rate schedules: functions of the step (or epoch) count from 0.
optim.schedule = {}

--- base * gamma^floor(step / every)
function optim.schedule.step(base, every, gamma)
  return function(step) return base * (gamma or 0.1) ^ (step // every) end
end

--- Cosine from base down to min over total steps (then min).
function optim.schedule.cosine(base, total, min)
  min = min or 0
  return function(step)
    if step >= total then return min end
    return min + (base - min) * (1 + math.cos(math.pi * step / total)) / 2
  end
end

--- Linear warm-up from 0 over `steps`, then the wrapped schedule (shifted).
function optim.schedule.warmup(schedule, steps)
  return function(step)
    if step < steps then return schedule(0) * (step + 1) / steps end
    return schedule(step - steps)
  end
end

return optim
