-- siamese.face.mobilefacenet: the MTCNN + ArcFace-aligned MobileFaceNet
-- pipeline behind siamese.face.load{model = "mobilefacenet"}, with the
-- methods of the face-api recognizer, on the bundled photos.
local siamese = require "siamese"
local mfn = require "siamese.face.mobilefacenet"
local quality = require "siamese.face.quality"
local door = require "siamese.door"
local support = dofile("spec/support.lua")

local function photo(person, i)
  return assert(siamese.image.load(("examples/data/faces/%s/%s_%04d.jpg"):format(person, person, i)))
end

describe("siamese.face.mobilefacenet", function()
  local fr
  setup(function() fr = assert(siamese.face.load{model = "mobilefacenet"}) end)

  it("loads the four networks and names its model by weights, alignment and flip", function()
    assert.are.equal(192, fr.dim)
    assert.are.equal("cosine", fr.metric)
    assert.matches("^mobilefacenet:%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x/arcface%+flip$", fr.model_id)
    local plain = assert(siamese.face.load{model = "mobilefacenet", flip = false})
    assert.matches("/arcface$", plain.model_id)
    assert.are.equal(20, fr.min_face)
    assert.are.equal(40, assert(mfn.load{min_face = 40}).min_face)
    assert.are.equal("standard", fr.detector.convention)
    assert.are.equal("android", assert(siamese.face.load{convention = "android"}).detector.convention)
    local none, err = mfn.load{models_dir = "/nonexistent"}
    assert.is_nil(none)
    assert.matches("/nonexistent", err, 1, true)
  end)

  it("refuses the other pipeline's options and bad values", function()
    support.assert_error(function() siamese.face.load{model = "mobilefacenet", detector = "ssd"} end,
      "option 'detector' is for the faceapi model")
    support.assert_error(function() siamese.face.load{model = "faceapi", min_face = 30} end,
      "option 'min_face' is for the mobilefacenet model")
    support.assert_error(function() siamese.face.load{model = "dlib"} end, "model must be 'mobilefacenet' or 'faceapi'")
    support.assert_error(function() siamese.face.load{detector = "ssd"} end,
      "option 'detector' is for the faceapi model (model = 'faceapi'), not mobilefacenet")
    support.assert_error(function() siamese.face.load{min_fase = 30} end, "unknown option 'min_fase'")
    support.assert_error(function() siamese.face.load{model = "faceapi", flip = true} end,
      "option 'flip' is for the mobilefacenet model")
    support.assert_error(function() siamese.face.load("mobilefacenet") end, "options table expected")
    support.assert_error(function() mfn.load{flip = "yes"} end, "option 'flip' must be a boolean")
    support.assert_error(function() fr:detect("photo.jpg") end, "bad argument #1 to 'detect'")
    support.assert_error(function() fr:align(photo("Tony_Blair", 1), {box = {}}) end, "five points")
    support.assert_error(function() fr:embed_batch({}) end, "non-empty list of chips")
    support.assert_error(function() fr:embed_jittered() end, "no jittered chips")
  end)

  it("finds faces with five points that pass the quality gate; 112x112 chips; unit descriptors", function()
    local img = photo("Colin_Powell", 3)
    local faces = fr:embed_all(img)
    assert.are.equal(1, #faces)
    local f = faces[1]
    assert.are.equal(5, #f.points5)
    assert.is_nil(f.landmarks)
    assert.is_true(f.score >= 0.7)
    local ok, why = quality.check(f)
    assert(ok, why)
    -- the eyes left of and above the mouth corners, inside the box
    assert.is_true(f.points5[1][1] < f.points5[2][1] and f.points5[4][1] < f.points5[5][1])
    assert.is_true(f.points5[1][2] < f.points5[4][2] and f.points5[2][2] < f.points5[5][2])
    for _, p in ipairs(f.points5) do
      assert.is_true(p[1] > f.box.x and p[1] < f.box.x + f.box.width and p[2] > f.box.y and p[2] < f.box.y + f.box.height)
    end
    assert.are.equal(112, f.chip.width)
    assert.are.equal(112, f.chip.height)
    assert.are.equal(192, f.descriptor:size(1))
    -- unit length: |1 - norm| within float32 rounding of a 192-term sum
    assert.is_true(math.abs(f.descriptor:norm() - 1) <= 192 * 2 ^ -23)
  end)

  it("puts two photos of one person nearer than photos of two people", function()
    local function desc(person, i)
      local img = photo(person, i)
      local f = assert(fr:main_face(img))
      return fr:embed(fr:align(img, f))
    end
    local c3, c4, t1, s1 = desc("Colin_Powell", 3), desc("Colin_Powell", 4), desc("Tony_Blair", 1), desc("Serena_Williams", 1)
    local same = door.distance(c3, c4, "cosine")
    for _, other in ipairs{t1, s1} do
      assert.is_true(same < door.distance(c3, other, "cosine"))
    end
    -- a chip of another size is resized, not refused
    local img = photo("Colin_Powell", 3)
    local f = assert(fr:main_face(img))
    local big = fr:align(img, f):resize(150, 150)
    assert.is_true(door.distance(fr:embed(big), c3, "cosine") < same)
  end)

  it("adds the mirrored chip's descriptor (flip), or gives the chip's alone", function()
    local arcface = require "siamese.face.arcface"
    local img = photo("Serena_Williams", 2)
    local f = assert(fr:main_face(img))
    local chip = fr:align(img, f)
    -- the same forward as embed's ([chip, mirror] in one batch): equal up to the rounding of
    -- normalising a 192-D float32 vector (each entry within a few ulps of 1)
    local bound = 192 * 2 ^ -22
    local both = arcface.embed(fr.net, {chip}, {flip = true, normalize = true}):select(1, 1)
    assert.is_true(door.distance(fr:embed(chip), both, "cosine") <= bound)
    local plain = assert(mfn.load{flip = false})
    local alone = arcface.embed(fr.net, {chip}, {normalize = true}):select(1, 1)
    assert.is_true(door.distance(plain:embed(plain:align(img, f)), alone, "cosine") <= bound)
    -- embed_batch also gives each chip's own embedding norm, before normalisation and the mirror
    local e, norms = fr:embed_batch({chip, chip:flip()})
    assert.are.same({2, 192}, e:shape())
    assert.are.equal(2, #norms)
    -- the same forward (a batch of the same two chips): the same embedding, so the same norm
    -- up to the rounding of the norm's own 192-term sum
    local raw = arcface.embed(fr.net, {chip, chip:flip()}):select(1, 1):norm()
    assert.is_true(math.abs(norms[1] - raw) <= raw * 192 * 2 ^ -23)
    assert.is_true(norms[1] >= fr.min_embedding_norm, "a clear face passes the norm check")
    -- the mirror changes the descriptor, by far less than another photo of the person does
    local other = photo("Serena_Williams", 3)
    local g = assert(fr:main_face(other))
    local apart = door.distance(both, fr:embed(fr:align(other, g)), "cosine")
    local d = door.distance(both, alone, "cosine")
    assert.is_true(d > bound and d < apart)
  end)

  it("main_face: nearest the centre, the centre-containing face, and the fallbacks", function()
    local img = photo("Tony_Blair", 1)
    local f, how = fr:main_face(img)
    assert.are.equal("detected", how)
    local g = fr:main_face(img, {central = true})
    assert.are.equal(f.box.x, g.box.x)
    -- a photo with no face: nil without a fallback, the centred region's points with "centre"
    local blank = siamese.image.new(160, 160, 3)
    assert.is_nil(fr:main_face(blank))
    assert.is_nil(fr:main_face(blank, {fallback = "threshold"}))
    local c, chow = fr:main_face(blank, {fallback = "centre"})
    assert.are.equal("centre", chow)
    assert.are.equal(0, c.score)
    assert.are.equal(5, #c.points5)
    assert.is_false((quality.check(c))) -- a fallback face never passes the gate at the normal score
  end)

  it("is the door's pipeline on request, with cosine distances", function()
    local enc = assert(door.encoder{pipeline = "mobilefacenet"})
    assert.are.equal("cosine", enc.metric)
    assert.are.equal(fr.model_id, enc.model_id)
    local f = assert(enc.main(photo("Serena_Williams", 1)))
    assert.is_true(f.quality.ok)
    assert.are.equal(192, f.descriptor:size(1))
  end)
end)
