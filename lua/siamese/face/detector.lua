--- siamese.face.detector: face-api's TinyFaceDetector (a Tiny-YOLOv2 with
-- depthwise-separable convolutions, one class, five anchors), ported from
-- the description in ../shared/reference/faceapi-architecture.md (section 3).
--
-- Network (S = input size, a multiple of 32; shapes for S = 416):
--   conv0  3x3 VALID 3->16 + bias, leaky 0.1       414x414x16
--   maxpool 2x2 stride 2 SAME                      207x207x16
--   conv1..conv5: separable 3x3 with padding 1 (depthwise [3,3,c,1], no bias,
--          then pointwise 1x1 with the bias), leaky 0.1, each followed by a
--          2x2 SAME max pool, stride 2 except after conv5 (stride 1, which
--          pads one row/column at the bottom/right): 16->32->64->128->256->512
--                                                   13x13x512
--   conv8  1x1 512->25 + bias, no activation        13x13x25
-- face-api's leaky ReLU is relu(x - 0.1x) + 0.1x; nn.LeakyReLU(0.1) differs
-- from it by at most one float32 rounding of positive values.
--
-- Preprocessing (face-api toBatchTensor(S, centred = false)): gray or RGBA
-- images become RGB; the image is zero-padded to a square at the bottom or
-- right (image at the top-left), resized to SxS with TensorFlow-1 bilinear
-- sampling (src = dst * in / out) on 0..255 float values, then each channel
-- becomes (x - mean) / 255 with the means R 117.001, G 114.697, B 97.404.
--
-- Decoding: output channel 5a + k (anchor a = 0..4, k = tx, ty, tw, th, tobj)
-- at grid cell (row, col) of an n x n grid (n = S / 32). With the content
-- size after scaling rw = round(W sc), rh = round(H sc), sc = S / max(W, H)
-- (JS Math.round), and the correction factors cfx = max(rw, rh) / rw,
-- cfy = max(rw, rh) / rh, a candidate is kept when sigmoid(tobj) > threshold:
--   cx = (col + sigmoid(tx)) / n * cfx      w = exp(tw) * anchor_w / n * cfx
--   cy = (row + sigmoid(ty)) / n * cfy      h = exp(th) * anchor_h / n * cfy
--   box = (cx - w/2, cy - h/2, w, h) relative to the image (0..1).
-- Greedy NMS: candidates sorted by ascending score (stable), the highest is
-- kept and every remaining one with IoU > 0.4 against it dropped, until none
-- remain. Pixel boxes are the relative ones times W (x, width) and H (y,
-- height), not clipped.
--
-- The preprocessing and weight layouts it shares with face-api's other
-- networks are in siamese.face.tfjs.
local nn = require "siamese.nn"
local argcheck = require "siamese.argcheck"
local tfjs = require "siamese.face.tfjs"
local weights = require "siamese.face.weights"

local detector = {}

local MEAN_RGB = {117.001, 114.697, 97.404}
local IOU_THRESHOLD = 0.4
-- Anchor (width, height) in grid cells.
local ANCHORS = {
  {1.603231, 2.094468}, {6.041143, 7.080126}, {2.882459, 3.518061},
  {4.266906, 5.178857}, {9.041765, 10.66308},
}
local SEPARABLE_CHANNELS = {{16, 32}, {32, 64}, {64, 128}, {128, 256}, {256, 512}}

detector.MEAN_RGB = MEAN_RGB
detector.ANCHORS = ANCHORS
detector.IOU_THRESHOLD = IOU_THRESHOLD

-- ---------------------------------------------------------------------------
-- The network
-- ---------------------------------------------------------------------------

