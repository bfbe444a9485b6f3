-- Specs of freezing for fine-tuning: frozen layers keep zero gradients,
-- their weight-gradient kernels are never called (the C entry points are
-- counted), the input gradient still flows through them to trainable
-- layers below, and an optimiser leaves them untouched.
local siamese = require "siamese"
local nn, T = siamese.nn, siamese.tensor
local core = require "siamese.core"

-- Counts the calls of the weight-gradient kernels while f runs: each
-- {table of core, function name}, counted under the function's name.
local KERNELS = {{core.conv, "backward_weight"}, {core.nn, "linear_backward_params"},
                 {core.nn, "batchnorm_backward_train"}, {core.nn, "affine_backward"}, {core.nn, "prelu_backward"}}
local function count_kernel_calls(f)
  local calls, saved = {}, {}
  for _, k in ipairs(KERNELS) do
    local t, name = k[1], k[2]
    saved[k] = t[name]
    calls[name] = 0
    t[name] = function(...)
      local args = {...}
      -- batchnorm/affine/prelu backward also serve the input gradient:
      -- count only calls that write parameter gradients
      local writes_params = name == "backward_weight" or name == "linear_backward_params"
        or (name == "batchnorm_backward_train" and args[2] ~= nil)
        or (name == "affine_backward" and args[2] ~= nil)
        or (name == "prelu_backward" and args[2] ~= nil)
      if writes_params then calls[name] = calls[name] + 1 end
      return saved[k](...)
    end
  end
  local ok, err = pcall(f)
  for _, k in ipairs(KERNELS) do k[1][k[2]] = saved[k] end
  assert(ok, err)
  return calls
end

local function net()
  siamese.manual_seed(21)
  local trunk = nn.Sequential{
    nn.Conv2d(1, 4, 3, {padding = 1}), nn.BatchNorm2d(4), nn.PReLU(4),
    nn.Add{nn.Sequential{nn.Conv2d(4, 4, 3, {padding = 1}), nn.Affine(4)}, nn.Identity()}, nn.ReLU(),
  }
  local head = nn.Sequential{nn.Conv2d(4, 2, 3, {padding = 1}), nn.Flatten(), nn.Linear(2 * 6 * 5, 3)}
  return nn.Sequential{trunk, head}, trunk, head
end

local function all_zero(tensors)
  for _, t in ipairs(tensors) do
    if t:norm() ~= 0 then return false end
  end
  return true
end

describe("freezing (fine-tuning the last layers)", function()
  it("frozen layers skip their weight-gradient kernels and keep zero gradients", function()
    local model, trunk, head = net()
    local x = T.randn{2, 1, 6, 5}
    -- everything trainable: every kernel runs
    local calls = count_kernel_calls(function()
      model:zeroGradParameters()
      model:backward(x, T.ones(model:forward(x):shape()))
    end)
    assert.are.equal(3, calls.backward_weight)
    assert.are.equal(1, calls.linear_backward_params)
    assert.are.equal(1, calls.batchnorm_backward_train)
    assert.are.equal(1, calls.affine_backward)
    assert.are.equal(1, calls.prelu_backward)

    trunk:freeze()
    -- gradients of the trunk's parameters, reached directly (parameters()
    -- reports none for frozen modules)
    local trunk_grads = {}
    for _, m in ipairs{trunk.modules[1], trunk.modules[2], trunk.modules[3], trunk.modules[4].modules[1].modules[1],
                       trunk.modules[4].modules[1].modules[2]} do
      for _, g in ipairs{m.gradWeight or m.gradA, m.gradBias} do trunk_grads[#trunk_grads + 1] = g end
    end
    for _, g in ipairs(trunk_grads) do g:zero() end
    calls = count_kernel_calls(function()
      model:zeroGradParameters()
      model:backward(x, T.ones(model:forward(x):shape()))
    end)
    assert.are.equal(1, calls.backward_weight) -- the head's only
    assert.are.equal(1, calls.linear_backward_params)
    assert.are.equal(0, calls.batchnorm_backward_train)
    assert.are.equal(0, calls.affine_backward)
    assert.are.equal(0, calls.prelu_backward)
    assert.is_true(all_zero(trunk_grads))
    local _, hg = head:parameters()
    assert.is_false(all_zero(hg))
    -- the input gradient still flows through the frozen layers
    assert.is_true(model.gradInput:norm() > 0)
    assert.are.equal(#hg, #select(2, model:parameters()))
  end)

  it("a trainable layer below a frozen one still gets its gradient", function()
    siamese.manual_seed(5)
    local first, middle, last = nn.Linear(3, 4), nn.Linear(4, 4), nn.Linear(4, 2)
    local model = nn.Sequential{first, nn.Tanh(), middle, nn.Tanh(), last}
    local x = T.randn{5, 3}
    model:backward(x, T.ones(model:forward(x):shape()))
    local want = first.gradWeight:clone()
    middle:freeze()
    model:zeroGradParameters()
    middle.gradWeight:zero()
    model:backward(x, T.ones(model:forward(x):shape()))
    assert.are.same(want:totable(), first.gradWeight:totable())
    assert.are.equal(0, middle.gradWeight:norm())
  end)

  it("an optimiser steps the trainable layers only; unfreeze restores", function()
    local model, trunk, head = net()
    trunk:freeze()
    local before = trunk.modules[1].weight:clone()
    local head_before = head.modules[3].weight:clone()
    local opt = siamese.optim.Adam(model, {lr = 0.1})
    local x = T.randn{2, 1, 6, 5}
    for _ = 1, 3 do
      model:zeroGradParameters()
      model:backward(x, T.ones(model:forward(x):shape()))
      opt:step()
    end
    assert.are.same(before:totable(), trunk.modules[1].weight:totable())
    assert.are_not.same(head_before:totable(), head.modules[3].weight:totable())
    trunk:freeze(false)
    assert.is_false(trunk.modules[1].frozen)
    assert.are.equal(#select(1, model:parameters()), 2 + 2 + 1 + 2 + 2 + 2 + 2)
  end)
end)
