-- Specs of siamese.face: the recognizer API over the three networks.
--
-- Descriptor comparisons use a bound derived from the computation
-- (spec/face_bounds.lua), never a tolerance tuned on one machine; the
-- distance thresholds 0.6, 0.45 and 0.25 are semantic (face-api's
-- same-person threshold and fractions of it), not round-off.
local siamese = require "siamese"
local bounds = dofile("spec/face_bounds.lua")
local image = siamese.image

local fr
local function recognizer()
  fr = fr or assert(siamese.face.load{model = "faceapi"})
  return fr
end

local function distance(a, b) return a:clone():sub(b):norm() end

-- The recognition net's R (face_bounds.network), measured once per file on
-- a fixed input (the Tony Blair photo, padded and resized) and reused.
local REC_R
local function rec_bound()
  if not REC_R then
    local r = recognizer()
    local img = assert(image.load("examples/data/faces/Tony_Blair/Tony_Blair_0001.jpg"))
    REC_R = bounds.network(r.recognition.net, function() r:embed(img) end,
      function() return r.recognition.net.output:norm(math.huge) end)
  end
  return REC_R
end

-- Two float32 descriptors of one chip (other batches: other kernels and
-- Winograd tiles) are each within R max|x| per component of the exact x,
-- so their euclidean distance is within 2 R max|x| sqrt(128), where
-- max|x| <= min(max|a|, max|b|) / (1 - R) (the smaller side: a corrupted
-- descriptor cannot widen its own bound); `extra` (per component) adds
-- other roundings; distance() itself rounds each difference once and sums
-- 128 squares (gamma(130) relative).
--
-- For this 30-layer net that worst-case bound is wider than the distance
-- between two people, so it cannot catch a real error alone. The check
-- therefore also requires what the descriptors are for: two descriptors
-- of one chip must be interchangeable at the door, i.e. closer than 1 %
-- of the decision threshold 0.6 (a semantic criterion, not a round-off
-- tolerance: real round-off differences here are about 1e-6).
local INTERCHANGEABLE = 0.01 * 0.6
local function desc_bound(a, b, extra)
  local R = rec_bound()
  local m = math.min(a:norm(math.huge), b:norm(math.huge)) / (1 - R)
  return math.min((2 * R * m + (extra or 0)) * math.sqrt(128) * (1 + bounds.gamma(130)), INTERCHANGEABLE)
end

