-- Specs of model files: save/load through safetensors, metadata, refusal
-- of damaged or mismatched files, and a network written by PyTorch.
local siamese = require "siamese"
local nn, T = siamese.nn, siamese.tensor
local safetensors = require "siamese.safetensors"
local support = dofile("spec/support.lua")

local fixtures = "spec/fixtures/torch_model/"

-- The architecture of spec/fixtures/torch_model/make_fixture.py.
local function torch_net()
  return nn.Sequential{
    nn.Conv2d(1, 4, 3, {padding = 1}), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
    nn.Conv2d(4, 8, 3, {stride = 2, padding = 1, groups = 2}), nn.PReLU(8), nn.AvgPool2d(2),
    nn.Flatten(), nn.Linear(32, 10), nn.Tanh(), nn.Linear(10, 5),
  }
end

local function max_diff(a, b)
  return a:clone():sub(b):norm(math.huge)
end

local bounds = dofile("spec/bounds.lua")
local gamma = support.gamma

-- The error bound of torch_net's output against PyTorch's (float32 too,
-- another summation order). Each layer's float32 sum of n terms is within
-- gamma(n) times the same sum on absolute values, and later layers carry
-- an error through |W| (ReLU, max-pooling, Tanh and PReLU with |a| <= 1
-- are 1-Lipschitz and |f(z)| <= |z|), so each implementation is within
-- gamma(sum of the n) of the exact output times the network run on
-- |x| with |W|, |b| and BatchNorm as |w| / s (z + |mean|) + |b| (s: the
-- statistics used); the roundings per term: conv1 10, BatchNorm 6 (+ the
-- batch mean and variance, N H W terms each, in training mode), conv2 19,
-- average 5, Linear 33, Tanh 2, Linear 11. In training mode the batch
-- statistics come from the (perturbed) conv1 output: an error E in z moves
-- (z - mean) / s by at most 2 E / s (1 + |zhat|), a factor 2 (1 + max|zhat|).
local function net_bound(net, x, train)
  local m = net.modules
  local bn = m[2]
  local C = bn.channels
  local h = bounds.like(m[1].output, bounds.conv_mag(m[1], x))
  local mean, s = {}, {}
  for c = 1, C do
    if train then
      mean[c], s[c] = bn.save_mean:get(c), 1 / bn.save_invstd:get(c)
    else
      mean[c], s[c] = bn.running_mean:get(c), math.sqrt(bn.running_var:get(c) + bn.eps)
    end
  end
  local hl = bounds.flat(h)
  local per = #hl // x:shape(1) // C
  for i = 1, #hl do
    local c = (i - 1) // per % C + 1
    hl[i] = math.abs(bn.weight:get(c)) / s[c] * (hl[i] + math.abs(mean[c])) + math.abs(bn.bias:get(c))
  end
  h = nn.MaxPool2d(2):forward(bounds.like(h, hl)):clone()
  h = bounds.like(m[5].output, bounds.conv_mag(m[5], h))
  for i = 1, 8 do assert(math.abs(m[6].weight:get(i)) <= 1) end
  h = nn.AvgPool2d(2):forward(h):clone():view(h:shape(1), -1)
  local function lin(l, v)
    local W, b = bounds.abs(l.weight), bounds.abs(l.bias)
    local out = T.matmul(v, W:t())
    for n = 1, out:shape(1) do out:select(1, n):add_(b) end
    return out
  end
  h = lin(m[11], lin(m[9], h))
  local n = 10 + 6 + 19 + 5 + 33 + 2 + 11
  local factor = 1
  if train then
    local np = x:shape(1) * x:shape(3) * x:shape(4)
    n = n + 2 * np
    -- |zhat| <= (max|BatchNorm output| + |b|) / |w| per channel
    for c = 1, C do
      local zc = (math.abs(m[2].output:select(2, c):norm(math.huge)) + math.abs(bn.bias:get(c))) / math.abs(bn.weight:get(c))
      factor = math.max(factor, 2 * (1 + zc))
    end
  end
  -- both implementations (x 2), the magnitudes' own float32 rounding (1 + gamma(n))
  return bounds.scale(bounds.flat(h), 2 * factor * gamma(n) * (1 + gamma(n)))
end

local function tmpname()
  local p = os.tmpname()
  os.remove(p)
  return p .. ".safetensors"
end

