-- Specs of the convolution plan as nn.Conv2d sees it: conv:algorithm(shape,
-- pass) names the algorithm src/conv/plan.c chooses for each row of its
-- table (training's Winograd, the few-channel direct kernels, depthwise,
-- the first layers, 1x1, large maps, the packed, blocked and Winograd
-- inference forwards), and what prepare, pack, training mode and the
-- class settings change. The values of every algorithm are compared with
-- the definition in spec/c/test_conv.c and against each other in the
-- nn_*_spec files.
local siamese = require "siamese"
local nn, T = siamese.nn, siamese.tensor
local core = require "siamese.core"

-- conv's algorithms for an input of shape s: forward, input gradient, weight gradient
local function algorithms(conv, s)
  return {conv:algorithm(s), conv:algorithm(s, "backward_input"), conv:algorithm(s, "backward_weight")}
end

describe("nn.Conv2d:algorithm", function()
  before_each(function() siamese.manual_seed(3) end)

  it("names one of core.conv.algorithms", function()
    local names = {}
    for _, a in ipairs(core.conv.algorithms) do names[a] = true end
    for _, a in ipairs{"im2col", "im2col_banded", "pointwise", "depthwise", "direct_small", "direct_rgb", "packed",
                       "packed_tap", "blocked", "blocked8", "winograd_f2", "winograd_f4"} do
      assert.is_true(names[a], a)
    end
    assert.are.equal(12, #core.conv.algorithms)
  end)

  it("takes Winograd in training for 3x3 stride-1 layers of 8 channels or more, by map and batch", function()
    local conv = nn.Conv2d(16, 32, 3, {padding = 1}):training()
    assert.are.same({"winograd_f4", "winograd_f4", "winograd_f4"}, algorithms(conv, {4, 16, 12, 12}))
    assert.are.same({"winograd_f2", "winograd_f2", "winograd_f2"}, algorithms(conv, {2, 16, 6, 6}))
    assert.are.same({"winograd_f4", "winograd_f4", "winograd_f4"}, algorithms(conv, {4, 16, 6, 6}))
    assert.are.same({"winograd_f2", "winograd_f2", "winograd_f2"}, algorithms(conv, {4, 16, 4, 4}))
    assert.are.same({"im2col", "im2col", "im2col"}, algorithms(conv, {1, 16, 3, 3}))  -- too small for a tile
    nn.Conv2d.weight_grad_tile = 2
    assert.are.same({"winograd_f4", "winograd_f4", "winograd_f2"}, algorithms(conv, {4, 16, 12, 12}))
    nn.Conv2d.weight_grad_tile = nil
    conv.train_winograd = false
    assert.are.same({"im2col", "im2col", "im2col"}, algorithms(conv, {4, 16, 12, 12}))
    conv.train_winograd = nil -- the class's setting again
    assert.are.equal("winograd_f4", conv:algorithm{4, 16, 12, 12})
    -- padding over 2 leaves the input gradient without its padding 2 - p
    local wide = nn.Conv2d(16, 32, 3, {padding = 3}):training()
    assert.are.same({"im2col", "im2col", "im2col"}, algorithms(wide, {4, 16, 12, 12}))
  end)

  it("takes the direct kernels for few channels, depthwise loops for depthwise layers", function()
    local att = nn.Conv2d(1, 6, 3, {padding = 1}):training()  -- the AT&T net's first layer
    assert.are.same({"direct_small", "direct_small", "direct_small"}, algorithms(att, {8, 1, 56, 46}))
    -- 11 MiB of planes: im2col, whose workspace is bounded
    -- (12 output channels: not the first-layer kernel's multiple of 8)
    assert.are.same({"im2col_banded", "im2col", "im2col"}, algorithms(nn.Conv2d(3, 12, 3), {1, 3, 416, 416}))
    local dw = nn.Conv2d(8, 8, 3, {padding = 1, groups = 8})
    assert.are.same({"depthwise", "depthwise", "depthwise"}, algorithms(dw, {2, 8, 20, 20}))
  end)

  it("takes the GEMM without unfold for 1x1, bands of rows for large maps, im2col for the rest", function()
    local pw = nn.Conv2d(16, 32, 1):evaluate()
    assert.are.same({"pointwise", "im2col", "im2col"}, algorithms(pw, {1, 16, 10, 10}))
    local big = nn.Conv2d(24, 32, 3, {stride = 2, padding = 1}):evaluate()  -- 216 taps: past direct_rgb's 160
    assert.are.equal("im2col_banded", big:algorithm{1, 24, 128, 128})
    assert.are.equal("im2col", big:algorithm{4, 24, 16, 16})
    assert.are.equal("im2col", nn.Conv2d(16, 24, 3, {padding = 1}):evaluate():algorithm{1, 16, 20, 20})
  end)

  it("takes the AVX2 first-layer kernel for few input channels where the CPU has it", function()
    local rgb = siamese.cpu().simd ~= "portable"
    local first = nn.Conv2d(3, 32, 7, {stride = 2, padding = 3}):evaluate()  -- the recognition net's
    assert.are.equal(rgb and "direct_rgb" or "im2col_banded", first:algorithm{1, 3, 150, 150})
    local detector = nn.Conv2d(3, 16, 3, {padding = 1}):evaluate()             -- the tiny detector's
    assert.are.equal(rgb and "direct_rgb" or "im2col_banded", detector:algorithm{1, 3, 416, 416})
    assert.are.equal("pointwise", nn.Conv2d(3, 16, 1):evaluate():algorithm{1, 3, 30, 30}) -- 1x1 stays with the GEMM
  end)

  it("takes the packed forwards once packed: blocked, packed im2col, the one tap", function()
    local conv = nn.Conv2d(32, 32, 3, {padding = 1}):evaluate()
    assert.are.equal("im2col", conv:algorithm{1, 32, 8, 8})
    assert.is_true(conv:pack())
    assert.are.equal("blocked", conv:algorithm{1, 32, 20, 20})
    assert.are.equal("blocked", conv:algorithm{4, 32, 12, 12})
    assert.are.equal("blocked", conv:algorithm{1, 32, 8, 8})
    assert.are.equal("packed", conv:algorithm{4, 32, 8, 8})
    assert.are.equal("packed_tap", conv:algorithm{1, 32, 1, 1})
    -- the gradients do not use the packed weights (training's rows serve them in any mode)
    assert.are.equal("winograd_f2", conv:algorithm({1, 32, 8, 8}, "backward_input"))
    assert.are.equal("im2col", conv:algorithm({1, 32, 3, 3}, "backward_input"))
    local odd = nn.Conv2d(16, 24, 3, {padding = 1}):evaluate()                 -- 24: no panels of 16
    odd:pack()
    assert.are.equal("packed", odd:algorithm{1, 16, 20, 20})
    conv:training()
    assert.are.equal("winograd_f4", conv:algorithm{1, 32, 20, 20})             -- training() dropped pack()
  end)

  it("shares the small maps between Winograd and the blocked forward once prepared", function()
    local conv = nn.Conv2d(32, 32, 3, {padding = 1}):evaluate()
    assert.is_true(conv:prepare())
    assert.are.equal("winograd_f2", conv:algorithm{1, 32, 8, 8})
    assert.are.equal("winograd_f4", conv:algorithm{4, 32, 8, 8})
    assert.are.equal("im2col", conv:algorithm{1, 32, 3, 3})
    conv:pack()
    assert.are.equal("blocked", conv:algorithm{1, 32, 20, 20})
    assert.are.equal("winograd_f2", conv:algorithm{1, 32, 8, 8})
    assert.are.equal("winograd_f2", conv:algorithm{4, 32, 4, 4})
    assert.are.equal("blocked", conv:algorithm{1, 32, 4, 4})
    conv:prepare{tile = 4}
    assert.are.equal("winograd_f4", conv:algorithm{1, 32, 8, 8})
    conv:prepare(false)
    assert.are.equal("blocked", conv:algorithm{1, 32, 8, 8})
  end)

  it("keeps 8-bit weights at batches below 4 and leaves them Winograd's small maps", function()
    local conv = nn.Conv2d(16, 32, 3, {padding = 1}):evaluate()
    local grid = T.zeros{2, 32}
    for o = 1, 32 do
      grid:set(1, o, -0.5)
      grid:set(2, o, 1 / 128)
      local w = conv.weight:select(1, o):view(-1)
      for k = 1, w:numel() do w:set(k, -0.5 + ((k * 37) % 256) / 128) end
    end
    conv:prepare()
    local ok, on_grid = conv:pack{grid = grid}
    assert.is_true(ok and on_grid)
    assert.are.equal("blocked8", conv:algorithm{1, 16, 8, 8})
    assert.are.equal("blocked8", conv:algorithm{3, 16, 20, 20})
    assert.are.equal("blocked", conv:algorithm{4, 16, 14, 14})
    assert.are.equal("winograd_f4", conv:algorithm{4, 16, 8, 8})
  end)
end)