--- The TinyFaceDetector network with untrained weights; also returns the
-- layers that carry face-api weights, by face-api prefix.
function detector.build_net()
  local named = {conv0 = nn.Conv2d(3, 16, 3, {padding = "valid"})}
  -- Each conv -> leaky -> max pool runs as conv -> max pool -> leaky: the
  -- leaky ReLU is non-decreasing, so max(leaky(a), leaky(b)) =
  -- leaky(max(a, b)) exactly (padding never wins either way), and the
  -- activation then touches a quarter of the values. The activations work
  -- in place on the pools' outputs.
  local layers = {named.conv0, nn.MaxPool2d(2, {padding = "same"}), nn.LeakyReLU(0.1, true)}
  for i, ch in ipairs(SEPARABLE_CHANNELS) do
    local block = tfjs.separable(ch[1], ch[2], 1, 1)
    named["conv" .. i] = block
    local last = i == #SEPARABLE_CHANNELS
    for _, m in ipairs{block, nn.MaxPool2d(2, {stride = last and 1 or 2, padding = "same"}), nn.LeakyReLU(0.1, true)} do
      layers[#layers + 1] = m
    end
  end
  named.conv8 = nn.Conv2d(512, 25, 1)
  layers[#layers + 1] = named.conv8
  return nn.Sequential(layers):evaluate(), named
end

local Detector = {}
Detector.__index = Detector

--- Loads the converted face-api weights (default: the bundled
-- faceapi_tiny_detector.safetensors). Returns the detector, or nil and a
-- message.
local function load_layer(layer, tensors, name, path)
  if layer.modules then return tfjs.load_separable(layer, tensors, name, path) end
  return tfjs.load_conv(layer, tensors, name, path)
end

function detector.load(path)
  local tensors, err
  tensors, err, path = weights.open(path, "faceapi_tiny_detector.safetensors")
  if not tensors then return nil, err end
  local net, named = detector.build_net()
  local ok, lerr = weights.load_layers(named, tensors, path, load_layer)
  if not ok then return nil, lerr end
  return setmetatable({net = net, path = path}, Detector)
end

-- ---------------------------------------------------------------------------
-- Decoding and non-maximum suppression
-- ---------------------------------------------------------------------------

local function sigmoid(v)
  return 1 / (1 + math.exp(-v))
end

--- The correction factors of face-api for an image of width x height
-- scaled into input_size: (cfx, cfy).
function detector.correction_factors(input_size, width, height)
  local scale = input_size / math.max(width, height)
  local rw, rh = tfjs.js_round(width * scale), tfjs.js_round(height * scale)
  local m = math.max(rw, rh)
  return m / rw, m / rh
end

--- Decodes a raw output grid ([25,n,n] or [1,25,n,n] tensor) into the
-- candidates whose score is strictly above score_threshold, in cell order
-- (row, column, anchor): {box = {x, y, width, height} relative to the image
-- (0..1), score}. width and height are the original image size.
function detector.decode_grid(grid, input_size, width, height, score_threshold)
  local g = grid:dim() == 4 and grid:select(1, 1) or grid
  local n = g:shape(2)
  local v = g:totable()
  local cfx, cfy = detector.correction_factors(input_size, width, height)
  local out = {}
  for row = 1, n do
    for col = 1, n do
      for a, anchor in ipairs(ANCHORS) do
        local c = 5 * (a - 1)
        local score = sigmoid(v[c + 5][row][col])
        if score > score_threshold then
          local cx = (col - 1 + sigmoid(v[c + 1][row][col])) / n * cfx
          local cy = (row - 1 + sigmoid(v[c + 2][row][col])) / n * cfy
          local w = math.exp(v[c + 3][row][col]) * anchor[1] / n * cfx
          local h = math.exp(v[c + 4][row][col]) * anchor[2] / n * cfy
          out[#out + 1] = {box = {x = cx - w / 2, y = cy - h / 2, width = w, height = h}, score = score}
        end
      end
    end
  end
  return out
end

--- Intersection over union of two {x, y, width, height} boxes (no +1
-- pixel convention).
function detector.iou(a, b)
  local iw = math.max(0, math.min(a.x + a.width, b.x + b.width) - math.max(a.x, b.x))
  local ih = math.max(0, math.min(a.y + a.height, b.y + b.height) - math.max(a.y, b.y))
  local inter = iw * ih
  return inter / (a.width * a.height + b.width * b.height - inter)
end

--- Indices of list in face-api's NMS order: ascending score, ties kept in
-- list order (a stable sort), so the last element is picked first.
local function ascending_by_score(list)
  local order = {}
  for i = 1, #list do order[i] = i end
  table.sort(order, function(i, j)
    if list[i].score ~= list[j].score then return list[i].score < list[j].score end
    return i < j
  end)
  return order
end

--- Greedy non-maximum suppression of {box, score} candidates: returns the
-- kept ones by descending score; a candidate is dropped when its IoU with
-- a kept one is above iou_threshold (default 0.4).
function detector.non_max_suppression(candidates, iou_threshold)
  iou_threshold = iou_threshold or IOU_THRESHOLD
  local remaining = ascending_by_score(candidates)
  local kept = {}
  while #remaining > 0 do
    local best = candidates[table.remove(remaining)]
    kept[#kept + 1] = best
    local survivors = {}
    for _, i in ipairs(remaining) do
      if detector.iou(best.box, candidates[i].box) <= iou_threshold then
        survivors[#survivors + 1] = i
      end
    end
    remaining = survivors
  end
  return kept
end

-- ---------------------------------------------------------------------------
-- Detection
-- ---------------------------------------------------------------------------

local function check_options(opts)
  if opts ~= nil and type(opts) ~= "table" then
    error(string.format("bad argument #2 to 'detect' (table expected, got %s)", type(opts)), 3)
  end
  opts = opts or {}
  local size = opts.input_size or 416
  if math.type(size) ~= "integer" or size < 32 or size % 32 ~= 0 then
    error(string.format("bad argument #2 to 'detect' (input_size must be a positive multiple of 32, got %s)",
      tostring(size)), 3)
  end
  local threshold = opts.score_threshold or 0.5
  if type(threshold) ~= "number" or threshold ~= threshold then
    error(string.format("bad argument #2 to 'detect' (score_threshold must be a number, got %s)",
      tostring(threshold)), 3)
  end
  return size, threshold
end

--- face-api TinyFaceDetector(input_size, score_threshold) on img: a list
-- of {box = {x, y, width, height}, score} in pixels of img, by descending
-- score.
function Detector:detect(img, opts)
  argcheck.image(img, "detect", 1)
  local size, threshold = check_options(opts)
  local x = tfjs.to_batch_tensor(img, size, false, MEAN_RGB)
  local grid = self.net:forward(x)
  local W, H = img.width, img.height
  local kept = detector.non_max_suppression(detector.decode_grid(grid, size, W, H, threshold), IOU_THRESHOLD)
  local faces = {}
  for i, c in ipairs(kept) do
    local b = c.box
    faces[i] = {box = {x = b.x * W, y = b.y * H, width = b.width * W, height = b.height * H}, score = c.score}
  end
  return faces
end

function Detector:__tostring()
  return "TinyFaceDetector(" .. self.path .. ")"
end

return detector
