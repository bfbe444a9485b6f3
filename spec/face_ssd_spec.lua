-- Specs of siamese.face.ssd (face-api's SsdMobilenetv1 face detector):
-- decoding, NMS and pixel boxes on hand-made predictions, the network's
-- shapes, misuse messages, and conformance with face-api
-- (spec/fixtures/faceapi_ssd/ssd_refs.json, made by make_refs.js there):
-- the six JPEG photos, the AT&T PGMs edge-padded as the fixture was made,
-- and landmarks of the full landmark net on the SSD boxes.
local siamese = require "siamese"
local ssd = require "siamese.face.ssd"
local landmarks = require "siamese.face.landmarks"
local support = dofile("spec/support.lua")
local assert_error, near = support.assert_error, support.near

local T, image = siamese.tensor, siamese.image
local JPEGS = "spec/fixtures/faceapi/"
local REFS = "spec/fixtures/faceapi_ssd/ssd_refs.json"
local ATT_ROOT = "../shared/data/"
-- Explicit paths: busted's relative package path hides the checkout from
-- weights.models_dir().
local MODEL_PATH = "models/faceapi_ssd_mobilenetv1.safetensors"
local LANDMARKS_PATH = "models/faceapi_landmarks68.safetensors"

local function box_near(got, want, tol, what)
  for _, k in ipairs{"x", "y", "width", "height"} do near(got[k], want[k], tol, what .. " " .. k) end
end

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
    for k = 1, 4 do near(c[2].box[k], want[k], 1e-6, "box " .. k) end
    near(c[2].score, 1 / (1 + math.exp(-2)), 1e-6, "score")
    -- anchor 4: centre (0.4, 0.6), half height 0.5 * 0.4 / 2, half width 0.4
    want = {0.4 - 0.1, 0.6 - 0.4, 0.4 + 0.1, 0.6 + 0.4}
    for k = 1, 4 do near(c[4].box[k], want[k], 1e-6, "box " .. k) end
    near(c[4].score, 0.5, 1e-7, "score of logit 0")
    assert.is_true(c[1].score < 1e-12 and c[3].score < 1e-12)
    -- class logits 0 and 2 of a cell are not the face score
    o[1].class:set(1, 1, 1, 1, 30)
    o[1].class:set(1, 3, 1, 1, 30)
    assert.is_true(ssd.decode(o, anchors)[1].score < 1e-12)
  end)

  it("refuses predictions that do not match the anchors", function()
    assert_error(function() ssd.decode(outputs_with{}, {{0, 0, 1, 1}}) end, "more predictions than anchors")
    local five = {{0, 0, 1, 1}, {0, 0, 1, 1}, {0, 0, 1, 1}, {0, 0, 1, 1}, {0, 0, 1, 1}}
    assert_error(function() ssd.decode(outputs_with{}, five) end, "4 predictions for 5 anchors")
  end)

  it("IoU as face-api: corners in either order, 0 for an empty box", function()
    near(ssd.iou({0, 0, 1, 4}, {0, 2, 1, 5}), 0.4, 1e-15, "iou")
    near(ssd.iou({1, 4, 0, 0}, {0, 2, 1, 5}), 0.4, 1e-15, "swapped corners")
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
    box_near(b, {x = 0.25 * 1920, y = 0, width = 0.75 * 1920, height = 0.5 * 512 / 341 * 1280}, 1e-9, "landscape")
    b = ssd.pixel_box({0.1, 0.1, 0.2, 0.3}, 100, 200)   -- portrait: x scaled by 512 / 256
    box_near(b, {x = 0.2 * 100, y = 0.1 * 200, width = 0.4 * 100, height = 0.1 * 200}, 1e-9, "portrait")
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

-- Detects every entry's faces as the fixture did (edge-padded by
-- border_px, results shifted back) and compares them in order with
-- face-api's; with lm, also the landmarks on each box. Returns the worst
-- box, score and landmark differences and the number of faces.
local function compare(det, list, load, tol, lm)
  local worst = {box = 0, score = 0, points = 0, faces = 0}
  for _, e in ipairs(list) do
    local img = assert(load(e.file))
    local border = e.border_px
    if border > 0 then
      img = img:pad{left = border, top = border, right = border, bottom = border, mode = "edge"}
    end
    local faces = det:detect(img, {min_score = 0.5})
    assert.are.equal(#e.ssd_faces, #faces, e.file .. ": number of faces")
    for i, ref in ipairs(e.ssd_faces) do
      local f = faces[i]
      f.box.x, f.box.y = f.box.x - border, f.box.y - border
      for _, k in ipairs{"x", "y", "width", "height"} do
        local d = math.abs(f.box[k] - ref.box[k])
        worst.box = math.max(worst.box, d)
        assert(d <= tol.box, string.format("%s face %d: box %s %.4f, face-api %.4f", e.file, i, k, f.box[k], ref.box[k]))
      end
      worst.score = math.max(worst.score, math.abs(f.score - ref.score))
      near(f.score, ref.score, tol.score, e.file .. " score")
      if lm then
        local box = {x = f.box.x + border, y = f.box.y + border, width = f.box.width, height = f.box.height}
        local points = assert(lm:predict(img, box))
        for _, p in ipairs(points) do p[1], p[2] = p[1] - border, p[2] - border end
        local d = max_point_diff(points, ref.landmarks)
        worst.points = math.max(worst.points, d)
        assert(d <= tol.points, string.format("%s face %d: landmarks differ by %.4f px", e.file, i, d))
      end
      worst.faces = worst.faces + 1
    end
  end
  return worst
end

local function report(what, w, with_landmarks)
  print(string.format("\n%s: %d faces, worst box %.2g px, score %.2g%s", what, w.faces, w.box, w.score,
    with_landmarks and string.format(", landmarks (full net) %.2g px", w.points) or ""))
end

describe("siamese.face.ssd matches face-api", function()
  local det, lm

  setup(function()
    det = assert(ssd.load(MODEL_PATH))
    lm = assert(landmarks.load(LANDMARKS_PATH))
  end)

  it("on the six JPEG photos decoded as jpeg-js does: same faces, boxes within 0.01 px", function()
    local list = entries("jpeg")
    assert.are.equal(6, #list)
    local w = compare(det, list, function(file) return image.load(JPEGS .. file, {jpeg_decoder = "jpeg-js"}) end,
      {box = 0.01, score = 1e-4, points = 0.05}, lm)
    assert.are.equal(22, w.faces)
    report("JPEG photos (jpeg-js decode)", w, true)
  end)

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
    it("on 17 AT&T PGMs (15 edge-padded, 2 bare): same faces, boxes within 0.01 px", function()
      local list = entries("pgm")
      assert.are.equal(17, #list)
      local w = compare(det, list, function(file) return image.load(ATT_ROOT .. file) end,
        {box = 0.01, score = 1e-4, points = 0.05}, lm)
      assert.are.equal(14, w.faces)
      report("AT&T PGMs", w, true)
    end)
  end
end)

-- ---------------------------------------------------------------------------
-- The recognizer and the command line with detector = "ssd"
-- ---------------------------------------------------------------------------

describe("siamese.face.load{detector = 'ssd'}", function()
  local fr

  setup(function()
    -- refine = 0: face-api runs the landmark net once
    fr = assert(siamese.face.load{detector = "ssd", landmarks = "full", refine = 0, models_dir = "models"})
  end)

  it("detect gives face-api's SSD faces with the full net's landmarks", function()
    local ref = entries("jpeg")[5]   -- sample5.jpg, 5 faces
    local img = assert(image.load(JPEGS .. ref.file, {jpeg_decoder = "jpeg-js"}))
    local faces = fr:detect(img)
    assert.are.equal(#ref.ssd_faces, #faces)
    for i, f in ipairs(faces) do
      box_near(f.box, ref.ssd_faces[i].box, 0.01, "face " .. i)
      assert.is_true(max_point_diff(f.landmarks, ref.ssd_faces[i].landmarks) < 0.05)
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
    assert_error(function() siamese.face.load{detector = "mtcnn"} end, "detector must be 'tiny' or 'ssd', got mtcnn")
  end)

  it("bin/siamese embed --detector ssd reports the SSD's faces", function()
    local p = assert(io.popen("bin/siamese embed --detector ssd --json spec/fixtures/faceapi/sample1.jpg 2>&1"))
    local out = p:read("a")
    p:close()
    local doc = assert(require("siamese.json").decode(out), out)
    local faces = doc.images[1].faces
    local ref = entries("jpeg")[1].ssd_faces
    assert.are.equal(#ref, #faces)
    for i, f in ipairs(faces) do
      box_near(f.box, ref[i].box, 2, "face " .. i)   -- libjpeg's decode
      assert.are.equal(128, #f.descriptor)
    end
    p = assert(io.popen("bin/siamese embed --detector mtcnn x.jpg 2>&1"))
    out = p:read("a")
    local _, _, code = p:close()
    assert.are.equal(2, code)
    assert.matches("detector", out)
  end)
end)
