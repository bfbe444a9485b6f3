-- Specs of siamese.face.landmarks (face-api's FaceLandmark68TinyNet and steps
-- 2-4 of its full pipeline): crop clipping, landmark decoding on hand-made
-- outputs, the descriptor rectangle on hand-made points, the network's
-- shapes, misuse messages, and conformance with face-api's landmarks and
-- descriptor crops (spec/fixtures/faceapi).
--
-- JPEG photos: decoded as jpeg-js does (which made the fixture; image.load's
-- jpeg_decoder = "jpeg-js") they are checked end to end as tightly as the
-- PGMs. With libjpeg's own decode the pixels are up to ~30 levels apart at
-- colour edges, which moves the detector's boxes by up to ~1.7 px, and the
-- tiny landmark net turns a sub-pixel shift of its (integer) crop into up
-- to ~5 px on single points: there the landmarks and crop are checked to
-- 2 px from face-api's own box, and end to end only to a loose bound.
--
-- Bounds (spec/face_bounds.lua), never tolerances tuned on one machine:
-- Lua-double geometry within gamma64(n) of its magnitude; the nets' outputs
-- within R max|out| (face_bounds.network: R from the net's depth, largest
-- reduction and amplification c, measured ONCE per file on a fixed input,
-- see net_bound), mapped to pixels and added to the detector's own bound.
local siamese = require "siamese"
local detector = require "siamese.face.detector"
local landmarks = require "siamese.face.landmarks"
local support = dofile("spec/support.lua")
local bounds = dofile("spec/face_bounds.lua")
local assert_error, near = support.assert_error, support.near

local T, image = siamese.tensor, siamese.image
local FIXTURES = "spec/fixtures/faceapi/"
local ATT_ROOT = "../shared/data/"
-- Explicit paths: busted's relative package path hides the checkout from
-- require("siamese.models").dir().
local MODEL_PATH = "models/faceapi_landmarks68_tiny.safetensors"
local DETECTOR_PATH = "models/faceapi_tiny_detector.safetensors"

