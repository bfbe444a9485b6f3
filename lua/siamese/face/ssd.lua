--- siamese.face.ssd: face-api's SsdMobilenetv1 face detector (an SSD with a
-- MobileNet v1 backbone, one face class, 5118 fixed anchors), reimplemented
-- from the reading of face-api 1.7.15 (src/ssdMobilenetv1/*.ts).
--
-- Network (input 512x512x3, NCHW here; every convolution uses TensorFlow
-- SAME padding, so stride 2 pads one row/column at the bottom/right only;
-- "relu6" is clipByValue(x, 0, 6)):
--   MobilenetV1/Conv2d_0: 3x3 stride 2, 3->32, + offset, relu6     256x256
--   13 pairs Conv2d_i (i = 1..13):
--     depthwise 3x3 (stride 2 for i = 2, 4, 6, 12), batch norm (epsilon
--     0.001), relu6; then pointwise 1x1 + offset, relu6. Channels 32, 64,
--     128, 128, 256, 256, 512 x6, 1024, 1024.   pair 11 -> 32x32x512 (C11),
--                                                pair 13 -> 16x16x1024 (C13)
--   Prediction/Conv2d_0..7 (1x1 + offset + relu6, then 3x3 stride 2 + offset
--     + relu6, alternately): 1024->256->512 (8x8, P1), ->128->256 (4x4, P3),
--     ->128->256 (2x2, P5), ->64->128 (1x1, P7).
--   Box predictors 0..5 on C11, C13, P1, P3, P5, P7 (3 anchors per cell on
--     C11, 6 elsewhere): 1x1 convs + bias, no activation, giving per anchor
--     4 box encodings and 3 class logits. Anchors are numbered predictor by
--     predictor, then row, column, anchor (TF's NHWC reshape):
--     3072 + 1536 + 384 + 96 + 24 + 6 = 5118.
-- The depthwise batch norm is folded into the depthwise filter and a bias:
-- k = gamma / sqrt(var + eps), w' = w k, b = beta - mean k.
--
-- Preprocessing (face-api toBatchTensor(512, centred = false)): the image is
-- zero-padded to a square at the bottom or right, resized to 512x512 with
-- TensorFlow-1 bilinear sampling on 0..255 values, then x / 127.5 - 1.
--
-- Decoding, with the anchor (a0, a1, a2, a3) from Output/extra_dim (y then x
-- corners in the padded square, 0..1) and the encodings (e0, e1, e2, e3):
--   h = a2 - a0, w = a3 - a1, cy = a0 + h/2, cx = a1 + w/2
--   y = e0/10 h + cy, x = e1/10 w + cx, hh = exp(e2/5) h / 2, hw = exp(e3/5) w / 2
--   box = (y - hh, x - hw, y + hh, x + hw); score = sigmoid(class logit 1).
-- NMS (face-api's own): candidates with score > min_score by descending
-- score (stable), a candidate is kept unless its IoU with an already kept
-- one exceeds 0.5 (IoU of the raw boxes, 0 when a box is empty), at most
-- max_results (default 100). Kept boxes are clipped to [0, 1], scaled by
-- 512 / round(W s) horizontally and 512 / round(H s) vertically (s = 512 /
-- max(W, H), JS Math.round; a face-api quirk, not exactly max(W,H)/W), then
-- multiplied by the image's W and H.
local nn = require "siamese.nn"
local argcheck = require "siamese.argcheck"
local tfjs = require "siamese.face.tfjs"
local weights = require "siamese.face.weights"

local ssd = {}

local INPUT_SIZE = 512
local NUM_ANCHORS = 5118
local IOU_THRESHOLD = 0.5
local BN_EPSILON = 0.0010000000474974513
local DEFAULT_MAX_RESULTS = 100
-- Backbone pairs: {in, out, depthwise stride}.
local PAIRS = {
  {32, 64, 1}, {64, 128, 2}, {128, 128, 1}, {128, 256, 2}, {256, 256, 1}, {256, 512, 2},
  {512, 512, 1}, {512, 512, 1}, {512, 512, 1}, {512, 512, 1}, {512, 512, 1},
  {512, 1024, 2}, {1024, 1024, 1},
}
-- Prediction layers: {in, out, kernel, stride}.
local PREDICTION = {
  {1024, 256, 1, 1}, {256, 512, 3, 2}, {512, 128, 1, 1}, {128, 256, 3, 2},
  {256, 128, 1, 1}, {128, 256, 3, 2}, {256, 64, 1, 1}, {64, 128, 3, 2},
}
-- Box predictors: {input channels, anchors per cell}; inputs C11, C13, P1, P3, P5, P7.
local PREDICTORS = {{512, 3}, {1024, 6}, {512, 6}, {256, 6}, {256, 6}, {128, 6}}

ssd.INPUT_SIZE = INPUT_SIZE
ssd.NUM_ANCHORS = NUM_ANCHORS
ssd.IOU_THRESHOLD = IOU_THRESHOLD

-- ---------------------------------------------------------------------------
-- The network
-- ---------------------------------------------------------------------------

-- conv (+ bias) then relu6, as face-api's pointwiseConvLayer (any kernel).
local function conv_relu6(cin, cout, k, stride, groups)
  local conv = nn.Conv2d(cin, cout, k, {stride = stride, padding = "same", groups = groups})
  return conv, nn.Sequential{conv, nn.ReLU6(true)}
end

--- The network with untrained weights: a table of stages
-- {backbone_a (to C11), backbone_b (C11 -> C13), extras = {P1, P3, P5, P7
-- stages}, predictors = {{box = Conv2d, class = Conv2d}, ...6}} and the
-- weight-carrying layers by face-api prefix (depthwise convolutions under
-- prefix "<name>_depthwise", whose batch norm is folded on load).
function ssd.build_net()
  local named = {}
  local conv0, block0 = conv_relu6(3, 32, 3, 2)
  named["MobilenetV1/Conv2d_0_pointwise"] = conv0
  local a, b = nn.Sequential{block0}, nn.Sequential()
  for i, p in ipairs(PAIRS) do
    local dw, dw_block = conv_relu6(p[1], p[1], 3, p[3], p[1])
    local pw, pw_block = conv_relu6(p[1], p[2], 1, 1)
    named["MobilenetV1/Conv2d_" .. i .. "_depthwise"] = dw
    named["MobilenetV1/Conv2d_" .. i .. "_pointwise"] = pw
    local stage = i <= 11 and a or b
    stage:add(dw_block)
    stage:add(pw_block)
  end
  local extras = {}
  for i = 1, #PREDICTION, 2 do
    local stage = nn.Sequential()
    for j = i, i + 1 do
      local p = PREDICTION[j]
      local conv, block = conv_relu6(p[1], p[2], p[3], p[4])
      named["Prediction/Conv2d_" .. (j - 1) .. "_pointwise"] = conv
      stage:add(block)
    end
    extras[#extras + 1] = stage:evaluate()
  end
  local predictors = {}
  for i, p in ipairs(PREDICTORS) do
    local box, class = nn.Conv2d(p[1], 4 * p[2], 1), nn.Conv2d(p[1], 3 * p[2], 1)
    named["Prediction/BoxPredictor_" .. (i - 1) .. "/BoxEncodingPredictor"] = box
    named["Prediction/BoxPredictor_" .. (i - 1) .. "/ClassPredictor"] = class
    predictors[i] = {box = box:evaluate(), class = class:evaluate(), anchors = p[2]}
  end
  return {backbone_a = a:evaluate(), backbone_b = b:evaluate(), extras = extras, predictors = predictors}, named
end

--- Number of parameters of the network.
function ssd.nparameters(net)
  local n = net.backbone_a:nparameters() + net.backbone_b:nparameters()
  for _, s in ipairs(net.extras) do n = n + s:nparameters() end
  for _, p in ipairs(net.predictors) do n = n + p.box:nparameters() + p.class:nparameters() end
  return n
end

--- Runs the network on x [1,3,512,512]: the six feature maps' box
-- encodings and class logits, {box = [1,4A,H,W], class = [1,3A,H,W]} each.
function ssd.forward(net, x)
  local c11 = net.backbone_a:forward(x)
  local feature = net.backbone_b:forward(c11)
  local maps = {c11, feature}
  for _, stage in ipairs(net.extras) do
    feature = stage:forward(feature)
    maps[#maps + 1] = feature
  end
  local out = {}
  for i, p in ipairs(net.predictors) do
    -- clones: the predictor convolutions reuse their output buffers
    out[i] = {box = p.box:forward(maps[i]):clone(), class = p.class:forward(maps[i]):clone(), anchors = p.anchors}
  end
  return out
end

-- ---------------------------------------------------------------------------
-- Loading
-- ---------------------------------------------------------------------------

local tensor_of = tfjs.tensor_of

-- A convolution with a bias: prefix/weights [kh,kw,in,out] and
-- prefix/<bias> [out] (the pointwise layers' convolution_bn_offset, the
-- predictors' biases).
local function load_conv_bias(conv, tensors, prefix, bias, path)
  local f, err = tensor_of(tensors, prefix .. "/weights", {conv.kh, conv.kw, conv.nin, conv.nout}, path)
  if not f then return nil, err end
  local b, berr = tensor_of(tensors, prefix .. "/" .. bias, {conv.nout}, path)
  if not b then return nil, berr end
  tfjs.copy_hwio(conv, f)
  conv.bias:copy(b)
  return true
end

-- A depthwise layer with its batch norm folded in (see the header).
local function load_depthwise(conv, tensors, prefix, path)
  local c = conv.nin
  local f, err = tensor_of(tensors, prefix .. "/depthwise_weights", {3, 3, c, 1}, path)
  if not f then return nil, err end
  local bn = {}
  for _, k in ipairs{"gamma", "beta", "moving_mean", "moving_variance"} do
    local t, terr = tensor_of(tensors, prefix .. "/BatchNorm/" .. k, {c}, path)
    if not t then return nil, terr end
    bn[k] = t:totable()
  end
  tfjs.copy_depthwise(conv, f)
  for i = 1, c do
    local k = bn.gamma[i] / math.sqrt(bn.moving_variance[i] + BN_EPSILON)
    conv.weight:select(1, i):mul_(k)
    conv.bias:set(i, bn.beta[i] - bn.moving_mean[i] * k)
  end
  return true
end

local function load_layer(conv, tensors, name, path)
  if name:find("_depthwise$") then return load_depthwise(conv, tensors, name, path) end
  if name:find("^Prediction/BoxPredictor") then return load_conv_bias(conv, tensors, name, "biases", path) end
  return load_conv_bias(conv, tensors, name, "convolution_bn_offset", path)
end

local Ssd = {}
Ssd.__index = Ssd

--- Loads the converted face-api weights (default: the bundled
-- faceapi_ssd_mobilenetv1.safetensors). Returns the detector, or nil and a
-- message.
function ssd.load(path)
  local tensors, err
  tensors, err, path = weights.open(path, "faceapi_ssd_mobilenetv1.safetensors")
  if not tensors then return nil, err end
  local anchors, aerr = tensor_of(tensors, "Output/extra_dim", {1, NUM_ANCHORS, 4}, path)
  if not anchors then return nil, aerr end
  local net, named = ssd.build_net()
  local ok, lerr = weights.load_layers(named, tensors, path, load_layer)
  if not ok then return nil, lerr end
  return setmetatable({net = net, path = path, anchors = anchors:view(NUM_ANCHORS, 4):totable()}, Ssd)
end

-- ---------------------------------------------------------------------------
-- Decoding and non-maximum suppression
-- ---------------------------------------------------------------------------

local function sigmoid(v)
  return 1 / (1 + math.exp(-v))
end

--- Decodes the predictors' outputs (from ssd.forward) with the anchors
-- ({{a0, a1, a2, a3}, ...5118}) into 5118 {box = {y0, x0, y1, x1}, score},
-- in face-api's anchor order (see the header).
function ssd.decode(outputs, anchors)
  local out = {}
  for _, o in ipairs(outputs) do
    local A = o.anchors
    local box, class = o.box:select(1, 1):totable(), o.class:select(1, 1):totable()
    local H, W = #box[1], #box[1][1]
    for row = 1, H do
      for col = 1, W do
        for a = 0, A - 1 do
          local n = #out + 1
          local an = anchors[n]
          if not an then error("decode: more predictions than anchors", 2) end
          local h, w = an[3] - an[1], an[4] - an[2]
          local cy, cx = an[1] + h / 2, an[2] + w / 2
          local e0, e1 = box[4 * a + 1][row][col], box[4 * a + 2][row][col]
          local e2, e3 = box[4 * a + 3][row][col], box[4 * a + 4][row][col]
          local y, x = e0 / 10 * h + cy, e1 / 10 * w + cx
          local hh, hw = math.exp(e2 / 5) * h / 2, math.exp(e3 / 5) * w / 2
          out[n] = {box = {y - hh, x - hw, y + hh, x + hw}, score = sigmoid(class[3 * a + 2][row][col])}
        end
      end
    end
  end
  if #out ~= #anchors then
    error(string.format("decode: %d predictions for %d anchors", #out, #anchors), 2)
  end
  return out
end

--- face-api's IoU of two {y0, x0, y1, x1} boxes (corners in either
-- order); 0 when either box is empty.
function ssd.iou(a, b)
  local ay0, ax0, ay1, ax1 = math.min(a[1], a[3]), math.min(a[2], a[4]), math.max(a[1], a[3]), math.max(a[2], a[4])
  local by0, bx0, by1, bx1 = math.min(b[1], b[3]), math.min(b[2], b[4]), math.max(b[1], b[3]), math.max(b[2], b[4])
  local area_a, area_b = (ay1 - ay0) * (ax1 - ax0), (by1 - by0) * (bx1 - bx0)
  if area_a <= 0 or area_b <= 0 then return 0 end
  local inter = math.max(math.min(ay1, by1) - math.max(ay0, by0), 0) * math.max(math.min(ax1, bx1) - math.max(ax0, bx0), 0)
  return inter / (area_a + area_b - inter)
end

--- face-api's SSD NMS over decoded {box, score} candidates: those with
-- score > min_score by descending score (ties in list order), each kept
-- unless its IoU with a kept one is above iou_threshold (default 0.5), at
-- most max_results. Returns the kept candidates in that order.
function ssd.non_max_suppression(candidates, min_score, max_results, iou_threshold)
  iou_threshold = iou_threshold or IOU_THRESHOLD
  local order = {}
  for i, c in ipairs(candidates) do
    if c.score > min_score then order[#order + 1] = i end
  end
  table.sort(order, function(i, j)
    local si, sj = candidates[i].score, candidates[j].score
    if si ~= sj then return si > sj end
    return i < j
  end)
  local kept = {}
  for _, i in ipairs(order) do
    if #kept >= max_results then break end
    local c, ok = candidates[i], true
    for j = #kept, 1, -1 do
      if ssd.iou(c.box, kept[j].box) > iou_threshold then
        ok = false
        break
      end
    end
    if ok then kept[#kept + 1] = c end
  end
  return kept
end

--- Pixel box {x, y, width, height} of a kept {y0, x0, y1, x1} box for a
-- W x H image, as face-api's locateFaces computes it (see the header).
function ssd.pixel_box(box, W, H)
  local scale = INPUT_SIZE / math.max(W, H)
  local pad_x = INPUT_SIZE / tfjs.js_round(W * scale)
  local pad_y = INPUT_SIZE / tfjs.js_round(H * scale)
  local top, bottom = math.max(0, box[1]) * pad_y, math.min(1, box[3]) * pad_y
  local left, right = math.max(0, box[2]) * pad_x, math.min(1, box[4]) * pad_x
  return {x = left * W, y = top * H, width = (right - left) * W, height = (bottom - top) * H}
end

-- ---------------------------------------------------------------------------
-- Detection
-- ---------------------------------------------------------------------------

local function check_options(opts)
  if opts ~= nil and type(opts) ~= "table" then
    error(string.format("bad argument #2 to 'detect' (table expected, got %s)", type(opts)), 3)
  end
  opts = opts or {}
  local min_score = opts.min_score or 0.5
  if type(min_score) ~= "number" or not (min_score > 0 and min_score < 1) then
    error(string.format("bad argument #2 to 'detect' (min_score must be a number in (0, 1), got %s)",
      tostring(min_score)), 3)
  end
  local max_results = opts.max_results or DEFAULT_MAX_RESULTS
  if math.type(max_results) ~= "integer" or max_results < 1 then
    error(string.format("bad argument #2 to 'detect' (max_results must be a positive integer, got %s)",
      tostring(max_results)), 3)
  end
  return min_score, max_results
end

--- face-api SsdMobilenetv1({minConfidence = min_score, maxResults =
-- max_results}) on img (opts: min_score default 0.5, max_results default
-- 100): a list of {box = {x, y, width, height}, score} in pixels of img,
-- by descending score.
function Ssd:detect(img, opts)
  argcheck.image(img, "detect", 1)
  local min_score, max_results = check_options(opts)
  local rgb = img.channels == 3 and img or img:to_rgb()
  local x = rgb:to_square_tensor(INPUT_SIZE, {centred = false, scale = 1, mean = {127.5, 127.5, 127.5},
    std = {127.5, 127.5, 127.5}}):view(1, 3, INPUT_SIZE, INPUT_SIZE)
  local candidates = ssd.decode(ssd.forward(self.net, x), self.anchors)
  local faces = {}
  for i, c in ipairs(ssd.non_max_suppression(candidates, min_score, max_results)) do
    faces[i] = {box = ssd.pixel_box(c.box, img.width, img.height), score = c.score}
  end
  return faces
end

function Ssd:__tostring()
  return "SsdMobilenetv1(" .. self.path .. ")"
end

return ssd
