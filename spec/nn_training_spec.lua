-- Specs of the training shortcuts: skipInputGrad (no input gradient for
-- data inputs) and the one-pass batch-norm backward give the parameter
-- gradients of the full backward.
local siamese = require "siamese"
local nn, T = siamese.nn, siamese.tensor

local function max_diff(a, b)
  local d = a:sub(b)
  return math.max(d:max(), -d:min())
end

local function grads_of(net, run)
  net:zeroGradParameters()
  local out = run()
  local _, g = net:parameters()
  local copies = {}
  for i, t in ipairs(g) do copies[i] = t:clone() end
  return copies, out
end

describe("training shortcuts", function()
  it("skipInputGrad: a Siamese net returns no input gradient and the same parameter gradients", function()
    siamese.manual_seed(3)
    local enc = nn.Sequential{nn.Conv2d(1, 3, 3), nn.ReLU(true), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(3 * 3 * 2, 4)}
    local net = nn.Siamese(enc)
    local x1, x2 = T.randn{5, 1, 8, 6}, T.randn{5, 1, 8, 6}
    local crit = siamese.loss.ContrastiveLoss{margin = 1}
    local y = T.new{1, 0, 1, 0, 0}
    local function step()
      local d = net:forward{x1, x2}
      crit:forward(d, y)
      return net:backward({x1, x2}, crit:backward(d, y))
    end
    local full, gin = grads_of(net, step)
    assert.are.equal(2, #gin)
    assert.are.same({5, 1, 8, 6}, gin[1]:shape())
    assert.are.equal(net, net:skipInputGrad())
    assert.is_true(enc.modules[1].skip_input_grad)
    local skipped, none = grads_of(net, step)
    assert.is_nil(none)
    assert.is_nil(enc.modules[1].gradInput)
    for i = 1, #full do assert.is_true(max_diff(full[i], skipped[i]) == 0, "parameter " .. i) end
    net:skipInputGrad(false)
    local _, again = grads_of(net, step)
    assert.are.same({5, 1, 8, 6}, again[2]:shape())
  end)

  it("skipInputGrad on a plain module: backward leaves gradInput nil but accumulates parameters", function()
    local lin = nn.Linear(3, 2):skipInputGrad()
    local x = T.randn{4, 3}
    lin:zeroGradParameters()
    lin:forward(x)
    assert.is_nil(lin:backward(x, T.ones{4, 2}))
    -- dL/db = column sums of gradOutput
    assert.are.same({4, 4}, lin.gradBias:totable())
  end)

  it("BatchNorm2d: one-pass training backward equals updateGradInput + accGradParameters", function()
    siamese.manual_seed(5)
    local bn = nn.BatchNorm2d(3)
    bn.weight:copy(T.new{0.5, 2, -1})
    bn.bias:copy(T.new{0.1, 0.2, 0.3})
    local x, g = T.randn{4, 3, 5, 6}, T.randn{4, 3, 5, 6}
    bn:forward(x)
    bn:zeroGradParameters()
    local gi = bn:backward(x, g, 0.5):clone()
    local gw, gb = bn.gradWeight:clone(), bn.gradBias:clone()
    bn:zeroGradParameters()
    local gi2 = bn:updateGradInput(x, g):clone()
    bn:accGradParameters(x, g, 0.5)
    -- the same kernel (src/batchnorm.c) on the same values: bit-identical
    assert.is_true(max_diff(gi, gi2) == 0)
    assert.is_true(max_diff(gw, bn.gradWeight) == 0)
    assert.is_true(max_diff(gb, bn.gradBias) == 0)
  end)
end)
