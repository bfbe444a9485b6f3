-- Specs of siamese.face.ssd (face-api's SsdMobilenetv1 face detector):
-- decoding, NMS and pixel boxes on hand-made predictions, the network's
-- shapes, misuse messages, and conformance with face-api
-- (spec/fixtures/faceapi_ssd/ssd_refs.json, made by make_refs.js there):
-- the six JPEG photos, the AT&T PGMs edge-padded as the fixture was made,
-- and landmarks of the full landmark net on the SSD boxes.
--
-- Bounds (spec/face_bounds.lua), never tolerances tuned on one machine:
-- Lua-double arithmetic within gamma64(n) of its magnitude; the nets'
-- outputs within R max|out| (face_bounds.network, measured ONCE per file
-- and net on a fixed input and reused), propagated through the SSD's box
-- decoding per face (its own anchor and predictor map) and through the
-- landmark decoding; plus face-api's float32 decoding and the fixture's 9
-- printed digits.
local siamese = require "siamese"
local ssd = require "siamese.face.ssd"
local detector = require "siamese.face.detector"
local landmarks = require "siamese.face.landmarks"
local support = dofile("spec/support.lua")
local bounds = dofile("spec/face_bounds.lua")
local assert_error, near = support.assert_error, support.near

local T, image = siamese.tensor, siamese.image
local JPEGS = "spec/fixtures/faceapi/"
local REFS = "spec/fixtures/faceapi_ssd/ssd_refs.json"
local ATT_ROOT = "../shared/data/"
-- Explicit paths: busted's relative package path hides the checkout from
-- require("siamese.models").dir().
local MODEL_PATH = "models/faceapi_ssd_mobilenetv1.safetensors"
local LANDMARKS_PATH = "models/faceapi_landmarks68.safetensors"

local function box_near(got, want, tol, what)
  for _, k in ipairs{"x", "y", "width", "height"} do near(got[k], want[k], tol, what .. " " .. k) end
end

local function sigmoid(v) return 1 / (1 + math.exp(-v)) end

-- Hand-made decoding: encodings stored in float32 are off by U |e| (|e| <=
-- 5 ln 2 below), which moves a centre by U |e| / 10 h and a half size by
-- (exp(U |e| / 5) - 1) exp(e / 5) h / 2 <= 2 U |e| / 5 (h <= 1, half sizes
-- <= 1); both sides (ours and the expected value written out) round a few
-- times in doubles on values below 2.
local DEC = bounds.U * 5 * math.log(2) * (1 / 10 + 2 / 5) + bounds.gamma64(16) * 2
-- a sigmoid of a logit exact in float32, in doubles on both sides
local function score_bound(s) return bounds.gamma64(8) * s end
-- pixel_box: a few roundings on values below 2 max(W, H), on both sides
local function px_bound(W, H) return bounds.gamma64(8) * 2 * math.max(W, H) end

-- Predictor outputs of a 1x2 map with one anchor per cell (box encodings
-- and class logits given per cell), and a 1x1 map with two anchors: 4
-- predictions in all, every class logit 1 very negative unless set.
local function outputs_with(cells)
  local o = {
    {box = T.zeros{1, 4, 1, 2}, class = T.zeros{1, 3, 1, 2}, anchors = 1},
    {box = T.zeros{1, 8, 1, 1}, class = T.zeros{1, 6, 1, 1}, anchors = 2},
  }
  for _, p in ipairs(o) do p.class:fill(-30) end
  -- cells: {map, row, col, anchor (0-based), e0, e1, e2, e3, logit}
  for _, c in ipairs(cells) do
    local p = o[c[1]]
    for k = 1, 4 do p.box:set(1, 4 * c[4] + k, c[2], c[3], c[4 + k]) end
    p.class:set(1, 3 * c[4] + 2, c[2], c[3], c[9])
  end
  return o
end

describe("siamese.face.ssd decoding", function()
  it("decodes encodings against the anchors, in map/row/column/anchor order", function()
    local anchors = {{0, 0, 0.5, 0.5}, {0, 0.5, 0.5, 1}, {0.5, 0, 1, 0.5}, {0.2, 0.2, 0.6, 1}}
    local o = outputs_with{
      {1, 1, 2, 0, 1, -2, 0, 5 * math.log(2), 2},     -- anchor 2: h = w = 0.5
      {2, 1, 1, 1, 0, 0, 5 * math.log(0.5), 0, 0},    -- anchor 4: h = 0.4, w = 0.8
    }
    local c = ssd.decode(o, anchors)
    assert.are.equal(4, #c)
    -- anchor 2: cy = 0.25, cx = 0.75; y = 0.1 * 0.5 + 0.25, x = -0.2 * 0.5 + 0.75;
    -- half height 0.25, half width 2 * 0.25
    local want = {0.3 - 0.25, 0.65 - 0.5, 0.3 + 0.25, 0.65 + 0.5}
    for k = 1, 4 do near(c[2].box[k], want[k], DEC, "box " .. k) end
    near(c[2].score, sigmoid(2), score_bound(sigmoid(2)), "score")
    -- anchor 4: centre (0.4, 0.6), half height 0.5 * 0.4 / 2, half width 0.4
    want = {0.4 - 0.1, 0.6 - 0.4, 0.4 + 0.1, 0.6 + 0.4}
    for k = 1, 4 do near(c[4].box[k], want[k], DEC, "box " .. k) end
    near(c[4].score, 0.5, score_bound(0.5), "score of logit 0")
    -- logit -30 (exact in float32): sigmoid(-30) = 9.4e-14
    near(c[1].score, sigmoid(-30), score_bound(sigmoid(-30)), "score of logit -30")
    near(c[3].score, sigmoid(-30), score_bound(sigmoid(-30)), "score of logit -30")
    -- class logits 0 and 2 of a cell are not the face score
    o[1].class:set(1, 1, 1, 1, 30)
    o[1].class:set(1, 3, 1, 1, 30)
    near(ssd.decode(o, anchors)[1].score, sigmoid(-30), score_bound(sigmoid(-30)), "logits 0 and 2 ignored")
  end)

  it("refuses predictions that do not match the anchors", function()
    assert_error(function() ssd.decode(outputs_with{}, {{0, 0, 1, 1}}) end, "more predictions than anchors")
    local five = {{0, 0, 1, 1}, {0, 0, 1, 1}, {0, 0, 1, 1}, {0, 0, 1, 1}, {0, 0, 1, 1}}
    assert_error(function() ssd.decode(outputs_with{}, five) end, "4 predictions for 5 anchors")
  end)

  it("IoU as face-api: corners in either order, 0 for an empty box", function()
    -- areas 4 and 3, intersection 2: small integers, exact in doubles; only
    -- the division rounds
    near(ssd.iou({0, 0, 1, 4}, {0, 2, 1, 5}), 0.4, bounds.gamma64(1) * 0.4, "iou")
    near(ssd.iou({1, 4, 0, 0}, {0, 2, 1, 5}), 0.4, bounds.gamma64(1) * 0.4, "swapped corners")
    assert.are.equal(0, ssd.iou({0, 0, 0, 4}, {0, 0, 1, 4}))
    assert.are.equal(0, ssd.iou({0, 0, 1, 1}, {0, 1, 1, 2}))
  end)

  it("NMS: strictly above min_score, drops IoU above 0.5, keeps 0.5, stops at max_results", function()
    local a = {box = {0, 0, 1, 4}, score = 0.9}
    local half = {box = {0, 0, 1, 2}, score = 0.8}       -- IoU 0.5 with a: kept
    local above = {box = {0, 0, 1, 2.1}, score = 0.85}   -- IoU 0.525: dropped
    local far = {box = {5, 5, 6, 6}, score = 0.95}
    local low = {box = {9, 9, 10, 10}, score = 0.5}      -- not above 0.5
    assert.are.same({far, a, half}, ssd.non_max_suppression({half, above, a, far, low}, 0.5, 100))
    assert.are.same({far, a}, ssd.non_max_suppression({half, above, a, far, low}, 0.5, 2))
    assert.are.same({far, a, half, low}, ssd.non_max_suppression({half, a, far, low}, 0.4, 100))
    -- equal scores: list order decides which one survives
    local twin = {box = {0, 0.1, 1, 4}, score = 0.9}
    assert.are.same({twin}, ssd.non_max_suppression({twin, a}, 0.5, 100))
    assert.are.same({a}, ssd.non_max_suppression({a, twin}, 0.5, 100))
    -- only kept boxes suppress: chain (IoU 1/3 with a) survives shifted
    -- (IoU 0.6 with a, dropped), although it overlaps shifted by 0.6 too
    local shifted = {box = {0, 1, 1, 5}, score = 0.8}
    local chain = {box = {0, 2, 1, 6}, score = 0.7}
    assert.are.same({a, chain}, ssd.non_max_suppression({chain, shifted, a}, 0.5, 100))
    assert.are.same({}, ssd.non_max_suppression({}, 0.5, 100))
  end)

  it("pixel boxes: clipped to [0, 1], scaled by 512 / round(side * 512 / max side)", function()
    -- 1920x1280: content 512 x 341.33 -> 341, so y is scaled by 512 / 341, not 1.5
    local b = ssd.pixel_box({-0.1, 0.25, 0.5, 1.2}, 1920, 1280)
    box_near(b, {x = 0.25 * 1920, y = 0, width = 0.75 * 1920, height = 0.5 * 512 / 341 * 1280}, px_bound(1920, 1280),
      "landscape")
    b = ssd.pixel_box({0.1, 0.1, 0.2, 0.3}, 100, 200)   -- portrait: x scaled by 512 / 256
    box_near(b, {x = 0.2 * 100, y = 0.1 * 200, width = 0.4 * 100, height = 0.1 * 200}, px_bound(100, 200), "portrait")
  end)
end)

describe("siamese.face.ssd network", function()
  local det

  setup(function()
    det = assert(ssd.load(MODEL_PATH))
  end)

  it("loads the bundled weights: 5118 anchors, six predictor maps", function()
    assert.are.equal(5118, #det.anchors)
    -- face-api's 5,535,047 weights less the folded batch norms (4 values
    -- per channel become one bias per channel in the 13 depthwise layers)
    assert.are.equal(5520167, ssd.nparameters(det.net))
    local out = ssd.forward(det.net, T.zeros{1, 3, 512, 512})
    local want = {{12, 9, 32}, {24, 18, 16}, {24, 18, 8}, {24, 18, 4}, {24, 18, 2}, {24, 18, 1}}
    for i, w in ipairs(want) do
      assert.are.same({1, w[1], w[3], w[3]}, out[i].box:shape())
      assert.are.same({1, w[2], w[3], w[3]}, out[i].class:shape())
    end
    assert.are.equal(5118, #ssd.decode(out, det.anchors))
  end)

  it("returns nil and a message for missing or wrong files", function()
    local d, err = ssd.load("/nonexistent/ssd.safetensors")
    assert.is_nil(d)
    assert.is_string(err)
    d, err = ssd.load("models/faceapi_tiny_detector.safetensors")
    assert.is_nil(d)
    assert.truthy(err:find("missing tensor 'Output/extra_dim'", 1, true), err)
  end)

  it("raises on misuse, naming the function and argument", function()
    local img = image.new(64, 64, 3)
    assert_error(function() det:detect("photo.jpg") end, "bad argument #1 to 'detect'",
      "siamese.Image expected, got string")
    assert_error(function() det:detect(img, {min_score = 0}) end, "#2", "detect",
      "min_score must be a number in (0, 1), got 0")
    assert_error(function() det:detect(img, {min_score = 1}) end, "min_score")
    assert_error(function() det:detect(img, {max_results = 0}) end, "#2", "max_results must be a positive integer")
    assert_error(function() det:detect(img, {max_results = 2.5}) end, "max_results")
    assert_error(function() det:detect(img, 0.5) end, "#2", "table expected")
    assert_error(function() ssd.load(42) end, "bad argument #1 to 'load'")
  end)

  it("finds nothing in a flat image, for gray and RGBA input too", function()
    for _, c in ipairs{1, 3, 4} do
      assert.are.same({}, det:detect(image.new(96, 64, c)))
    end
  end)
end)

-- ---------------------------------------------------------------------------
-- Conformance with face-api
-- ---------------------------------------------------------------------------

local function entries(kind)
  local out = {}
  for _, e in ipairs(support.read_json(REFS).images) do
    if (e.file:find("%.pgm$") ~= nil) == (kind == "pgm") then out[#out + 1] = e end
  end
  return out
end

local function max_point_diff(points, ref)
  local worst = 0
  for i = 1, 68 do
    worst = math.max(worst, math.abs(points[i][1] - ref[i][1]), math.abs(points[i][2] - ref[i][2]))
  end
  return worst
end

-- The fixture prints 9 significant digits: within 5e-9 |v| of face-api's.
local function printed(v) return 5e-9 * math.abs(v) end

local function near_integer(v, eps)
  return math.abs(v - math.floor(v + 0.5)) <= eps
end

-- R of a net (face_bounds.network: depth, largest reduction, amplification
-- c), measured once per file on a fixed input (the Tony Blair photo) and
-- reused: a net's outputs are within R max|out| of exact. Call before the
-- detection or prediction to be checked (the measurement runs the net).
local BLAIR = "examples/data/faces/Tony_Blair/Tony_Blair_0001.jpg"
local SSD_R, LM_R
local function ssd_bound(det)
  if not SSD_R then
    local img = assert(image.load(BLAIR))
    SSD_R = bounds.network(det.net, function() det:detect(img) end, function()
      local m = 0   -- max|out| over the twelve predictor outputs
      for _, p in ipairs(det.net.predictors) do
        m = math.max(m, p.box.output:norm(math.huge), p.class.output:norm(math.huge))
      end
      return m
    end)
  end
  return SSD_R
end
local function landmark_bound(lm)
  if not LM_R then
    local img = assert(image.load(BLAIR))
    LM_R = bounds.network(lm.net, function() lm:predict(img, {x = 70, y = 70, width = 110, height = 110}) end,
      function() return lm.net.output:norm(math.huge) end)
  end
  return LM_R
end

-- Right after faces = det:detect(img, {min_score = min_score}): each face's
-- bound against face-api's {x, y, width, height, score}. The same decode
-- and NMS on the predictor outputs give each face's anchor (a0..a3), map
-- m and anchor slot a; per output channel (as the tiny detector's spec),
-- its encodings e_k are within de_k = R max|channel 4a + k of box_m| and
-- its face logit within dl = R max|channel 3a + 2 of class_m|. A corner is
-- centre +- half size: the centre e_0 / 10 h + c moves by de_0 h / 10, the
-- half size exp(e_2 / 5) h / 2 by (exp(de_2 / 5) - 1) of the exact one
-- (<= ours exp(de_2 / 5)); x likewise with e_1, e_3; face-api's
-- float32 decoding (anchors, centre, exp, sums) adds gamma(16) of the
-- magnitudes. Clipping to [0, 1] cannot increase a difference; pixels
-- scale x by 512 / round(W s) W (y likewise), a width takes both corners'.
-- The score, a sigmoid (slope <= 1/4): dl / 4, + face-api's float32
-- sigmoid. Plus our doubles (px_bound) and the printed digits.
local function face_bounds(det, R, img, faces, min_score)
  local outs, first, n = {}, {}, 0
  for i, p in ipairs(det.net.predictors) do
    outs[i] = {box = p.box.output, class = p.class.output, anchors = p.anchors}
    first[i] = n + 1
    n = n + p.box.output:numel() // 4
  end
  local candidates = ssd.decode(outs, det.anchors)
  local index = {}
  for k, c in ipairs(candidates) do index[c] = k end
  local kept = ssd.non_max_suppression(candidates, min_score, 100)
  local W, H = img.width, img.height
  local s = ssd.INPUT_SIZE / math.max(W, H)
  local sx = ssd.INPUT_SIZE / require("siamese.face.tfjs").js_round(W * s) * W
  local sy = ssd.INPUT_SIZE / require("siamese.face.tfjs").js_round(H * s) * H
  local ours = px_bound(W, H) + printed(math.max(W, H))
  local out = {}
  for i, f in ipairs(faces) do
    local c = kept[i]
    assert.are.same(ssd.pixel_box(c.box, W, H), f.box)
    local k = index[c]
    local m = #first
    while first[m] > k do m = m - 1 end
    local a = (k - first[m]) % outs[m].anchors
    local an = det.anchors[k]
    local h, w = an[3] - an[1], an[4] - an[2]
    local de = {}
    for j = 1, 4 do de[j] = R * outs[m].box:select(2, 4 * a + j):norm(math.huge) end
    local dl = R * outs[m].class:select(2, 3 * a + 2):norm(math.huge)
    local gy, gx = math.exp(de[3] / 5), math.exp(de[4] / 5)
    local hh, hw = math.abs(c.box[3] - c.box[1]) / 2, math.abs(c.box[4] - c.box[2]) / 2
    local ey = de[1] * h / 10 + (gy - 1) * gy * hh + bounds.gamma(16) * (math.abs(c.box[1]) + math.abs(c.box[3]) + h)
    local ex = de[2] * w / 10 + (gx - 1) * gx * hw + bounds.gamma(16) * (math.abs(c.box[2]) + math.abs(c.box[4]) + w)
    if os.getenv("FB_DEBUG") then
      print(string.format("face %d map %d: box bound %.3g %.3g px, score %.3g", i, m, ex * sx, ey * sy, dl / 4))
    end
    -- Those worst-case bounds are several pixels on the large photos, too
    -- wide to catch a real error alone: the box must also be
    -- interchangeable with face-api's, within 1 % of the face's size, and
    -- the score within 0.01 (semantic criteria; real differences here are
    -- ~1e-3 px and ~1e-6).
    local cap = 0.01 * math.max(f.box.width, f.box.height)
    out[i] = {x = math.min(ex * sx + ours, cap), y = math.min(ey * sy + ours, cap),
      width = math.min(2 * ex * sx + ours, cap), height = math.min(2 * ey * sy + ours, cap),
      score = math.min(dl / 4 + bounds.gamma(8) + printed(1), 0.01)}
  end
  return out
end

-- Landmarks on our box against face-api's on its own (both in img's
-- pixels): the points shift with the box's origin (within b.x, b.y) and
-- move by d out max(w, h) with the net's outputs (within R max|out|), plus
-- the doubles' decoding and the printed digits. That holds while the
-- integer crop is face-api's; a box within its bound of an integer may
-- floor to another crop: then nil (asserted to be so).
local function points_bound(box, ref_box, b, img, R, out_max, what)
  local crop = assert(landmarks.clip_box(box, img.width, img.height))
  local ref_crop = assert(landmarks.clip_box(ref_box, img.width, img.height))
  if crop.x ~= ref_crop.x or crop.y ~= ref_crop.y or crop.width ~= ref_crop.width or crop.height ~= ref_crop.height then
    assert(near_integer(box.x, b.x) or near_integer(box.y, b.y) or near_integer(box.x + box.width, b.x + b.width)
      or near_integer(box.y + box.height, b.y + b.height), what .. ": another integer crop than face-api's")
    return nil
  end
  local side = math.max(crop.width, crop.height)
  local worst = math.max(b.x, b.y) + R * out_max * side
    + bounds.gamma64(12) * (2 * side + math.max(math.abs(box.x), math.abs(box.y))) + printed(math.max(img.width, img.height))
  -- and interchangeable for alignment: within 1 % of the face's size (semantic)
  return math.min(worst, 0.01 * side)
end

-- Detects every entry's faces as the fixture did (edge-padded by
-- border_px, results shifted back) and compares them in order with
-- face-api's; with lm, also the landmarks on each box. tol = "derived":
-- face_bounds and points_bound; tol = {box, score}: a semantic criterion
-- (another JPEG decoder). Returns the worst box, score and landmark
-- differences (derived: their ratios to the bounds) and the number of faces.
local function compare(det, list, load, tol, lm)
  local derived = tol == "derived"
  local R, lm_R = derived and ssd_bound(det), lm and landmark_bound(lm)
  local worst = {box = 0, score = 0, points = 0, faces = 0, crop_flips = 0}
  for _, e in ipairs(list) do
    local img = assert(load(e.file))
    local border = e.border_px
    if border > 0 then
      img = img:pad{left = border, top = border, right = border, bottom = border, mode = "edge"}
    end
    local faces = det:detect(img, {min_score = 0.5})
    assert.are.equal(#e.ssd_faces, #faces, e.file .. ": number of faces")
    local fb = derived and face_bounds(det, R, img, faces, 0.5)
    for i, ref in ipairs(e.ssd_faces) do
      local f, what = faces[i], string.format("%s face %d", e.file, i)
      for _, k in ipairs{"x", "y", "width", "height"} do
        local shift = (k == "x" or k == "y") and border or 0
        local d = math.abs(f.box[k] - shift - ref.box[k])
        local bound = derived and fb[i][k] or tol.box
        worst.box = math.max(worst.box, d / (derived and bound or 1))
        assert(d <= bound, string.format("%s: box %s %.6f, face-api %.6f (bound %.3g)", what, k, f.box[k] - shift,
          ref.box[k], bound))
      end
      local score_tol = derived and fb[i].score or tol.score
      worst.score = math.max(worst.score, math.abs(f.score - ref.score) / (derived and score_tol or 1))
      near(f.score, ref.score, score_tol, what .. " score")
      if lm then
        local ref_box = {x = ref.box.x + border, y = ref.box.y + border, width = ref.box.width, height = ref.box.height}
        local points = assert(lm:predict(img, f.box))
        local bound = points_bound(f.box, ref_box, fb[i], img, lm_R, lm.net.output:norm(math.huge), what)
        if bound then
          for _, p in ipairs(points) do p[1], p[2] = p[1] - border, p[2] - border end
          local d = max_point_diff(points, ref.landmarks)
          worst.points = math.max(worst.points, d / bound)
          assert(d <= bound, string.format("%s: landmarks differ by %.4g px (bound %.3g)", what, d, bound))
        else
          worst.crop_flips = worst.crop_flips + 1
        end
      end
      worst.faces = worst.faces + 1
    end
  end
  return worst
end

local function report(what, w, with_landmarks, derived)
  local unit = derived and " of the bound" or ""
  print(string.format("\n%s: %d faces, worst box %.2g%s, score %.2g%s%s", what, w.faces, w.box,
    derived and unit or " px", w.score, unit, with_landmarks
      and string.format(", landmarks (full net) %.2g%s (%d other crops)", w.points, unit, w.crop_flips) or ""))
end

describe("siamese.face.ssd matches face-api", function()
  local det, lm

  setup(function()
    det = assert(ssd.load(MODEL_PATH))
    lm = assert(landmarks.load(LANDMARKS_PATH))
  end)

  it("on the six JPEG photos decoded as jpeg-js does: same faces, boxes within the derived bound", function()
    local list = entries("jpeg")
    assert.are.equal(6, #list)
    local w = compare(det, list, function(file) return image.load(JPEGS .. file, {jpeg_decoder = "jpeg-js"}) end,
      "derived", lm)
    assert.are.equal(22, w.faces)
    report("JPEG photos (jpeg-js decode)", w, true, true)
  end)

  -- Not round-off: libjpeg's decode is up to ~30 levels from jpeg-js's at
  -- colour edges; 2 px and 0.02 are semantic criteria (the same face).
  it("on the six JPEG photos with libjpeg's decode: same faces, boxes within 2 px", function()
    local w = compare(det, entries("jpeg"), function(file) return image.load(JPEGS .. file) end,
      {box = 2, score = 0.02})
    report("JPEG photos (libjpeg decode)", w)
  end)

  local att_present = io.open(ATT_ROOT .. "att_faces/s1/1.pgm", "rb")
  if att_present then att_present:close() end
  if not att_present then
    pending("AT&T faces not found under " .. ATT_ROOT .. "att_faces: SSD conformance on PGMs skipped")
  else
    it("on 17 AT&T PGMs (15 edge-padded, 2 bare): same faces, boxes within the derived bound", function()
      local list = entries("pgm")
      assert.are.equal(17, #list)
      local w = compare(det, list, function(file) return image.load(ATT_ROOT .. file) end, "derived", lm)
      assert.are.equal(14, w.faces)
      report("AT&T PGMs", w, true, true)
    end)
  end
end)

-- ---------------------------------------------------------------------------
-- The recognizer and the command line with detector = "ssd"
-- ---------------------------------------------------------------------------

describe("siamese.face.load{model = 'faceapi', detector = 'ssd'}", function()
  local fr

  setup(function()
    -- refine = 0: face-api runs the landmark net once
    fr = assert(siamese.face.load{model = "faceapi", detector = "ssd", landmarks = "full", refine = 0, models_dir = "models"})
  end)

  it("detect gives face-api's SSD faces with the full net's landmarks", function()
    local ref = entries("jpeg")[5]   -- sample5.jpg, 5 faces
    local img = assert(image.load(JPEGS .. ref.file, {jpeg_decoder = "jpeg-js"}))
    local R, lm_R = ssd_bound(fr.detector), landmark_bound(fr.landmarks)   -- before the detection
    -- the landmark net's max|out| over its runs in fr:detect (one per face, refine = 0)
    local net, out_max = fr.landmarks.net, 0
    local forward = net.forward
    net.forward = function(self, x)
      local y = forward(self, x)
      out_max = math.max(out_max, y:norm(math.huge))
      return y
    end
    local ok, faces = pcall(fr.detect, fr, img)
    net.forward = nil
    assert(ok, faces)
    assert.are.equal(#ref.ssd_faces, #faces)
    local fb = face_bounds(fr.detector, R, img, faces, 0.5)
    for i, f in ipairs(faces) do
      local want = ref.ssd_faces[i]
      for _, k in ipairs{"x", "y", "width", "height"} do near(f.box[k], want.box[k], fb[i][k], "face " .. i .. " " .. k) end
      local bound = points_bound(f.box, want.box, fb[i], img, lm_R, out_max, "face " .. i)
      if bound then
        local d = max_point_diff(f.landmarks, want.landmarks)
        assert(d <= bound, string.format("face %d: landmarks differ by %.4g px (bound %.3g)", i, d, bound))
      end
    end
    -- min_score (or score_threshold) and max_results reach the detector
    assert.are.equal(2, #fr:detect(img, {max_results = 2}))
    local strict = fr:detect(img, {min_score = 0.95})
    assert.are.equal(2, #strict)
    assert.are.same(strict[2].box, fr:detect(img, {score_threshold = 0.95})[2].box)
    local f, how = fr:main_face(img)
    assert.are.equal("detected", how)
    assert.are.same({128}, fr:embed(fr:align(img, f)):shape())
  end)

  it("main_face's low-threshold retries reach the SSD as its own min_score", function()
    local img = assert(image.load(JPEGS .. entries("jpeg")[1].file, {jpeg_decoder = "jpeg-js"}))
    local seen = {}
    local real = fr.detector.detect
    fr.detector.detect = function(det, im, opts)   -- an instance field shadows the class method
      seen[#seen + 1] = opts.min_score
      return real(det, im, opts)
    end
    local ok, err = pcall(function()
      fr:main_face(img, {central = true, fallback = "threshold"})
      fr:main_face(img, {score_threshold = 0.9})
    end)
    fr.detector.detect = nil
    assert(ok, err)
    assert.are.same({0.1, 0.9}, seen)
  end)

  it("refuses an unknown detector name", function()
    assert_error(function() siamese.face.load{model = "faceapi", detector = "mtcnn"} end, "detector must be 'tiny' or 'ssd', got mtcnn")
  end)

  it("bin/siamese embed --pipeline faceapi --detector ssd reports the SSD's faces", function()
    local p = assert(io.popen("bin/siamese embed --pipeline faceapi --detector ssd --json spec/fixtures/faceapi/sample1.jpg 2>&1"))
    local out = p:read("a")
    p:close()
    local doc = assert(require("siamese.json").decode(out), out)
    local faces = doc.images[1].faces
    local ref = entries("jpeg")[1].ssd_faces
    assert.are.equal(#ref, #faces)
    for i, f in ipairs(faces) do
      -- not round-off: libjpeg's decode (see above); 2 px is a semantic criterion
      box_near(f.box, ref[i].box, 2, "face " .. i)
      assert.are.equal(128, #f.descriptor)
    end
    p = assert(io.popen("bin/siamese embed --detector mtcnn x.jpg 2>&1"))
    out = p:read("a")
    local _, _, code = p:close()
    assert.are.equal(2, code)
    assert.matches("detector", out)
  end)
end)
