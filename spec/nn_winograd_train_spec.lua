-- Specs of the Winograd training path of nn.Conv2d (src/winograd.c used
-- for the training forward and the input gradient of 3x3 stride-1 convs):
-- both must equal the im2col path (Conv2d.train_winograd = false) within
-- 1e-4 relative, actually run (rounding differs), follow weight changes,
-- and leave the layers they do not fit to the ordinary path.
local siamese = require "siamese"
local nn, T = siamese.nn, siamese.tensor

local function rel_diff(a, b)
  return (a - b):norm(math.huge) / math.max(b:norm(math.huge), 1e-30)
end

-- Output and input gradient of conv (training mode) on x and g, with the
-- Winograd path on or off.
local function run(conv, x, g, wino)
  conv.train_winograd = wino
  local y = conv:forward(x):clone()
  local gi = conv:updateGradInput(x, g):clone()
  return y, gi
end

describe("nn.Conv2d Winograd training path", function()
  before_each(function() siamese.manual_seed(11) end)

  it("matches im2col for the forward and the input gradient", function()
    -- {in, out, height, width, batch, padding}
    for _, c in ipairs{{32, 64, 56, 46, 4, 1}, {16, 8, 13, 17, 5, 2}, {8, 24, 12, 12, 1, 0}, {12, 10, 9, 21, 6, 1},
                       {8, 8, 15, 11, 2, {top = 0, left = 2, bottom = 1, right = 0}}, {9, 7, 20, 20, 1, "same"}} do
      local cin, cout, h, w, n, pad = table.unpack(c)
      local conv = nn.Conv2d(cin, cout, 3, {padding = pad}):training()
      local x = T.randn{n, cin, h, w}
      local y0 = conv:forward(x)
      local g = T.randn(y0:shape())
      local ya, ga = run(conv, x, g, false)
      local yb, gb = run(conv, x, g, true)
      local label = table.concat({cin, cout, h, w, n}, "x")
      assert.are.same(ya:shape(), yb:shape())
      assert.are.same(ga:shape(), gb:shape())
      assert(rel_diff(yb, ya) < 1e-4, label .. " forward " .. rel_diff(yb, ya))
      assert(rel_diff(gb, ga) < 1e-4, label .. " input gradient " .. rel_diff(gb, ga))
      assert(rel_diff(yb, ya) > 0 and rel_diff(gb, ga) > 0, label .. ": the Winograd path did not run")
    end
  end)

  it("matches im2col for the weight and bias gradients, with both tiles", function()
    for _, tile in ipairs{2, 4, false} do
      nn.Conv2d.weight_grad_tile = tile or nil
      for _, c in ipairs{{32, 16, 30, 26, 3, 1}, {16, 8, 13, 17, 5, 2}, {8, 24, 12, 12, 2, 0},
                         {9, 7, 20, 20, 1, {top = 0, left = 2, bottom = 1, right = 0}}} do
        local cin, cout, h, w, n, pad = table.unpack(c)
        local conv = nn.Conv2d(cin, cout, 3, {padding = pad}):training()
        local x = T.randn{n, cin, h, w}
        local g = T.randn(conv:forward(x):shape())
        local grads = {}
        for _, wino in ipairs{false, true} do
          conv.train_winograd = wino
          conv:zeroGradParameters()
          conv.gradWeight:fill(0.25) -- accumulates onto what is there
          conv:accGradParameters(x, g, 0.5)
          grads[wino] = {conv.gradWeight:clone(), conv.gradBias:clone()}
        end
        local label = table.concat({tostring(tile), cin, cout, h, w, n}, "x")
        local dw, db = rel_diff(grads[true][1], grads[false][1]), rel_diff(grads[true][2], grads[false][2])
        assert(dw < 1e-4 and db < 1e-4, label .. string.format(": weight %g bias %g", dw, db))
        assert(dw > 0, label .. ": the Winograd path did not run")
      end
    end
    nn.Conv2d.weight_grad_tile = nil
  end)

  it("uses the current weights at every step", function()
    local conv = nn.Conv2d(16, 16, 3, {padding = 1}):training()
    local x = T.randn{4, 16, 12, 12}
    local g = T.randn{4, 16, 12, 12}
    run(conv, x, g, true)
    conv.weight:mul(-0.5)
    local ya, ga = run(conv, x, g, false)
    local yb, gb = run(conv, x, g, true)
    assert(rel_diff(yb, ya) < 1e-4 and rel_diff(gb, ga) < 1e-4)
  end)

  it("leaves few channels, other kernels, strides and small maps to the ordinary path", function()
    for _, c in ipairs{{nn.Conv2d(4, 8, 3, {padding = 1}), {2, 4, 20, 20}},
                       {nn.Conv2d(16, 8, 3, {stride = 2, padding = 1}), {2, 16, 20, 20}},
                       {nn.Conv2d(16, 8, 5, {padding = 2}), {2, 16, 20, 20}},
                       {nn.Conv2d(16, 8, 3, {padding = 3}), {2, 16, 20, 20}},
                       {nn.Conv2d(16, 8, 3, {padding = 1}), {1, 16, 3, 3}}} do
      local conv, shape = c[1]:training(), c[2]
      local x = T.randn(shape)
      local g = T.randn(conv:forward(x):shape())
      local ya, ga = run(conv, x, g, false)
      local yb, gb = run(conv, x, g, true)
      assert.are.equal(0, rel_diff(yb, ya))
      assert.are.equal(0, rel_diff(gb, ga))
    end
  end)

  it("trains the same as im2col on a small net (losses agree)", function()
    local function losses(wino)
      siamese.manual_seed(5)
      local net = nn.Sequential{nn.Conv2d(1, 8, 3, {padding = 1}), nn.ReLU(), nn.Conv2d(8, 16, 3, {padding = 1}),
                                nn.BatchNorm2d(16), nn.ReLU(), nn.GlobalAvgPool2d(), nn.Linear(16, 4)}
      net:training()
      for _, m in ipairs(net.modules) do m.train_winograd = wino end
      local opt = siamese.optim.Adam(net, {lr = 1e-2})
      local x, target = T.randn{8, 1, 16, 16}, T.randn{8, 4}
      local out = {}
      for _ = 1, 5 do
        net:zeroGradParameters()
        local y = net:forward(x)
        local d = y - target
        out[#out + 1] = d:norm(2) ^ 2
        net:backward(x, d:clone():mul(2))
        opt:step()
      end
      return out
    end
    local a, b = losses(false), losses(true)
    for i = 1, #a do assert(math.abs(a[i] - b[i]) <= 1e-4 * math.abs(a[i]), i .. ": " .. a[i] .. " vs " .. b[i]) end
  end)
end)
