--- siamese.face.landmarks: face-api's FaceLandmark68TinyNet (68 iBUG points)
-- and steps 2-4 of face-api's "full" pipeline, ported from the description in
-- ../shared/reference/faceapi-architecture.md (sections 4 and 5).
--
-- Network (input 112x112x3; all convolutions 3x3 with TensorFlow SAME
-- padding, so stride 2 pads one row/column at the bottom/right only):
--   dense block B(x; cin -> cout), output relu(o1 + o2 + o3) where
--     o1 = relu(conv0(x))       conv0: stride 2 (dense0: a regular conv
--                               3->32; dense1/2: separable) + bias
--     o2 = sep1(o1)             separable stride 1 + bias, no activation
--     o3 = sep2(relu(o1 + o2))  separable stride 1 + bias, no activation
--   composed here as conv0, ReLU, s = Add{Identity, sep1}(o1),
--   Add{Identity, Sequential{ReLU, sep2}}(s) = s + o3, ReLU.
--   dense0 3->32 (56x56), dense1 32->64 (28x28), dense2 64->128 (14x14),
--   average pool 14x14 stride 2 VALID (1x1x128), fc 128->136 with bias.
-- A separable conv is a depthwise 3x3 (no bias) then a pointwise 1x1 with
-- the bias (siamese.face.tfjs.separable).
--
-- Preprocessing (face-api toBatchTensor(112, centred = true)): the crop is
-- zero-padded to a centred square (after = Math.round(diff / 2) at the
-- bottom/right, the rest before), resized to 112x112 with TensorFlow-1
-- bilinear sampling on 0..255 floats, then (x - mean) / 255 with the means
-- R 122.782, G 117.001, B 104.298.
--
-- Decoding: outputs 2i-1, 2i are point i in 0..1 units of the 112x112
-- square. For a w x h crop, s = 112 / max(w, h), iw = w s, ih = h s (not
-- rounded), padX = |iw - ih| / 2 when iw < ih (else 0), padY likewise;
--   x = (out_x * 112 - padX) / iw * w + box.x
--   y = (out_y * 112 - padY) / ih * h + box.y
-- where (box.x, box.y) is the UNCLIPPED detection origin (a face-api quirk).
--
-- Crops (face-api clipAtImageBorders then floor): x0 = max(x, 0),
-- y0 = max(y, 0), w' = min(x + w - x0, W - x0), h' = min(y + h - y0, H - y0),
-- each floored; empty when w' <= 0 or h' <= 0.
--
-- Descriptor crop (face-api's "dlib" alignment, no rotation): le, re, mo =
-- means of points 36-41, 42-47 and 48-67 (0-based); d = (|mo - le| +
-- |mo - re|) / 2, size = floor(d / 0.45), ref = (le + re + mo) / 3;
-- x = floor(max(0, ref.x - 0.5 size)), y = floor(max(0, ref.y - 0.43 size)),
-- then (x, y, size, size) is clipped as above.
local nn = require "siamese.nn"
local argcheck = require "siamese.argcheck"
local tfjs = require "siamese.face.tfjs"
local weights = require "siamese.face.weights"

local landmarks = {}

local INPUT_SIZE = 112
local MEAN_RGB = {122.782, 117.001, 104.298}
local NUM_POINTS = 68
local DENSE_CHANNELS = {{3, 32}, {32, 64}, {64, 128}}

landmarks.INPUT_SIZE = INPUT_SIZE
landmarks.MEAN_RGB = MEAN_RGB

-- ---------------------------------------------------------------------------
-- The network
-- ---------------------------------------------------------------------------

--- A dense block of `convs` convolutions (3 in the tiny net, 4 in the
-- full one); also returns its weight-carrying layers by face-api suffix
-- (conv0, conv1, ...). With o1 = relu(conv0(x)) and s1 = o1, each further
-- conv k adds sk = s(k-1) + convk(relu(s(k-1))) (for k = 1 the input is o1
-- itself, already non-negative); the block's output is relu(s_last).
local function dense_block(cin, cout, first, convs)
  local conv0 = first and nn.Conv2d(cin, cout, 3, {stride = 2, padding = "same"})
    or tfjs.separable(cin, cout, 2, "same")
  local parts = {conv0 = conv0}
  -- The first and last ReLU work in place (on a convolution's and an
  -- Add's own output); the inner ones must not, their input is s itself.
  local block = nn.Sequential{conv0, nn.ReLU(true)}
  for k = 1, convs - 1 do
    local conv = tfjs.separable(cout, cout, 1, "same")
    parts["conv" .. k] = conv
    block:add(nn.Add{nn.Identity(), k == 1 and conv or nn.Sequential{nn.ReLU(), conv}})
  end
  block:add(nn.ReLU(true))
  return block, parts
end

-- The two architectures: dense blocks (in, out channels), convolutions per
-- block, and the final average pool (14x14 on 14x14, or 7x7 stride 2 on 7x7).
local VARIANTS = {
  tiny = {channels = DENSE_CHANNELS, convs = 3, pool = 14},
  full = {channels = {{3, 32}, {32, 64}, {64, 128}, {128, 256}}, convs = 4, pool = 7},
}

--- The FaceLandmark68TinyNet (variant "tiny", default) or the full
-- FaceLandmark68Net ("full") with untrained weights; also returns the
-- layers that carry face-api weights, by face-api prefix.
function landmarks.build_net(variant)
  local v = VARIANTS[variant or "tiny"]
  if not v then error("build_net: variant must be 'tiny' or 'full', got " .. tostring(variant), 2) end
  local layers, named = {}, {}
  for i, ch in ipairs(v.channels) do
    local block, parts = dense_block(ch[1], ch[2], i == 1, v.convs)
    layers[i] = block
    for suffix, layer in pairs(parts) do named["dense" .. (i - 1) .. "/" .. suffix] = layer end
  end
  local last = v.channels[#v.channels][2]
  named.fc = nn.Linear(last, 2 * NUM_POINTS)
  for _, m in ipairs{nn.AvgPool2d(v.pool, {stride = 2, padding = "valid"}), nn.Flatten(), named.fc} do
    layers[#layers + 1] = m
  end
  return nn.Sequential(layers):evaluate(), named
end

--- Fills the fully connected layer from fc/weights [in,out] and fc/bias.
local function load_dense(linear, tensors, path)
  local w, err = tfjs.tensor_of(tensors, "fc/weights", {linear.nin, linear.nout}, path)
  if not w then return nil, err end
  local b, berr = tfjs.tensor_of(tensors, "fc/bias", {linear.nout}, path)
  if not b then return nil, berr end
  linear.weight:copy(w:t())
  linear.bias:copy(b)
  return true
end

local function load_layer(layer, tensors, name, path)
  if name == "fc" then return load_dense(layer, tensors, path) end
  if layer.modules then return tfjs.load_separable(layer, tensors, name, path) end
  return tfjs.load_conv(layer, tensors, name, path)
end

local Landmarks = {}
Landmarks.__index = Landmarks

--- Loads converted face-api weights (default: the bundled
-- faceapi_landmarks68_tiny.safetensors); a file of the full net
-- (faceapi_landmarks68.safetensors, told by its dense3 block) builds the
-- full architecture. Returns the model, or nil and a message.
function landmarks.load(path)
  local tensors, err
  tensors, err, path = weights.open(path, "faceapi_landmarks68_tiny.safetensors")
  if not tensors then return nil, err end
  local variant = tensors["dense3/conv0/bias"] and "full" or "tiny"
  local net, named = landmarks.build_net(variant)
  local ok, lerr = weights.load_layers(named, tensors, path, load_layer)
  if not ok then return nil, lerr end
  return setmetatable({net = net, path = path, variant = variant}, Landmarks)
end

-- ---------------------------------------------------------------------------
-- Geometry
-- ---------------------------------------------------------------------------

--- face-api Box.clipAtImageBorders(W, H).floor(): the integer rectangle
-- {x, y, width, height} of box inside a W x H image, or nil when empty.
function landmarks.clip_box(box, W, H)
  local x0, y0 = math.max(box.x, 0), math.max(box.y, 0)
  local w = math.min(box.x + box.width - x0, W - x0)
  local h = math.min(box.y + box.height - y0, H - y0)
  local r = {x = math.floor(x0), y = math.floor(y0), width = math.floor(w), height = math.floor(h)}
  if r.width <= 0 or r.height <= 0 then return nil end
  return r
end

--- Decodes the 136 network outputs (a tensor [1,136] or [136], or a Lua
-- list) for a crop of w x h pixels into 68 {x, y} points shifted by
-- (shift_x, shift_y).
function landmarks.decode(output, w, h, shift_x, shift_y)
  local o = type(output) == "table" and output or output:contiguous():view(2 * NUM_POINTS):totable()
  local scale = INPUT_SIZE / math.max(w, h)
  local iw, ih = w * scale, h * scale
  local pad_x = iw < ih and math.abs(iw - ih) / 2 or 0
  local pad_y = ih < iw and math.abs(iw - ih) / 2 or 0
  local points = {}
  for i = 1, NUM_POINTS do
    local rx = (o[2 * i - 1] * INPUT_SIZE - pad_x) / iw
    local ry = (o[2 * i] * INPUT_SIZE - pad_y) / ih
    points[i] = {rx * w + (shift_x or 0), ry * h + (shift_y or 0)}
  end
  return points
end

local function check_box(box, fname, argn)
  local ok = type(box) == "table"
  for _, k in ipairs{"x", "y", "width", "height"} do
    ok = ok and type(box[k]) == "number"
  end
  if not ok then
    error(string.format("bad argument #%d to '%s' (box {x, y, width, height} of numbers expected, got %s)",
      argn, fname, type(box)), 3)
  end
end

-- The iBUG 68-point mirror permutation (1-based): the point that point i
-- becomes when the face is mirrored left-right. In 0-based iBUG numbers:
-- jaw 0..16 reversed; brows 17..21 <-> 26..22; nose bridge 27..30 fixed;
-- nostrils 31..35 reversed; eyes 36 37 38 39 40 41 <-> 45 44 43 42 47 46
-- (outer corner, upper lid, inner corner, lower lid); outer lip 48..54
-- reversed (48 <-> 54, 51 fixed) and 55..59 reversed (57 fixed); inner lip
-- 60..64 reversed (62 fixed) and 65..67 reversed (66 fixed).
local MIRROR0 = {}
do
  local function swap_range(a, b)  -- a..b reversed onto itself
    for i = a, b do MIRROR0[i] = a + b - i end
  end
  local function swap_lists(l1, l2)
    for k = 1, #l1 do MIRROR0[l1[k]], MIRROR0[l2[k]] = l2[k], l1[k] end
  end
  swap_range(0, 16)
  swap_lists({17, 18, 19, 20, 21}, {26, 25, 24, 23, 22})
  for i = 27, 30 do MIRROR0[i] = i end
  swap_range(31, 35)
  swap_lists({36, 37, 38, 39, 40, 41}, {45, 44, 43, 42, 47, 46})
  swap_range(48, 54)
  swap_range(55, 59)
  swap_range(60, 64)
  swap_range(65, 67)
end
local MIRROR = {}
for i = 0, NUM_POINTS - 1 do MIRROR[i + 1] = MIRROR0[i] + 1 end
landmarks.MIRROR = MIRROR

--- face-api steps 2-3 of the full pipeline: landmarks of the face in box
-- ({x, y, width, height} in pixels of img, e.g. from detector:detect).
-- opts.flip = true also runs the net on the mirrored crop and averages the
-- two answers (the mirrored one mapped back: u -> w - u on the crop, whose
-- 0..1 outputs span its w pixels' edges, and the points permuted by
-- landmarks.MIRROR). Returns 68 {x, y} points in pixels of img, or nil and
-- a reason when the box does not overlap the image.
function Landmarks:predict(img, box, opts)
  argcheck.image(img, "predict", 1)
  check_box(box, "predict", 2)
  if opts ~= nil and type(opts) ~= "table" then
    error(string.format("bad argument #3 to 'predict' (options table expected, got %s)", type(opts)), 2)
  end
  local rect = landmarks.clip_box(box, img.width, img.height)
  if not rect then
    return nil, string.format("box (%g, %g, %g x %g) does not overlap the %dx%d image",
      box.x, box.y, box.width, box.height, img.width, img.height)
  end
  local crop = img:crop(rect.x, rect.y, rect.width, rect.height)
  local out = self.net:forward(tfjs.to_batch_tensor(crop, INPUT_SIZE, true, MEAN_RGB))
  local points = landmarks.decode(out, rect.width, rect.height, box.x, box.y)
  if not (opts and opts.flip) then return points end
  out = self.net:forward(tfjs.to_batch_tensor(crop:flip(), INPUT_SIZE, true, MEAN_RGB))
  local mirrored = landmarks.decode(out, rect.width, rect.height, 0, 0)
  for i = 1, NUM_POINTS do
    local m, p = mirrored[MIRROR[i]], points[i]
    p[1] = (p[1] + rect.width - m[1] + box.x) / 2
    p[2] = (p[2] + m[2] + box.y) / 2
  end
  return points
end

function Landmarks:__tostring()
  return "FaceLandmark68TinyNet(" .. self.path .. ")"
end

--- Mean of points first..last (1-based), summed in order from 0 as
-- face-api's getCenterPoint does.
local function center(points, first, last)
  local sx, sy = 0, 0
  for i = first, last do
    sx, sy = sx + points[i][1], sy + points[i][2]
  end
  local n = last - first + 1
  return sx / n, sy / n
end

local function check_points(points)
  local ok = type(points) == "table" and #points == NUM_POINTS
  for i = 1, ok and NUM_POINTS or 0 do
    local p = points[i]
    ok = ok and type(p) == "table" and type(p[1]) == "number" and type(p[2]) == "number"
  end
  if not ok then
    error("bad argument #1 to 'descriptor_rect' (68 {x, y} points expected)", 3)
  end
end

--- face-api step 4: the descriptor crop {x, y, width, height} (integers)
-- from the 68 points, clipped to a W x H image; nil when empty.
function landmarks.descriptor_rect(points, W, H)
  check_points(points)
  if math.type(W) ~= "integer" or math.type(H) ~= "integer" then
    error("bad argument #2 to 'descriptor_rect' (integer image width and height expected)", 2)
  end
  local lex, ley = center(points, 37, 42)
  local rex, rey = center(points, 43, 48)
  local mox, moy = center(points, 49, 68)
  local function dist_to_mouth(x, y)
    local dx, dy = mox - x, moy - y
    return math.sqrt(dx * dx + dy * dy)
  end
  local size = math.floor((dist_to_mouth(lex, ley) + dist_to_mouth(rex, rey)) / 2 / 0.45)
  local refx, refy = (lex + rex + mox) / 3, (ley + rey + moy) / 3
  local x = math.floor(math.max(0, refx - 0.5 * size))
  local y = math.floor(math.max(0, refy - 0.43 * size))
  return landmarks.clip_box({x = x, y = y, width = size, height = size}, W, H)
end

return landmarks
