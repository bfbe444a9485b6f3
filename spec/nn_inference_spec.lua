-- Specs of the inference fast paths: nn.Conv2d:prepare (the Winograd
-- forward of src/conv/winograd.c against the ordinary im2col forward, when it
-- applies, training mode and weight changes) and nn.MaxPool2d's
-- evaluation-mode forward without argmax.
local siamese = require "siamese"
local nn, T = siamese.nn, siamese.tensor
local bounds = dofile("spec/bounds.lua")
local max_diff = bounds.max_diff

-- Bound of a prepared (Winograd, tile 2 or 4, or a fallback) forward
-- against the im2col one: the im2col bound gamma(9 Cin + 1) (|w| * |x| + |b|)
-- plus the larger of the two Winograd bounds (bounds.winograd_bound).
local function prepared_bound(conv, x, tiles)
  local ref = bounds.conv_bound(conv, x)
  local worst = ref
  for _, m in ipairs(tiles or {2, 4}) do
    local wb = bounds.conv_winograd_bound(conv, x, m)
    for i = 1, #wb do worst[i] = math.max(worst[i], wb[i]) end
  end
  return bounds.add(bounds.conv_bound(conv, x), worst)
end

describe("nn.Conv2d:prepare", function()
  before_each(function() siamese.manual_seed(7) end)

  it("matches the im2col forward for both tiles and the automatic choice", function()
    for _, case in ipairs{{size = 35, pad = 1}, {size = 17, pad = "same"}, {size = 8, pad = 1}, {size = 4, pad = 1},
                          {size = 13, pad = "valid"}} do
      local conv = nn.Conv2d(6, 5, 3, {padding = case.pad}):evaluate()
      local x = T.randn{2, 6, case.size, case.size}
      local ref = conv:forward(x):clone()
      for _, opts in ipairs{{tile = 2}, {tile = 4}, {}} do
        assert.is_true(conv:prepare(opts))
        local y = conv:forward(x)
        assert.are.same(ref:shape(), y:shape())
        bounds.check(y, ref, prepared_bound(conv, x, opts.tile and {opts.tile}),
          string.format("size %d tile %s", case.size, tostring(opts.tile)))
      end
    end
  end)

  it("actually takes the Winograd path (its rounding differs from im2col's)", function()
    local conv = nn.Conv2d(16, 16, 3, {padding = 1}):evaluate()
    local x = T.randn{1, 16, 16, 16}
    local ref = conv:forward(x):clone()
    conv:prepare{tile = 4}
    local y = conv:forward(x)
    assert(max_diff(ref, y) > 0, "no difference: not the Winograd path")
    bounds.check(y, ref, prepared_bound(conv, x, {4}), "tile 4")
  end)

  it("does not apply to strided, dilated, grouped or non-3x3 convolutions", function()
    assert.is_false(nn.Conv2d(2, 2, 3, {stride = 2}):prepare())
    assert.is_false(nn.Conv2d(2, 2, 3, {dilation = 2}):prepare())
    assert.is_false(nn.Conv2d(2, 2, 3, {groups = 2}):prepare())
    assert.is_false(nn.Conv2d(2, 2, 1):prepare())
    assert.is_false(nn.Conv2d(2, 2, 3):prepare(false))
  end)

  it("is a snapshot: training mode ignores it and training() drops it", function()
    local conv = nn.Conv2d(3, 4, 3, {padding = 1}):evaluate()
    local x = T.randn{1, 3, 12, 12}
    conv:prepare()
    local before = conv:forward(x):clone()
    conv.weight:mul_(2)
    -- still the prepared weights in evaluation mode (the bias is read live):
    -- the same computation again, so bit-identical
    assert(max_diff(before, conv:forward(x)) == 0)
    conv:training()
    assert.is_nil(conv.prepared)
    local trained = conv:forward(x):clone()
    conv:evaluate()
    assert(max_diff(trained, conv:forward(x)) == 0)
    conv:prepare()
    bounds.check(conv:forward(x), trained, prepared_bound(conv, x), "prepared after training")
  end)

  it("raises on a bad tile", function()
    local ok, err = pcall(function() nn.Conv2d(2, 2, 3):prepare{tile = 3} end)
    assert.is_false(ok)
    assert.matches("bad argument #1 to 'prepare' %(tile must be 2 or 4, got 3%)", err)
  end)

  it("the raw binding refuses mismatched shapes", function()
    local C = require("siamese.core").conv
    local p = {3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1}
    assert.has_error(function() C.make_weights("winograd_f2", "forward", T.zeros{25, 2, 2}, T.zeros{2, 2, 3, 3}, p) end)
    assert.has_error(function() C.make_weights("winograd_f2", "forward", T.zeros{16, 3, 2}, T.zeros{2, 2, 3, 3}, p) end)
    assert.has_error(function() C.make_weights("winograd_f4", "forward", T.zeros{16, 2, 2}, T.zeros{2, 2, 3, 3}, p) end)
    local ok, err = pcall(C.forward_workspace, "winograd_f2", T.zeros{1, 2, 4, 4}, T.zeros{1, 2, 8, 8},
      T.zeros{16, 2, 2}, nil, {3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1})
    assert.is_false(ok)
    assert.matches("stride 1", err)
    ok, err = pcall(C.forward_workspace, "winograd_f4", T.zeros{1, 2, 8, 8}, T.zeros{1, 2, 8, 8}, T.zeros{16, 2, 2}, nil, p)
    assert.is_false(ok)
    assert.matches("winograd_f4 reads transformed weights %[36", err)
  end)
end)

describe("nn.MaxPool2d in evaluation mode", function()
  it("gives the training-mode values and still supports backward", function()
    siamese.manual_seed(3)
    local x = T.randn{2, 3, 9, 8}
    local g = T.randn{2, 3, 5, 4}
    local train = nn.MaxPool2d(2, {padding = "same"})
    local y_train = train:forward(x):clone()
    local gx_train = train:backward(x, g):clone()
    local eval = nn.MaxPool2d(2, {padding = "same"}):evaluate()
    local y_eval = eval:forward(x)
    assert.is_false(eval.has_indices)
    assert(max_diff(y_train, y_eval) == 0)
    -- the argmax is recomputed for backward
    assert(max_diff(gx_train, eval:backward(x, g)) == 0)
    assert.is_true(eval.has_indices)
  end)
end)
