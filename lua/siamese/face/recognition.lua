--- siamese.face.recognition: face-api's FaceRecognitionNet (a port of dlib's
-- ResNet-34-style metric network), 150x150 RGB face -> 128-D descriptor.
--
-- Preprocessing (face-api's toBatchTensor(150, centred = true) + normalize):
--   x     = the image as floats 0..255, R G B (gray replicated, alpha dropped)
--   pad   = zero-pad the shorter side to a square: diff = |H - W|,
--           after = floor(diff / 2 + 0.5) (JS Math.round), before = diff - after,
--           so an odd extra pixel goes to the bottom/right (opts.pad = false skips it)
--   x     = TF-1 bilinear resize to 150x150 (src = dst * in / out, no half-pixel
--           offset, no antialiasing), skipped when already 150x150
--   x'[c] = (x[c] - mean[c]) / 255 in float32, mean RGB = 122.782, 117.001, 104.298
--
-- Network, NCHW here (face-api is NHWC; filters are transposed HWIO -> OIHW):
--   L(p, k, s, pad)   conv k x k (stride s, TF "valid"/"same") + p/conv/bias,
--                     then the per-channel p/scale (folded batch-norm), here
--                     folded into the convolution's weights and bias
--   R(p)  residual:   relu( L(p/conv1) -> relu -> L(p/conv2)  +  x )
--                     (each "L -> relu" is one nn.Conv2d with relu = true)
--   D(p)  down-block: relu( main + shortcut ) with
--                     main     = L(p/conv1, 3, 2, valid) -> relu -> L(p/conv2, 3, 1, same),
--                                zero-padded bottom/right when smaller than the shortcut
--                     shortcut = avgpool 2x2 stride 2 (valid), zero channels appended
--                                up to the main path's channels (no projection conv)
--   150 -L(conv32_down, 7, 2, valid), relu-> 72x72x32 -maxpool 3/2-> 35x35x32
--       -R x3-> -D conv64_down-> 17x17x64 -R x3-> -D conv128_down-> 8x8x128 -R x2->
--       -D conv256_down (main 3x3 padded to 4x4)-> 4x4x256 -R x2->
--       -D conv256_down_out (main 1x1 padded to 2x2)-> 2x2x256
--       -mean over H,W-> 256 -fc [256][128], no bias-> 128 (not L2-normalised).
-- 5,614,592 parameters in face-api's file; 5,607,488 once each per-channel
-- scale is folded into its convolution. ~271 M multiply-adds per face.
local class = require "siamese.class"
local weights = require "siamese.face.weights"

local nn, T, image = require "siamese.nn", require "siamese.tensor", require "siamese.image"

local recognition = {}

recognition.INPUT_SIZE = 150
recognition.MEAN_RGB = {122.782, 117.001, 104.298}
recognition.DESCRIPTOR_SIZE = 128
recognition.PARAMETERS = 5614592        -- in face-api's file
recognition.FOLDED_PARAMETERS = 5607488 -- in the built network (scales folded)

local SIZE = recognition.INPUT_SIZE

-- ---- errors -------------------------------------------------------------------------------

local shape_str = require("siamese.argcheck").shape

local function describe(v)
  if T.is_tensor(v) then return "tensor " .. shape_str(v) end
  return type(v)
end

local arg_error = require("siamese.argcheck").error

local is_image = require("siamese.argcheck").is_image

-- ---- weights ------------------------------------------------------------------------------

-- A face-api tensor checked against the shape the architecture expects.
-- Raises without position (build and load add the context).
local function fetch(tensors, name, shape)
  local t = tensors[name]
  local want = "[" .. table.concat(shape, ",") .. "]"
  if not T.is_tensor(t) then
    error(string.format("missing tensor '%s' %s", name, want), 0)
  end
  if shape_str(t) ~= want then
    error(string.format("tensor '%s' has shape %s, expected %s", name, shape_str(t), want), 0)
  end
  return t
end

-- HWIO [kh,kw,in,out] -> OIHW [out,in,kh,kw], as a view.
local function hwio_to_oihw(t)
  return t:transpose(1, 4):transpose(2, 3):transpose(3, 4)
end

-- ---- layers -------------------------------------------------------------------------------

-- face-api's "conv layer": conv + conv bias, then the per-channel scale
-- y = (W x + b) s + t, folded into one convolution with weights W s and
-- bias b s + t (the network only runs in inference; the fold moves results
-- by ~1e-7, far inside the conformance tolerance).
local function conv_layer(tensors, prefix, cin, cout, k, stride, padding, relu)
  local conv = nn.Conv2d(cin, cout, k, {stride = stride, padding = padding, relu = relu})
  local filters = fetch(tensors, prefix .. "/conv/filters", {k, k, cin, cout})
  conv.weight:copy(hwio_to_oihw(filters))
  local bias = fetch(tensors, prefix .. "/conv/bias", {cout})
  local s = fetch(tensors, prefix .. "/scale/weights", {cout})
  local t = fetch(tensors, prefix .. "/scale/biases", {cout})
  for o = 1, cout do conv.weight:select(1, o):scale_(s:get(o)) end
  conv.bias:copy(bias:mul(s):add(t))
  -- face-api stores the filters as 8-bit levels min + step * q of the
  -- whole tensor (q = 0 at its minimum, 255 at its maximum); folded, output
  -- channel o's levels are s[o] min + s[o] step * q (nn.Conv2d:pack checks it)
  local lo, hi = filters:min(), filters:max()
  conv.grid = T.zeros{2, cout}
  conv.grid:select(1, 1):copy(s):scale_(lo)
  conv.grid:select(1, 2):copy(s):scale_((hi - lo) / 255)
  return conv
end

local function residual_block(tensors, prefix, c)
  local conv1 = conv_layer(tensors, prefix .. "/conv1", c, c, 3, 1, "same", true) -- ReLU fused
  local conv2 = conv_layer(tensors, prefix .. "/conv2", c, c, 3, 1, "same")
  return nn.Add({nn.Sequential{conv1, conv2}, nn.Identity()}, {relu = true})
end

-- Appends zero channels to [N,cin,h,w]: seen as [N,1,cin,h*w], the channels
-- are rows, so padding rows at the bottom adds channels after the originals.
local function append_zero_channels(cin, cout, h, w)
  return nn.Sequential{nn.Reshape(1, cin, h * w), nn.ZeroPad2d(0, 0, 0, cout - cin), nn.Reshape(cout, h, w)}
end

-- The down-sampling block on an input of size x size; returns it and its output size.
local function down_block(tensors, prefix, cin, cout, size)
  local main_size = (size - 3) // 2 + 1       -- 3x3 stride 2 valid
  local pooled = size // 2                    -- 2x2 stride 2 valid
  local conv1 = conv_layer(tensors, prefix .. "/conv1", cin, cout, 3, 2, "valid", true)
  local conv2 = conv_layer(tensors, prefix .. "/conv2", cout, cout, 3, 1, "same")
  local main = nn.Sequential{conv1, conv2}
  if main_size < pooled then
    local extra = pooled - main_size
    main:add(nn.ZeroPad2d(0, extra, 0, extra))   -- rows at the bottom, columns at the right
  end
  local shortcut = nn.Sequential{nn.AvgPool2d(2, {stride = 2, padding = "valid"})}
  if cin < cout then shortcut:add(append_zero_channels(cin, cout, pooled, pooled)) end
  return nn.Add({main, shortcut}, {relu = true}), pooled
end

-- The whole network as a Sequential that checks its input shape.
local FaceRecognitionNet = class("FaceRecognitionNet", nn.Sequential)

function FaceRecognitionNet:updateOutput(input)
  local s = T.is_tensor(input) and input:shape()
  if not s or #s ~= 4 or s[2] ~= 3 or s[3] ~= SIZE or s[4] ~= SIZE then
    self:fail("expected input [N,3,%d,%d], got %s", SIZE, SIZE, describe(input))
  end
  return nn.Sequential.updateOutput(self, input)
end

local function assemble(tensors)
  local net = FaceRecognitionNet()
  net:add(conv_layer(tensors, "conv32_down", 3, 32, 7, 2, "valid", true))  -- 72x72x32
  net:add(nn.MaxPool2d(3, {stride = 2, padding = "valid"}))      -- 35x35x32
  local size, channels = 35, 32
  local stages = {{32, 3}, {64, 3}, {128, 2}, {256, 2}}
  for i, stage in ipairs(stages) do
    local cout, repeats = stage[1], stage[2]
    if i > 1 then
      local block
      block, size = down_block(tensors, "conv" .. cout .. "_down", channels, cout, size)
      net:add(block)
      channels = cout
    end
    for r = 1, repeats do
      net:add(residual_block(tensors, "conv" .. cout .. "_" .. r, cout))
    end
  end
  net:add((down_block(tensors, "conv256_down_out", 256, 256, size)))  -- 2x2x256
  net:add(nn.GlobalAvgPool2d())
  local fc = nn.Linear(256, recognition.DESCRIPTOR_SIZE, {bias = false})
  fc.weight:copy(fetch(tensors, "fc", {256, recognition.DESCRIPTOR_SIZE}):t())
  net:add(fc)
  return net
end

-- Opts every 3x3 stride-1 convolution in to the Winograd inference forward
-- (nn.Conv2d:prepare) and every convolution in to the packed forwards
-- (nn.Conv2d:pack, with the filters' 8-bit grid); Conv2d picks per map
-- size and batch. One face: the direct blocked forward everywhere (8-bit
-- weights where face-api's are, i.e. all but the 64-channel layers),
-- except Winograd F(2x2) on the 8x8 maps of layers stored in floats and
-- the one-tap product on the 1x1 map. Batches of 4 or more: the blocked
-- forward (float weights) from 12x12, Winograd F(4x4) on the 8x8 maps and
-- F(2x2) on 4x4, packed im2col for the rest. Descriptors move by ~1e-5.
local function prepare_convolutions(m)
  if m.modules then
    for _, c in ipairs(m.modules) do prepare_convolutions(c) end
  elseif m.prepare then
    m:prepare()
    m:pack{grid = m.grid}
  end
  return m
end

--- Builds the network from face-api tensors (name -> float32 tensor, as
-- siamese.face.weights.load returns them): an nn module mapping
-- [N,3,150,150] normalised input to [N,128] descriptors. Raises when a
-- tensor is missing or has the wrong shape.
function recognition.build(tensors)
  if type(tensors) ~= "table" then
    arg_error("build", 1, "table of tensors expected, got %s", describe(tensors))
  end
  local ok, net = pcall(assemble, tensors)
  if not ok then error("build: " .. tostring(net), 2) end
  return prepare_convolutions(net:evaluate())
end

-- ---- preprocessing ------------------------------------------------------------------------

-- Pixels before and after the image on the padded axis (face-api's padToSquare, centred).
local function square_padding(h, w)
  local diff = math.abs(h - w)
  local after = math.floor(diff / 2 + 0.5)
  return diff - after, after
end

-- Zero padding {top, bottom, left, right} that makes an h x w image square.
local function padding_to_square(h, w)
  local before, after = square_padding(h, w)
  if h > w then return {0, 0, before, after} end
  return {before, after, 0, 0}
end

local function image_to_tensor(img, pad)
  if img.channels ~= 3 then img = img:to_rgb() end
  if pad then
    img = img:pad{top = pad[1], bottom = pad[2], left = pad[3], right = pad[4], value = 0}
  end
  return img:to_tensor{scale = 1}
end

local function pad_tensor(t, pad)
  local _, h, w = table.unpack(t:shape())
  local out = T.zeros{3, h + pad[1] + pad[2], w + pad[3] + pad[4]}
  out:narrow(2, pad[1] + 1, h):narrow(3, pad[3] + 1, w):copy(t)
  return out
end

-- Checks an input and returns its height and width.
local function input_size(fname, argn, input, what)
  if is_image(input) then return input.height, input.width end
  if T.is_tensor(input) then
    local s = input:shape()
    if #s == 3 and s[1] == 3 and s[2] >= 1 and s[3] >= 1 then return s[2], s[3] end
  end
  arg_error(fname, argn, "%sexpected an image or a [3,H,W] tensor of 0..255 values, got %s", what or "",
    describe(input))
end

local function check_opts(fname, argn, opts)
  if opts ~= nil and type(opts) ~= "table" then
    arg_error(fname, argn, "options table expected, got %s", type(opts))
  end
  if opts and opts.pad ~= nil and type(opts.pad) ~= "boolean" then
    arg_error(fname, argn, "option 'pad' must be a boolean, got %s", type(opts.pad))
  end
end

local STD_RGB = {255, 255, 255}

-- The padded (unless opts.pad == false) 0..255 float tensor, resized to
-- 150x150; a new tensor, never the caller's. A second result true means
-- it is already normalised.
local function resized_rgb(input, h, w, opts)
  local stretch = opts and opts.pad == false
  if is_image(input) and not stretch then
    -- pad + resize + normalise in one pass from the 8-bit pixels (the same
    -- values as the float path below, without building the padded square;
    -- the normalisation in double, within an ulp of the float32 one)
    local rgb = input.channels == 3 and input or input:to_rgb()
    return rgb:to_square_tensor(SIZE, {centred = true, scale = 1, mean = recognition.MEAN_RGB, std = STD_RGB}), true
  end
  local pad = not stretch and h ~= w and padding_to_square(h, w) or nil
  local x
  if is_image(input) then
    x = image_to_tensor(input, pad)
  elseif pad then
    x = pad_tensor(input, pad)
  else
    x = input
  end
  local _, ph, pw = table.unpack(x:shape())
  if ph ~= SIZE or pw ~= SIZE then return image.resize_tensor(x, SIZE, SIZE, {method = "tf"}) end
  return rawequal(x, input) and input:clone() or x
end

local function normalise(x)
  for c = 1, 3 do
    x:select(1, c):sub_(recognition.MEAN_RGB[c]):div_(255)
  end
  return x
end

local function preprocess_checked(input, h, w, opts)
  local x, normalised = resized_rgb(input, h, w, opts)
  return normalised and x or normalise(x)
end

--- face-api's toBatchTensor(150, centred = true) and normalisation, on an
-- image (gray replicated to RGB, alpha dropped) or a float tensor [3,H,W]
-- of 0..255 values. opts.pad = false stretches the whole image instead of
-- padding it to a square first. Returns a new tensor [3,150,150].
function recognition.preprocess(input, opts)
  local h, w = input_size("preprocess", 1, input)
  check_opts("preprocess", 2, opts)
  return preprocess_checked(input, h, w, opts)
end

-- ---- the model ----------------------------------------------------------------------------

local Model = {}
Model.__index = Model

--- The 128-D descriptor [128] of one face (a new tensor, not normalised).
function Model:embed(input, opts)
  local h, w = input_size("embed", 1, input)
  check_opts("embed", 2, opts)
  local x = preprocess_checked(input, h, w, opts)
  return self.net:forward(x:view(1, 3, SIZE, SIZE)):view(recognition.DESCRIPTOR_SIZE):clone()
end

-- A [n,3,150,150] input buffer, kept between calls of the same size.
function Model:batch_buffer(n)
  local b = self.batch
  if not b or b:shape(1) ~= n then
    self.batch = nil
    b = T.zeros{n, 3, SIZE, SIZE}
    self.batch = b
  end
  return b
end

--- Descriptors [N,128] of a list of faces, one forward over the stacked batch.
function Model:embed_batch(list, opts)
  if type(list) ~= "table" or #list == 0 then
    arg_error("embed_batch", 1, "non-empty list of images or [3,H,W] tensors expected, got %s", describe(list))
  end
  check_opts("embed_batch", 2, opts)
  local sizes = {}
  for i, input in ipairs(list) do
    local h, w = input_size("embed_batch", 1, input, "item " .. i .. ": ")
    sizes[i] = {h, w}
  end
  local batch = self:batch_buffer(#list)
  for i, input in ipairs(list) do
    batch:select(1, i):copy(preprocess_checked(input, sizes[i][1], sizes[i][2], opts))
  end
  return self.net:forward(batch):clone()
end

--- The default weights file: models/faceapi_recognition.safetensors.
function recognition.default_path()
  return require("siamese.models").dir() .. "/faceapi_recognition.safetensors"
end

--- Loads the converted face-api weights (default: recognition.default_path())
-- and builds the network in evaluation mode. Returns a model with .net,
-- :embed and :embed_batch, or nil and a message for a missing, damaged or
-- mismatched file.
function recognition.load(path)
  if path ~= nil and type(path) ~= "string" then
    arg_error("load", 1, "string expected, got %s", type(path))
  end
  path = path or recognition.default_path()
  local tensors, err = weights.load(path)
  if not tensors then return nil, err end
  local ok, net = pcall(assemble, tensors)
  if not ok then return nil, path .. ": " .. tostring(net) end
  return setmetatable({net = prepare_convolutions(net:evaluate()), path = path}, Model)
end

return recognition
