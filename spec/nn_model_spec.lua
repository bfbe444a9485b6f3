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
    assert.is_true(max_diff(net:forward(io.input), io.eval) < 1e-5)
    net:training()
    assert.is_true(max_diff(net:forward(io.input), io.train) < 1e-5)
    -- the training-mode step moved the running statistics as PyTorch's did
    assert.is_true(max_diff(net.modules[2].running_mean, io.running_mean_after) < 1e-6)
    assert.is_true(max_diff(net.modules[2].running_var, io.running_var_after) < 1e-6)
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
