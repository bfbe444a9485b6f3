-- Specs of nn.Conv2d:pack (the packed im2col inference forward of
-- src/conv/packed.c against the ordinary forward) and of nn.Conv2d's
-- relu option (a convolution and a ReLU in one module, fused into the
-- Winograd and packed forwards).
local siamese = require "siamese"
local nn, T, J = siamese.nn, siamese.tensor, siamese.nn.jacobian
local bounds = dofile("spec/bounds.lua")
local support = dofile("spec/support.lua")
local max_diff = bounds.max_diff

-- Two orders of the same dot products (im2col and packed/blocked): each
-- within gamma(K) (|w| * |x| + |b|) of the exact value, so twice that apart.
local function packed_bound(conv, x)
  return bounds.scale(bounds.conv_bound(conv, x), 2)
end

-- The im2col forward against any path (Winograd included when prepared):
-- the sum of the two bounds (bounds.conv_any_bound).
local function any_bound(conv, x)
  return bounds.add(bounds.conv_bound(conv, x), bounds.conv_any_bound(conv, x))
end

-- Same shape and values, NaN where the other has NaN.
local function assert_same_values(ref, y)
  assert.are.same(ref:shape(), y:shape())
  local a, b = ref:view(-1), y:view(-1)
  for i = 1, a:numel() do
    local u, v = a:get(i), b:get(i)
    assert(u == v or (u ~= u and v ~= v), string.format("element %d: %g vs %g", i, u, v))
  end
end

