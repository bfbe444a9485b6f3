--- siamese.face.mtcnn: the MTCNN face detector (Zhang et al. 2016, "Joint
-- Face Detection and Alignment using Multi-task Cascaded Convolutional
-- Networks"): boxes, scores and five points (left eye, right eye, nose,
-- left and right mouth corner) from a cascade of three small networks.
--
--   local mtcnn = require "siamese.face.mtcnn"
--   local det = mtcnn.new{pnet = pnet, rnet = rnet, onet = onet}     -- any objects with :forward
--   for _, f in ipairs(det:detect(img)) do print(f.score, f.box.x, f.points[1][1]) end
--
-- The cascade is the standard one (Kaipeng Zhang's MATLAB release and its
-- Python port in davidsandberg/facenet, align/detect_face.py):
--   1. pyramid: scales m f^k with m = 12 / min_face, f = factor (0.709),
--      while min(W, H) m f^k >= 12; each level is the photo resized
--      (box filter) to ceil(W s) x ceil(H s); levels longer than
--      mtcnn.PNET_TILE run through P-Net in overlapping tiles whose outputs
--      join exactly (bounded memory on large photos)
--   2. P-Net on every level (fully convolutional: stride 2, 12x12 cells):
--      cells with face probability >= thresholds[1] become boxes
--      x1 = fix((2 i + 1) / s), x2 = fix((2 i + 12) / s) (same for y; 1-based
--      inclusive pixel coordinates, as the original), NMS per level (IoU 0.5),
--      then across levels (0.7), box regression, squaring, fix
--   3. R-Net on 24x24 crops of those boxes: probability > thresholds[2],
--      NMS (0.7), regression, squaring
--   4. O-Net on 48x48 crops: probability > thresholds[3], the five points
--      (fractions of the box before its regression), regression, NMS with
--      the "min" overlap (intersection / smaller area) at 0.7
-- Crops are the box's pixels with zeros outside the photo, resized with
-- the box filter (OpenCV's INTER_AREA, as the reference implementations;
-- opts.resize = "bilinear" resamples levels and crops bilinearly instead).
-- Network inputs are (x - 127.5) / 128 of RGB 0..255 (gray photos
-- replicated, alpha dropped).
--
-- Transposition: the MTCNN weights (Caffe, trained from MATLAB's
-- column-major images) expect the image TRANSPOSED, x and y swapped. Every
-- input is fed as [N, 3, width, height] (row index = image x), so P-Net's
-- maps come back with rows = image x; the regression channels (dx1, dy1,
-- dx2, dy2) and O-Net's points (5 x, then 5 y) are in image order.
--
-- Networks: objects with :forward(x) (siamese.nn modules, or stubs) taking
-- a float [N, 3, h, w] tensor and returning either a list of tensors (in
-- any order, told apart by their second dimension: 2 = the softmax
-- probabilities, face = channel 2; 4 = the box regression; 10 = the
-- points), a table with fields prob, regression (or reg) and landmarks (or
-- points), or one tensor with the channels concatenated in that order
-- (6 or 16). P-Net's outputs are maps [N, C, h', w'], R-Net's and O-Net's
-- [N, C].
--
-- Against the outputs of an Android port of the same networks
-- (../shared/fixtures/mtcnn_mobilefacenet/faces.json, 14 faces in 7
-- photos; spec/face_mtcnn_spec.lua): the same faces (IoU of the squared
-- boxes >= 0.87), points within 0.12 eye distance (0.27 on a borderline
-- face both score ~0.8; mean 0.08): O-Net's points move by a few pixels
-- with the exact crop it is given, and the port rounds boxes and
-- resamples its own way.
--
-- Output boxes are in 0-based pixel coordinates of the photo, as the rest of
-- siamese.face: box.x = x1 - 1, box.width = x2 - x1 + 1 of the 1-based
-- inclusive box; points are 0-based (pixel (x, y) has its centre at (x, y)).
local T = require "siamese.tensor"

local mtcnn = {}

