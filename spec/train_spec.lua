-- Specs of siamese.train: the training loop, its checkpoints (best and
-- last), exact resumption and determinism, on a tiny metric-learning
-- problem: 24 random points of 6 identities, an MLP with batch-norm and
-- dropout, semi-hard triplet loss over P x K batches, noise drawn from the
-- library RNG as "augmentation".
local siamese = require "siamese"
local support = dofile("spec/support.lua")
local nn, T, train = siamese.nn, siamese.tensor, siamese.train

local N, D = 24, 5
local labels = {}
for i = 1, N do labels[i] = (i - 1) % 6 + 1 end

local function points()
  siamese.manual_seed(100)
  return T.randn{N, D}
end
local X = points()

local function rows(idx)
  local out = T.zeros{#idx, D}
  for k, i in ipairs(idx) do out:select(1, k):copy(X:select(1, i)) end
  return out
end

-- A fresh problem: model and optimiser from the seed, batches and steps.
local function problem(seed, opts)
  siamese.manual_seed(seed)
  local model = nn.Sequential{nn.Linear(D, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.2),
                              nn.Linear(16, 4), nn.L2Normalize()}
  local opt = siamese.optim.Adam(model, {lr = 0.02})
  local crit = siamese.loss.BatchTripletLoss{margin = 0.5, mining = "semihard"}
  local o = {
    model = model, optimizer = opt, epochs = 4, log = false,
    batches = function(epoch) return siamese.data.pk_batches(labels, 3, 2, epoch) end,
    step = function(batch)
      local x = rows(batch):add_(T.randn{#batch, D}:scale_(0.05))
      local lab = {}
      for k, i in ipairs(batch) do lab[k] = labels[i] end
      local e = model:forward(x)
      local l = crit:forward(e, lab)
      model:backward(x, crit:backward(e, lab))
      return l, #batch
    end,
  }
  for k, v in pairs(opts or {}) do o[k] = v end
  return o, model
end

local function weights(model)
  local out = {}
  for k, t in pairs(model:state()) do out[k] = t:clone():view(-1):totable() end
  return out
end

describe("siamese.train.Trainer", function()
  local dir
  before_each(function() dir = support.temp_dir("train") end)
  after_each(function() support.remove_dir(dir) end)

  it("is deterministic for a fixed seed", function()
    local o1, m1 = problem(1)
    local h1 = train.Trainer(o1):fit()
    local o2, m2 = problem(1)
    local h2 = train.Trainer(o2):fit()
    assert.are.same(weights(m1), weights(m2))
    assert.are.equal(4, #h1)
    for e = 1, 4 do assert.are.equal(h1[e].loss, h2[e].loss) end
    local o3, m3 = problem(2)
    train.Trainer(o3):fit()
    assert.are_not.same(weights(m1), weights(m3))
  end)

  it("resumed from the last checkpoint gives bit-identical results", function()
    local o, full = problem(1)
    local h_full = train.Trainer(o):fit()
    -- the same run stopped after epoch 2 ...
    local last = dir .. "/last.safetensors"
    local oa = problem(1, {epochs = 2, last = last})
    train.Trainer(oa):fit()
    -- ... and continued in a fresh process state: other weights, other RNG
    local ob, resumed = problem(77, {last = last})
    siamese.manual_seed(12345)
    local tb = train.Trainer(ob)
    assert.are.equal(tb, tb:resume(last))
    assert.are.equal(2, tb.epoch)
    local h = tb:fit()
    assert.are.same(weights(full), weights(resumed))
    assert.are.equal(4, #h)
    for e = 1, 4 do assert.are.equal(h_full[e].loss, h[e].loss) end
    -- the optimiser's state came back too
    assert.are.equal(o.optimizer.t, ob.optimizer.t)
  end)

  it("validates each epoch and keeps the best checkpoint", function()
    local scores = {0.5, 0.8, 0.6, 0.7}
    local at_epoch = {}
    local best = dir .. "/best.safetensors"
    local o, model = problem(3, {best = best, metadata = {command = "spec", input_size = {1, 5}}})
    o.validate = function(epoch)
      assert.is_false(model.train) -- evaluation mode during validation
      at_epoch[epoch] = weights(model)
      return scores[epoch], {epoch = epoch}
    end
    local h = train.Trainer(o):fit()
    assert.are.equal(2, h.best_epoch)
    assert.are.equal(0.8, h.best_score)
    assert.are.same({epoch = 3}, h[3].info)
    local copy = select(2, problem(9))
    local m, meta = train.load_model(copy, best)
    assert.are.equal(copy, m)
    assert.are.same(at_epoch[2], weights(copy))
    assert.are.equal("2", meta.epoch)
    assert.are.equal("spec", meta.command)
    assert.are.equal("[1,5]", meta.input_size)
    assert.are.equal(siamese.train.FORMAT, meta.format)
    -- "min" mode keeps the lowest
    local o2 = problem(3, {best = best, mode = "min", validate = function(e) return scores[e] end})
    assert.are.equal(1, train.Trainer(o2):fit().best_epoch)
    -- no temporary file is left behind
    assert.are.same({"best.safetensors"}, support.list_dir(dir))
  end)

  it("prints a progress line with epoch, step, loss, items/s and ETA", function()
    local lines = {}
    local sink = {write = function(_, s) lines[#lines + 1] = s end}
    local o = problem(1, {log = sink, every = 1, epochs = 2, validate = function() return 1 end})
    train.Trainer(o):fit()
    local text = table.concat(lines)
    assert.matches("epoch 1/2 step 1/%d+ loss %d+%.%d+ %d+ items/s ETA %d+s", text)
    assert.matches("epoch 2/2 loss [%d.]+, validation 1.0000", text)
  end)

  it("follows a learning-rate schedule per epoch", function()
    local seen = {}
    local o = problem(1, {epochs = 3, schedule = function(e) return 0.1 / e end})
    local inner = o.step
    o.step = function(b, s, e) seen[e] = o.optimizer.lr; return inner(b, s, e) end
    train.Trainer(o):fit()
    assert.are.same({0.1, 0.05, 0.1 / 3}, seen)
  end)

  it("resume and load_model refuse bad files and leave everything untouched", function()
    local last = dir .. "/last.safetensors"
    train.Trainer(problem(1, {epochs = 1, last = last})):fit()
    local o, model = problem(5)
    local tr = train.Trainer(o)
    local before = weights(model)
    local function refused(path, pattern, target)
      local rng = siamese.get_rng_state()
      local ok, err = (target or tr):resume(path)
      assert.is_nil(ok)
      assert.matches(pattern, err)
      assert.are.same(before, weights(model))
      assert.are.equal(rng, siamese.get_rng_state())
      assert.are.equal(0, tr.epoch)
      assert.are.equal(0, o.optimizer.t)
    end
    refused(dir .. "/missing.safetensors", "missing")
    -- a model file, not a checkpoint
    assert(model:save(dir .. "/model.safetensors"))
    refused(dir .. "/model.safetensors", "not a siamese training checkpoint")
    -- truncated
    local bytes = support.read_file(last)
    support.write_file(dir .. "/cut.safetensors", bytes:sub(1, #bytes - 9))
    refused(dir .. "/cut.safetensors", ".")
    -- another architecture
    local other = problem(5)
    other.model = nn.Sequential{nn.Linear(D, 8), nn.ReLU(), nn.Linear(8, 4)}
    other.optimizer = siamese.optim.Adam(other.model)
    local ok, err = train.Trainer(other):resume(last)
    assert.is_nil(ok)
    assert.matches("model tensor", err)
    -- another optimiser
    o.optimizer = siamese.optim.SGD(model, {lr = 0.1})
    refused(last, "optimiser is Adam", train.Trainer(o))
    ok, err = train.load_model(nn.Linear(2, 2), last)
    assert.is_nil(ok)
    assert.matches("model tensor", err)
  end)

  it("refuses bad options", function()
    local o = problem(1)
    for key, bad in pairs{model = 1, optimizer = {}, epochs = 1.5, batches = "x", step = false,
                          validate = 3, last = 4, mode = "up"} do
      local copy = {}
      for k, v in pairs(o) do copy[k] = v end
      copy[key] = bad
      assert.has_error(function() train.Trainer(copy) end, nil, key)
    end
    assert.has_error(function() train.Trainer() end)
    assert.has_error(function() train.Trainer(o):resume(3) end)
    local bad = problem(1, {step = function() return "loss" end})
    assert.has_error(function() train.Trainer(bad):fit() end)
  end)
end)
