-- Specs of siamese.face: the recognizer API over the three networks.
local siamese = require "siamese"
local image = siamese.image

local fr
local function recognizer()
  fr = fr or assert(siamese.face.load())
  return fr
end

local function distance(a, b) return a:clone():sub(b):norm() end

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
    local out = fr:embed_faces(img, {faces[1]})
    assert.are.equal(1, #out)
    assert.are.equal(faces[1], out[1])
    assert.are.same({150, 150, 3}, {out[1].chip.width, out[1].chip.height, out[1].chip.channels})
    assert.is_true(distance(out[1].descriptor, fr:embed(out[1].chip)) < 1e-5)
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
    assert.is_true(distance(batch:select(1, 1), d1) < 1e-5)
    assert.is_true(distance(batch:select(1, 2), d2) < 1e-5)
    -- the same face through both alignments stays well within face-api's 0.6
    assert.is_true(distance(d1, d2) < 0.45)
    assert.has_error(function() fr:align(img, {box = f.box}) end)
  end)

  it("align cuts dlib's chip, and jittered chips near the plain one", function()
    local img = assert(image.load("spec/fixtures/faceapi/sample2.jpg"))
    local f = recognizer():detect(img)[1]
    local chip = fr:align(img, f, {align = "dlib"})
    assert.are.same({150, 150, 3}, {chip.width, chip.height, chip.channels})
    local d = fr:embed(chip)
    assert.is_true(distance(d, fr:embed(fr:align(img, f))) < 0.45)
    local seed = 3
    local function rand() seed = (seed * 1103515245 + 12345) % 2147483648; return seed / 2147483648 end
    for _, method in ipairs{"dlib", "similarity"} do
      local chips = fr:jittered_chips(img, f, 3, {align = method}, rand)
      assert.are.equal(4, #chips)
      assert.are.equal(fr:align(img, f, {align = method}):bytes(), chips[1]:bytes())
      for k = 2, 4 do
        assert.are_not.equal(chips[1]:bytes(), chips[k]:bytes())
        -- a jittered copy is the same face: far below the 0.6 threshold
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
    -- (one forward of 4 against 4 of one: other kernels, ~1e-5 of float rounding)
    assert.is_true(distance(mean, sum:scale(0.25)) < 1e-4)
    assert.is_true(distance(fr:embed_jittered(img, f, 0, {align = "dlib"}), d) < 1e-5)
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
    assert.is_true(math.abs(b.width - 10 * r.width) < 1e-9)
    assert.is_true(math.abs(b.height - 10 * r.height) < 1e-9)
    assert.is_true(math.abs(b.x + b.width / 2 - (50 + 10 * r.dx)) < 1e-9)
    assert.is_true(math.abs(b.y + b.height / 2 - (60 + 10 * r.dy)) < 1e-9)
    assert.has_error(function() siamese.face.box_from_landmarks({}) end)
  end)

  it("refines landmarks on the re-derived box (refine passes, default 1)", function()
    local img = assert(image.load("examples/data/faces/Tony_Blair/Tony_Blair_0001.jpg"))
    local r1 = recognizer()
    assert.are.equal(1, r1.refine)
    local r0 = assert(siamese.face.load{refine = 0})
    local box = r0.detector:detect(img)[1].box
    local once = r0.landmarks:predict(img, box)
    local p0 = r0:landmarks_in(img, box)
    assert.are.same(once, p0)
    local p1 = r1:landmarks_in(img, box)
    assert.are.same(r1.landmarks:predict(img, siamese.face.box_from_landmarks(once)), p1)
    -- a refinement moves points by a little, not by a face
    local moved = 0
    for i = 1, 68 do moved = math.max(moved, math.abs(p1[i][1] - p0[i][1]), math.abs(p1[i][2] - p0[i][2])) end
    assert.is_true(moved > 0 and moved < box.width / 4, "moved " .. moved)
    assert.has_error(function() siamese.face.load{refine = -1} end)
    assert.has_error(function() siamese.face.load{refine = 1.5} end)
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
    assert.is_true(distance(a1, a2) < 0.6)
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
    for _, other in ipairs(r:detect(img)) do
      local ox = other.box.x + other.box.width / 2
      assert.is_true(math.abs(cx - img.width / 2) <= math.abs(ox - img.width / 2) + 1e-9)
    end
  end)

  it("load refuses a bad alignment name and reports a missing models folder", function()
    assert.has_error(function() siamese.face.load{align = "mirror"} end)
    local ok, err = siamese.face.load{models_dir = "/nonexistent"}
    assert.is_nil(ok)
    assert.matches("nonexistent", err)
  end)
end)
