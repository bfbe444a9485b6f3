--- siamese.train: a reusable training loop with validation, checkpoints and
-- exact resumption.
--
--   local trainer = siamese.train.Trainer{
--     model = net, optimizer = opt, epochs = 20,
--     batches = function(epoch) return list end,         -- this epoch's batches
--     step = function(batch) ...forward/backward...; return loss, items end,
--     validate = function(epoch) return score, info end, -- higher is better
--     last = "run/last.safetensors", best = "run/best.safetensors",
--   }
--   trainer:resume("run/last.safetensors")  -- optional: continue a stopped run
--   local history = trainer:fit()
--
-- Each step: model:training(), model:zeroGradParameters(), step(batch)
-- (the caller's forward and backward), optimizer:step(). A progress line
-- goes to stderr (epoch, step, loss, items/s, ETA), then one line per epoch
-- with the validation result. After each epoch the checkpoint `last` is
-- written and, when the score improved, `best` too: model state
-- (parameters and buffers), optimiser state, the library RNG state, the
-- epoch and the history, as one safetensors file (written atomically).
--
-- Determinism: the model's initial weights come from siamese.manual_seed;
-- batches(epoch) must depend only on the epoch (seed the samplers with it);
-- augmentation and dropout draw from the library RNG, which checkpoints
-- carry. So for a fixed seed and thread count a run resumed from `last`
-- gives bit-identical weights to one that never stopped.
local core = require "siamese.core"
local json = require "siamese.json"
local safetensors = require "siamese.safetensors"

local train = {}

local FORMAT = "siamese-checkpoint"

local Trainer = {}
Trainer.__index = Trainer

local function arg_error(fname, n, msg) require("siamese.argcheck").raise(3, fname, n, msg) end

local function check_opts(o)
  if type(o) ~= "table" then arg_error("Trainer", 1, "options table expected, got " .. type(o)) end
  local function need(key, kind, test)
    if type(o[key]) ~= kind or (test and not test(o[key])) then
      arg_error("Trainer", 1, string.format("'%s' must be %s, got %s", key, kind, tostring(o[key])))
    end
  end
  need("model", "table", function(m) return m.parameters and m.state end)
  need("optimizer", "table", function(opt) return opt.step and opt.state_dict end)
  need("epochs", "number", function(n) return math.type(n) == "integer" and n >= 0 end)
  need("batches", "function")
  need("step", "function")
  for _, key in ipairs{"validate", "schedule"} do
    if o[key] ~= nil then need(key, "function") end
  end
  for _, key in ipairs{"last", "best"} do
    if o[key] ~= nil then need(key, "string") end
  end
  if o.mode ~= nil and o.mode ~= "max" and o.mode ~= "min" then
    arg_error("Trainer", 1, "'mode' must be \"max\" or \"min\", got " .. tostring(o.mode))
  end
end

--- A trainer over opts (see the module comment). Optional: validate, mode
-- ("max", default, or "min": which scores are better), schedule(epoch) →
-- learning rate, last and best (checkpoint paths), metadata (strings or
-- JSON-able values stored in every checkpoint), log (a file handle for the
-- progress lines, default io.stderr; false for none), every (steps between
-- progress updates, default 10), clock (default siamese.clock).
function train.Trainer(opts)
  check_opts(opts)
  local self = setmetatable({}, Trainer)
  for k, v in pairs(opts) do self[k] = v end
  self.mode = self.mode or "max"
  if self.log == nil then self.log = io.stderr end
  self.every = self.every or 10
  self.clock = self.clock or core.clock
  self.epoch = 0                       -- epochs completed
  self.history = {}                    -- one entry per completed epoch
  self.best_score, self.best_epoch = nil, nil
  return self
end

function Trainer:better(score)
  if self.best_score == nil then return true end
  if self.mode == "max" then return score > self.best_score end
  return score < self.best_score
end

function Trainer:progress(fmt, ...)
  if self.log then self.log:write(string.format(fmt, ...)) end
end

-- One epoch of steps; returns the mean loss and the number of items.
function Trainer:run_epoch(epoch, timing)
  local batches = self.batches(epoch)
  local n = #batches
  local loss_sum, items = 0, 0
  for s, batch in ipairs(batches) do
    self.model:training()
    self.model:zeroGradParameters()
    local loss, count = self.step(batch, s, epoch)
    if type(loss) ~= "number" then error("Trainer: step must return the batch loss (a number)", 2) end
    self.optimizer:step()
    loss_sum, items = loss_sum + loss, items + (count or 1)
    timing.steps, timing.items = timing.steps + 1, timing.items + (count or 1)
    if s % self.every == 0 or s == n then
      local elapsed = self.clock() - timing.start
      local rate = timing.items / math.max(elapsed, 1e-9)
      local left = (self.epochs - epoch) * n + (n - s) -- steps, assuming equal epochs
      local eta = elapsed / timing.steps * left
      self:progress("\repoch %d/%d step %d/%d loss %.4f %.0f items/s ETA %.0fs   ",
        epoch, self.epochs, s, n, loss_sum / s, rate, eta)
    end
  end
  return n > 0 and loss_sum / n or 0, items
end

--- Trains from the epoch after the last completed one up to opts.epochs.
-- Returns the history: a list of {epoch, loss, score, info, seconds, items}
-- plus fields best_epoch and best_score.
function Trainer:fit()
  local timing = {start = self.clock(), steps = 0, items = 0}
  for epoch = self.epoch + 1, self.epochs do
    local t0 = self.clock()
    if self.schedule then self.optimizer:set_lr(self.schedule(epoch)) end
    local loss, items = self:run_epoch(epoch, timing)
    local score, info
    if self.validate then
      self.model:evaluate()
      score, info = self.validate(epoch)
      self.model:training()
    end
    local entry = {epoch = epoch, loss = loss, score = score, info = info, items = items,
                   seconds = self.clock() - t0}
    self.history[#self.history + 1] = entry
    self.epoch = epoch
    local improved = score ~= nil and self:better(score)
    if improved then self.best_score, self.best_epoch = score, epoch end
    self:progress("\repoch %d/%d loss %.4f%s (%.1f s)%s\n", epoch, self.epochs, loss,
      score and string.format(", validation %.4f%s", score, improved and " (best)" or "") or "",
      entry.seconds, string.rep(" ", 20))
    if self.last then assert(self:save(self.last)) end
    if self.best and (improved or (score == nil and self.validate == nil)) then assert(self:save(self.best)) end
  end
  self.history.best_epoch, self.history.best_score = self.best_epoch, self.best_score
  return self.history
end

--- Writes a checkpoint of the current state to path (atomically).
-- Returns true, or nil and a message.
function Trainer:save(path)
  local tensors = {}
  for k, t in pairs(self.model:state()) do tensors["model." .. k] = t end
  local sd = self.optimizer:state_dict()
  for k, t in pairs(sd.tensors) do tensors["optim." .. k] = t end
  local meta = {}
  for k, v in pairs(self.metadata or {}) do meta[k] = type(v) == "string" and v or json.encode(v) end
  meta.format = FORMAT
  meta.epoch = tostring(self.epoch)
  meta.rng_state = core.get_rng_state()
  meta.optimizer = json.encode{optimizer = sd.optimizer, t = sd.t, hyper = sd.hyper}
  meta.history = json.encode(self.history)
  meta.best = json.encode{epoch = self.best_epoch, score = self.best_score}
  meta.threads = tostring(core.get_num_threads())
  return safetensors.save(path, tensors, meta)
end

-- Reads a checkpoint: its tensors split into model and optimiser parts, and
-- its metadata; or nil and a message.
local function read_checkpoint(path)
  local tensors, meta = safetensors.load(path)
  if not tensors then return nil, meta end
  if meta.format ~= FORMAT then return nil, path .. ": not a siamese training checkpoint" end
  local model, optim = {}, {}
  for k, t in pairs(tensors) do
    local part, name = k:match("^(%a+)%.(.+)$")
    if part == "model" then model[name] = t elseif part == "optim" then optim[name] = t
    else return nil, string.format("%s: unexpected tensor '%s'", path, k) end
  end
  local ok, decoded = pcall(function()
    return {optimizer = json.decode(meta.optimizer), history = json.decode(meta.history),
            best = json.decode(meta.best)}
  end)
  if not ok or type(decoded.optimizer) ~= "table" or type(decoded.history) ~= "table" then
    return nil, path .. ": damaged checkpoint metadata"
  end
  local epoch = math.tointeger(tonumber(meta.epoch))
  if not epoch or epoch < 0 then return nil, path .. ": damaged checkpoint metadata (epoch)" end
  return {model = model, optim = optim, meta = meta, epoch = epoch, decoded = decoded}
end

-- Checks that every tensor of the model's state is in the checkpoint with
-- the same shape, and nothing else is; returns true or nil, message.
local function check_model_state(path, state, saved)
  local shape = require("siamese.argcheck").shape
  local names = {}
  for k in pairs(state) do names[#names + 1] = k end
  table.sort(names)
  for _, k in ipairs(names) do
    if not saved[k] then return nil, string.format("%s: missing model tensor '%s'", path, k) end
    if shape(saved[k]) ~= shape(state[k]) then
      return nil, string.format("%s: model tensor '%s' is %s, the model has %s", path, k, shape(saved[k]),
        shape(state[k]))
    end
  end
  for k in pairs(saved) do
    if not state[k] then return nil, string.format("%s: model tensor '%s' is not in this model", path, k) end
  end
  return true
end

--- Restores model, optimiser, RNG, epoch count and history from a
-- checkpoint written by save(); fit() then continues after that epoch.
-- Everything is checked before anything changes. Returns self, or nil and
-- a message (missing or damaged file, another model or optimiser).
function Trainer:resume(path)
  if type(path) ~= "string" then arg_error("resume", 1, "path expected, got " .. type(path)) end
  local ck, err = read_checkpoint(path)
  if not ck then return nil, err end
  local state = self.model:state()
  local ok, why = check_model_state(path, state, ck.model)
  if not ok then return nil, why end
  local probe = self.optimizer:state_dict()
  if ck.decoded.optimizer.optimizer ~= probe.optimizer then
    return nil, string.format("%s: optimiser is %s, this trainer's is %s", path,
      tostring(ck.decoded.optimizer.optimizer), probe.optimizer)
  end
  -- the RNG state is checked by setting it and putting the current one back
  local current = core.get_rng_state()
  if type(ck.meta.rng_state) ~= "string" or not pcall(core.set_rng_state, ck.meta.rng_state) then
    return nil, path .. ": checkpoint has no valid RNG state"
  end
  core.set_rng_state(current)
  local sd = {optimizer = ck.decoded.optimizer.optimizer, t = math.tointeger(ck.decoded.optimizer.t),
              hyper = ck.decoded.optimizer.hyper or {}, tensors = ck.optim}
  local okopt, operr = self.optimizer:load_state_dict(sd)
  if not okopt then return nil, path .. ": " .. operr end
  for k, t in pairs(state) do t:copy(ck.model[k]) end
  core.set_rng_state(ck.meta.rng_state)
  self.epoch = ck.epoch
  self.history = ck.decoded.history
  self.best_epoch = ck.decoded.best and ck.decoded.best.epoch
  self.best_score = ck.decoded.best and ck.decoded.best.score
  return self
end

--- Copies the model weights of a checkpoint into model (e.g. the best
-- epoch's, before exporting the model). Returns model and the checkpoint
-- metadata, or nil and a message; a mismatched file changes nothing.
function train.load_model(model, path)
  local ck, err = read_checkpoint(path)
  if not ck then return nil, err end
  local state = model:state()
  local ok, why = check_model_state(path, state, ck.model)
  if not ok then return nil, why end
  for k, t in pairs(state) do t:copy(ck.model[k]) end
  return model, ck.meta
end

train.FORMAT = FORMAT
return train