-- landmarks.decode in Lua doubles: x = (o 112 - pad) / iw w + shift, a
-- handful of roundings on terms below 2 max(w, h) + |shift|; the expected
-- value, written out in Lua, rounds as often. (Outputs 0.25, 0.5, 0.75 and
-- 0 are exact in float32, so a tensor's storage adds nothing.)
local function decode_bound(w, h, shift)
  return bounds.gamma64(12) * (2 * math.max(w, h) + math.abs(shift or 0))
end

-- R of a landmark net (face_bounds.network), measured once per file and
-- variant on a fixed input (a 110 px square on the Tony Blair photo) and
-- reused: a net's outputs are within R max|out| of exact.
local NET_R = {}
local function net_bound(lm)
  if not NET_R[lm.variant] then
    local img = assert(image.load("examples/data/faces/Tony_Blair/Tony_Blair_0001.jpg"))
    NET_R[lm.variant] = bounds.network(lm.net, function() lm:predict(img, {x = 70, y = 70, width = 110, height = 110}) end,
      function() return lm.net.output:norm(math.huge) end)
  end
  return NET_R[lm.variant]
end

-- 136 outputs with every point at (ox, oy).
local function constant_output(ox, oy)
  local o = {}
  for i = 1, 68 do o[2 * i - 1], o[2 * i] = ox, oy end
  return o
end

-- 68 points with the eye and mouth groups (0-based 36-41, 42-47, 48-67) at
-- the given centres; other points far away (they must not matter).
local function points_with(le, re, mo)
  local p = {}
  for i = 1, 68 do p[i] = {1000, -1000} end
  for i = 37, 42 do p[i] = {le[1], le[2]} end
  for i = 43, 48 do p[i] = {re[1], re[2]} end
  for i = 49, 68 do p[i] = {mo[1], mo[2]} end
  return p
end

describe("siamese.face.landmarks geometry", function()
  it("clips boxes at the image borders and floors, as face-api", function()
    assert.are.same({x = 0, y = 5, width = 29, height = 30},
      landmarks.clip_box({x = -10.5, y = 5.25, width = 40, height = 30}, 100, 80))
    -- each field is floored on its own: 100 - 90.7 = 9.3 -> 9, the last column is lost as in face-api
    assert.are.same({x = 90, y = 70, width = 9, height = 9},
      landmarks.clip_box({x = 90.7, y = 70.2, width = 40, height = 40}, 100, 80))
    assert.are.same({x = 3, y = 4, width = 5, height = 6},
      landmarks.clip_box({x = 3.9, y = 4.1, width = 5.95, height = 6.5}, 100, 80))
    assert.is_nil(landmarks.clip_box({x = 100, y = 0, width = 10, height = 10}, 100, 80))
    assert.is_nil(landmarks.clip_box({x = -20, y = 0, width = 20.5, height = 10}, 100, 80))  -- 0.5 px floors to 0
  end)

  it("decodes outputs for a tall and a wide crop (padding removed, shifted)", function()
    -- 50x100 crop: s = 1.12, iw = 56, ih = 112, padX = 28
    local o = constant_output(0.5, 0.5)
    o[3], o[4] = 0.25, 0
    o[5], o[6] = 0.75, 1
    local p = landmarks.decode(o, 50, 100, 10, 20)
    assert.are.equal(68, #p)
    local tall = decode_bound(50, 100, 20)
    near(p[1][1], 25 + 10, tall, "x0")
    near(p[1][2], 50 + 20, tall, "y0")
    near(p[2][1], 0 + 10, tall, "x1")
    near(p[2][2], 0 + 20, tall, "y1")
    near(p[3][1], 50 + 10, tall, "x2")
    near(p[3][2], 100 + 20, tall, "y2")
    -- 100x40 crop: s = 1.12, iw = 112, ih = 44.8, padY = 33.6
    p = landmarks.decode(constant_output(0.5, 0.2), 100, 40)
    near(p[1][1], 50, decode_bound(100, 40), "wide x")
    near(p[1][2], (0.2 * 112 - 33.6) / 44.8 * 40, decode_bound(100, 40), "wide y")
    -- a tensor [1,136] decodes like the list
    local t = T.new{constant_output(0.25, 0.75)}
    local q = landmarks.decode(t, 30, 30, 1, 2)
    near(q[68][1], 0.25 * 30 + 1, decode_bound(30, 30, 2), "tensor x")
    near(q[68][2], 0.75 * 30 + 2, decode_bound(30, 30, 2), "tensor y")
  end)

  it("predict crops the clipped box, and shifts by the unclipped origin", function()
    local lm = assert(landmarks.load(MODEL_PATH))
    local seen
    lm.net = {forward = function(_, x) seen = x; return T.new{constant_output(0.5, 0.5)} end}
    local img = image.new(100, 80, 1)
    local p = assert(lm:predict(img, {x = -10.5, y = 5.25, width = 40, height = 30}))
    assert.are.same({1, 3, 112, 112}, seen:shape())
    -- crop 29x30 at (0, 5): the centre of the padded square is the crop's
    near(p[1][1], 14.5 - 10.5, decode_bound(29, 30, 10.5), "x")
    near(p[1][2], 15 + 5.25, decode_bound(29, 30, 10.5), "y")
    local none, why = lm:predict(img, {x = 120, y = 10, width = 20, height = 20})
    assert.is_nil(none)
    assert.truthy(why:find("does not overlap", 1, true), why)
  end)

  it("centres the crop in the 112 square with JS rounding before the resize", function()
    local lm = assert(landmarks.load(MODEL_PATH))
    local seen
    lm.net = {forward = function(_, x) seen = x; return T.new{constant_output(0.5, 0.5)} end}
    -- a white 1x112 column in a black image: crop 1 wide, 112 tall, diff 111:
    -- 56 zero columns after, 55 before, so the column lands at x = 55
    local img = image.new(3, 112, 1)
    for y = 0, 111 do img:set(1, y, 255) end
    lm:predict(img, {x = 1, y = 0, width = 1, height = 112})
    -- float32 resize (here on the grid: weights 0 and 1) and (x - mean) / 255
    local pre = bounds.preprocess(landmarks.MEAN_RGB[1])
    near(seen:get(1, 1, 10, 56), (255 - landmarks.MEAN_RGB[1]) / 255, pre, "column")
    near(seen:get(1, 1, 10, 55), -landmarks.MEAN_RGB[1] / 255, pre, "before")
    near(seen:get(1, 1, 10, 57), -landmarks.MEAN_RGB[1] / 255, pre, "after")
  end)

  it("descriptor_rect: face-api's square from eye and mouth centres", function()
    -- d = sqrt(10^2 + 30^2) = 31.62, size = floor(70.27) = 70, ref = (50, 50)
    local p = points_with({40, 40}, {60, 40}, {50, 70})
    assert.are.same({x = 15, y = 19, width = 70, height = 70}, landmarks.descriptor_rect(p, 200, 200))
    -- clipped at the right and bottom borders: no longer square
    assert.are.same({x = 15, y = 19, width = 45, height = 61}, landmarks.descriptor_rect(p, 60, 80))
    -- near the top-left corner the origin is clamped at 0 (size kept)
    p = points_with({10, 10}, {30, 10}, {20, 40})
    assert.are.same({x = 0, y = 0, width = 70, height = 70}, landmarks.descriptor_rect(p, 200, 200))
    -- entirely outside: nil
    p = points_with({140, 140}, {160, 140}, {150, 170})
    assert.is_nil(landmarks.descriptor_rect(p, 100, 100))
  end)

  it("raises on misuse, naming the function and argument", function()
    local lm = assert(landmarks.load(MODEL_PATH))
    local img = image.new(10, 10, 3)
    assert_error(function() lm:predict({}, {x = 0, y = 0, width = 5, height = 5}) end,
      "bad argument #1 to 'predict'", "siamese.Image expected, got table")
    assert_error(function() lm:predict(img, "box") end, "bad argument #2 to 'predict'", "box")
    assert_error(function() lm:predict(img, {x = 0, y = 0, width = 5}) end, "#2", "predict")
    assert_error(function() landmarks.descriptor_rect({{1, 2}}, 10, 10) end,
      "bad argument #1 to 'descriptor_rect'", "68 {x, y} points")
    assert_error(function() landmarks.descriptor_rect(points_with({1, 1}, {2, 2}, {3, 3}), 10.5, 10) end,
      "bad argument #2 to 'descriptor_rect'")
    assert_error(function() landmarks.load(false) end, "bad argument #1 to 'load'")
  end)
end)

describe("siamese.face.landmarks network", function()
  it("loads the bundled weights; the network maps [N,3,112,112] to [N,136]", function()
    local lm = assert(landmarks.load(MODEL_PATH))
    assert.are.same({2, 136}, lm.net:forward(T.zeros{2, 3, 112, 112}):shape())
    assert.are.equal(77224, lm.net:nparameters())
  end)

  it("returns nil and a message for missing or wrong files", function()
    local lm, err = landmarks.load("/nonexistent")
    assert.is_nil(lm)
    assert.is_string(err)
    lm, err = landmarks.load(DETECTOR_PATH)
    assert.is_nil(lm)
    assert.truthy(err:find("missing tensor", 1, true), err)
  end)
end)

-- ---------------------------------------------------------------------------
-- Conformance with face-api
-- ---------------------------------------------------------------------------

local function fixture(name)
  return support.read_json(FIXTURES .. name)
end

local function max_point_diff(points, ref, shift)
  local worst = 0
  for i = 1, 68 do
    worst = math.max(worst, math.abs(points[i][1] - shift - ref[i][1]), math.abs(points[i][2] - shift - ref[i][2]))
  end
  return worst
end

local function rect_diff(r, ref, shift)
  return math.max(math.abs(r.x - shift - ref.x), math.abs(r.y - shift - ref.y),
    math.abs(r.width - ref.width), math.abs(r.height - ref.height))
end

-- face-api's fixtures print 4 decimals: each printed value is within
-- 0.5e-4 px of face-api's own.
local PRINTED = 0.5e-4

local function near_integer(v, eps)
  return math.abs(v - math.floor(v + 0.5)) <= eps
end

-- True when one of the values descriptor_rect floors (d / 0.45,
-- ref.x - 0.5 size, ref.y - 0.43 size; architecture doc, section 5 step 4)
-- is near enough an integer that face-api's floor may differ from ours,
-- every point being within dp of face-api's: each centre (a mean) is then
-- within dp per coordinate, each eye-mouth distance within 2 sqrt(2) dp,
-- so the raw size is within 2 sqrt(2) dp / 0.45 and the origin within dp
-- (same size); plus both sides' double arithmetic (gamma64 of the
-- coordinates' magnitude).
local function rect_near_integer(p, dp)
  local function centre(a, b)
    local x, y = 0, 0
    for i = a, b do x, y = x + p[i][1], y + p[i][2] end
    return x / (b - a + 1), y / (b - a + 1)
  end
  local mag = 0
  for i = 1, 68 do mag = math.max(mag, math.abs(p[i][1]), math.abs(p[i][2])) end
  local arith = bounds.gamma64(64) * mag
  local lx, ly = centre(37, 42)
  local rx, ry = centre(43, 48)
  local mx, my = centre(49, 68)
  local raw_size = (math.sqrt((mx - lx) ^ 2 + (my - ly) ^ 2) + math.sqrt((mx - rx) ^ 2 + (my - ry) ^ 2)) / 2 / 0.45
  local size = math.floor(raw_size)
  return near_integer(raw_size, 2 * math.sqrt(2) * dp / 0.45 + arith)
    or near_integer((lx + rx + mx) / 3 - 0.5 * size, dp + arith)
    or near_integer((ly + ry + my) / 3 - 0.43 * size, dp + arith)
end

local function best_match(faces, box)
  local best, best_iou = nil, -1
  for _, f in ipairs(faces) do
    local iou = detector.iou(f.box, box)
    if iou > best_iou then best, best_iou = f, iou end
  end
  return best, best_iou
end

-- The fixture's image as it was fed to face-api (edge-padded by border_px).
local function fixture_image(path, border, decode_opts)
  local img = assert(image.load(path, decode_opts))
  if border == 0 then return img end
  return img:pad{left = border, top = border, right = border, bottom = border, mode = "edge"}
end

-- The detector's R (face_bounds.network), measured once per file on a
-- fixed input (the Tony Blair photo) and reused.
local DET_R
local function detector_bound(det)
  if not DET_R then
    local img = assert(image.load("examples/data/faces/Tony_Blair/Tony_Blair_0001.jpg"))
    DET_R = bounds.network(det.net, function() det:detect(img, {input_size = 416, score_threshold = 0.5}) end,
      function() return det.net.output:norm(math.huge) end)
  end
  return DET_R
end

-- Right after det:detect(img): the bound on a box's x, y, width and height
-- against face-api's, as spec/face_detector_spec.lua derives it: grid box
-- outputs within dt = R max|channel| move them by at most
-- 2 dt (cell / 4 + max(w, h)) (sigmoid' <= 1/4, exp relative dt, x2 for
-- its curvature), plus the fixture's printed digits.
local function box_bound(det, img, box)
  local grid, dt = det.net.output, 0
  for a = 0, 4 do
    for k = 1, 4 do dt = math.max(dt, detector_bound(det) * grid:select(2, 5 * a + k):norm(math.huge)) end
  end
  local cell = math.max(img.width, img.height) / grid:shape(3)
  return 2 * dt * (cell / 4 + math.max(box.width, box.height)) + PRINTED
end

-- Runs detector -> landmarks -> descriptor_rect on every entry and
-- compares with face-api, matching faces by IoU. tol = "derived": every
-- point within dp = (the box's bound: the points shift with the box's
-- origin) + R max|out| max(w, h) (the landmark net's bound, mapped to the
-- crop's pixels: d x = d out 112 / iw w = d out max(w, h)) + the doubles'
-- decoding + the printed digits, and the rect equal unless a floor sits
-- within its propagated bound of an integer (then one pixel). This holds
-- while the integer crop is face-api's; a box within its bound of an
-- integer may floor to another crop, which is then all that is checked.
-- tol = {points, rect}: a semantic criterion (another JPEG decoder).
-- Returns the worst landmark difference (px; derived: its ratio to the
-- bound), the worst rect difference, the faces, rect flips and crop flips.
local function compare_end_to_end(det, lm, entries, root, tol, decode_opts)
  local derived = tol == "derived"
  local R = derived and net_bound(lm)
  local worst_points, worst_rect, count, flips, crop_flips = 0, 0, 0, 0, 0
  for _, e in ipairs(entries) do
    local border = e.border_px or 0
    local img = fixture_image(root .. e.file, border, decode_opts)
    local faces = det:detect(img, {input_size = 416, score_threshold = 0.5})
    assert.are.equal(#e.tiny_faces, #faces, e.file .. ": number of faces")
    for i, ref in ipairs(e.tiny_faces) do
      local shifted = {x = ref.box.x + border, y = ref.box.y + border, width = ref.box.width, height = ref.box.height}
      local f, iou = best_match(faces, shifted)
      assert(iou > 0.5, string.format("%s face %d: no detection overlaps (best IoU %.3f)", e.file, i, iou))
      local what = string.format("%s face %d", e.file, i)
      local tol_points, tol_rect, same_crop = not derived and tol.points, derived and 0 or tol.rect, true
      if derived then
        local dbox = box_bound(det, img, shifted)
        local crop = landmarks.clip_box(f.box, img.width, img.height)
        local ref_crop = landmarks.clip_box(shifted, img.width, img.height)
        same_crop = crop.x == ref_crop.x and crop.y == ref_crop.y and crop.width == ref_crop.width
          and crop.height == ref_crop.height
        if not same_crop then
          local b = f.box
          assert(near_integer(b.x, dbox) or near_integer(b.y, dbox) or near_integer(b.x + b.width, 2 * dbox)
            or near_integer(b.y + b.height, 2 * dbox), what .. ": another integer crop than face-api's")
          crop_flips = crop_flips + 1
        end
        local points = assert(lm:predict(img, f.box))
        tol_points = dbox + R * lm.net.output:norm(math.huge) * math.max(crop.width, crop.height)
          + decode_bound(crop.width, crop.height, math.max(math.abs(f.box.x), math.abs(f.box.y))) + PRINTED
        -- that worst-case bound is several pixels on these faces, too wide to
        -- catch a real error alone: the points must also be interchangeable
        -- with face-api's for alignment, within 1 % of the face's size (a
        -- semantic criterion; real differences here are ~1e-3 px)
        tol_points = math.min(tol_points, 0.01 * math.max(shifted.width, shifted.height))
        f.points = points
      end
      if same_crop then
        local points = f.points or assert(lm:predict(img, f.box))
        local dp = max_point_diff(points, ref.landmarks, border)
        assert(dp <= tol_points, string.format("%s: landmarks differ by %.4g px (bound %.3g)", what, dp, tol_points))
        local r = assert(landmarks.descriptor_rect(points, img.width, img.height))
        local dr = rect_diff(r, ref.descriptor_crop_rect, border)
        if dr > tol_rect then
          assert(dr <= tol_rect + 1 and rect_near_integer(points, tol_points),
            string.format("%s: descriptor crop differs by %d px", what, dr))
          flips = flips + 1
        end
        worst_points = math.max(worst_points, derived and dp / tol_points or dp)
        worst_rect = math.max(worst_rect, dr)
      end
      count = count + 1
    end
  end
  return worst_points, worst_rect, count, flips, crop_flips
end

describe("siamese.face.landmarks matches face-api", function()
  -- Not round-off: libjpeg's decode is up to ~30 levels from jpeg-js's
  -- (see the header); 2 px is a semantic criterion (a point of the face).
  it("on the six JPEG photos from face-api's boxes: landmarks and crops within 2 px", function()
    local lm = assert(landmarks.load(MODEL_PATH))
    local worst_points, worst_rect, count = 0, 0, 0
    for _, e in ipairs(fixture("samples.json").images) do
      local img = assert(image.load(FIXTURES .. e.file))
      for i, ref in ipairs(e.tiny_faces) do
        local points = assert(lm:predict(img, ref.box))
        local dp = max_point_diff(points, ref.landmarks, 0)
        local rect = assert(landmarks.descriptor_rect(points, img.width, img.height))
        local dr = rect_diff(rect, ref.descriptor_crop_rect, 0)
        assert(dp <= 2, string.format("%s face %d: landmarks differ by %.3f px", e.file, i, dp))
        assert(dr <= 2, string.format("%s face %d: descriptor crop differs by %d px", e.file, i, dr))
        worst_points, worst_rect, count = math.max(worst_points, dp), math.max(worst_rect, dr), count + 1
      end
    end
    assert.are.equal(20, count)
    print(string.format("\nJPEG photos, face-api's boxes: %d faces, worst landmark %.3f px, crop %d px",
      count, worst_points, worst_rect))
  end)

  it("on the six JPEG photos end to end, decoded as jpeg-js does: landmarks within the derived bound, crops equal",
    function()
    local det = assert(detector.load(DETECTOR_PATH))
    local lm = assert(landmarks.load(MODEL_PATH))
    local worst_points, worst_rect, count, flips, crop_flips = compare_end_to_end(det, lm,
      fixture("samples.json").images, FIXTURES, "derived", {jpeg_decoder = "jpeg-js"})
    print(string.format("\nJPEG photos (jpeg-js decode), end to end: %d faces, worst landmark %.2g of the bound, "
      .. "crop %d px (%d one-pixel flips, %d other crops)", count, worst_points, worst_rect, flips, crop_flips))
  end)

  -- Not round-off: another JPEG decoder (see the header); 8 px and 10 px
  -- are semantic criteria (the same face's points and crop).
  it("on the six JPEG photos end to end, libjpeg's decode: landmarks within 8 px, crops within 10 px", function()
    local det = assert(detector.load(DETECTOR_PATH))
    local lm = assert(landmarks.load(MODEL_PATH))
    local worst_points, worst_rect, count = compare_end_to_end(det, lm, fixture("samples.json").images, FIXTURES,
      {points = 8, rect = 10})
    print(string.format("\nJPEG photos (libjpeg decode), end to end: %d faces, worst landmark %.3f px, crop %d px",
      count, worst_points, worst_rect))
  end)

  local att_present = io.open(ATT_ROOT .. "att_faces/s1/1.pgm", "rb")
  if att_present then att_present:close() end
  if not att_present then
    pending("AT&T faces not found under " .. ATT_ROOT .. "att_faces: landmark conformance on PGMs skipped")
  else
    it("on the 80 edge-padded AT&T PGMs end to end: landmarks within the derived bound, crops equal", function()
      local det = assert(detector.load(DETECTOR_PATH))
      local lm = assert(landmarks.load(MODEL_PATH))
      local entries = fixture("att_faces.json").images
      assert.are.equal(80, #entries)
      local worst_points, worst_rect, count, flips, crop_flips = compare_end_to_end(det, lm, entries, ATT_ROOT,
        "derived")
      print(string.format("\nAT&T: %d faces, worst landmark %.2g of the bound, crop %d px "
        .. "(%d one-pixel flips at near-integer coordinates, %d other crops)", count, worst_points, worst_rect, flips,
        crop_flips))
    end)
  end
end)

describe("siamese.face.landmarks, full FaceLandmark68Net", function()
  it("loads the full net from its file and agrees with the tiny net on a clear face", function()
    local full = assert(landmarks.load("models/faceapi_landmarks68.safetensors"))
    assert.are.equal("full", full.variant)
    assert.are.equal(356840, full.net:nparameters())
    assert.are.same({1, 136}, full.net:forward(T.zeros{1, 3, 112, 112}):shape())
    local tiny = assert(landmarks.load(MODEL_PATH))
    assert.are.equal("tiny", tiny.variant)
    local det = assert(detector.load(DETECTOR_PATH))
    local img = assert(image.load("examples/data/faces/Tony_Blair/Tony_Blair_0001.jpg"))
    local box = assert(det:detect(img)[1]).box
    local a, b = tiny:predict(img, box), full:predict(img, box)
    local mean = 0
    for i = 1, 68 do mean = mean + math.sqrt((a[i][1] - b[i][1]) ^ 2 + (a[i][2] - b[i][2]) ^ 2) / 68 end
    -- not round-off: two differently trained nets; 3 % of the box is a
    -- semantic criterion (the same face's points)
    assert.is_true(mean < 0.03 * box.width, "mean point distance " .. mean)
    assert.has_error(function() landmarks.build_net("huge") end)
  end)
end)

describe("siamese.face.landmarks, flip-averaged prediction", function()
  -- An integer square box around the Tony Blair fixture's face (no padding
  -- in the 112 square, so the crop of the mirrored photo is exactly the
  -- mirrored crop).
  local function blair()
    local img = assert(image.load("examples/data/faces/Tony_Blair/Tony_Blair_0001.jpg"))
    local det = assert(detector.load(DETECTOR_PATH))
    local b = assert(det:detect(img)[1]).box
    local side = math.floor(math.max(b.width, b.height))
    return img, {x = math.floor(b.x), y = math.floor(b.y), width = side, height = side}
  end

  it("MIRROR is an involution fixing only the 10 points on the face's axis", function()
    local M, fixed = landmarks.MIRROR, {}
    assert.are.equal(68, #M)
    for i = 1, 68 do
      assert.are.equal(i, M[M[i]], "involution at " .. i)
      if M[i] == i then fixed[#fixed + 1] = i - 1 end
    end
    -- 0-based: chin 8, nose bridge 27-30, nose tip 33, lip middles 51, 57, 62, 66
    assert.are.same({8, 27, 28, 29, 30, 33, 51, 57, 62, 66}, fixed)
    assert.are.same({16, 15, 14}, {M[1] - 1, M[2] - 1, M[3] - 1})           -- jaw reversed
    assert.are.same({45, 44, 43, 42, 47, 46}, {M[37] - 1, M[38] - 1, M[39] - 1, M[40] - 1, M[41] - 1, M[42] - 1})
  end)

  it("on a real face, each point off the axis and its MIRROR partner are on either side of the nose", function()
    local img, box = blair()
    local lm = assert(landmarks.load(MODEL_PATH))
    local p = assert(lm:predict(img, box))
    local axis = (p[28][1] + p[31][1]) / 2
    local checked = 0
    for i = 1, 68 do
      local j = landmarks.MIRROR[i]
      -- the head is turned a little: points within 5 % of the box of the
      -- axis (chin, lip middles' neighbours) may fall on either side
      if j ~= i and math.abs(p[i][1] - axis) > 0.05 * box.width and math.abs(p[j][1] - axis) > 0.05 * box.width then
        checked = checked + 1
        assert((p[i][1] - axis) * (p[j][1] - axis) < 0,
          string.format("points %d and %d on the same side (%.1f, %.1f; axis %.1f)", i - 1, j - 1, p[i][1], p[j][1], axis))
      end
    end
    assert(checked >= 24, "only " .. checked .. " points off the axis")
  end)

  it("the mirrored crop's points, mapped back, land near the plain ones; flip averages the two", function()
    local img, box = blair()
    for _, path in ipairs{MODEL_PATH, "models/faceapi_landmarks68.safetensors"} do
      local lm = assert(landmarks.load(path))
      local p = assert(lm:predict(img, box))
      local f = assert(lm:predict(img, box, {flip = true}))
      -- flip = (plain + mapped back) / 2, so |flip - plain| is half their gap
      local mean, moved = 0, false
      for i = 1, 68 do
        local d = 2 * math.sqrt((f[i][1] - p[i][1]) ^ 2 + (f[i][2] - p[i][2]) ^ 2)
        mean = mean + d / 68
        -- exact, no tolerance: an ignored flip returns the plain points bit
        -- for bit (and (p + p) / 2 = p in doubles). The derived bound on
        -- two passes of one crop (2 R max|out| side, ~2 px here) is too
        -- wide to tell a real mirrored pass from round-off.
        moved = moved or d > 0
      end
      assert.is_true(moved, path .. ": flip changed nothing")
      -- not round-off: the nets are not trained mirror-symmetric; 5 % of
      -- the box is a semantic criterion (the same face's points)
      assert(mean < 0.05 * box.width, string.format("%s: mean gap %.2f px on a %d px box", path, mean, box.width))
      assert.has_error(function() lm:predict(img, box, true) end,
        "bad argument #3 to 'predict' (options table expected, got boolean)")
    end
  end)

  it("is mirror-equivariant: the mirrored photo's answer is the mirror of the photo's", function()
    local img, box = blair()
    local lm = assert(landmarks.load(MODEL_PATH))
    local R = net_bound(lm)
    local W = img.width
    local a = assert(lm:predict(img, box, {flip = true}))
    local out_max = lm.net.output:norm(math.huge)                      -- the mirrored crop's
    local b = assert(lm:predict(img:flip(), {x = W - box.x - box.width, y = box.y, width = box.width, height = box.height},
      {flip = true}))
    out_max = math.max(out_max, lm.net.output:norm(math.huge))         -- the crop's
    -- Both answers average the net on the same two crops (the mirrored
    -- photo's crop is the mirrored crop), so in exact arithmetic they are
    -- mirrors. Each average is within R max|out| side px of exact (the
    -- mean of two outputs each so): 2x that between the two, plus the
    -- doubles' decoding and mapping (magnitude W).
    local bound = 2 * (R * out_max * box.width + decode_bound(box.width, box.height, W))
    local worst = 0
    for i = 1, 68 do
      local m = b[landmarks.MIRROR[i]]
      worst = math.max(worst, math.abs(W - m[1] - a[i][1]), math.abs(m[2] - a[i][2]))
    end
    assert(worst <= bound, string.format("mirror-equivariance broken by %.4g px (bound %.3g)", worst, bound))
  end)
end)
