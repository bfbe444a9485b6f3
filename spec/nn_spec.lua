-- Specs of siamese.nn: forward values on hand-computed cases, the module
-- protocol (buffers, modes, freezing), misuse messages and initialisation.
-- Gradients are checked in nn_gradcheck_spec.lua.
local siamese = require "siamese"
local nn, T = siamese.nn, siamese.tensor
local bounds = dofile("spec/bounds.lua")
local gamma, U, f32 = bounds.gamma, bounds.U, bounds.f32

-- Exact unless a bound is given (a number or a list, see bounds.check):
-- the hand-computed cases are small integers and halves, exact in float32.
local function same(t, expected, tol)
  if type(tol) == "table" then return bounds.check(t, expected, tol) end
  local function walk(g, e, path)
    if type(e) == "table" then
      assert.are.equal(#e, #g, "length at " .. path)
      for i = 1, #e do walk(g[i], e[i], path .. "[" .. i .. "]") end
    else
      assert(g == e or math.abs(g - e) <= (tol or 0), string.format("%s: %.9g, expected %.9g", path, g, e))
    end
  end
  walk(t:totable(), expected, "")
end

local function set_weights(m, w, b)
  m.weight:copy(T.new(w))
  if b then m.bias:copy(T.new(b)) end
  return m
end

describe("siamese.nn forward values", function()
  it("Conv2d: a hand-computed 3x3 cross-correlation with padding and stride", function()
    local x = T.new{{{{1, 2, 3}, {4, 5, 6}, {7, 8, 9}}}}
    local c = set_weights(nn.Conv2d(1, 1, 2), {{{{1, 0}, {0, -1}}}}, {0.5})
    same(c:forward(x), {{{{1 - 5 + 0.5, 2 - 6 + 0.5}, {4 - 8 + 0.5, 5 - 9 + 0.5}}}})
    local s = set_weights(nn.Conv2d(1, 1, 3, {padding = 1, stride = 2, bias = false}), {{{{0, 0, 0}, {0, 1, 0}, {0, 0, 0}}}})
    same(s:forward(x), {{{{1, 3}, {7, 9}}}})
  end)

  it("Conv2d 'same' pads like TensorFlow (the odd pixel bottom/right)", function()
    local c = set_weights(nn.Conv2d(1, 1, 3, {stride = 2, padding = "same", bias = false}),
      {{{{1, 1, 1}, {1, 1, 1}, {1, 1, 1}}}})
    -- 4x4 input of ones: out = ceil(4/2) = 2, pad total 1, all of it after
    local y = c:forward(T.ones{1, 1, 4, 4})
    same(y, {{{{9, 6}, {6, 4}}}})
    local v = nn.Conv2d(1, 1, 3, {padding = "valid"})
    assert.are.same({1, 1, 2, 2}, v:forward(T.ones{1, 1, 4, 4}):shape())
  end)

  it("Conv2d depthwise (groups = channels) keeps channels apart", function()
    local c = nn.Conv2d(2, 2, 1, {groups = 2, bias = false})
    c.weight:copy(T.new{{{{2}}}, {{{-1}}}})
    same(c:forward(T.new{{{{1}}, {{3}}}}), {{{{2}}, {{-3}}}})
  end)

  it("a batched forward equals the loop over single samples", function()
    siamese.manual_seed(4)
    local net = nn.Sequential{nn.Conv2d(2, 3, 3, {padding = 1}), nn.ReLU(), nn.MaxPool2d(2),
                              nn.Flatten(), nn.Linear(12, 4)}
    local x = T.randn{5, 2, 4, 4}
    local batch = net:forward(x):clone()
    -- two summation orders: conv outputs within e1 = 2 gamma(19) (|w| * |x| + |b|)
    -- of each other; ReLU and max-pooling are 1-Lipschitz (the pooled bound
    -- is the window's largest); the Linear adds |W| e + 2 gamma(13) (|W||z| + |b|)
    local conv, lin = net.modules[1], net.modules[5]
    local e1 = bounds.like(conv.output, bounds.scale(bounds.conv_bound(conv, x), 2))
    local z = net.modules[4].output:clone()
    local ep = nn.Flatten():forward(nn.MaxPool2d(2):forward(e1)):clone()
    local W, b = lin.weight, lin.bias
    local bound = {}
    for n = 1, 5 do
      for o = 1, 4 do
        local prop, mag = 0, math.abs(b:get(o))
        for k = 1, 12 do
          prop = prop + math.abs(W:get(o, k)) * ep:get(n, k)
          mag = mag + math.abs(W:get(o, k)) * (math.abs(z:get(n, k)) + ep:get(n, k))
        end
        bound[#bound + 1] = prop * (1 + gamma(13)) + 2 * gamma(13) * mag
      end
    end
    for i = 1, 5 do
      local one = net:forward(x:narrow(1, i, 1))
      bounds.check(one, batch:narrow(1, i, 1), {table.unpack(bound, 4 * i - 3, 4 * i)}, "sample " .. i)
    end
  end)

  it("pooling: max ignores padding, average counts it only when asked", function()
    local x = T.new{{{{1, 2}, {3, 4}}}}
    same(nn.MaxPool2d(2):forward(x), {{{{4}}}})
    same(nn.MaxPool2d(2, {stride = 1, padding = "same"}):forward(T.new{{{{-1, -2}, {-3, -4}}}}),
      {{{{-1, -2}, {-3, -4}}}})
    same(nn.AvgPool2d(2):forward(x), {{{{2.5}}}})
    same(nn.AvgPool2d(2, {stride = 2, padding = 1}):forward(x), {{{{0.25, 0.5}, {0.75, 1}}}})
    same(nn.AvgPool2d(2, {stride = 2, padding = 1, count_include_pad = false}):forward(x), {{{{1, 2}, {3, 4}}}})
    same(nn.GlobalAvgPool2d():forward(x), {{2.5}})
  end)

  it("Linear: y = x W^T + b, also for a 1-D input", function()
    local l = set_weights(nn.Linear(2, 3), {{1, 2}, {3, 4}, {5, 6}}, {1, 0, -1})
    same(l:forward(T.new{{1, 1}}), {{4, 7, 10}})
    same(l:forward(T.new{1, 0}), {2, 3, 4})
    same(set_weights(nn.Linear(2, 1, {bias = false}), {{1, -1}}):forward(T.new{{3, 1}}), {{2}})
  end)

  it("activations", function()
    local x = T.new{-2, 0, 3}
    same(nn.ReLU():forward(x), {0, 0, 3})
    same(nn.LeakyReLU(0.1):forward(x), {-2 * f32(0.1), 0, 3}) -- float(0.1) * -2, exact
    same(nn.PReLU():forward(x), {-0.5, 0, 3})
    -- 1 / (1 + expf(-x)) and e / (1 + e): a few roundings (gamma(4)) of
    -- libm's expf (< 1 ulp), and e^-100 is subnormal in float32 (+ 2^-149)
    local e = math.exp(-100)
    same(nn.Sigmoid():forward(T.new{0, 100, -100}), {0.5, 1, e / (1 + e)}, {0, U, gamma(4) * e + 2 ^ -149})
    same(nn.Tanh():forward(T.new{0}), {0})
    same(nn.ReLU6():forward(T.new{-2, 0, 3, 6, 7.5}), {0, 0, 3, 6, 6})
    local y6 = T.new{-1, 2, 9}
    assert.are.equal(y6, nn.ReLU6(true):forward(y6))
    same(y6, {0, 2, 6})
    -- the gradient flows only strictly inside (0, 6), also in place (read from the output)
    local r6 = nn.ReLU6()
    r6:forward(T.new{-1, 0.5, 5.5, 6, 8})
    same(r6:backward(T.new{-1, 0.5, 5.5, 6, 8}, T.new{1, 2, 3, 4, 5}), {0, 2, 3, 0, 0})
    local r6i = nn.ReLU6(true)
    r6i:forward(T.new{-1, 0.5, 5.5, 6, 8})
    same(r6i:backward(T.new{-1, 0.5, 5.5, 6, 8}, T.new{1, 2, 3, 4, 5}), {0, 2, 3, 0, 0})
    local x2 = T.new{-1, 2}
    assert.are.equal(x2, nn.ReLU(true):forward(x2)) -- in place: the input becomes the output
    same(x2, {0, 2})
    local p = nn.PReLU(2)
    p.weight:copy(T.new{0.1, 0.5})
    same(p:forward(T.new{{-1, -1}}), {{-f32(0.1), -0.5}})
  end)

  it("Dropout scales the kept values, follows the seed, and is the identity in evaluation", function()
    local d = nn.Dropout(0.5)
    siamese.manual_seed(3)
    local y1 = d:forward(T.ones{1000}):clone()
    siamese.manual_seed(3)
    same(d:forward(T.ones{1000}), y1:totable(), 0)
    local kept = 0
    for _, v in ipairs(y1:totable()) do
      assert.is_true(v == 0 or v == 2)
      if v == 2 then kept = kept + 1 end
    end
    assert.is_true(kept > 400 and kept < 600)
    d:evaluate()
    same(d:forward(T.new{1, 2}), {1, 2})
    assert.has_error(function() nn.Dropout(1) end)
  end)

  it("BatchNorm normalises with batch statistics and updates running ones", function()
    local bn = nn.BatchNorm1d(1, {momentum = 0.5})
    local y = bn:forward(T.new{{1}, {3}})
    -- mean 2, biased variance 1: -+1 / sqrt(1 + eps), a few roundings
    local r = 1 / math.sqrt(1 + bn.eps)
    same(y, {{-r}, {r}}, gamma(8))
    same(bn.running_mean, {1})            -- 0.5 * 0 + 0.5 * 2
    same(bn.running_var, {1.5})           -- 0.5 * 1 + 0.5 * 2 (unbiased)
    bn:evaluate()
    same(bn:forward(T.new{{1}}), {{0}})   -- (1 - 1) / sqrt(1.5 + eps): exact
    assert.has_error(function() nn.BatchNorm1d(1):forward(T.new{{1}}) end) -- one value per channel
  end)

  it("BatchNorm folds into an Affine with the same evaluation output", function()
    siamese.manual_seed(8)
    local bn = nn.BatchNorm2d(3)
    bn.weight:normal_(1, 0.2)
    bn.bias:normal_(0, 0.2)
    bn.running_mean:normal_(0, 1)
    bn.running_var:uniform_(0.5, 2)
    bn:evaluate()
    local x = T.randn{2, 3, 4, 4}
    local a = bn:fold()
    assert.are.equal("Affine", a.__name)
    -- both are x w' + b' with w' = w / sqrt(var + eps), b' = b - mean w',
    -- each within about 10 roundings: 2 gamma(10) (|x||w'| + |mean||w'| + |b|)
    local bound = {}
    local xs = bounds.flat(x)
    for i = 1, #xs do
      local c = (i - 1) // 16 % 3 + 1
      local w = math.abs(bn.weight:get(c)) / math.sqrt(bn.running_var:get(c) + bn.eps)
      bound[i] = 2 * gamma(10) * (math.abs(xs[i]) * w + math.abs(bn.running_mean:get(c)) * w + math.abs(bn.bias:get(c)))
    end
    bounds.check(a:forward(x):clone(), bn:forward(x), bound, "folded")
  end)

  it("shape layers", function()
    local x = T.new{{{1, 2}, {3, 4}}}
    same(nn.Flatten():forward(x), {{1, 2, 3, 4}})
    assert.are.same({1, 4, 1}, nn.Reshape(4, 1):forward(x):shape())
    local z = nn.ZeroPad2d(1, 0, 0, 1):forward(T.ones{1, 1, 1, 1})
    same(z, {{{{0, 1}, {0, 0}}}})
    -- x / sqrt(sum x^2): exact sum, a root and a division, gamma(2)
    same(nn.L2Normalize():forward(T.new{{3, 4}, {0, 0}}), {{0.6, 0.8}, {0, 0}}, {gamma(2) * 0.6, gamma(2) * 0.8, 0, 0})
    assert.are.equal(x, nn.Identity():forward(x))
  end)

  it("Add sums branches (a residual block) and Concat stacks them", function()
    local x = T.new{{1, -2}}
    local res = nn.Add{nn.Sequential{set_weights(nn.Linear(2, 2), {{1, 0}, {0, 1}}, {0, 0})}, nn.Identity()}
    same(res:forward(x), {{2, -4}})
    same(nn.Concat(2, {nn.Identity(), nn.ReLU()}):forward(x), {{1, -2, 1, 0}})
  end)

  it("distances and the Siamese wrapper share one encoder", function()
    local a, b = T.new{{0, 0}, {1, 1}}, T.new{{3, 4}, {1, 1}}
    -- sums in double, sqrt(max(s, eps)) rounded once to float
    same(nn.PairwiseDistance():forward{a, b}, {5, math.sqrt(1e-7)}, {0, U * math.sqrt(1e-7)})
    same(nn.PairwiseDistance("sqeuclidean"):forward{a, b}, {25, 0})
    same(nn.PairwiseDistance("cosine"):forward{T.new{{1, 0}}, T.new{{0, 2}}}, {1})
    same(nn.AbsDiff():forward{a, b}, {{3, 4}, {0, 0}})
    local enc = nn.Linear(2, 2)
    local s = nn.Siamese(enc)
    local d = s:forward{a, b}
    same(d, nn.PairwiseDistance():forward{enc:forward(a):clone(), enc:forward(b):clone()}:totable())
    local p = s:parameters()
    assert.are.equal(2, #p) -- one set of weights for both branches
    assert.are.equal(enc.weight, p[1])
    local three = s:forward{a, b, a}
    assert.are.equal(3, #three)
    same(three[3], three[1]:totable())
    local head = nn.Siamese(nn.Linear(2, 2), {head = nn.Sequential{nn.Linear(1, 1), nn.Sigmoid()}})
    assert.are.same({2, 1}, head:forward{a, b}:shape())
  end)

  it("backward accumulates parameter gradients until zeroGradParameters", function()
    local l = nn.Linear(2, 1)
    local x, g = T.new{{1, 2}}, T.new{{1}}
    l:forward(x)
    l:backward(x, g)
    l:backward(x, g)
    same(l.gradWeight, {{2, 4}})
    l:zeroGradParameters()
    same(l.gradWeight, {{0, 0}})
    l:freeze()
    l:backward(x, g)
    same(l.gradWeight, {{0, 0}}) -- frozen: no weight-gradient work
  end)
end)

describe("siamese.nn misuse", function()
  it("names the layer and the shapes", function()
    local ok, err = pcall(function() nn.Conv2d(3, 8, 3):forward(T.zeros{2, 4, 8, 8}) end)
    assert.is_false(ok)
    assert.matches("Conv2d: expected input %[N,3,H,W%], got %[2,4,8,8%]", err)
    ok, err = pcall(function() nn.Conv2d(1, 1, 5):forward(T.zeros{1, 1, 3, 3}) end)
    assert.matches("smaller than the 5x5 kernel", err)
    ok, err = pcall(function() nn.Linear(4, 2):forward(T.zeros{3, 5}) end)
    assert.matches("Linear: expected input %[N,4%], got %[3,5%]", err)
    ok, err = pcall(function() nn.MaxPool2d(2):forward(T.zeros{4, 4}) end)
    assert.matches("MaxPool2d: expected input %[N,C,H,W%], got %[4,4%]", err)
    ok, err = pcall(function() nn.BatchNorm2d(3):forward(T.zeros{2, 4, 2, 2}) end)
    assert.matches("BatchNorm2d: expected input with 4 dimensions and 3 channels, got %[2,4,2,2%]", err)
    ok, err = pcall(function() nn.PairwiseDistance():forward{T.zeros{2, 3}, T.zeros{2, 4}} end)
    assert.matches("%[2,3%] and %[2,4%]", err)
    ok, err = pcall(function() nn.Add{nn.Identity(), nn.Flatten()}:forward(T.zeros{2, 2, 2}) end)
    assert.matches("branch 2 gives %[2,4%], branch 1 gave %[2,2,2%]", err)
  end)

  it("checks constructor arguments", function()
    assert.has_error(function() nn.Conv2d(3, 4, 0) end)
    assert.has_error(function() nn.Conv2d(3, 4, 3, {groups = 2}) end)
    assert.has_error(function() nn.Linear(0, 2) end)
    assert.has_error(function() nn.MaxPool2d(2, {padding = 2}) end)
    assert.has_error(function() nn.PairwiseDistance("manhattan") end)
    assert.has_error(function() nn.Siamese(42) end)
    assert.has_error(function() nn.Sequential():add(42) end)
  end)
end)

describe("siamese.nn.init", function()
  it("draws with the documented spreads, reproducibly", function()
    siamese.manual_seed(5)
    local w = T.zeros{256, 128, 3, 3}
    local fan_in, fan_out = 128 * 9, 256 * 9
    local function std(t) local m = t:mean(); local c = t:sub(m); return math.sqrt(c:mul(c):mean()) end
    -- statistical bounds (n = 294912 draws): the sample std is within 6
    -- standard deviations, sigma / sqrt(2 n), of sigma; the largest of n
    -- uniforms on [-l, l) is below l and above l (1 - 20 / n) but with
    -- probability e^-10
    local n = w:numel()
    nn.init.kaiming_normal(w)
    local sigma = math.sqrt(2 / fan_in)
    assert.is_true(math.abs(std(w) - sigma) <= 6 * sigma / math.sqrt(2 * n))
    nn.init.kaiming_uniform(w)
    local l = math.sqrt(6 / fan_in)
    assert.is_true(w:max() <= l * (1 + U) and w:max() >= l * (1 - 20 / n))
    nn.init.xavier_uniform(w)
    l = math.sqrt(6 / (fan_in + fan_out))
    assert.is_true(w:max() <= l * (1 + U) and w:max() >= l * (1 - 20 / n))
    nn.init.xavier_normal(w)
    sigma = math.sqrt(2 / (fan_in + fan_out))
    assert.is_true(math.abs(std(w) - sigma) <= 6 * sigma / math.sqrt(2 * n))
    local b = T.zeros{256}
    nn.init.torch_default(w, b)
    assert.is_true(b:max() <= 1 / math.sqrt(fan_in) and w:min() >= -1 / math.sqrt(fan_in))
    siamese.manual_seed(5)
    local a1 = nn.Linear(4, 4).weight:clone()
    siamese.manual_seed(5)
    assert.are.same(a1:totable(), nn.Linear(4, 4).weight:totable())
  end)

  it("modules print their configuration", function()
    assert.matches("Conv2d%(3 %-> 8, 3x3, stride 2,2, pad same%)", tostring(nn.Conv2d(3, 8, 3, {stride = 2, padding = "same"})))
    assert.matches("Sequential {\n  %(1%) Linear%(2 %-> 3%)", tostring(nn.Sequential{nn.Linear(2, 3)}))
    assert.are.equal(9, nn.Linear(2, 3):nparameters())
  end)
end)