mtcnn.DEFAULTS = {min_face = 20, thresholds = {0.6, 0.7, 0.7}, factor = 0.709, max_batch = 256, resize = "area"}
-- Resampling methods of the pyramid levels and crops (img:resize's).
local RESIZE = {area = true, bilinear = true}
-- NMS thresholds: P-Net per level, P-Net across levels, R-Net, O-Net ("min").
mtcnn.NMS = {0.5, 0.7, 0.7, 0.7}
mtcnn.STRIDE, mtcnn.CELL = 2, 12
mtcnn.MEAN, mtcnn.STD = 127.5, 128
-- The smallest min_face accepted: 12 / min_face is the upscaling of the
-- first pyramid level (at most 2x).
mtcnn.MIN_FACE_LIMIT = 6

local NORM = {scale = 1, mean = {127.5, 127.5, 127.5}, std = {128, 128, 128}}

-- ---------------------------------------------------------------------------
-- Argument checks
-- ---------------------------------------------------------------------------

local argcheck = require "siamese.argcheck"
local argerror, is_image, typename, is_number = argcheck.error, argcheck.is_image, argcheck.typename, argcheck.is_number

-- A box: {x1, y1, x2, y2} (1-based inclusive pixel coordinates, numbers).
local function check_box(fname, argn, b, what)
  what = what or "box"
  if type(b) ~= "table" then argerror(fname, argn, "%s must be a table {x1, y1, x2, y2}, got %s", what, type(b)) end
  for i = 1, 4 do
    if not is_number(b[i]) then
      argerror(fname, argn, "%s[%d] must be a finite number, got %s", what, i, tostring(b[i]))
    end
  end
end

-- ---------------------------------------------------------------------------
-- Pure helpers
-- ---------------------------------------------------------------------------

--- The pyramid scales for a width x height photo: m f^k, m = 12 / min_face,
-- for k = 0, 1, ... while min(width, height) m f^k >= 12 (the standard
-- loop: the running product, not a power, is compared).
function mtcnn.scales(width, height, min_face, factor)
  if not is_number(width) or width < 1 then argerror("scales", 1, "width must be a positive number, got %s", tostring(width)) end
  if not is_number(height) or height < 1 then argerror("scales", 2, "height must be a positive number, got %s", tostring(height)) end
  min_face, factor = min_face or mtcnn.DEFAULTS.min_face, factor or mtcnn.DEFAULTS.factor
  if not is_number(min_face) or min_face < mtcnn.MIN_FACE_LIMIT then
    argerror("scales", 3, "min_face must be a number >= %d, got %s", mtcnn.MIN_FACE_LIMIT, tostring(min_face))
  end
  if not is_number(factor) or factor < 0.05 or factor > 0.95 then
    argerror("scales", 4, "factor must be a number in [0.05, 0.95], got %s", tostring(factor))
  end
  local m = 12 / min_face
  local minl = math.min(width, height) * m
  local scales, s = {}, m
  while minl >= 12 do
    scales[#scales + 1] = s
    s = s * factor
    minl = minl * factor
  end
  return scales
end

--- The overlap of two boxes {x1, y1, x2, y2} (1-based inclusive pixels:
-- the area is (x2 - x1 + 1)(y2 - y1 + 1)): intersection over union, or over
-- the smaller area when method is "min".
function mtcnn.iou(a, b, method)
  local iw = math.max(0, math.min(a[3], b[3]) - math.max(a[1], b[1]) + 1)
  local ih = math.max(0, math.min(a[4], b[4]) - math.max(a[2], b[2]) + 1)
  local inter = iw * ih
  local area_a = (a[3] - a[1] + 1) * (a[4] - a[2] + 1)
  local area_b = (b[3] - b[1] + 1) * (b[4] - b[2] + 1)
  if method == "min" then return inter / math.min(area_a, area_b) end
  return inter / (area_a + area_b - inter)
end

--- Greedy non-maximum suppression of boxes {x1, y1, x2, y2, score = s, ...}:
-- the best-scored box is kept and every remaining box overlapping it by
-- more than threshold (mtcnn.iou with method "union", default, or "min")
-- dropped, until none remain. Equal scores keep list order. Returns the
-- kept boxes (the same tables) by descending score.
function mtcnn.nms(boxes, threshold, method)
  if type(boxes) ~= "table" then argerror("nms", 1, "table of boxes expected, got %s", type(boxes)) end
  if not is_number(threshold) then argerror("nms", 2, "threshold must be a number, got %s", tostring(threshold)) end
  method = method or "union"
  if method ~= "union" and method ~= "min" then
    argerror("nms", 3, "method must be 'union' or 'min', got %s", tostring(method))
  end
  local order = {}
  for i, b in ipairs(boxes) do
    check_box("nms", 1, b, "boxes[" .. i .. "]")
    if not is_number(b.score) then argerror("nms", 1, "boxes[%d].score must be a number, got %s", i, tostring(b.score)) end
    order[i] = i
  end
  table.sort(order, function(i, j)
    if boxes[i].score ~= boxes[j].score then return boxes[i].score > boxes[j].score end
    return i < j
  end)
  local kept, dropped = {}, {}
  for k, i in ipairs(order) do
    if not dropped[k] then
      local best = boxes[i]
      kept[#kept + 1] = best
      for l = k + 1, #order do
        if not dropped[l] and mtcnn.iou(best, boxes[order[l]], method) > threshold then dropped[l] = true end
      end
    end
  end
  return kept
end

--- The box moved by the regression reg = {dx1, dy1, dx2, dy2} (fractions
-- of the box's width w = x2 - x1 + 1 and height h): x1 + dx1 w, y1 + dy1 h,
-- x2 + dx2 w, y2 + dy2 h. Returns a new box with the other fields copied
-- (reg dropped).
function mtcnn.regress(box, reg)
  check_box("regress", 1, box)
  check_box("regress", 2, reg, "reg")
  local w, h = box[3] - box[1] + 1, box[4] - box[2] + 1
  local out = {}
  for k, v in pairs(box) do out[k] = v end
  out.reg = nil
  out[1], out[2] = box[1] + reg[1] * w, box[2] + reg[2] * h
  out[3], out[4] = box[3] + reg[3] * w, box[4] + reg[4] * h
  return out
end

--- The box made square about its centre (the standard rerec: side l =
-- max(x2 - x1, y2 - y1), x1 += (w - l) / 2, x2 = x1 + l, likewise y).
-- Returns a new box with the other fields copied.
function mtcnn.square(box)
  check_box("square", 1, box)
  local w, h = box[3] - box[1], box[4] - box[2]
  local l = math.max(w, h)
  local out = {}
  for k, v in pairs(box) do out[k] = v end
  out[1], out[2] = box[1] + w * 0.5 - l * 0.5, box[2] + h * 0.5 - l * 0.5
  out[3], out[4] = out[1] + l, out[2] + l
  return out
end

local function fix(v)
  local i = v >= 0 and math.floor(v) or math.ceil(v)
  return math.tointeger(i) or i
end

--- The box with its coordinates truncated towards zero (numpy's fix), as
-- the standard cascade does before cutting crops. Returns a new box.
function mtcnn.fix(box)
  check_box("fix", 1, box)
  local out = {}
  for k, v in pairs(box) do out[k] = v end
  for i = 1, 4 do out[i] = fix(box[i]) end
  return out
end

--- The pixels of an integer box {x1, y1, x2, y2} (1-based inclusive) of
-- img, zeros where the box leaves the photo, resized to size x size with
-- method ("area", the box filter, default, or "bilinear"; skipped when
-- already that size). Returns the image, or nil when the box is empty
-- (x2 < x1 or y2 < y1) or wider than an image can be.
function mtcnn.crop(img, box, size, method)
  if not is_image(img) then argerror("crop", 1, "siamese.Image expected, got %s", typename(img)) end
  check_box("crop", 2, box)
  if math.type(size) ~= "integer" or size < 1 then argerror("crop", 3, "size must be a positive integer, got %s", tostring(size)) end
  method = method or "area"
  if not RESIZE[method] then argerror("crop", 4, "method must be 'area' or 'bilinear', got %s", tostring(method)) end
  local x1, y1, x2, y2 = fix(box[1]), fix(box[2]), fix(box[3]), fix(box[4])
  local w, h = x2 - x1 + 1, y2 - y1 + 1
  if w < 1 or h < 1 or w > 65535 or h > 65535 then return nil end
  local c = img:crop(x1 - 1, y1 - 1, w, h)
  if w == size and h == size then return c end
  return c:resize(size, size, {method = method})
end

--- The P-Net candidates of one pyramid level: prob and reg are P-Net's
-- maps for the transposed level ([1,2,a,b] and [1,4,a,b] or without the
-- batch dimension; row i = image x, column j = image y). Cells whose face
-- probability (channel 2) is >= threshold give boxes {x1, y1, x2, y2,
-- score = p, reg = {dx1, dy1, dx2, dy2}}, x1 = fix((2 (i-1) + 1) / scale),
-- x2 = fix((2 (i-1) + 12) / scale), likewise y from j.
function mtcnn.generate_boxes(prob, reg, scale, threshold)
  if not T.is_tensor(prob) then argerror("generate_boxes", 1, "tensor expected, got %s", typename(prob)) end
  if not T.is_tensor(reg) then argerror("generate_boxes", 2, "tensor expected, got %s", typename(reg)) end
  local pshape, rshape = table.concat(prob:shape(), ","), table.concat(reg:shape(), ",")
  if prob:dim() == 4 and prob:shape(1) == 1 then prob = prob:select(1, 1) end
  if reg:dim() == 4 and reg:shape(1) == 1 then reg = reg:select(1, 1) end
  if prob:dim() ~= 3 or prob:shape(1) ~= 2 or reg:dim() ~= 3 or reg:shape(1) ~= 4
     or reg:shape(2) ~= prob:shape(2) or reg:shape(3) ~= prob:shape(3) then
    argerror("generate_boxes", 1, "expected maps [1,2,a,b] and [1,4,a,b], got [%s] and [%s]", pshape, rshape)
  end
  if not is_number(scale) or scale <= 0 then argerror("generate_boxes", 3, "scale must be a positive number, got %s", tostring(scale)) end
  if not is_number(threshold) then argerror("generate_boxes", 4, "threshold must be a number, got %s", tostring(threshold)) end
  local face = prob:select(1, 2):totable()
  local out = {}
  local stride, cell = mtcnn.STRIDE, mtcnn.CELL
  for i, row in ipairs(face) do
    for j, p in ipairs(row) do
      if p >= threshold then
        local x0, y0 = stride * (i - 1), stride * (j - 1)
        out[#out + 1] = {
          fix((x0 + 1) / scale), fix((y0 + 1) / scale), fix((x0 + cell) / scale), fix((y0 + cell) / scale),
          score = p, reg = {reg:get(1, i, j), reg:get(2, i, j), reg:get(3, i, j), reg:get(4, i, j)},
        }
      end
    end
  end
  return out
end

-- ---------------------------------------------------------------------------
-- Network outputs
-- ---------------------------------------------------------------------------

local OUT_CHANNELS = {[2] = "prob", [4] = "reg", [10] = "points"}

-- {prob, reg, points} from whatever a network's forward returned.
local function split_outputs(out, stage)
  local r = {}
  if T.is_tensor(out) then
    local c = out:shape(2)
    if c ~= 6 and c ~= 16 then
      error(string.format("mtcnn: %s returned a tensor with %d channels (expected 6 or 16, or a list)", stage, c), 3)
    end
    r.prob, r.reg = out:narrow(2, 1, 2), out:narrow(2, 3, 4)
    if c == 16 then r.points = out:narrow(2, 7, 10) end
    return r
  end
  if type(out) ~= "table" then
    error(string.format("mtcnn: %s returned %s (expected tensors)", stage, typename(out)), 3)
  end
  r.prob = out.prob or out.probability
  r.reg = out.regression or out.reg
  r.points = out.landmarks or out.points
  for _, t in ipairs(out) do
    local kind = T.is_tensor(t) and t:dim() >= 2 and OUT_CHANNELS[t:shape(2)]
    if not kind then
      error(string.format("mtcnn: %s returned an output that is not a tensor with 2, 4 or 10 channels", stage), 3)
    end
    r[kind] = r[kind] or t
  end
  if not r.prob or not r.reg then
    error(string.format("mtcnn: %s did not return the probabilities and the regression", stage), 3)
  end
  return r
end

-- R-Net's and O-Net's outputs must be [n, C] for a batch of n crops.
local function check_rows(out, n, stage)
  for _, name in ipairs{"prob", "reg", "points"} do
    local t = out[name]
    if t and (t:dim() ~= 2 or t:shape(1) ~= n) then
      error(string.format("mtcnn: %s returned %s [%s] for %d crops (expected [%d,C])", stage, name,
        table.concat(t:shape(), ","), n, n), 4)
    end
  end
end

-- ---------------------------------------------------------------------------
-- The detector
-- ---------------------------------------------------------------------------

local Detector = {}
Detector.__index = Detector
Detector.__name = "MTCNN"
mtcnn.Detector = Detector

local function has_forward(v)
  if type(v) ~= "table" and type(v) ~= "userdata" then return false end
  local ok, f = pcall(function() return v.forward end)
  return ok and (type(f) == "function" or (type(getmetatable(f)) == "table" and getmetatable(f).__call ~= nil))
end

local OPTION_KEYS = {pnet = true, rnet = true, onet = true, min_face = true, thresholds = true,
                     factor = true, max_batch = true, resize = true}

-- The options of new (or load: without_nets), checked; errors name fname
-- and argument argn of the caller's call.
local function check_options(opts, fname, argn, without_nets)
  local function fail(fmt, ...)
    error(string.format("bad argument #%d to '%s' (" .. fmt .. ")", argn, fname, ...), 4)
  end
  if type(opts) ~= "table" then fail("table expected, got %s", type(opts)) end
  for k in pairs(opts) do
    if not OPTION_KEYS[k] then fail("unknown option '%s'", tostring(k)) end
  end
  for _, k in ipairs{"pnet", "rnet", "onet"} do
    if without_nets then
      if opts[k] ~= nil then fail("option '%s' is set by load", k) end
    elseif not has_forward(opts[k]) then
      fail("option '%s' must be a network with a forward method, got %s", k, typename(opts[k]))
    end
  end
  local d = mtcnn.DEFAULTS
  local min_face = opts.min_face == nil and d.min_face or opts.min_face
  if not is_number(min_face) or min_face < mtcnn.MIN_FACE_LIMIT then
    fail("option 'min_face' must be a number >= %d, got %s", mtcnn.MIN_FACE_LIMIT, tostring(min_face))
  end
  local factor = opts.factor == nil and d.factor or opts.factor
  if not is_number(factor) or factor < 0.05 or factor > 0.95 then
    fail("option 'factor' must be a number in [0.05, 0.95], got %s", tostring(factor))
  end
  local thresholds = opts.thresholds == nil and d.thresholds or opts.thresholds
  if type(thresholds) ~= "table" or #thresholds ~= 3 then
    fail("option 'thresholds' must be a list of 3 numbers, got %s", typename(thresholds))
  end
  for i = 1, 3 do
    local t = thresholds[i]
    if not is_number(t) or t < 0 or t > 1 then
      fail("option 'thresholds'[%d] must be a number in [0, 1], got %s", i, tostring(t))
    end
  end
  local max_batch = opts.max_batch == nil and d.max_batch or opts.max_batch
  if math.type(max_batch) ~= "integer" or max_batch < 1 then
    fail("option 'max_batch' must be a positive integer, got %s", tostring(max_batch))
  end
  local resize = opts.resize == nil and d.resize or opts.resize
  if not RESIZE[resize] then
    fail("option 'resize' must be 'area' or 'bilinear', got %s", tostring(resize))
  end
  return min_face, factor, thresholds, max_batch, resize
end

--- A detector from the three networks. opts: pnet, rnet, onet (objects
-- with :forward, see above), min_face (smallest face in pixels, default
-- 20, >= 6), thresholds ({P, R, O} probabilities in [0, 1], default {0.6,
-- 0.7, 0.7}), factor (pyramid step, default 0.709, in [0.05, 0.95]),
-- max_batch (crops per R-Net / O-Net forward, default 256), resize (how
-- pyramid levels and crops are resampled: "area", the box filter like
-- OpenCV's INTER_AREA of the reference implementations, default, or
-- "bilinear", half-pixel centres like Android's Bitmap scaling).
function mtcnn.new(opts)
  local min_face, factor, thresholds, max_batch, resize = check_options(opts, "new", 1)
  return setmetatable({
    resize = resize, pnet = opts.pnet, rnet = opts.rnet, onet = opts.onet, min_face = min_face, factor = factor,
    thresholds = {thresholds[1], thresholds[2], thresholds[3]}, max_batch = max_batch,
  }, Detector)
end

--- The input tensor of one pyramid level: the RGB photo resized to ws x hs
-- (method "area" by default), normalised and transposed ([1, 3, ws, hs]).
function mtcnn.level_input(rgb, ws, hs, method)
  local level = (ws == rgb.width and hs == rgb.height) and rgb or rgb:resize(ws, hs, {method = method or "area"})
  local x = T.zeros{1, 3, ws, hs}
  level:to_tensor{scale = NORM.scale, mean = NORM.mean, std = NORM.std, out = x:select(1, 1):transpose(2, 3)}
  return x
end

--- P-Net's output length for an input length n >= 12: conv 3x3 valid,
-- max-pool 2x2 stride 2 "same", two conv 3x3 valid: ceil((n - 2) / 2) - 4.
function mtcnn.pnet_cells(n)
  return (n - 1) // 2 - 4
end

--- How a pyramid level's side n is cut into tiles of at most t input
-- pixels (t even, >= 22) for P-Net, so that the tiles' outputs put side by
-- side are the whole level's output: tiles start at even offsets, overlap
-- by 10 pixels (a cell sees 12 pixels, stride 2), and each contributes all
-- its cells. Returns a list of {start, length, cell}: 0-based input start,
-- input length, 0-based first output cell (start / 2).
function mtcnn.tiles(n, t)
  if math.type(n) ~= "integer" or n < 12 then argerror("tiles", 1, "side must be an integer >= 12, got %s", tostring(n)) end
  if math.type(t) ~= "integer" or t < 22 or t % 2 ~= 0 then
    argerror("tiles", 2, "tile must be an even integer >= 22, got %s", tostring(t))
  end
  local out, o = {}, 0
  while n - o > t do
    out[#out + 1] = {o, t, o // 2}
    o = o + t - 10
  end
  out[#out + 1] = {o, n - o, o // 2}
  return out
end

-- The largest P-Net input side fed at once: levels with a longer side run
-- in tiles (mtcnn.tiles), which bounds the memory of the first levels of
-- large photos (a 12-megapixel photo's first level at min_face 20 has 4.3
-- million pixels).
mtcnn.PNET_TILE = 512

--- P-Net's probability and regression maps ([1,2,a',b'], [1,4,a',b']) of
-- one level's input x [1,3,a,b] (mtcnn.level_input), in tiles when a or b
-- exceeds mtcnn.PNET_TILE.
function Detector:pnet_maps(x)
  local a, b = x:shape(3), x:shape(4)
  local tile = mtcnn.PNET_TILE
  if a <= tile and b <= tile then
    local out = split_outputs(self.pnet:forward(x), "pnet")
    return out.prob:clone(), out.reg:clone()    -- not views of the network's buffers
  end
  local ta, tb = mtcnn.tiles(a, tile), mtcnn.tiles(b, tile)
  local prob = T.zeros{1, 2, mtcnn.pnet_cells(a), mtcnn.pnet_cells(b)}
  local reg = T.zeros{1, 4, mtcnn.pnet_cells(a), mtcnn.pnet_cells(b)}
  for _, ra in ipairs(ta) do
    for _, rb in ipairs(tb) do
      local part = x:narrow(3, ra[1] + 1, ra[2]):narrow(4, rb[1] + 1, rb[2]):contiguous()
      local out = split_outputs(self.pnet:forward(part), "pnet")
      local ca, cb = mtcnn.pnet_cells(ra[2]), mtcnn.pnet_cells(rb[2])
      for name, t in pairs{prob = out.prob, reg = out.reg} do
        if t:dim() ~= 4 or t:shape(3) ~= ca or t:shape(4) ~= cb then
          error(string.format("mtcnn: pnet returned %s [%s] for an input [%s] (expected %dx%d cells)", name,
            table.concat(t:shape(), ","), table.concat(part:shape(), ","), ca, cb), 3)
        end
      end
      prob:narrow(3, ra[3] + 1, ca):narrow(4, rb[3] + 1, cb):copy(out.prob)
      reg:narrow(3, ra[3] + 1, ca):narrow(4, rb[3] + 1, cb):copy(out.reg)
    end
  end
  return prob, reg
end

-- Stage 1: the P-Net candidates over the pyramid, regressed, squared, fixed.
function Detector:proposals(rgb)
  local W, H = rgb.width, rgb.height
  local all = {}
  for _, s in ipairs(mtcnn.scales(W, H, self.min_face, self.factor)) do
    local ws, hs = math.ceil(W * s), math.ceil(H * s)
    local prob, reg = self:pnet_maps(mtcnn.level_input(rgb, ws, hs, self.resize))
    local boxes = mtcnn.generate_boxes(prob, reg, s, self.thresholds[1])
    for _, b in ipairs(mtcnn.nms(boxes, mtcnn.NMS[1])) do all[#all + 1] = b end
  end
  local out = {}
  for i, b in ipairs(mtcnn.nms(all, mtcnn.NMS[2])) do
    out[i] = mtcnn.fix(mtcnn.square(mtcnn.regress(b, b.reg)))
  end
  return out
end

-- The crops of boxes as transposed network inputs, in batches of at most
-- max_batch; fn(x, first, n, empty) is called per batch (first = index of its
-- first box, empty = the set of indices of boxes whose crop is empty: their
-- rows are zeros and must be ignored).
local function run_crops(self, rgb, boxes, size, fn)
  local empty = {}
  local i = 1
  while i <= #boxes do
    local n = math.min(self.max_batch, #boxes - i + 1)
    local x = T.zeros{n, 3, size, size}
    for k = 1, n do
      local c = mtcnn.crop(rgb, boxes[i + k - 1], size, self.resize)
      if c then
        c:to_tensor{scale = NORM.scale, mean = NORM.mean, std = NORM.std, out = x:select(1, k):transpose(2, 3)}
      else
        empty[i + k - 1] = true
      end
    end
    fn(x, i, n, empty)
    i = i + n
  end
end

-- Stage 2: R-Net on 24x24 crops.
function Detector:refine(rgb, boxes)
  local kept = {}
  run_crops(self, rgb, boxes, 24, function(x, first, n, empty)
    local out = split_outputs(self.rnet:forward(x), "rnet")
    check_rows(out, n, "rnet")
    local prob, reg = out.prob:totable(), out.reg:totable()
    for k = 1, n do
      local p = prob[k][2]
      if p > self.thresholds[2] and not empty[first + k - 1] then
        local b = boxes[first + k - 1]
        kept[#kept + 1] = {b[1], b[2], b[3], b[4], score = p, reg = reg[k]}
      end
    end
  end)
  local out = {}
  for i, b in ipairs(mtcnn.nms(kept, mtcnn.NMS[3])) do
    out[i] = mtcnn.fix(mtcnn.square(mtcnn.regress(b, b.reg)))
  end
  return out
end

-- Stage 3: O-Net on 48x48 crops, points, regression, "min" NMS.
function Detector:output(rgb, boxes)
  local kept = {}
  run_crops(self, rgb, boxes, 48, function(x, first, n, empty)
    local out = split_outputs(self.onet:forward(x), "onet")
    if not out.points then error("mtcnn: onet did not return the points", 4) end
    check_rows(out, n, "onet")
    local prob, reg, pts = out.prob:totable(), out.reg:totable(), out.points:totable()
    for k = 1, n do
      local p = prob[k][2]
      if p > self.thresholds[3] and not empty[first + k - 1] then
        local b = boxes[first + k - 1]
        local w, h = b[3] - b[1] + 1, b[4] - b[2] + 1
        local points = {}
        for j = 1, 5 do
          -- 0-based: the box's first pixel is x1 - 1
          points[j] = {b[1] - 1 + w * pts[k][j], b[2] - 1 + h * pts[k][j + 5]}
        end
        local r = mtcnn.regress(b, reg[k])
        r.score, r.points = p, points
        kept[#kept + 1] = r
      end
    end
  end)
  return mtcnn.nms(kept, mtcnn.NMS[4], "min")
end

--- The faces of img (a siamese.Image): a list of {box = {x, y, width,
-- height}, score, points = {{x, y} x5}} (left eye, right eye, nose, left
-- and right mouth corner; 0-based pixels of img), by descending score.
function Detector:detect(img)
  if getmetatable(self) ~= Detector then
    error("bad self to 'detect' (call it as detector:detect(img))", 2)
  end
  if not is_image(img) then argerror("detect", 1, "siamese.Image expected, got %s", typename(img)) end
  local rgb = img.channels == 3 and img or img:to_rgb()
  local boxes = self:proposals(rgb)
  if #boxes > 0 then boxes = self:refine(rgb, boxes) end
  if #boxes > 0 then boxes = self:output(rgb, boxes) end
  local faces = {}
  for i, b in ipairs(boxes) do
    faces[i] = {
      box = {x = b[1] - 1, y = b[2] - 1, width = b[3] - b[1] + 1, height = b[4] - b[2] + 1},
      score = b.score, points = b.points,
    }
  end
  return faces
end

--- Loads the converted networks (models/convert_mtcnn.lua):
-- DIR/mtcnn_{pnet,rnet,onet}.safetensors, each built by the definition
-- DIR/mtcnn_NAME_encoder.lua (default DIR: the models folder,
-- siamese.face.weights.models_dir()). opts as mtcnn.new, without the
-- networks. Returns the detector, or nil and a message.
function mtcnn.load(dir, opts)
  if dir ~= nil and type(dir) ~= "string" then argerror("load", 1, "string expected, got %s", typename(dir)) end
  if opts ~= nil and type(opts) ~= "table" then argerror("load", 2, "table expected, got %s", type(opts)) end
  dir = dir or require("siamese.face.weights").models_dir()
  local o = {}
  for k, v in pairs(opts or {}) do o[k] = v end
  check_options(o, "load", 2, true)
  for _, name in ipairs{"pnet", "rnet", "onet"} do
    local def = dir .. "/mtcnn_" .. name .. "_encoder.lua"
    local chunk, err = loadfile(def, "t")
    if not chunk then return nil, err end
    local ok, build = pcall(chunk)
    if not ok or type(build) ~= "function" then return nil, def .. ": must return a function building the network" end
    local built, net = pcall(build)
    if not built then return nil, def .. ": " .. tostring(net) end
    local loaded, lerr = net:load(dir .. "/mtcnn_" .. name .. ".safetensors")
    if not loaded then return nil, lerr end
    o[name] = net:evaluate()
  end
  return mtcnn.new(o)
end

function Detector:__tostring()
  return string.format("MTCNN(min_face = %g, thresholds = {%g, %g, %g}, factor = %g)", self.min_face,
    self.thresholds[1], self.thresholds[2], self.thresholds[3], self.factor)
end

return mtcnn
