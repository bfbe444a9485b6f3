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
  self.hyper = {}
  for k in pairs(defaults) do self.hyper[#self.hyper + 1] = k end
  table.sort(self.hyper)
  self.t = 0
  self.state = {}
end

--- The optimiser's whole state, for checkpoints (like torch's state_dict):
-- {optimizer = class name, t = step count, hyper = {lr = ..., ...},
--  tensors = {["<slot>.<i>"] = tensor, ...}} where slot is "m", "v",
-- "velocity" or "square" and i the parameter's 1-based position. The
-- tensors are the live ones (not copies).
function Optimizer:state_dict()
  local hyper, tensors = {}, {}
  for _, k in ipairs(self.hyper) do hyper[k] = self[k] end
  for kind, list in pairs(self.state) do
    for i, t in pairs(list) do tensors[kind .. "." .. i] = t end
  end
  return {optimizer = self.__name, t = self.t, hyper = hyper, tensors = tensors}
end

--- Restores a state_dict() of the same optimiser over the same parameters.
-- Everything is checked before anything changes: returns true, or nil and
-- a message (another optimiser, an unknown slot, a shape that differs).
function Optimizer:load_state_dict(sd)
  if type(sd) ~= "table" or type(sd.tensors) ~= "table" or type(sd.hyper) ~= "table" then
    error(self.__name .. ":load_state_dict: expects a table from state_dict()", 2)
  end
  if sd.optimizer ~= self.__name then
    return nil, string.format("optimiser state is %s's, not %s's", tostring(sd.optimizer), self.__name)
  end
  if math.type(sd.t) ~= "integer" or sd.t < 0 then return nil, "optimiser step count must be an integer >= 0" end
  for _, k in ipairs(self.hyper) do
    if sd.hyper[k] == nil or type(sd.hyper[k]) ~= type(self[k]) then
      return nil, string.format("optimiser hyper-parameter '%s' missing or of the wrong type", k)
    end
  end
  local slots = {}
  for name, t in pairs(sd.tensors) do
    local kind, i = tostring(name):match("^(%a+)%.(%d+)$")
    i = tonumber(i)
    if not kind or not self.params[i] then
      return nil, string.format("optimiser state has '%s', which names no parameter slot", tostring(name))
    end
    if not T.is_tensor(t) or t:numel() ~= self.params[i]:numel() then
      return nil, string.format("optimiser state '%s' does not match parameter %d of shape [%s]", name, i,
        table.concat(self.params[i]:shape(), ","))
    end
    slots[#slots + 1] = {kind, i, t}
  end
  self.state = {}
  for _, s in ipairs(slots) do self:slot(s[1], s[2]):copy(s[3]:view(self.params[s[2]]:shape())) end
  for _, k in ipairs(self.hyper) do self[k] = sd.hyper[k] end
  self.t = sd.t
  return true
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
