-- Specs of the Winograd training path of nn.Conv2d (src/conv/winograd.c
-- for the training forward, the input and the weight gradients of 3x3
-- stride-1 convs): each must equal the other paths (Conv2d.train_winograd
-- = false) within the sum of the two paths' error bounds
-- (spec/bounds.lua), be the algorithm the layer says it takes
-- (conv:algorithm), follow weight changes, and leave the layers they do
-- not fit to the other paths.
local siamese = require "siamese"
local nn, T = siamese.nn, siamese.tensor
local bounds = dofile("spec/bounds.lua")
local core = require "siamese.core"
local workspace = require "siamese.nn.workspace"

-- The input gradient as a forward: the correlation of g, padded by 2 - p,
-- with the flipped, channel-swapped filters (as src/conv/passes.c runs it).
local function flipped(conv, x)
  local p = conv:params(x:shape(3), x:shape(4))
  local f = nn.Conv2d(conv.nout, conv.nin, 3, {bias = false,
    padding = {top = 2 - p[7], left = 2 - p[8], bottom = 2 - p[9], right = 2 - p[10]}})
  local w = bounds.flat(conv.weight)
  local k = {}
  for c = 1, conv.nin do for o = 1, conv.nout do for r = 2, 0, -1 do for q = 2, 0, -1 do
    k[#k + 1] = w[(((o - 1) * conv.nin + c - 1) * 3 + r) * 3 + q + 1]
  end end end end
  f.weight:copy(T.new(k))
  return f
end

-- im2col against Winograd (either tile): forward and input gradient.
local function forward_bound(conv, x)
  return bounds.add(bounds.conv_bound(conv, x), bounds.conv_any_bound(conv, x))
end
local function input_grad_bound(conv, x, g)
  local f = flipped(conv, x)
  return forward_bound(f, g)
end

-- Weight gradients 0.25 + scale sum g x: im2col sums N Ho Wo terms
-- (gamma(N Ho Wo + 1) scale sum |g||x|), Winograd as in
-- bounds.winograd_weight_bound (either tile), and each adds to 0.25 with
-- one more rounding (u |result|, taken on |want| + the bound). Biases:
-- sums of N Ho Wo terms of g in both, so 2 gamma(N Ho Wo + 1) scale sum |g|.
local function weight_grad_bounds(conv, x, g, scale, tile, want_w)
  local C = core.conv
  local p = conv:params(x:shape(3), x:shape(4))
  local gw, gb = T.zeros(conv.weight:shape()), T.zeros{conv.nout}
  local ag, ax = bounds.abs(g), bounds.abs(x)
  local ws = workspace.get(C.backward_weight_workspace("im2col", gw, gb, ag, ax, p))
  C.backward_weight("im2col", gw, gb, ag, ax, p, 1, ws)
  local n = g:shape(1) * g:shape(3) * g:shape(4)
  local mag = bounds.mag_exact(bounds.flat(gw), n)
  local wb = bounds.scale(mag, bounds.gamma(n + 1))
  for _, m in ipairs(tile and {tile} or {2, 4}) do
    local w = bounds.winograd_weight_bound(g, x, p[7], p[8], m)
    for i = 1, #w do wb[i] = math.max(wb[i], w[i]) end
  end
  local want = bounds.flat(want_w)
  local out = {}
  for i = 1, #wb do
    local b = scale * (bounds.gamma(n + 1) * mag[i] + wb[i])
    out[i] = b + 2 * bounds.U * (math.abs(want[i]) + b)
  end
  local sg = bounds.mag_exact(bounds.flat(gb), n)
  return out, bounds.scale(sg, 2 * scale * bounds.gamma(n + 1) / (1 - 2 * bounds.U))
end

local function rel_diff(a, b)
  return (a - b):norm(math.huge) / math.max(b:norm(math.huge), 1e-30)
end

-- Output and input gradient of conv (training mode) on x and g, with the
-- Winograd path on or off, and the algorithms that computed them.
local function run(conv, x, g, wino)
  conv.train_winograd = wino
  local y = conv:forward(x):clone()
  local gi = conv:updateGradInput(x, g):clone()
  return y, gi, conv:algorithm(x:shape()), conv:algorithm(x:shape(), "backward_input")
end

local WINOGRAD = {winograd_f2 = true, winograd_f4 = true}

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
      local ya, ga, fa, ia = run(conv, x, g, false)
      local yb, gb, fb, ib = run(conv, x, g, true)
      local label = table.concat({cin, cout, h, w, n}, "x")
      assert(not WINOGRAD[fa] and not WINOGRAD[ia], label .. ": Winograd with train_winograd = false")
      assert(WINOGRAD[fb] and WINOGRAD[ib], label .. ": not Winograd but " .. fb .. ", " .. ib)
      assert.are.same(ya:shape(), yb:shape())
      assert.are.same(ga:shape(), gb:shape())
      bounds.check(yb, ya, forward_bound(conv, x), label .. " forward")
      bounds.check(gb, ga, input_grad_bound(conv, x, g), label .. " input gradient")
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
        local grads, algos = {}, {}
        for _, wino in ipairs{false, true} do
          conv.train_winograd = wino
          conv:zeroGradParameters()
          conv.gradWeight:fill(0.25) -- accumulates onto what is there
          conv:accGradParameters(x, g, 0.5)
          grads[wino] = {conv.gradWeight:clone(), conv.gradBias:clone()}
          algos[wino] = conv:algorithm(x:shape(), "backward_weight")
        end
        local label = table.concat({tostring(tile), cin, cout, h, w, n}, "x")
        assert.is_nil(WINOGRAD[algos[false]], label)
        if tile then
          assert.are.equal("winograd_f" .. tile, algos[true], label)
        else
          assert.is_true(WINOGRAD[algos[true]], label)
        end
        local bw, bb = weight_grad_bounds(conv, x, g, 0.5, tile, grads[false][1])
        bounds.check(grads[true][1], grads[false][1], bw, label .. " weight gradient")
        bounds.check(grads[true][2], grads[false][2], bb, label .. " bias gradient")
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
    bounds.check(yb, ya, forward_bound(conv, x), "forward")
    bounds.check(gb, ga, input_grad_bound(conv, x, g), "input gradient")
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
      local ya, ga, fa, ia = run(conv, x, g, false)
      local yb, gb, fb, ib = run(conv, x, g, true)
      assert.are.same({fa, ia}, {fb, ib})
      assert.is_nil(WINOGRAD[fb])
      assert.is_nil(WINOGRAD[ib])
      assert.are.equal(0, rel_diff(yb, ya))
      assert.are.equal(0, rel_diff(gb, ga))
    end
  end)

  -- The forward and both gradients of the Winograd path are compared with
  -- im2col above, each within its derived bound. Over several Adam steps
  -- the two runs' weights drift apart by rounding (Adam's step is ~lr *
  -- sign(g) where g is near its rounding noise), so no bound on later
  -- losses follows from the arithmetic: what this checks is that training
  -- through the Winograd path works, with the criterion that the loss falls
  -- at every step, for both paths.
  it("trains a small net through the Winograd path as through im2col (the loss falls at every step)", function()
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
    for i = 2, #a do
      assert(a[i] < a[i - 1], "im2col, step " .. i .. ": " .. a[i] .. " after " .. a[i - 1])
      assert(b[i] < b[i - 1], "Winograd, step " .. i .. ": " .. b[i] .. " after " .. b[i - 1])
    end
  end)
end)