describe("nn.Conv2d:pack", function()
  before_each(function() siamese.manual_seed(11) end)

  it("matches the ordinary forward on strided, padded, 1x1 and odd-sized layers", function()
    local cases = {
      {8, 13, 3, {stride = 2, padding = "valid"}, {3, 8, 17, 17}},
      {16, 24, 3, {padding = "same"}, {1, 16, 4, 4}},
      {16, 9, 3, {padding = "same"}, {2, 16, 3, 3}},
      {12, 20, 1, {}, {2, 12, 5, 7}},
      {10, 6, {5, 3}, {stride = {2, 1}, dilation = {1, 2}, padding = {top = 2, bottom = 1, left = 0, right = 3}},
       {2, 10, 11, 13}},
      {32, 16, 3, {padding = 1}, {40, 32, 12, 12}},  -- several chunks of samples
    }
    for i, c in ipairs(cases) do
      local conv = nn.Conv2d(c[1], c[2], c[3], c[4]):evaluate()
      local x = T.randn(c[5])
      local ref = conv:forward(x):clone()
      assert.is_true(conv:pack())
      local y = conv:forward(x)
      assert.are.same(ref:shape(), y:shape())
      bounds.check(y, ref, packed_bound(conv, x), "case " .. i)
    end
  end)

  it("multiplies only the tap that reaches a 1x1 input (and falls back for other sizes)", function()
    local conv = nn.Conv2d(16, 12, 3, {padding = "same"}):evaluate()
    local x1, x4 = T.randn{2, 16, 1, 1}, T.randn{1, 16, 4, 4}
    local r1, r4 = conv:forward(x1):clone(), conv:forward(x4):clone()
    conv:pack()
    bounds.check(conv:forward(x1), r1, packed_bound(conv, x1), "1x1")
    assert.are.equal("packed_tap", conv:algorithm(x1:shape()))
    assert.are.equal("packed", conv:algorithm(x4:shape()))
    bounds.check(conv:forward(x4), r4, packed_bound(conv, x4), "4x4")
    bounds.check(conv:forward(x1), r1, packed_bound(conv, x1), "1x1 again")
    -- asymmetric padding puts a different tap on the pixel
    local asym = nn.Conv2d(8, 5, 3, {padding = {top = 2, bottom = 0, left = 0, right = 2}}):evaluate()
    local x = T.randn{1, 8, 1, 1}
    local ref = asym:forward(x):clone()
    asym:pack()
    assert.are.equal("packed_tap", asym:algorithm(x:shape()))
    bounds.check(asym:forward(x), ref, packed_bound(asym, x), "asymmetric")
  end)

  it("leaves Winograd layers to prepare and takes their other sizes", function()
    local conv = nn.Conv2d(16, 24, 3, {padding = 1}):evaluate()  -- 24: not for the blocked forward
    local big, small = T.randn{1, 16, 20, 20}, T.randn{1, 16, 4, 4}
    local rb, rs = conv:forward(big):clone(), conv:forward(small):clone()
    conv:prepare()
    conv:pack()
    bounds.check(conv:forward(big), rb, any_bound(conv, big), "20x20")
    bounds.check(conv:forward(small), rs, any_bound(conv, small), "4x4")
    assert.are.equal("winograd_f2", conv:algorithm(big:shape()))
    assert.are.equal("packed", conv:algorithm(small:shape()))   -- the 4x4 map went to the packed path
  end)

  it("does not apply to grouped layers, or to few input channels unless the blocked forward takes them", function()
    assert.is_false(nn.Conv2d(8, 8, 3, {groups = 2}):pack())
    assert.is_false(nn.Conv2d(3, 8, 7):pack())
    assert.is_false(nn.Conv2d(3, 16, 1):pack())    -- 1x1 kernels stay with the ordinary forward
    assert.is_true(nn.Conv2d(3, 32, 7):pack())     -- the blocked forward
    assert.is_false(nn.Conv2d(8, 8, 3):pack(false))
    assert.is_nil(nn.Conv2d(8, 8, 3).packed)
  end)

  it("is a snapshot: training mode ignores it and training() drops it", function()
    local conv = nn.Conv2d(8, 4, 3, {stride = 2}):evaluate()
    local x = T.randn{1, 8, 9, 9}
    conv:pack()
    local before = conv:forward(x):clone()
    conv.weight:mul_(2)
    assert(max_diff(before, conv:forward(x)) == 0) -- the same packed computation again
    conv:training()
    assert.is_nil(conv.packed)
    local trained = conv:forward(x):clone()
    conv:evaluate()
    conv:pack()
    bounds.check(conv:forward(x), trained, any_bound(conv, x), "packed after training")
  end)

  it("takes the direct blocked forward on large maps, and at small batches where Winograd does not serve", function()
    -- {cin, cout, k, opts, input, blocked?, prepared?}
    local cases = {
      {3, 32, 7, {stride = 2, padding = "valid"}, {1, 3, 40, 40}, true},   -- first layer
      {32, 32, 3, {padding = "same"}, {1, 32, 35, 35}, true, true},        -- large map, prepared
      {32, 32, 3, {padding = "same"}, {4, 32, 14, 14}, true, true},        -- large map, a batch
      {16, 16, 3, {padding = "same"}, {1, 16, 8, 8}, false, true},         -- 8x8 at batch 1: Winograd
      {16, 16, 3, {padding = "same"}, {1, 16, 8, 8}, true, false},         -- ... unless not prepared
      {16, 32, 3, {padding = "same"}, {2, 16, 4, 4}, true, true},          -- 4x4, small batch
      {16, 32, 3, {padding = "same"}, {4, 16, 4, 4}, false, true},         -- 4x4, batch of 4: packed
      {16, 32, 3, {stride = 2, padding = "valid"}, {1, 16, 9, 9}, true},   -- strided, small map
      {16, 32, 3, {padding = "same"}, {1, 16, 1, 1}, false},               -- one tap: packed
      {16, 24, 3, {padding = "same"}, {1, 16, 20, 20}, false},             -- 24 output channels
    }
    for i, c in ipairs(cases) do
      local conv = nn.Conv2d(c[1], c[2], c[3], c[4]):evaluate()
      local x = T.randn(c[5])
      local ref = conv:forward(x):clone()
      if c[7] then conv:prepare() end
      conv:pack()
      local y = conv:forward(x)
      bounds.check(y, ref, any_bound(conv, x), "case " .. i)
      assert.are.equal(c[6], conv:algorithm(c[5]) == "blocked", "case " .. i)
    end
  end)

  it("the blocked forward fuses the ReLU and drops its weights with training()", function()
    local conv = nn.Conv2d(8, 16, 3, {padding = "same", relu = true}):evaluate()
    local x = T.randn{1, 8, 12, 12}
    local ref = conv:forward(x):clone()
    conv:pack()
    local y = conv:forward(x)
    assert.are.equal("blocked", conv:algorithm(x:shape()))
    bounds.check(y, ref, any_bound(conv, x), "blocked with ReLU")
    assert.are.equal(0, (y:view(-1):min()))
    conv:training()
    assert.is_nil(conv.packed)
  end)

  -- The 8-bit path rebuilds w' = fl(fl(off + 128 step) + fl(step (q - 128))):
  -- three roundings of at most u big (big = |off| + 255 |step|), plus the
  -- grid's own acceptance of 2^-20 big (src/conv/blocked.c), so
  -- |w' - w| <= (2^-20 + 3u) big per output channel; that adds
  -- (2^-20 + 3u) big sum|x| (window) to the two dot-product bounds.
  local function grid_bound(conv, x, grid)
    local ones = T.ones(conv.weight:shape())
    local sx = bounds.conv_mag(conv, x, ones, true)
    local b = packed_bound(conv, x)
    local per = #b // x:shape(1) // conv.nout
    for i = 1, #b do
      local o = ((i - 1) // per) % conv.nout + 1
      local big = math.abs(grid:get(1, o)) + 255 * math.abs(grid:get(2, o))
      b[i] = b[i] + (2 ^ -20 + 3 * bounds.U) * big * sx[i]
    end
    return b
  end

  it("keeps weights on an 8-bit grid in 8 bits, and ignores a grid they are not on", function()
    local conv = nn.Conv2d(16, 32, 3, {padding = "same"}):evaluate()
    local grid = T.zeros{2, 32}
    for o = 1, 32 do
      grid:set(1, o, -0.5 - 0.01 * o)
      grid:set(2, o, 1 / 255 + 1e-4 * o)
      local w = conv.weight:select(1, o):view(-1)
      for k = 1, w:numel() do w:set(k, grid:get(1, o) + grid:get(2, o) * ((k * 37) % 256)) end
    end
    local x = T.randn{1, 16, 6, 6}
    local ref = conv:forward(x):clone()
    local ok, on_grid = conv:pack{grid = grid}
    assert.is_true(ok)
    assert.is_true(on_grid)
    assert.are.equal("blocked8", conv:algorithm(x:shape()))
    bounds.check(conv:forward(x), ref, grid_bound(conv, x, grid), "8-bit")
    -- a batch of 4 takes the float panels
    local x4 = T.randn{4, 16, 12, 12}
    conv:pack(false)
    local ref4 = conv:forward(x4):clone()
    conv:pack{grid = grid}
    assert.are.equal("blocked", conv:algorithm(x4:shape()))
    bounds.check(conv:forward(x4), ref4, grid_bound(conv, x4, grid), "8-bit, batch of 4")
    -- one weight between two levels: the grid is ignored
    conv.weight:set(3, 2, 1, 1, conv.weight:get(3, 2, 1, 1) + 0.3 * grid:get(2, 3))
    ok, on_grid = conv:pack{grid = grid}
    assert.is_true(ok)
    assert.is_false(on_grid)
    assert.are.equal("blocked", conv:algorithm(x:shape()))
    assert.has_error(function() conv:pack{grid = T.zeros{2, 16}} end, "bad argument #1 to 'pack' (grid must be a [2,32] tensor, got [2,16])")
    assert.has_error(function() conv:pack("yes") end, "bad argument #1 to 'pack' (options table or boolean expected, got string)")
    assert.is_true(conv:pack(true))
    assert.are.equal("blocked", conv:algorithm(x:shape()))
  end)

  -- Two implementations of x + conv2(relu(conv1(x))) (then maybe a ReLU,
  -- 1-Lipschitz): conv1 differs by e1 <= 2 B1 (B: bounds.conv_any_bound,
  -- any path), conv2 by e2 <= |w2| * e1 + 2 B2 on inputs of magnitude
  -- |y1| + e1, and the sum with the shortcut (off by es) rounds once in each:
  -- |a - b| <= e2 + es + 2u (|conv2| + |shortcut|) (u on the exact sum, + e2).
  local function residual_bound(convs, x, shortcut, es)
    local c1, c2 = convs[1], convs[2]
    local e1 = bounds.scale(bounds.conv_any_bound(c1, x), 2)
    local y1 = c1:forward(x):clone()
    local m1 = bounds.like(y1, bounds.add(bounds.flat(bounds.abs(y1)), e1))
    local e2 = bounds.add(bounds.conv_prop(c2, bounds.like(y1, e1)), bounds.scale(bounds.conv_any_bound(c2, m1), 2))
    local y2 = bounds.flat(c2:forward(y1))
    local sc = bounds.flat(shortcut or x)
    local out = {}
    for i = 1, #e2 do
      out[i] = e2[i] * (1 + 2 * bounds.U) + (es or 0) + 2 * bounds.U * (math.abs(y2[i]) + math.abs(sc[i]) + e2[i])
    end
    return out
  end

  it("adds a residual inside the blocked forward, as nn.Add would", function()
    local function block()
      return nn.Add{nn.Sequential{nn.Conv2d(16, 16, 3, {padding = "same", relu = true}),
                                  nn.Conv2d(16, 16, 3, {padding = "same"})}, nn.Identity()}
    end
    siamese.manual_seed(5)
    local a = block()
    local b = block()
    local pa, pb = a:parameters(), b:parameters()
    for i = 1, #pa do pb[i]:copy(pa[i]) end
    for _, shape in ipairs{{1, 16, 9, 9}, {2, 16, 14, 14}, {1, 16, 1, 1}} do
      local x = T.randn(shape)
      local ref = a:evaluate():forward(x):clone()
      b:evaluate()
      for _, c in ipairs(b.modules[1].modules) do c:pack() end
      local y = b:forward(x)
      bounds.check(y, ref, residual_bound(a.modules[1].modules, x), "residual " .. table.concat(shape, "x"))
      if shape[3] == 9 then
        -- fused: the second convolution never made an output of its own
        assert.is_nil(b.modules[1].modules[2].output)
      end
      assert.are_not.equal(b.modules[1].modules[2].output, y)  -- Add's own buffer
    end
    -- residual_forward declines what it cannot fuse
    local conv = b.modules[1].modules[2]
    assert.is_nil(conv:residual_forward(T.randn{1, 16, 9, 9}, T.randn{1, 16, 9, 8}))
    conv:training()
    assert.is_nil(conv:residual_forward(T.randn{1, 16, 9, 9}, T.randn{1, 16, 9, 9}))
    -- the unfused evaluation path keeps the shape check
    local bad = nn.Add{nn.Sequential{nn.Conv2d(4, 8, 1)}, nn.Identity()}:evaluate()
    assert.has_error(function() bad:forward(T.randn{1, 4, 3, 3}) end, "Add: branch 2 gives [1,4,3,3], branch 1 gave [1,8,3,3]")
  end)

  it("adds any second branch and applies Add's ReLU inside the blocked forward, never a ReLU of its own", function()
    siamese.manual_seed(6)
    -- a down-sampling block: strided main path, pooled shortcut with zero channels appended
    local function down()
      return nn.Add({nn.Sequential{nn.Conv2d(16, 32, 3, {stride = 2, padding = "same", relu = true}),
                                   nn.Conv2d(32, 32, 3, {padding = "same"})},
                     nn.Sequential{nn.AvgPool2d(2), nn.Reshape(1, 16, 36), nn.ZeroPad2d(0, 0, 0, 16),
                                   nn.Reshape(32, 6, 6)}}, {relu = true})
    end
    local a, b = down(), down()
    local pa, pb = a:parameters(), b:parameters()
    for i = 1, #pa do pb[i]:copy(pa[i]) end
    local x = T.randn{1, 16, 12, 12}
    local ref = a:evaluate():forward(x):clone()
    b:evaluate()
    for _, c in ipairs(b.modules[1].modules) do c:pack() end
    local y = b:forward(x)
    assert.is_nil(b.modules[1].modules[2].output)  -- fused
    -- the shortcut: an average of 4 (2 roundings with the division by 4,
    -- exact) in each implementation: es <= 2 gamma(3) max|x|
    local shortcut = a.modules[2]:forward(x):clone()
    local bound = residual_bound(a.modules[1].modules, x, shortcut, 2 * bounds.gamma(3) * x:norm(math.huge))
    bounds.check(y, ref, bound, "fused down-sampling block")
    assert.are.equal(0, (y:view(-1):min()))
    -- training mode: the plain sum and ReLU
    bounds.check(b:training():forward(x), ref, bound, "training mode")
    -- a convolution with its own ReLU (before the sum) is not fused
    local own = nn.Conv2d(16, 16, 3, {padding = "same", relu = true}):evaluate()
    own:pack()
    assert.is_nil(own:residual_forward(T.randn{1, 16, 6, 6}, T.randn{1, 16, 6, 6}))
    assert.has_error(function() nn.Add({nn.Identity()}, {relu = 1}) end, "nn.Add: option 'relu' must be a boolean, got number")
    assert.has_error(function() nn.Add({nn.Identity()}, true) end, "nn.Add: options table expected, got boolean")
  end)

  it("the raw blocked bindings refuse mismatched shapes", function()
    local C = require("siamese.core").conv
    local p = {3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1}
    local ok, err = pcall(C.make_weights, "blocked", "forward", T.zeros{12, 36}, T.zeros{12, 4, 3, 3}, p)
    assert.is_false(ok)
    assert.matches("conv2d_blocked_pack.*multiple of 16", err)
    ok, err = pcall(C.forward_workspace, "blocked", T.zeros{1, 16, 5, 5}, T.zeros{1, 4, 5, 5}, T.zeros{16, 35}, nil, p)
    assert.is_false(ok)
    assert.matches("packed weight", err)
    ok, err = pcall(C.forward, "blocked", T.zeros{1, 16, 5, 5}, T.zeros{1, 4, 5, 5}, T.zeros{16, 36}, nil, p, nil,
      false, T.zeros{1})
    assert.is_false(ok)
    assert.matches("workspace", err)
  end)

  it("the raw bindings refuse mismatched shapes", function()
    local C = require("siamese.core").conv
    local p = {3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1}
    assert.has_error(function() C.make_weights("packed", "forward", T.zeros{4, 35}, T.zeros{4, 4, 3, 3}, p) end)
    local ok, err = pcall(C.forward_workspace, "packed", T.zeros{1, 4, 5, 5}, T.zeros{1, 4, 5, 5}, T.zeros{4, 35}, nil, p)
    assert.is_false(ok)
    assert.matches("packed weight", err)
    ok, err = pcall(C.forward, "packed", T.zeros{1, 4, 5, 5}, T.zeros{1, 4, 5, 5}, T.zeros{4, 36}, nil, p, nil,
      false, T.zeros{1})
    assert.is_false(ok)
    assert.matches("workspace", err)
  end)
end)

describe("nn.Conv2d{relu = true}", function()
  before_each(function() siamese.manual_seed(5) end)

  -- The fused layer and a Conv2d + ReLU pair with the same weights.
  local function pair(cin, cout, k, opts)
    opts = opts or {}
    local fused = nn.Conv2d(cin, cout, k, setmetatable({relu = true}, {__index = opts}))
    local plain = nn.Conv2d(cin, cout, k, opts)
    plain.weight:copy(fused.weight)
    plain.bias:copy(fused.bias)
    return fused, nn.Sequential{plain, nn.ReLU()}
  end

  it("is a convolution followed by max(., 0), forward and backward, in training mode", function()
    for _, c in ipairs{{3, 4, 3, {padding = 1}, {2, 3, 6, 6}}, {8, 8, 3, {padding = 1}, {2, 8, 9, 9}},
                       {16, 12, 3, {stride = 2}, {2, 16, 9, 9}}} do
      local fused, ref = pair(c[1], c[2], c[3], c[4])
      local x = T.randn(c[5])
      -- the same kernels on the same values in both (the ReLU applied
      -- after the same sums, the mask from the same outputs): bit-identical
      local y = fused:forward(x)
      bounds.exact(y, ref:forward(x), "forward")
      local g = T.randn(y:shape())
      fused:zeroGradParameters()
      ref:zeroGradParameters()
      local gx = fused:backward(x, g)
      bounds.exact(gx, ref:backward(x, g), "input gradient")
      bounds.exact(fused.gradWeight, ref.modules[1].gradWeight, "weight gradient")
      bounds.exact(fused.gradBias, ref.modules[1].gradBias, "bias gradient")
    end
  end)

  it("fuses the ReLU into the prepared (Winograd) and packed forwards", function()
    local fused, ref = pair(16, 16, 3, {padding = 1})
    fused:evaluate()
    ref:evaluate()
    for _, x in ipairs{T.randn{1, 16, 20, 20}, T.randn{2, 16, 4, 4}, T.randn{1, 16, 1, 1}} do
      local want = ref:forward(x):clone()
      fused:prepare()
      fused:pack()
      local y = fused:forward(x)
      -- ReLU is 1-Lipschitz: the bound of the convolutions carries over
      bounds.check(y, want, any_bound(fused, x), "fused ReLU")
      local negative = false
      for i = 1, y:numel() do negative = negative or y:view(-1):get(i) < 0 end
      assert.is_false(negative)
    end
  end)

  it("passes the finite-difference gradient check", function()
    -- outputs kept away from the kink: biases of +-3 on alternate channels
    local conv = nn.Conv2d(2, 4, 3, {padding = 1, relu = true})
    conv.weight:mul_(0.1)
    for o = 1, 4 do conv.bias:set(o, o % 2 == 0 and 3 or -3) end
    local ok, failures = J.check_module(conv, T.randn{2, 2, 5, 5})
    assert(ok, table.concat(failures or {}, "; "))
  end)

  it("raises on a non-boolean relu and shows it in its description", function()
    local ok, err = pcall(nn.Conv2d, 2, 2, 3, {relu = 1})
    assert.is_false(ok)
    assert.matches("relu must be a boolean", err)
    assert.matches(", relu%)$", tostring(nn.Conv2d(2, 2, 3, {relu = true})))
    assert.not_matches("relu", tostring(nn.Conv2d(2, 2, 3)))
  end)
end)

describe("nn.MaxPool2d 2x2 stride 2 in evaluation mode", function()
  it("gives the training-mode values on odd sizes, padding, NaN and -inf", function()
    siamese.manual_seed(21)
    for _, c in ipairs{{{1, 2, 9, 11}, "same"}, {{2, 3, 8, 8}, "valid"}, {{1, 1, 7, 5}, 1}, {{1, 2, 1, 6}, "same"},
                       {{1, 2, 6, 37}, "same"}, {{1, 1, 5, 40}, "valid"}} do
      local x = T.randn(c[1])
      local flat = x:view(-1)
      flat:set(3, 0 / 0)
      flat:set(7, -math.huge)
      flat:set(flat:numel(), 0 / 0)
      local train = nn.MaxPool2d(2, {padding = c[2]})
      local ref = train:forward(x):clone()
      assert_same_values(ref, nn.MaxPool2d(2, {padding = c[2]}):evaluate():forward(x))
    end
  end)

  it("3x3 stride 2 and other windows (rows, then columns) give the training-mode values too", function()
    siamese.manual_seed(22)
    -- {input shape, kernel, opts}; 2100 columns take the one-pass route (rows over 2048)
    for _, c in ipairs{{{1, 3, 72, 72}, 3, {stride = 2, padding = "valid"}}, {{2, 2, 9, 11}, 3, {stride = 2, padding = "same"}},
                       {{1, 2, 7, 8}, {3, 2}, {stride = 1, padding = 1}}, {{1, 1, 4, 2100}, 3, {stride = 2}}} do
      local x = T.randn(c[1])
      local flat = x:view(-1)
      flat:set(5, 0 / 0)
      flat:set(40, -math.huge)
      local ref = nn.MaxPool2d(c[2], c[3]):forward(x):clone()
      assert_same_values(ref, nn.MaxPool2d(c[2], c[3]):evaluate():forward(x))
    end
  end)
end)

describe("nn.AvgPool2d with every window inside the image", function()
  it("gives the sums of the window in tap order, divided by its size", function()
    siamese.manual_seed(23)
    for _, c in ipairs{{{1, 3, 35, 35}, 2, {stride = 2, padding = "valid"}}, {{2, 2, 10, 13}, {3, 2}, {stride = {3, 1}}}} do
      local x = T.randn(c[1])
      local pool = nn.AvgPool2d(c[2], c[3])
      local y = pool:forward(x)
      local s = y:shape()
      for n = 1, s[1] do for ch = 1, s[2] do for oy = 1, s[3] do for ox = 1, s[4] do
        local sum = 0
        for ky = 0, pool.kh - 1 do for kx = 0, pool.kw - 1 do
          sum = sum + x:get(n, ch, (oy - 1) * pool.sh + ky + 1, (ox - 1) * pool.sw + kx + 1)
        end end
        local want = sum / (pool.kh * pool.kw)
        -- a float32 sum of k terms and one division: gamma(k + 1) sum|x| / k
        local k, mag = pool.kh * pool.kw, 0
        for ky = 0, pool.kh - 1 do for kx = 0, pool.kw - 1 do
          mag = mag + math.abs(x:get(n, ch, (oy - 1) * pool.sh + ky + 1, (ox - 1) * pool.sw + kx + 1))
        end end
        support.within(y:get(n, ch, oy, ox), want, bounds.gamma(k + 1) * mag / k,
          string.format("(%d,%d,%d,%d)", n, ch, oy, ox))
      end end end end
    end
  end)
end)

describe("depthwise 3x3 stride-1 Conv2d (one pass per input row inside the image)", function()
  it("matches one single-channel convolution per channel, padded or not", function()
    siamese.manual_seed(31)
    for _, c in ipairs{{3, 1, {2, 3, 9, 11}}, {4, "same", {1, 4, 5, 4}}, {2, "valid", {1, 2, 6, 7}},
                       {2, {top = 2, bottom = 0, left = 0, right = 2}, {1, 2, 5, 3}}, {1, 1, {1, 1, 2, 2}}} do
      local ch = c[1]
      local dw = nn.Conv2d(ch, ch, 3, {groups = ch, padding = c[2]})
      local x = T.randn(c[3])
      local y = dw:forward(x)
      for k = 1, ch do
        local one = nn.Conv2d(1, 1, 3, {padding = c[2]})
        one.weight:copy(dw.weight:narrow(1, k, 1))
        one.bias:copy(dw.bias:narrow(1, k, 1))
        local xk = x:narrow(2, k, 1):contiguous()
        local ref = one:forward(xk):clone()
        -- the depthwise pass (any order, gamma(10)) against the single
        -- channel layer (training mode: maybe Winograd)
        bounds.check(y:narrow(2, k, 1), ref, any_bound(one, xk), "channel " .. k)
      end
    end
  end)
end)