describe("siamese.face", function()
  it("detects, aligns and embeds every face of a photo", function()
    local img = assert(image.load("spec/fixtures/faceapi/sample1.jpg"))
    local faces = recognizer():embed_all(img)
    assert.are.equal(3, #faces)
    for i, f in ipairs(faces) do
      assert.are.equal(68, #f.landmarks)
      assert.are.same({128}, f.descriptor:shape())
      assert.is_true(f.descriptor:norm() > 1 and f.descriptor:norm() < 2)
      if i > 1 then assert.is_true(faces[i - 1].score >= f.score) end
    end
  end)

  it("embed_faces embeds given faces in one batch, each with its chip, like embed of the chip", function()
    local img = assert(image.load("spec/fixtures/faceapi/sample2.jpg"))
    local faces = recognizer():detect(img)
    rec_bound()
    local out = fr:embed_faces(img, {faces[1]})
    assert.are.equal(1, #out)
    assert.are.equal(faces[1], out[1])
    assert.are.same({150, 150, 3}, {out[1].chip.width, out[1].chip.height, out[1].chip.channels})
    local single = fr:embed(out[1].chip)
    assert.is_true(distance(out[1].descriptor, single) <= desc_bound(out[1].descriptor, single))
    assert.are.same({}, fr:embed_faces(img, {}))
  end)

  it("align gives a 150x150 similarity chip or face-api's crop; embed and embed_batch agree", function()
    local img = assert(image.load("spec/fixtures/faceapi/sample2.jpg"))
    local f = recognizer():detect(img)[1]
    local chip = fr:align(img, f)
    assert.are.same({150, 150, 3}, {chip.width, chip.height, chip.channels})
    local crop = fr:align(img, f, {align = "faceapi"})
    assert.is_true(math.abs(crop.width - crop.height) <= 1)
    local d1, d2 = fr:embed(chip), fr:embed(crop)
    local batch = fr:embed_batch{chip, crop}
    assert.is_true(distance(batch:select(1, 1), d1) <= desc_bound(batch:select(1, 1), d1))
    assert.is_true(distance(batch:select(1, 2), d2) <= desc_bound(batch:select(1, 2), d2))
    -- semantic, not round-off: the same face through both alignments stays
    -- well within face-api's 0.6
    assert.is_true(distance(d1, d2) < 0.45)
    assert.has_error(function() fr:align(img, {box = f.box}) end)
  end)

  it("align cuts dlib's chip, and jittered chips near the plain one", function()
    local img = assert(image.load("spec/fixtures/faceapi/sample2.jpg"))
    local f = recognizer():detect(img)[1]
    local chip = fr:align(img, f, {align = "dlib"})
    assert.are.same({150, 150, 3}, {chip.width, chip.height, chip.channels})
    local d = fr:embed(chip)
    -- semantic: dlib's chip and the similarity chip are the same face
    assert.is_true(distance(d, fr:embed(fr:align(img, f))) < 0.45)
    local seed = 3
    local function rand() seed = (seed * 1103515245 + 12345) % 2147483648; return seed / 2147483648 end
    for _, method in ipairs{"dlib", "similarity"} do
      local chips = fr:jittered_chips(img, f, 3, {align = method}, rand)
      assert.are.equal(4, #chips)
      assert.are.equal(fr:align(img, f, {align = method}):bytes(), chips[1]:bytes())
      for k = 2, 4 do
        assert.are_not.equal(chips[1]:bytes(), chips[k]:bytes())
        -- semantic: a jittered copy is the same face, far below the 0.6 threshold
        assert.is_true(distance(fr:embed(chips[k]), fr:embed(chips[1])) < 0.25)
      end
    end
    -- the mean descriptor of the chip and its jittered copies
    seed = 3
    local mean = fr:embed_jittered(img, f, 3, {align = "dlib"}, rand)
    seed = 3
    local chips = fr:jittered_chips(img, f, 3, {align = "dlib"}, rand)
    local sum = fr:embed(chips[1])
    for k = 2, 4 do sum = sum:add(fr:embed(chips[k])) end
    -- one forward of 4 against 4 of one (other kernels): each descriptor
    -- within R max|desc| per component; each side's mean of 4 (a sum and a
    -- scaling in float32) adds gamma(4) max|desc|
    sum = sum:scale(0.25)
    local m = math.max(mean:norm(math.huge), sum:norm(math.huge))
    assert.is_true(distance(mean, sum) <= desc_bound(mean, sum, 2 * bounds.gamma(4) * m))
    local zero = fr:embed_jittered(img, f, 0, {align = "dlib"})   -- a "mean" of one: scaled by 1, exact
    assert.is_true(distance(zero, d) <= desc_bound(zero, d))
    assert.has_error(function() fr:jittered_chips(img, f, -1) end)
    assert.has_error(function() fr:jittered_chips(img, f, 2, {align = "faceapi"}) end)
  end)

  it("main_face with central takes the face over the photo's centre, never an off-centre one", function()
    local r = recognizer()
    local img = assert(image.load("examples/data/faces/Tony_Blair/Tony_Blair_0001.jpg"))
    local f, how = r:main_face(img, {central = true, fallback = "centre"})
    assert.are.equal("detected", how)
    assert.are.equal(68, #f.landmarks)
    local b = f.box
    assert.is_true(b.x <= img.width / 2 and b.x + b.width >= img.width / 2)
    assert.is_true(b.y <= img.height / 2 and b.y + b.height >= img.height / 2)
    -- the same face moved off-centre: the nearest-face rule still takes it, central does not
    local wide = img:pad{left = 2 * img.width, value = 0}
    local near_face, near_how = r:main_face(wide)
    assert.are.equal("detected", near_how)
    assert.is_true(near_face.box.x > img.width)
    assert.is_nil(r:main_face(wide, {central = true}))
    local c, chow = r:main_face(wide, {central = true, fallback = "centre"})
    assert.are.equal("centre", chow)
    assert.are.equal(0, c.score)
  end)

  it("box_from_landmarks re-derives a detection box from the points", function()
    -- four points at distance 10 from (50, 60): centroid (50, 60), RMS 10
    local pts = {{40, 60}, {60, 60}, {50, 50}, {50, 70}}
    local r = siamese.face.REFINE_BOX
    local b = siamese.face.box_from_landmarks(pts)
    -- doubles: the centroid and RMS of small integers are exact (s = sqrt(100)),
    -- then a few roundings on values below 60 + 10 max(r) on each side
    local mag = 60 + 10 * math.max(math.abs(r.width), math.abs(r.height), math.abs(r.dx), math.abs(r.dy))
    local tol = bounds.gamma64(8) * mag
    assert.is_true(math.abs(b.width - 10 * r.width) <= tol)
    assert.is_true(math.abs(b.height - 10 * r.height) <= tol)
    assert.is_true(math.abs(b.x + b.width / 2 - (50 + 10 * r.dx)) <= tol)
    assert.is_true(math.abs(b.y + b.height / 2 - (60 + 10 * r.dy)) <= tol)
    assert.has_error(function() siamese.face.box_from_landmarks({}) end)
  end)

  it("refines landmarks on the re-derived box (refine passes, default 1)", function()
    local img = assert(image.load("examples/data/faces/Tony_Blair/Tony_Blair_0001.jpg"))
    local r1 = recognizer()
    assert.are.equal(1, r1.refine)
    local r0 = assert(siamese.face.load{model = "faceapi", refine = 0})
    local box = r0.detector:detect(img)[1].box
    local once = r0.landmarks:predict(img, box)
    local p0 = r0:landmarks_in(img, box)
    assert.are.same(once, p0)
    local p1 = r1:landmarks_in(img, box)
    assert.are.same(r1.landmarks:predict(img, siamese.face.box_from_landmarks(once)), p1)
    -- a refinement moves points by a little, not by a face
    local moved = 0
    for i = 1, 68 do moved = math.max(moved, math.abs(p1[i][1] - p0[i][1]), math.abs(p1[i][2] - p0[i][2])) end
    -- semantic: a refinement moves points by a little, not by a face
    assert.is_true(moved > 0 and moved < box.width / 4, "moved " .. moved)
    assert.has_error(function() siamese.face.load{model = "faceapi", refine = -1} end)
    assert.has_error(function() siamese.face.load{model = "faceapi", refine = 1.5} end)
  end)

  it("the same person is nearer than different people", function()
    local r = recognizer()
    local function desc(path)
      local img = assert(image.load(path))
      local f = assert(r:main_face(img, {fallback = "threshold"}))
      return r:embed(r:align(img, f))
    end
    local a1 = desc("examples/data/faces/Serena_Williams/Serena_Williams_0001.jpg")
    local a2 = desc("examples/data/faces/Serena_Williams/Serena_Williams_0002.jpg")
    local b1 = desc("examples/data/faces/Tony_Blair/Tony_Blair_0001.jpg")
    assert.is_true(distance(a1, a2) < 0.6)   -- face-api's same-person threshold (semantic)
    assert.is_true(distance(a1, b1) > 0.6)
  end)

  it("main_face falls back to a low threshold, then the centre; or gives nothing", function()
    local r = recognizer()
    local blank = image.new(200, 200, 3)
    assert.is_nil(r:main_face(blank))
    assert.is_nil(r:main_face(blank, {fallback = "threshold"}))
    local f, how = r:main_face(blank, {fallback = "centre"})
    assert.are.equal("centre", how)
    assert.are.equal(68, #f.landmarks)
    local img = assert(image.load("spec/fixtures/faceapi/sample1.jpg"))
    local g, how2 = r:main_face(img)
    assert.are.equal("detected", how2)
    -- the face nearest the centre, not the best-scored one
    local cx = g.box.x + g.box.width / 2
    -- main_face ranks by squared distance to the centre in doubles: ties
    -- within a few roundings of (x + w / 2 - W / 2)^2 may go either way
    local slack = bounds.gamma64(8) * 2 * img.width
    for _, other in ipairs(r:detect(img)) do
      local ox = other.box.x + other.box.width / 2
      assert.is_true(math.abs(cx - img.width / 2) <= math.abs(ox - img.width / 2) + slack)
    end
  end)

  it("load refuses a bad alignment name and reports a missing models folder", function()
    assert.has_error(function() siamese.face.load{model = "faceapi", align = "mirror"} end)
    local ok, err = siamese.face.load{model = "faceapi", models_dir = "/nonexistent"}
    assert.is_nil(ok)
    assert.matches("nonexistent", err)
  end)
end)
