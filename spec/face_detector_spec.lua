-- Specs of siamese.face.detector (face-api's TinyFaceDetector): box decoding
-- and NMS on hand-made grid outputs, the preprocessing placement, the
-- network's shapes, misuse messages, and conformance with face-api's boxes
-- (spec/fixtures/faceapi: the six JPEG photos to 2 px, the AT&T PGMs,
-- edge-padded by border_px as the fixture was made, within the bound
-- derived in face_bounds.lua, propagated through the box decoding).
local siamese = require "siamese"
local detector = require "siamese.face.detector"
local tfjs = require "siamese.face.tfjs"
local support = dofile("spec/support.lua")
local bounds = dofile("spec/face_bounds.lua")
local assert_error, near, within = support.assert_error, support.near, support.within

local T, image = siamese.tensor, siamese.image
local FIXTURES = "spec/fixtures/faceapi/"
local ATT_ROOT = "../shared/data/"
-- Explicit path: busted's relative package path hides the checkout from
-- require("siamese.models").dir().
local MODEL_PATH = "models/faceapi_tiny_detector.safetensors"

local function box_near(got, want, tol, what)
  for _, k in ipairs{"x", "y", "width", "height"} do near(got[k], want[k], tol, what .. " " .. k) end
end

local function logit(p)
  return math.log(p / (1 - p))
end

-- A raw output grid [1,25,n,n] where every objectness is very negative,
-- then the given cells set: {row, col, anchor (0-based), tx, ty, tw, th, tobj}.
local function grid_with(n, cells)
  local g = T.zeros{1, 25, n, n}
  for a = 0, 4 do g:narrow(2, 5 * a + 5, 1):fill(-30) end
  for _, c in ipairs(cells) do
    local row, col, anchor = c[1], c[2], c[3]
    for k = 1, 5 do g:set(1, 5 * anchor + k, row + 1, col + 1, c[3 + k]) end
  end
  return g
end

-- A detector whose network returns a fixed grid (and records its input).
local function stub_detector(grid)
  local det = assert(detector.load(MODEL_PATH))
  det.net = {forward = function(self, x) self.input = x; return grid end}
  return det
end

-- The grid stores float32: t is off by U |t| (|t| <= 2.2 below), which
-- moves sigmoid(t) by U |t| / 4 and exp(t) by U |t| relative; the rest is
-- Lua doubles (a few operations on values below 4, or pixels below 256 * 4).
local DEC = 2.2 * bounds.U * 4 + bounds.gamma64(20) * 4
local DEC_SCORE = 2.2 * bounds.U / 4 + bounds.gamma64(10)
local DEC_PX = bounds.gamma64(20) * 256 * 4

describe("siamese.face.detector decoding", function()
  it("decodes hand-made cells with the anchors and correction factors", function()
    -- 200x100 image at input 128: scaled content 128x64, cfx = 1, cfy = 2; n = 4.
    local grid = grid_with(4, {
      {1, 2, 1, 0, 0, 0, math.log(2), 2},                 -- anchor 1 (6.041143, 7.080126)
      {3, 0, 4, logit(0.25), logit(0.75), 0, 0, 3},       -- anchor 4 (9.041765, 10.66308)
    })
    local c = detector.decode_grid(grid, 128, 200, 100, 0.5)
    assert.are.equal(2, #c)
    local w, h = 6.041143 / 4, 2 * 7.080126 / 4 * 2
    near(c[1].score, 1 / (1 + math.exp(-2)), bounds.gamma64(10), "score")   -- t = 2 exact in float32
    box_near(c[1].box, {x = 2.5 / 4 - w / 2, y = 1.5 / 4 * 2 - h / 2, width = w, height = h}, DEC, "cell (1,2)")
    w, h = 9.041765 / 4, 10.66308 / 4 * 2
    box_near(c[2].box, {x = 0.25 / 4 - w / 2, y = 3.75 / 4 * 2 - h / 2, width = w, height = h}, DEC, "cell (3,0)")
    -- a portrait image corrects x instead: 100x200 -> cfx = 2, cfy = 1
    local p = detector.decode_grid(grid, 128, 100, 200, 0.5)
    near(p[1].box.width, 2 * 6.041143 / 4, bounds.gamma64(10) * 4, "portrait width")   -- tw = 0 exact
    near(p[1].box.height, 2 * 7.080126 / 4, DEC, "portrait height")
  end)

  it("keeps a score only strictly above the threshold", function()
    local grid = grid_with(2, {{0, 0, 0, 0, 0, 0, 0, 0}})   -- sigmoid(0) = 0.5 exactly
    assert.are.equal(0, #detector.decode_grid(grid, 64, 64, 64, 0.5))
    assert.are.equal(1, #detector.decode_grid(grid, 64, 64, 64, 0.49))
  end)

  it("correction factors use JS Math.round of the scaled size", function()
    local cfx, cfy = detector.correction_factors(416, 1920, 1280)    -- 416 x 277.33 -> 277
    near(cfx, 1, 0, "cfx")
    near(cfy, 416 / 277, bounds.gamma64(1) * 2, "cfy")
    cfx, cfy = detector.correction_factors(32, 64, 3)                -- 32 x 1.5 -> 2 (halves round up)
    near(cfx, 1, 0, "cfx half")
    near(cfy, 16, 0, "cfy half")
  end)

  it("IoU has no +1 pixel convention", function()
    near(detector.iou({x = 0, y = 0, width = 4, height = 1}, {x = 2, y = 0, width = 3, height = 1}), 0.4, 0, "iou")
    near(detector.iou({x = 0, y = 0, width = 1, height = 1}, {x = 1, y = 0, width = 1, height = 1}), 0, 0, "touching")
  end)

  it("NMS drops boxes above IoU 0.4, keeps them at 0.4, and orders by score", function()
    local a = {box = {x = 0, y = 0, width = 4, height = 1}, score = 0.9}
    local at = {box = {x = 2, y = 0, width = 3, height = 1}, score = 0.8}        -- IoU 2/5 with a
    local above = {box = {x = 1.9, y = 0, width = 3, height = 1}, score = 0.8}   -- IoU 2.1/4.9
    local far = {box = {x = 10, y = 0, width = 1, height = 1}, score = 0.95}
    local kept = detector.non_max_suppression({at, a, far}, 0.4)
    assert.are.same({far, a, at}, kept)
    kept = detector.non_max_suppression({above, a}, 0.4)
    assert.are.same({a}, kept)
    -- greedy: a box overlapping only a suppressed one survives
    local chain = {box = {x = 4.5, y = 0, width = 3, height = 1}, score = 0.7}   -- IoU 0.5/5.5 with a
    assert.are.same({a, chain}, detector.non_max_suppression({chain, above, a}))
    assert.are.same({}, detector.non_max_suppression({}))
  end)

  it("detect turns the network's grid into sorted pixel boxes after NMS", function()
    -- two overlapping candidates (the weaker is suppressed) and a separate one
    local grid = grid_with(4, {
      {1, 1, 0, 0, 0, 0, 0, logit(0.7)},
      {1, 1, 2, 0, 0, 0, 0, logit(0.6)},   -- same centre, anchor 2: IoU 0.33 with anchor 0
      {1, 1, 3, 0, 0, 0, 0, logit(0.65)},  -- same centre, anchor 3: IoU 0.46 with anchor 2, 0.15 with 0
      {3, 3, 0, 0, 0, 0, 0, logit(0.9)},
      {0, 3, 0, 0, 0, 0, 0, logit(0.4)},   -- below the threshold
    })
    local det = stub_detector(grid)
    local img = image.new(256, 128, 3)
    local faces = det:detect(img, {input_size = 128, score_threshold = 0.5})
    assert.are.same({1, 3, 128, 128}, det.net.input:shape())
    assert.are.equal(3, #faces)
    local scores = {}
    for i, f in ipairs(faces) do scores[i] = f.score end
    near(scores[1], 0.9, DEC_SCORE, "first score")
    near(scores[2], 0.7, DEC_SCORE, "second score")
    near(scores[3], 0.65, DEC_SCORE, "third score")
    -- cfx = 1, cfy = 2 (content 128x64); pixel = relative * (256, 128)
    local w, h = 1.603231 / 4, 2.094468 / 4 * 2
    box_near(faces[1].box, {x = (3.5 / 4 - w / 2) * 256, y = (3.5 / 4 * 2 - h / 2) * 128,
      width = w * 256, height = h * 128}, DEC_PX, "face 1")
    w, h = 4.266906 / 4, 5.178857 / 4 * 2
    box_near(faces[3].box, {x = (1.5 / 4 - w / 2) * 256, y = (1.5 / 4 * 2 - h / 2) * 128,
      width = w * 256, height = h * 128}, DEC_PX, "face 3")
  end)
end)

describe("siamese.face.tfjs preprocessing, and the detector network", function()
  it("pads to a square at the bottom/right, or centred with JS rounding", function()
    assert.are.same({10, 0, 0}, {tfjs.square_placement(10, 7, false)})
    assert.are.same({10, 0, 1}, {tfjs.square_placement(10, 7, true)})   -- diff 3: after = 2, before = 1
    assert.are.same({9, 2, 0}, {tfjs.square_placement(4, 9, true)})     -- diff 5: after = 3, before = 2
    assert.are.same({6, 0, 0}, {tfjs.square_placement(6, 6, true)})
  end)

  it("to_batch_tensor places the image, zero-pads, and normalises per channel", function()
    local img = image.new(2, 1, 1, string.char(255, 51))
    local mean = {10, 20, 30}
    local t = tfjs.to_batch_tensor(img, 2, false, mean)          -- no resize: 2x2 square
    assert.are.same({1, 3, 2, 2}, t:shape())
    local NORM = bounds.gamma(3) * (255 + 30) / 255                  -- (x - mean) / 255 in float32
    for c = 1, 3 do
      near(t:get(1, c, 1, 1), (255 - mean[c]) / 255, NORM, "pixel")
      near(t:get(1, c, 1, 2), (51 - mean[c]) / 255, NORM, "pixel")
      near(t:get(1, c, 2, 1), -mean[c] / 255, NORM, "padding")
    end
    -- resized: the TF grid keeps output 0 on input 0; equal to the float path
    local first = tfjs.to_batch_tensor(img, 4, false, mean)
    local square = T.zeros{3, 2, 2}
    img:to_rgb():to_tensor{scale = 1, out = square:narrow(2, 1, 1)}
    local float_path = image.resize_tensor(square, 4, 4, {method = "tf"})
    for c = 1, 3 do float_path:select(1, c):sub_(mean[c]):div_(255) end
    -- two float32 paths, each within bounds.preprocess of exact
    assert.is_true((first:view(3, 4, 4) - float_path):norm(math.huge) <= 2 * bounds.preprocess(30))
    near(first:get(1, 1, 1, 1), (255 - 10) / 255, NORM, "resized corner")   -- TF grid: output 0 = input 0
  end)

  it("loads the bundled weights; the network maps [N,3,S,S] to [N,25,S/32,S/32]", function()
    local det = assert(detector.load(MODEL_PATH))
    assert.are.same({1, 25, 4, 4}, det.net:forward(T.zeros{1, 3, 128, 128}):shape())
    assert.are.same({2, 25, 2, 2}, det.net:forward(T.zeros{2, 3, 64, 64}):shape())
    assert.are.equal(193321, det.net:nparameters())
  end)

  it("returns nil and a message for missing or wrong files", function()
    local det, err = detector.load("/nonexistent/detector.safetensors")
    assert.is_nil(det)
    assert.is_string(err)
    det, err = detector.load("models/faceapi_landmarks68_tiny.safetensors")
    assert.is_nil(det)
    assert.truthy(err:find("missing tensor 'conv", 1, true), err)
  end)

  it("raises on misuse, naming the function and argument", function()
    local det = assert(detector.load(MODEL_PATH))
    local img = image.new(64, 64, 3)
    assert_error(function() det:detect("photo.jpg") end, "bad argument #1 to 'detect'",
      "siamese.Image expected, got string")
    assert_error(function() det:detect(T.zeros{3, 8, 8}) end, "#1", "detect", "siamese.Image expected")
    assert_error(function() det:detect(img, {input_size = 100}) end, "#2", "detect",
      "input_size must be a positive multiple of 32, got 100")
    assert_error(function() det:detect(img, {input_size = 0}) end, "input_size")
    assert_error(function() det:detect(img, {score_threshold = "high"}) end, "#2", "score_threshold")
    assert_error(function() det:detect(img, 416) end, "#2", "table expected")
    assert_error(function() detector.load(42) end, "bad argument #1 to 'load'")
  end)

  it("finds nothing in a flat image, for gray and RGBA input too", function()
    local det = assert(detector.load(MODEL_PATH))
    for _, c in ipairs{1, 3, 4} do
      assert.are.same({}, det:detect(image.new(96, 64, c), {input_size = 128}))
    end
  end)
end)

-- ---------------------------------------------------------------------------
-- Conformance with face-api
-- ---------------------------------------------------------------------------

local function fixture(name)
  return support.read_json(FIXTURES .. name)
end

-- Detects on the image as the fixture did (edge-padded by border_px) and
-- returns the faces in original-image coordinates, the bounds on the grid
-- outputs' error (R max|channel|, face_bounds.network, our grid standing
-- for face-api's) for box offsets and objectness, and the cell in pixels.
local function detect_like_fixture(det, img, border)
  if border > 0 then
    img = img:pad{left = border, top = border, right = border, bottom = border, mode = "edge"}
  end
  local faces
  local R = bounds.network(det.net, function()
    faces = det:detect(img, {input_size = 416, score_threshold = 0.5})
  end, function() return det.net.output:norm(math.huge) end)
  local grid = det.net.output
  -- R relative to each output channel's magnitude (5 anchors x tx, ty, tw,
  -- th, objectness): the box offsets' and the objectness logits' worst
  local dbox, dobj = 0, 0
  for a = 0, 4 do
    for k = 1, 4 do dbox = math.max(dbox, R * grid:select(2, 5 * a + k):norm(math.huge)) end
    dobj = math.max(dobj, R * grid:select(2, 5 * a + 5):norm(math.huge))
  end
  for _, f in ipairs(faces) do
    f.box.x, f.box.y = f.box.x - border, f.box.y - border
  end
  return faces, dbox, dobj, math.max(img.width, img.height) / grid:shape(3)
end

-- The face of faces with the highest IoU with box.
local function best_match(faces, box)
  local best, best_iou = nil, -1
  for _, f in ipairs(faces) do
    local iou = detector.iou(f.box, box)
    if iou > best_iou then best, best_iou = f, iou end
  end
  return best, best_iou
end

-- Compares every entry's faces with face-api's; returns the worst box
-- difference (px) and the number of faces compared. tol = "derived": the
-- grid outputs' bound dt propagated through the decoding: x = (col +
-- sigmoid(tx)) * cell - w / 2, w = anchor exp(tw) * cell (sigmoid' <= 1/4,
-- exp relative dt): |dx|, |dw| <= dt (cell / 4 + max(w, h)) (first order,
-- x2 for the exp's curvature); scores (sigmoid) within dobj / 4. A number:
-- a semantic criterion (px, score 0.02) for inputs that are not the same.
local function compare_boxes(det, entries, load, tol)
  local worst, count = 0, 0
  for _, e in ipairs(entries) do
    local img = assert(load(e.file))
    local faces, dt, dobj, cell = detect_like_fixture(det, img, e.border_px or 0)
    assert.are.equal(#e.tiny_faces, #faces, e.file .. ": number of faces")
    for i, ref in ipairs(e.tiny_faces) do
      local f, iou = best_match(faces, ref.box)
      assert(iou > 0.5, string.format("%s face %d: no detection overlaps (best IoU %.3f)", e.file, i, iou))
      local box_tol = tol == "derived" and 2 * dt * (cell / 4 + math.max(ref.box.width, ref.box.height)) or tol
      -- the worst-case bound is ~2 px on these faces, too wide to catch a
      -- real error alone: the box must also be interchangeable with
      -- face-api's, within 1 % of the face's size (semantic; real
      -- differences are ~1e-3 px)
      if tol == "derived" then box_tol = math.min(box_tol, 0.01 * math.max(ref.box.width, ref.box.height)) end
      for _, k in ipairs{"x", "y", "width", "height"} do
        local d = math.abs(f.box[k] - ref.box[k])
        worst = math.max(worst, d / box_tol)
        assert(d <= box_tol, string.format("%s face %d: box %s %.4f, face-api %.4f (bound %.3g)", e.file, i, k,
          f.box[k], ref.box[k], box_tol))
      end
      if tol == "derived" then within(f.score, ref.score, dobj / 4, e.file .. " score")
      else near(f.score, ref.score, 0.02, e.file .. " score") end
      count = count + 1
    end
  end
  return worst, count
end

describe("siamese.face.detector matches face-api", function()
  -- libjpeg's decode differs from jpeg-js's by up to ~30 levels at colour
  -- edges: 2 px (a tenth of the smallest face) is a semantic criterion, not round-off.
  it("on the six JPEG photos: same faces, boxes within 2 px", function()
    local det = assert(detector.load(MODEL_PATH))
    local entries = fixture("samples.json").images
    assert.are.equal(6, #entries)
    local worst, count = compare_boxes(det, entries, function(file) return image.load(FIXTURES .. file) end, 2)
    print(string.format("\nJPEG photos: %d faces, worst box difference %.3f px", count, worst * 2))
  end)

  it("on the six JPEG photos decoded as jpeg-js does: same faces, boxes within the derived bound", function()
    local det = assert(detector.load(MODEL_PATH))
    local worst, count = compare_boxes(det, fixture("samples.json").images, function(file)
      return image.load(FIXTURES .. file, {jpeg_decoder = "jpeg-js"})
    end, "derived")
    print(string.format("\nJPEG photos (jpeg-js decode): %d faces, worst box difference %.2g of the bound", count, worst))
  end)

  local att_present = io.open(ATT_ROOT .. "att_faces/s1/1.pgm", "rb")
  if att_present then att_present:close() end
  if not att_present then
    pending("AT&T faces not found under " .. ATT_ROOT .. "att_faces: detector conformance on PGMs skipped")
  else
    it("on the 80 edge-padded AT&T PGMs: same faces, boxes within the derived bound", function()
      local det = assert(detector.load(MODEL_PATH))
      local entries = fixture("att_faces.json").images
      assert.are.equal(80, #entries)
      local worst, count = compare_boxes(det, entries, function(file) return image.load(ATT_ROOT .. file) end,
        "derived")
      print(string.format("\nAT&T: %d faces, worst box difference %.2g of the bound", count, worst))
    end)
  end
end)
