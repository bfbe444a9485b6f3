-- Specs of siamese.optim: updates against PyTorch's optimisers (fixture),
-- schedules, gradient clipping and misuse.
local siamese = require "siamese"
local optim, T, nn = siamese.optim, siamese.tensor, siamese.nn
local expected = dofile("spec/fixtures/optim/expected.lua")

local function run(make)
  local w, g = T.new(expected.w0), T.zeros{#expected.w0}
  local opt = make({{w}, {g}})
  local out = {}
  for s, grad in ipairs(expected.grads) do
    g:copy(T.new(grad))
    opt:step()
    out[s] = w:totable()
  end
  return out
end

local gamma = dofile("spec/support.lua").gamma

-- Both implementations run in float32; one step is at most ~12 roundings
-- (decay, moment updates, root, division, scaling, the subtraction) on
-- quantities no larger than |w_t| + |w_t - w_(t-1)| + |g_t| times the step
-- sizes, so each step adds gamma(12) (|w_t| + |dw_t|) per implementation;
-- momentum (or Adam's first moment) keeps an error alive for 1 / (1 - beta)
-- steps, hence the factor carry. Summed over the steps of PyTorch's trajectory.
local function close(got, want, carry)
  local w0 = expected.w0
  for i = 1, #w0 do
    local acc, prev = 0, w0[i]
    for s = 1, #want do
      acc = acc + math.abs(want[s][i]) + math.abs(want[s][i] - prev)
      prev = want[s][i]
      local tol = 2 * gamma(12) * (carry or 1) * acc
      local d = math.abs(got[s][i] - want[s][i])
      assert(d <= tol, string.format("step %d element %d: %.9g vs PyTorch %.9g (bound %.3g)", s, i, got[s][i],
        want[s][i], tol))
    end
  end
end

describe("siamese.optim against PyTorch", function()
  it("SGD plain, with momentum and weight decay, and Nesterov", function()
    close(run(function(p) return optim.SGD(p, {lr = 0.1}) end), expected.sgd)
    close(run(function(p) return optim.SGD(p, {lr = 0.1, momentum = 0.9, weight_decay = 0.01}) end),
      expected.sgd_momentum, 1 / (1 - 0.9))
    close(run(function(p) return optim.SGD(p, {lr = 0.1, momentum = 0.9, nesterov = true}) end),
      expected.sgd_nesterov, 1 / (1 - 0.9))
  end)

  it("Adam (L2 weight decay) and AdamW (decoupled)", function()
    close(run(function(p) return optim.Adam(p, {lr = 0.01, weight_decay = 0.1}) end), expected.adam, 1 / (1 - 0.9))
    close(run(function(p) return optim.AdamW(p, {lr = 0.01, weight_decay = 0.1}) end), expected.adamw, 1 / (1 - 0.9))
  end)

  it("RMSprop", function()
    close(run(function(p) return optim.RMSprop(p, {lr = 0.01, rho = 0.9, eps = 1e-7, weight_decay = 0.05}) end),
      expected.rmsprop, 1 / (1 - 0.9))
  end)
end)

describe("siamese.optim", function()
  it("takes a module's parameters and steps them; zero_grad clears", function()
    siamese.manual_seed(1)
    local m = nn.Linear(3, 2)
    local opt = optim.SGD(m, {lr = 1})
    local w0 = m.weight:clone()
    m.gradWeight:fill(0.5)
    opt:step()
    -- one rounded subtraction: u |result|
    local want = w0:get(1, 1) - 0.5
    assert.is_true(math.abs(m.weight:get(1, 1) - want) <= 2 ^ -24 * math.abs(want))
    opt:zero_grad()
    assert.are.equal(0, m.gradWeight:norm())
    opt:set_lr(0.25)
    assert.are.equal(0.25, opt.lr)
  end)

  it("skips frozen modules", function()
    local a, b = nn.Linear(2, 2), nn.Linear(2, 2)
    local seq = nn.Sequential{a, b}
    a:freeze()
    local p = seq:parameters()
    assert.are.equal(2, #p)
    assert.are.equal(b.weight, p[1])
    a:freeze(false)
    assert.are.equal(4, #(seq:parameters()))
  end)

  it("state_dict / load_state_dict continue a run exactly", function()
    for _, make in ipairs{
      function(t) return optim.Adam(t, {lr = 0.01}) end,
      function(t) return optim.AdamW(t, {lr = 0.01}) end,
      function(t) return optim.SGD(t, {lr = 0.1, momentum = 0.9, nesterov = true}) end,
      function(t) return optim.RMSprop(t, {lr = 0.01}) end,
    } do
      siamese.manual_seed(8)
      local w, g = T.randn{3, 2}, T.zeros{3, 2}
      local opt = make({{w}, {g}})
      for _ = 1, 3 do g:normal_(0, 1); opt:step() end
      local sd = opt:state_dict()
      assert.are.equal(3, sd.t)
      assert.is_number(sd.hyper.lr)
      -- a second optimiser over a copy of the weights, restored from sd
      local w2, g2 = w:clone(), T.zeros{3, 2}
      local opt2 = make({{w2}, {g2}})
      assert.is_true(opt2:load_state_dict(sd))
      for _ = 1, 3 do
        g:normal_(0, 1)
        g2:copy(g)
        opt:step()
        opt2:step()
      end
      assert.are.same(w:totable(), w2:totable())
    end
  end)

  it("load_state_dict refuses another optimiser's or a mismatched state", function()
    local w, g = T.ones{4}, T.zeros{4}
    local adam = optim.Adam({{w}, {g}})
    g:fill(1)
    adam:step()
    local sd = adam:state_dict()
    local sgd = optim.SGD({{T.ones{4}}, {T.zeros{4}}}, {lr = 0.1, momentum = 0.5})
    local ok, err = sgd:load_state_dict(sd)
    assert.is_nil(ok)
    assert.matches("Adam", err)
    local other = optim.Adam({{T.ones{5}}, {T.zeros{5}}}, {lr = 0.5})
    ok, err = other:load_state_dict(sd)
    assert.is_nil(ok)
    assert.matches("does not match parameter 1", err)
    assert.are.equal(0, other.t)       -- untouched
    assert.are.equal(0.5, other.lr)
    sd.tensors["bogus.7"] = T.ones{4}
    ok, err = optim.Adam({{T.ones{4}}, {T.zeros{4}}}):load_state_dict(sd)
    assert.is_nil(ok)
    assert.matches("bogus.7", err, 1, true)
    assert.has_error(function() adam:load_state_dict("state") end)
  end)

  it("refuses unknown options and bad targets", function()
    assert.has_error(function() optim.SGD(nn.Linear(2, 2), {learning_rate = 1}) end)
    assert.has_error(function() optim.Adam(42) end)
    assert.has_error(function() optim.SGD(nn.Linear(2, 2), {lr = -1}) end)
    assert.has_error(function() optim.SGD(nn.Linear(2, 2), {nesterov = true}) end)
  end)

  it("clip_grad_norm scales to the maximum and reports the norm", function()
    local g1, g2 = T.new{3, 0}, T.new{0, 4}
    local n = optim.clip_grad_norm({g1, g2}, 1)
    assert.are.equal(5, n) -- squares of small integers, exact
    -- 3/5 and 4/5 scaled in float32 (two roundings each: gamma(2)), then
    -- squared, summed and rooted in double
    assert.is_true(math.abs(math.sqrt(g1:norm() ^ 2 + g2:norm() ^ 2) - 1) <= gamma(3))
    assert.is_true(math.abs(optim.clip_grad_norm({g1, g2}, 10) - 1) <= gamma(3)) -- untouched below the max
  end)

  it("schedules: step, cosine and warm-up", function()
    local s = optim.schedule.step(1, 10, 0.5)
    assert.are.equal(1, s(0))
    assert.are.equal(0.5, s(10))
    assert.are.equal(0.25, s(25))
    local c = optim.schedule.cosine(1, 100, 0.1)
    assert.are.equal(1, c(0))
    assert.is_true(math.abs(c(50) - 0.55) <= 4 * 2 ^ -53) -- double: cos(pi/2) ~ 6e-17 and 3 roundings
    assert.are.equal(0.1, c(100))
    local w = optim.schedule.warmup(c, 10)
    assert.is_true(math.abs(w(0) - 0.1) <= 4 * 2 ^ -53) -- double, a few roundings
    assert.are.equal(1, w(9))
    assert.are.equal(1, w(10))
  end)
end)