describe("model files", function()
  it("load a network written by PyTorch and give its outputs", function()
    local net = torch_net()
    local _, meta = assert(net:load(fixtures .. "model.safetensors"))
    assert.matches("Sequential", meta.architecture)
    local io = assert(safetensors.load(fixtures .. "io.safetensors"))
    net:evaluate()
    local y = net:forward(io.input):clone()
    bounds.check(y, io.eval, net_bound(net, io.input, false), "evaluation output")
    net:training()
    local rm0, rv0 = net.modules[2].running_mean:clone(), net.modules[2].running_var:clone()
    y = net:forward(io.input):clone()
    bounds.check(y, io.train, net_bound(net, io.input, true), "training output")
    -- the training-mode step moved the running statistics as PyTorch's did:
    -- (1 - m) r + m mean_batch with the batch mean of conv1's outputs, each
    -- within E = 2 gamma(10) max(|w| * |x| + |b|) between the two, plus
    -- the sums' rounding 2 gamma(NHW) mean|z|; the unbiased variance moves
    -- by at most 2 mean|z - mean| 2E + 2 gamma(NHW + 4) var; + 3 roundings
    local bn, conv = net.modules[2], net.modules[1]
    local z = conv.output
    local np = z:shape(1) * z:shape(3) * z:shape(4)
    local M = bounds.conv_mag(conv, io.input)
    local Mmax = 0
    for _, v in ipairs(M) do Mmax = math.max(Mmax, v) end
    local E = 2 * gamma(10) * Mmax
    local bm, bv = {}, {}
    for c = 1, bn.channels do
      local zc = bounds.flat(z:select(2, c))
      local mean, absmean, dev, var = 0, 0, 0, 0
      for _, v in ipairs(zc) do mean, absmean = mean + v / np, absmean + math.abs(v) / np end
      for _, v in ipairs(zc) do dev, var = dev + math.abs(v - mean) / np, var + (v - mean) ^ 2 / (np - 1) end
      local dmean = E + 2 * gamma(np) * absmean
      bm[c] = bn.momentum * dmean + gamma(3) * (math.abs(rm0:get(c)) + math.abs(mean))
      bv[c] = bn.momentum * (2 * dev * 2 * (E + dmean) + (2 * (E + dmean)) ^ 2 + 2 * gamma(np + 4) * var)
        + gamma(3) * (math.abs(rv0:get(c)) + var)
    end
    bounds.check(bn.running_mean, io.running_mean_after, bm, "running mean")
    bounds.check(bn.running_var, io.running_var_after, bv, "running variance")
  end)

  it("save then load gives bit-identical outputs and keeps the metadata", function()
    siamese.manual_seed(9)
    local a, b = torch_net(), torch_net()
    a.modules[2].running_mean:normal_(0, 1)
    local path = tmpname()
    assert(a:save(path, {input_size = {1, 16, 16}, preprocessing = "x/255", embedding_size = 5}))
    local _, meta = assert(b:load(path))
    os.remove(path)
    assert.are.equal("[1,16,16]", meta.input_size)
    assert.are.equal("x/255", meta.preprocessing)
    assert.are.equal("5", meta.embedding_size)
    assert.are.equal(tostring(a:nparameters()), meta.parameters)
    assert.are.equal(tostring(a), meta.architecture)
    local x = T.randn{2, 1, 16, 16}
    a:evaluate()
    b:evaluate()
    assert.are.same(a:forward(x):totable(), b:forward(x):totable())
  end)

  it("refuses a file of another architecture without touching the model", function()
    local net = torch_net()
    local before = net.modules[1].weight:clone()
    local other = nn.Sequential{nn.Conv2d(1, 4, 5)}
    local path = tmpname()
    assert(other:save(path))
    local ok, err = net:load(path)
    assert.is_nil(ok)
    assert.matches("tensor '0.weight' has shape %[4,1,5,5%], the model expects %[4,1,3,3%]", err)
    assert.are.same(before:totable(), net.modules[1].weight:totable())
    -- a smaller model misses tensors; strict loading refuses extras
    ok, err = nn.Sequential{nn.Conv2d(1, 4, 5), nn.Linear(2, 2)}:load(path)
    assert.is_nil(ok)
    assert.matches("missing tensor '1.bias' %[2%]", err)
    ok, err = nn.Sequential{nn.Conv2d(1, 4, 5, {bias = false})}:load(path)
    assert.matches("unexpected tensor '0.bias'", err)
    assert.is_truthy(nn.Sequential{nn.Conv2d(1, 4, 5, {bias = false})}:load(path, {strict = false}))
    os.remove(path)
  end)

  it("refuses truncated, corrupt and missing files with a message", function()
    local bytes = support.read_file(fixtures .. "model.safetensors")
    local path = tmpname()
    for _, cut in ipairs{0, 7, 8, 100, #bytes - 1} do
      support.write_file(path, bytes:sub(1, cut))
      local ok, err = torch_net():load(path)
      assert.is_nil(ok)
      assert.is_string(err)
    end
    os.remove(path)
    local ok, err = torch_net():load("/nonexistent/model.safetensors")
    assert.is_nil(ok)
    assert.matches("nonexistent", err)
  end)

  it("a failed save leaves the previous file intact", function()
    local path = tmpname()
    local net = torch_net()
    assert(net:save(path))
    local good = support.read_file(path)
    local ok, err = net:save("/nonexistent-dir/x.safetensors")
    assert.is_nil(ok)
    assert.is_string(err)
    assert.are.equal(good, support.read_file(path))
    os.remove(path)
  end)

  it("names Siamese state by branch", function()
    local s = nn.Siamese(nn.Sequential{nn.Linear(4, 3)}, {head = nn.Sequential{nn.Linear(1, 1), nn.Sigmoid()}})
    local keys = {}
    for k in pairs(s:state()) do keys[#keys + 1] = k end
    table.sort(keys)
    assert.are.same({"encoder.0.bias", "encoder.0.weight", "head.0.bias", "head.0.weight"}, keys)
  end)
end)
