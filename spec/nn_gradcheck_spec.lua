-- Finite-difference gradient checks of every layer and loss, for inputs and
-- parameters, on random shapes. The seed is printed; SIAMESE_SEED overrides.
local siamese = require "siamese"
local nn, loss, T, J = siamese.nn, siamese.loss, siamese.tensor, siamese.nn.jacobian

local seed = tonumber(os.getenv("SIAMESE_SEED") or "") or os.time() % 100000
print(string.format("\ngradient checks: seed %d (set SIAMESE_SEED=%d to repeat)", seed, seed))
siamese.manual_seed(seed)
math.randomseed(seed)
local R = math.random

-- Values spread out enough that a finite-difference step never crosses a
-- kink (ReLU at 0, a tie inside a max-pool window).
local function separated(shape)
  local t = T.zeros(shape)
  local n = t:numel()
  local order = {}
  for i = 1, n do order[i] = i end
  for i = n, 2, -1 do local j = R(i); order[i], order[j] = order[j], order[i] end
  local flat = t:view(-1)
  -- k * 0.05 + 0.025: at least 0.025 from 0 and 0.05 from each other
  for i = 1, n do flat:set(i, (order[i] - (n + 1) // 2) * 0.05 + 0.025) end
  return t
end

-- The criterion (siamese.nn.jacobian, not edited here): |num - ana| <= atol
-- + rtol |num|, num = (L(x+h) - L(x-h)) / 2h with L summed in double from
-- float32 outputs. Its parts: truncation h^2/6 |L'''| (h = 1e-2: ~2e-5 |L'''|,
-- inside rtol 2e-2 for the smooth layers here, whose third derivatives are
-- of the size of the first) and rounding ~gamma(n) sum|o R| / h (n the
-- terms per output: below 1e-4 sum|o R| / 1, inside atol 2e-3 for these
-- sizes of at most a few hundred terms and O(1) values). Both are
-- independent of the kernels' summation order up to that gamma(n).
local function check(m, input, opts)
  local ok, failures = J.check_module(m, input, opts)
  assert(ok, tostring(m) .. ": " .. table.concat(failures, "; "))
end

local function check_loss(c, input, target, opts)
  local ok, failures = J.check_criterion(c, input, target, opts)
  assert(ok, tostring(c) .. ": " .. table.concat(failures, "; "))
end

describe("gradient checks: layers", function()
  it("Conv2d with random sizes, strides, paddings, dilation and groups", function()
    for _ = 1, 4 do
      local g = R(1, 2)
      local cin, cout = g * R(1, 3), g * R(1, 3)
      local k = R(1, 3)
      local opts = {stride = R(1, 2), padding = R(0, 1), dilation = R(1, 2), groups = g, bias = R(2) == 1}
      local h, w = R(5, 9), R(5, 9)
      check(nn.Conv2d(cin, cout, k, opts), T.randn{R(1, 3), cin, h, w})
    end
    check(nn.Conv2d(3, 4, {3, 2}, {padding = "same", stride = 2}), T.randn{2, 3, 7, 6})
    check(nn.Conv2d(2, 3, 3, {padding = "valid"}), T.randn{2, 2, 6, 5})
    check(nn.Conv2d(4, 4, 3, {groups = 4, padding = 1}), T.randn{2, 4, 5, 5}) -- depthwise
    check(nn.Conv2d(2, 3, 3, {padding = {top = 0, bottom = 1, left = 2, right = 0}}), T.randn{1, 2, 5, 5})
  end)

  it("Linear, with and without bias, batched and 1-D", function()
    local i, o = R(1, 8), R(1, 8)
    check(nn.Linear(i, o), T.randn{R(1, 5), i})
    check(nn.Linear(i, o, {bias = false}), T.randn{R(1, 5), i})
    check(nn.Linear(i, o), T.randn{i})
  end)

  it("MaxPool2d and AvgPool2d with padding modes", function()
    check(nn.MaxPool2d(2), separated{2, 3, 6, 6})
    check(nn.MaxPool2d(3, {stride = 2, padding = 1}), separated{2, 2, 7, 7})
    check(nn.MaxPool2d(2, {stride = 1, padding = "same"}), separated{1, 2, 5, 5})
    check(nn.AvgPool2d(2), T.randn{2, 3, 6, 6})
    check(nn.AvgPool2d(3, {stride = 2, padding = 1}), T.randn{2, 2, 7, 7})
    check(nn.AvgPool2d(3, {stride = 2, padding = 1, count_include_pad = false}), T.randn{2, 2, 7, 7})
    check(nn.AvgPool2d(2, {padding = "same"}), T.randn{1, 2, 5, 5})
    check(nn.GlobalAvgPool2d(), T.randn{2, 3, R(1, 5), R(1, 5)})
  end)

  it("activations", function()
    local shape = {R(1, 4), R(1, 6), R(1, 3)}
    check(nn.ReLU(), separated(shape))
    check(nn.LeakyReLU(0.2), separated(shape))
    check(nn.PReLU(), separated(shape))
    check(nn.PReLU(shape[2], 0.1), separated(shape))
    check(nn.Sigmoid(), T.randn(shape))
    check(nn.Tanh(), T.randn(shape))
    -- ReLU6: 3 + k * 0.3 + 0.15 for shuffled k, so values straddle both kinks
    -- (0 and 6) and none is within 0.15 of them
    local wide = separated{4, 6, 3}
    local flat = wide:view(-1)
    for i = 1, flat:numel() do flat:set(i, 3 + (flat:get(i) - 0.025) * 6 + 0.15) end
    check(nn.ReLU6(), wide)
    -- in place: behind a layer that owns its output (the check perturbs its input)
    for _, act in ipairs{nn.ReLU(true), nn.ReLU6(true), nn.LeakyReLU(0.2, true), nn.Sigmoid(true), nn.Tanh(true)} do
      check(nn.Sequential{nn.Affine(shape[2]), act}, separated(shape))
    end
  end)

  it("Dropout (same mask for every evaluation through the seed)", function()
    check(nn.Dropout(0.3), T.randn{R(2, 5), R(2, 9)})
  end)

  it("BatchNorm1d/2d in training and evaluation, and Affine", function()
    local c = R(1, 4)
    check(nn.BatchNorm1d(c), T.randn{R(3, 6), c})
    check(nn.BatchNorm1d(c, {affine = false}), T.randn{R(3, 6), c, 3})
    check(nn.BatchNorm2d(c), T.randn{R(2, 4), c, 3, 3})
    local bn = nn.BatchNorm2d(c)
    bn.running_mean:normal_(0, 1)
    bn.running_var:uniform_(0.5, 2)
    check(bn:evaluate(), T.randn{2, c, 3, 3})
    check(nn.Affine(c), T.randn{2, c, 4})
  end)

  it("shape layers and L2Normalize", function()
    check(nn.Flatten(), T.randn{2, 3, 2})
    check(nn.Reshape(3, -1), T.randn{2, 3, 2})
    check(nn.ZeroPad2d(1, 2, 0, 1), T.randn{2, 2, 3, 3})
    check(nn.L2Normalize(), T.randn{R(1, 4), R(2, 8)})
    check(nn.Identity(), T.randn{3})
  end)

  it("containers: Sequential, residual Add, Concat", function()
    check(nn.Sequential{nn.Conv2d(1, 4, 3), nn.Tanh(), nn.AvgPool2d(2), nn.Flatten(), nn.Linear(64, 5)},
      T.randn{2, 1, 10, 10})
    local block = nn.Sequential{
      nn.Add{nn.Sequential{nn.Conv2d(2, 2, 3, {padding = 1}), nn.BatchNorm2d(2), nn.Tanh(),
                           nn.Conv2d(2, 2, 3, {padding = 1})}, nn.Identity()},
      nn.Tanh()}
    check(block, T.randn{3, 2, 5, 5})
    -- the ReLU of Add{relu = true}: small weights and inputs at least 0.5
    -- from 0 keep every sum away from the ReLU's kink
    local conv = nn.Conv2d(2, 2, 3, {padding = 1})
    conv.weight:mul_(0.05)
    conv.bias:zero()
    local relu_block = nn.Add({nn.Sequential{conv, nn.Tanh()}, nn.Identity()}, {relu = true})
    local x = T.randn{2, 2, 4, 4}
    local flat = x:view(-1)
    for i = 1, flat:numel() do
      local v = flat:get(i)
      flat:set(i, v + (v >= 0 and 0.5 or -0.5))
    end
    check(relu_block, x)
    check(nn.Concat(2, {nn.Conv2d(2, 3, 1), nn.Identity(), nn.Sigmoid()}), T.randn{2, 2, 3, 3})
  end)

  it("distances and the Siamese wrapper", function()
    local n, d = R(2, 5), R(2, 7)
    for _, m in ipairs{"euclidean", "sqeuclidean", "cosine"} do
      check(nn.PairwiseDistance(m), {T.randn{n, d}, T.randn{n, d}}, {h = 1e-3, atol = 5e-3})
    end
    -- |a - b| has a kink at a = b: keep every pair at least 0.1 apart.
    local a = T.randn{n, d}
    local off = T.rand{n, d}
    local b = a:clone()
    for i = 1, n do
      for j = 1, d do
        local u = off:get(i, j)
        b:set(i, j, a:get(i, j) + (u < 0.5 and -1 or 1) * (0.1 + u))
      end
    end
    check(nn.AbsDiff(), {a, b})
    local function enc() return nn.Sequential{nn.Linear(d, 4), nn.Tanh(), nn.Linear(4, 3)} end
    check(nn.Siamese(enc()), {T.randn{n, d}, T.randn{n, d}})
    check(nn.Siamese(enc(), {distance = "cosine"}), {T.randn{n, d}, T.randn{n, d}}, {h = 1e-3, atol = 5e-3})
    check(nn.Siamese(enc(), {head = nn.Sequential{nn.Linear(1, 1), nn.Sigmoid()}}), {T.randn{n, d}, T.randn{n, d}})
    -- absdiff again: draw an encoder and inputs whose embeddings differ by
    -- >= 0.1 everywhere (bounded: a fresh encoder each try)
    local function min_gap(s, x1, x2)
      local diff = s.encoder:forward(x1):clone():sub(s.encoder:forward(x2))
      local m = math.huge
      for _, row in ipairs(diff:totable()) do
        for _, v in ipairs(row) do m = math.min(m, math.abs(v)) end
      end
      return m
    end
    for try = 1, 1000 do
      local s = nn.Siamese(enc(), {distance = "absdiff", head = nn.Sequential{nn.Linear(3, 1), nn.Sigmoid()}})
      local x1, x2 = T.randn{n, d}:scale(2), T.randn{n, d}:scale(2)
      if min_gap(s, x1, x2) >= 0.1 then
        check(s, {x1, x2})
        break
      end
      assert(try < 1000, "no well-separated absdiff draw found")
    end
    check(nn.Siamese(enc()), {T.randn{n, d}, T.randn{n, d}, T.randn{n, d}})
  end)
end)

describe("gradient checks: losses", function()
  local n = R(3, 8)
  local function labels()
    local y = {}
    for i = 1, n do y[i] = i % 2 end
    return y
  end

  it("contrastive, with margins on both sides of the distances", function()
    check_loss(loss.ContrastiveLoss(), T.rand{n}:scale(2), labels())
    check_loss(loss.ContrastiveLoss{margin = 0.5}, T.rand{n}, labels())
  end)

  it("triplet, plain and squared", function()
    local d = R(2, 6)
    local x = {T.randn{n, d}, T.randn{n, d}, T.randn{n, d}}
    check_loss(loss.TripletLoss{margin = 1}, x)
    check_loss(loss.TripletLoss{margin = 1, squared = true}, x)
  end)

  it("binary cross-entropy on probabilities and logits", function()
    check_loss(loss.BCELoss(), T.rand{n}:scale(0.8):add(0.1), labels(), {h = 1e-3})
    check_loss(loss.BCELoss{logits = true}, T.randn{n}, labels())
  end)

  -- Mining picks the hardest pair and averages over active triplets, so the
  -- loss has kinks and jumps where two distances tie or a triplet's loss
  -- crosses zero. Draw batches whose distances and triplet losses keep at
  -- least `gap` away from every such point: then a step of h = 1e-3 moves
  -- no choice and the finite differences are exact up to rounding.
  local function stable_batch(P, K, D, margin, squared, mining)
    local lab = {}
    for i = 1, P * K do lab[i] = (i - 1) // K + 1 end
    local gap = 0.02
    local function far(x, y) return math.abs(x - y) >= gap end
    local function stable(dm)
      for i = 1, P * K do
        local pos, neg = {}, {}
        for j = 1, P * K do
          if j ~= i then table.insert(lab[j] == lab[i] and pos or neg, dm[i][j]) end
        end
        table.sort(pos)
        table.sort(neg)
        if mining == "hard" then
          -- the farthest positive and nearest negative are clear winners
          if #pos > 1 and not far(pos[#pos], pos[#pos - 1]) then return false end
          if #neg > 1 and not far(neg[1], neg[2]) then return false end
          if not far(pos[#pos] - neg[1] + margin, 0) then return false end
        elseif mining == "semihard" then
          -- every (a, p): no negative distance near d_ap or d_ap + margin
          -- (the semi-hard band's ends), a clear nearest negative, and the
          -- chosen triplet's loss away from 0
          for _, dp in ipairs(pos) do
            local pick
            for _, dn in ipairs(neg) do
              if not far(dn, dp) or not far(dn, dp + margin) then return false end
              if not pick and dn > dp and dn < dp + margin then pick = dn end
            end
            if #neg > 1 and not far(neg[1], neg[2]) then return false end
            if not far(dp - (pick or neg[1]) + margin, 0) then return false end
          end
        else
          for _, dp in ipairs(pos) do
            for _, dn in ipairs(neg) do
              if not far(dp - dn + margin, 0) then return false end
            end
          end
        end
      end
      return true
    end
    for _ = 1, 10000 do
      local e = T.randn{P * K, D}
      if stable(T.cdist(e, e, squared and "sqeuclidean" or "euclidean"):totable()) then return e, lab end
    end
    error("no stable batch found")
  end

  it("semi-hard, batch-hard and batch-all triplet over a P x K batch", function()
    for _, cfg in ipairs{{"hard", false}, {"hard", true}, {"all", false}, {"all", true},
                         {"semihard", false}, {"semihard", true}} do
      local e, lab = stable_batch(R(2, 3), R(2, 3), R(2, 6), 1, cfg[2], cfg[1])
      check_loss(loss.BatchTripletLoss{margin = 1, mining = cfg[1], squared = cfg[2]}, e, lab, {h = 1e-3, atol = 5e-3})
    end
  end)
end)
