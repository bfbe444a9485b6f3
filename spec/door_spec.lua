-- Specs of siamese.door (decisions on faces that pass the quality gate,
-- enrolment checks, default thresholds), siamese.face.quality,
-- siamese.names and the gallery's threshold range.
local siamese = require "siamese"
local door = require "siamese.door"
local quality = require "siamese.face.quality"
local names = require "siamese.names"
local T = require "siamese.tensor"
local support = dofile("spec/support.lua")

local FACES = "examples/data/faces"
local function photo(name, i) return string.format("%s/%s/%s_%04d.jpg", FACES, name, name, i) end

describe("siamese.names", function()
  it("trims names and refuses empty, overlong, invalid and invisible ones", function()
    assert.are.equal("Alice", names.check("  Alice \t"))
    assert.are.equal("Zoë Ünal", names.check("\u{00A0}Zoë Ünal\u{3000}"))
    local cases = {
      {"", "empty"}, {"   ", "empty"}, {("x"):rep(65), "at most 64"}, {"a\255b", "not valid UTF-8"},
      {"a\0b", "U+0000"}, {"a\1b", "U+0001"}, {"a\127b", "U+007F"}, {"a\u{85}b", "U+0085"},
      {"Bob\u{200B}", "U+200B"}, {"\u{202E}nhoJ", "U+202E"}, {"Al\u{200D}ice", "U+200D"},
      {"A\u{2066}B", "U+2066"}, {"A\u{FEFF}B", "U+FEFF"}, {"A\u{00AD}B", "U+00AD"}, {"A\u{E0041}", "U+E0041"},
      {"A\u{061C}B", "U+061C"}, {"line\nbreak", "U+000A"},
    }
    for _, c in ipairs(cases) do
      local name, err = names.check(c[1])
      assert.is_nil(name, c[2])
      assert.truthy(err:find(c[2], 1, true), err)
    end
    assert.matches("NAME is empty", select(2, names.check("", "NAME")), 1, true)
    assert.matches("must be a string", select(2, names.check(5)), 1, true)
  end)

  it("takes the fast path for printable ASCII with the same results as the full check", function()
    -- every printable ASCII string of these shapes: what the full rules say
    -- (trim ASCII white space; 1..64 bytes; nothing refused) and key = lower
    local samples = {"A", "a b", " lead", "trail ", "  ", "x\ty", "Ann-Marie O'Neil", "~!@#$%^&*()_+{}|:<>?",
                     string.rep("x", 64), string.rep("y", 65), " " .. string.rep("z", 64), "Ab\127", "\0x"}
    math.randomseed(3)
    for _ = 1, 2000 do
      local n, t = math.random(0, 70), {}
      for i = 1, n do t[i] = string.char(math.random(0x20, 0x7E)) end
      samples[#samples + 1] = table.concat(t)
    end
    for _, raw in ipairs(samples) do
      local trimmed = raw:match("^[ \t-\r]*(.-)[ \t-\r]*$")
      local want = trimmed ~= "" and #trimmed <= 64 and not trimmed:find("[%z\1-\31\127]") and trimmed or nil
      assert.are.equal(want, (names.check(raw)), ("%q"):format(raw))
      if want then assert.are.equal(want:lower(), names.key(want)) end
    end
  end)

  it("keys names by case, so that twins are found", function()
    assert.are.equal(names.key("ÉLODIE Ångström"), names.key("élodie ångström"))
    assert.are.equal(names.key("ΣΩΚΡΆΤΗΣ"):sub(1, 2), names.key("σωκράτης"):sub(1, 2))
    assert.are.equal(names.key("ИВАН"), names.key("иван"))
    assert.are_not.equal(names.key("Ann"), names.key("Anne"))
    assert.are.equal("Alice", names.same_as("ALICE", {"Bob", "Alice"}))
    assert.is_nil(names.same_as("Alice", {"Alice", "Bob"}))
  end)
end)

describe("the gallery's names and thresholds", function()
  local function new(t, metric)
    return siamese.gallery.new{dim = 4, metric = metric or "euclidean", threshold = t or 0.6, model = "m:1"}
  end

  it("refuses thresholds outside (0, 2) at creation, in set_threshold and in a loaded file", function()
    for _, t in ipairs{0, -0.1, 2, 5, 16, 1 / 0, -1 / 0, 0 / 0} do
      support.assert_error(function() new(t) end, "threshold", "outside (0, 2)")
      support.assert_error(function() new(t, "cosine") end, "threshold", "cosine")
      support.assert_error(function() new(0.5):set_threshold(t) end, "set_threshold", "outside (0, 2)")
    end
    local g = new(1.999)
    g:set_threshold(0.001)
    assert.are.equal(0.001, g:threshold())
    -- a file whose threshold was tampered with is refused, not trusted
    local dir = support.temp_dir("door")
    local path = dir .. "/g.gallery"
    g:add("a", T.new{1, 0, 0, 0})
    assert(g:save(path))
    local bytes = support.read_file(path)
    for _, t in ipairs{5, 1 / 0, 0, -1} do
      local bad = bytes:sub(1, 24) .. string.pack("<d", t) .. bytes:sub(33)
      -- the CRC-32 of the body follows it: recompute it so that only the threshold is wrong
      local body = bad:sub(1, #bad - 4)
      bad = body .. string.pack("<I4", siamese.hash.crc32(body))
      support.write_file(path, bad)
      local loaded, err = siamese.gallery.load(path)
      assert.is_nil(loaded)
      assert.matches("threshold .* outside %(0, 2%), not trusted", err)
    end
    support.remove_dir(dir)
  end)

  it("checks names in add, add_many and rename, and refuses case twins", function()
    local g = new()
    assert.are.equal(1, g:add("  Alice ", T.new{1, 0, 0, 0}))
    assert.is_true(g:has("Alice"))
    support.assert_error(function() g:add("ALICE", T.new{0, 1, 0, 0}) end, "only by case", "Alice")
    support.assert_error(function() g:add("Bob\u{200B}", T.new{0, 1, 0, 0}) end, "gallery:add", "U+200B")
    support.assert_error(function() g:add_many({"Carol", "\u{202E}x"}, T.zeros{2, 4}) end, "names[2]", "U+202E")
    support.assert_error(function() g:add_many({"Carol", "CAROL"}, T.zeros{2, 4}) end, "only by case")
    assert.are.equal(1, g:size()) -- nothing half-added
    g:add("Bob", T.new{0, 1, 0, 0})
    support.assert_error(function() g:rename("Bob", "alice") end, "only by case")
    support.assert_error(function() g:rename("Bob", "B\u{2066}ob") end, "U+2066")
    assert.is_true(g:rename("Alice", "ALICE")) -- one's own name in another case
    assert.is_true(g:has("ALICE"))
  end)

  it("refuses a loaded file holding a refused name or case twins", function()
    local dir = support.temp_dir("door")
    local path = dir .. "/g.gallery"
    local g = new()
    g:add("Alicf", T.new{1, 0, 0, 0})
    g:add("ALICE", T.new{0, 1, 0, 0})
    assert(g:save(path))
    -- "Alicf" -> "alice" (a twin of ALICE) and -> "Al\1ce", both with a valid CRC
    for _, repl in ipairs{"alice", "Al\1ce"} do
      local bytes = support.read_file(path)
      local body = bytes:sub(1, #bytes - 4):gsub("Alicf", repl)
      support.write_file(path, body .. string.pack("<I4", siamese.hash.crc32(body)))
      local loaded, err = siamese.gallery.load(path)
      assert.is_nil(loaded, repl)
      assert.matches("not trusted", err)
      assert(g:save(path))
    end
    support.remove_dir(dir)
  end)
end)

describe("siamese.face.quality (faceapi pipeline: 68 landmarks)", function()
  local fr
  setup(function() fr = assert(siamese.face.load{model = "faceapi"}) end)

  it("passes a clear face and says how it measured it", function()
    local img = assert(siamese.image.load(photo("Serena_Williams", 1)))
    local f = assert(fr:main_face(img))
    local ok, reason, q = quality.check(f)
    assert.is_true(ok)
    assert.is_nil(reason)
    assert.is_true(q.score >= 0.5 and q.size >= 40 and q.overlap >= 0.55)
    assert.are.equal(5, #quality.points5(f))
  end)

  it("refuses a low score, a small face, landmarks off the box and an implausible geometry", function()
    local img = assert(siamese.image.load(photo("Serena_Williams", 1)))
    local f = assert(fr:main_face(img))
    local function with(changes)
      local g = {box = {}, landmarks = f.landmarks, score = f.score}
      for k, v in pairs(f.box) do g.box[k] = v end
      for k, v in pairs(changes) do g[k] = v end
      return g
    end
    local ok, reason = quality.check(with{score = 0.3})
    assert.is_false(ok)
    assert.are.equal("no face at score >= 0.5", reason)
    ok, reason = quality.check(f, {min_size = 400})
    assert.is_false(ok)
    assert.matches("^face too small: %d+ px %(at least 400%)$", reason)
    local shifted = with{}
    shifted.box.x = shifted.box.x + shifted.box.width * 0.8
    ok, reason = quality.check(shifted)
    assert.is_false(ok)
    assert.matches("landmarks do not fit the face", reason, 1, true)
    -- upside down: the mouth above the eyes
    local flipped = {}
    for i, p in ipairs(f.landmarks) do flipped[i] = {p[1], 2 * (f.box.y + f.box.height / 2) - p[2]} end
    ok, reason = quality.check({box = f.box, score = f.score, points5 = quality.points5{landmarks = flipped}})
    assert.is_false(ok)
    assert.is_truthy(reason:find("rolled", 1, true) or reason:find("nose", 1, true) or reason:find("mouth", 1, true))
    -- misuse raises
    support.assert_error(function() quality.check(nil) end, "quality.check", "bad argument #1")
    support.assert_error(function() quality.check(f, {min_size = "x"}) end, "min_size")
  end)
end)

describe("siamese.face.quality.point_measures", function()
  it("measures five points in eye distances along and across the eye line", function()
    local m = quality.point_measures{{0, 0}, {10, 0}, {5, 5}, {2, 10}, {8, 10}}
    assert.are.same({iod = 10, roll = 0, nose_along = 0, nose_below = 0.5, mouth_along = 0, mouth_below = 1,
                     mouth_width = 0.6}, m)
    -- turned 90 degrees: the same measures, rolled
    local r = quality.point_measures{{0, 0}, {0, 10}, {-5, 5}, {-10, 2}, {-10, 8}}
    assert.are.equal(90, r.roll)
    assert.is_true(math.abs(r.nose_below - 0.5) < 1e-12 and math.abs(r.mouth_width - 0.6) < 1e-12)
  end)
end)

describe("siamese.face.quality.check_embedding", function()
  it("refuses a face whose embedding norm is below the minimum, and applies only where both are known", function()
    assert.is_true(quality.check_embedding({embedding_norm = 50}, 40))
    local ok, why = quality.check_embedding({embedding_norm = 23.64}, 40)
    assert.is_false(ok)
    assert.are.equal("not a face to the recognition network (embedding norm 23.6 < 40)", why)
    assert.is_true(quality.check_embedding({embedding_norm = 40}, 40))
    assert.is_true(quality.check_embedding({}, 40))                    -- a pipeline without norms
    assert.is_true(quality.check_embedding({embedding_norm = 1}, nil)) -- no minimum
    support.assert_error(function() quality.check_embedding(nil, 40) end, "quality.check_embedding", "bad argument #1")
    support.assert_error(function() quality.check_embedding({}, -1) end, "bad argument #2")
    support.assert_error(function() quality.check_embedding({}, 0 / 0) end, "bad argument #2")
  end)
end)

describe("siamese.door (faceapi pipeline)", function()
  local enc, g, d
  setup(function()
    enc = assert(door.encoder{pipeline = "faceapi"})
    g = siamese.gallery.new{dim = enc.dim, metric = "euclidean", threshold = 0.6, model = enc.model_id}
    for _, p in ipairs{{"Tony_Blair", 1}, {"Serena_Williams", 1}} do
      local f = assert(enc.main(assert(siamese.image.load(photo(p[1], p[2])))))
      g:add(p[1], f.descriptor, enc.model_id)
    end
    d = assert(door.new{gallery = g, encoder = enc})
  end)

  it("gives default thresholds per model and metric, and checks thresholds", function()
    assert.are.equal(0.6, door.default_threshold(enc.model_id, "euclidean"))
    local cos = door.default_threshold(enc.model_id, "cosine")
    assert.is_true(cos > 0 and cos < 0.6)
    assert.are.equal(0.5 ^ 2 / 2, door.default_threshold("att:0123", "cosine", 0.5))
    assert.are.equal(0.5, door.default_threshold("att:0123", "euclidean", 0.5))
    assert.are.equal(0.3, door.check_threshold(0.3, "cosine"))
    for _, t in ipairs{0, 2, 5, 1 / 0, 0 / 0, "0.5"} do
      local ok, err = door.check_threshold(t, "cosine", "--threshold")
      assert.is_nil(ok)
      assert.matches("--threshold must be a number in (0, 2) for cosine distances", err, 1, true)
    end
    local bad, err = door.new{gallery = g, encoder = enc, threshold = 7}
    assert.is_nil(bad)
    assert.matches("in (0, 2)", err, 1, true)
  end)

  it("verifies a claim on a real face, and says why it refuses", function()
    local r = assert(d:verify("Tony_Blair", assert(siamese.image.load(photo("Tony_Blair", 2)))))
    assert.is_true(r.accepted)
    assert.are.equal("match", r.reason)
    assert.is_true(r.distance <= r.threshold and r.quality.ok and r.score >= 0.5)
    r = assert(d:verify("Serena_Williams", assert(siamese.image.load(photo("Tony_Blair", 2)))))
    assert.is_false(r.accepted)
    assert.are.equal("distance above threshold", r.reason)
    -- no face at the detector's normal score: refused, no distance, whatever the claim
    r = assert(d:verify("Tony_Blair", assert(siamese.image.load(photo("Colin_Powell", 1)))))
    assert.is_false(r.accepted)
    assert.is_nil(r.distance)
    assert.are.equal("no face at score >= 0.5", r.reason)
    local none, err = d:verify("Nobody", assert(siamese.image.load(photo("Tony_Blair", 2))))
    assert.is_nil(none)
    assert.matches("unknown identity 'Nobody' (enrolled: 2 identities)", err, 1, true)
  end)

  it("uses a fallback only when asked, and the gate still applies then", function()
    local img = assert(siamese.image.load(photo("Colin_Powell", 1)))
    local lenient = assert(door.encoder{pipeline = "faceapi", fallback = "threshold"})
    local f = lenient.main(img)
    assert.is_table(f)
    assert.are.equal("low_threshold", f.how)
    assert.is_true(f.score < 0.5)
    assert.is_true(f.quality.ok) -- a real face at a low score, accepted at the fallback's score 0.1
    -- a small downscaled copy: the same photo's face below 40 pixels is refused even with the fallback
    local small = img:resize(60, 60)
    local s = lenient.main(small)
    assert.is_true(s == nil or not s.quality.ok)
  end)

  it("identifies faces, and lists the refused ones with their reason", function()
    local group = assert(siamese.image.load("spec/fixtures/faceapi/sample1.jpg"))
    local faces = d:identify(group)
    assert.is_true(#faces >= 2)
    for _, r in ipairs(faces) do
      assert.is_false(r.accepted)
      assert.is_string(r.reason)
      if not r.quality.ok then assert.is_nil(r.distance) end
    end
    local tony = d:identify(assert(siamese.image.load(photo("Tony_Blair", 3))))
    assert.are.equal(1, #tony)
    assert.are.equal("Tony_Blair", tony[1].name)
    assert.is_true(tony[1].accepted)
  end)

  it("gates a whole-photo encoder (AT&T crops) with the face detector too", function()
    local att = assert(door.encoder{model = "att"})
    local function load(s_, i) return assert(siamese.image.load(string.format("examples/data/att_faces/s%d/%d.pgm", s_, i))) end
    local ga = siamese.gallery.new{dim = att.dim, metric = "euclidean", threshold = 0.6, model = att.model_id}
    local f = att.main(load(1, 1))
    assert.is_true(f.quality.ok, f.quality.reason)
    ga:add("s1", f.descriptor, att.model_id)
    local da = assert(door.new{gallery = ga, encoder = att})
    local r = assert(da:verify("s1", load(1, 3)))
    assert.is_true(r.accepted, r.reason)
    assert.is_true(r.box.width >= 40 and r.score >= 0.5)
    r = assert(da:verify("s1", load(2, 3)))
    assert.is_false(r.accepted)
    -- a picture without a face: refused before any distance
    local flat = siamese.image.new(92, 112, 1, ("\120"):rep(92 * 112))
    r = assert(da:verify("s1", flat))
    assert.is_false(r.accepted)
    assert.is_nil(r.distance)
    assert.are.equal("no face at score >= 0.5", r.reason)
    -- evaluation embeds the whole photo without the gate
    assert.is_userdata(att.main(flat, true).descriptor)
  end)

  it("checks enrolments: intent, the same photo, look-alikes and strangers", function()
    local function desc(name, i) return assert(enc.main(assert(siamese.image.load(photo(name, i))))).descriptor end
    local ok, why = d:check_enrolment("Tony_Blair", desc("Tony_Blair", 2), "new")
    assert.is_false(ok)
    assert.matches("already enrolled", why)
    ok, why = d:check_enrolment("Colin_Powell", desc("Colin_Powell", 3), "add")
    assert.is_false(ok)
    assert.matches("not enrolled", why)
    ok, why = d:check_enrolment("Tony_Blair", desc("Tony_Blair", 1), "add")
    assert.is_false(ok)
    assert.matches("this photo is already enrolled as 'Tony_Blair'", why, 1, true)
    ok = d:check_enrolment("Tony_Blair", desc("Tony_Blair", 1), "add", true)
    assert.is_false(ok) -- the same photo, even with force
    assert.is_true(d:check_enrolment("Tony_Blair", desc("Tony_Blair", 2), "add"))
    -- another photo of Tony Blair under a new name: a look-alike of an enrolled person
    local details
    ok, why, details = d:check_enrolment("Bill_Gates", desc("Tony_Blair", 2), "new")
    assert.is_false(ok)
    assert.matches("within the threshold 0.600 of Tony_Blair at 0%.%d+", why)
    assert.are.equal("Tony_Blair", details[1].name)
    assert.is_true(d:check_enrolment("Bill_Gates", desc("Tony_Blair", 2), "new", true))
    -- Serena Williams added as Tony Blair: too far from his templates, and near hers
    ok, why = d:check_enrolment("Tony_Blair", desc("Serena_Williams", 2), "add")
    assert.is_false(ok)
    assert.matches("Serena_Williams", why)
    assert.is_true(d:check_enrolment("Colin_Powell", desc("Colin_Powell", 3), "new"))
  end)
end)

describe("siamese.door (the default pipeline: MTCNN + MobileFaceNet)", function()
  local enc, g, d
  setup(function()
    enc = assert(door.encoder{})
    g = siamese.gallery.new{dim = enc.dim, metric = enc.metric, threshold = enc.threshold, model = enc.model_id}
    for _, p in ipairs{{"Tony_Blair", 1}, {"Serena_Williams", 1}} do
      local f = assert(enc.main(assert(siamese.image.load(photo(p[1], p[2])))))
      g:add(p[1], f.descriptor, enc.model_id)
    end
    d = assert(door.new{gallery = g, encoder = enc})
  end)

  it("is the default: cosine on 192-D unit descriptors, with the calibrated threshold", function()
    assert.matches("^mobilefacenet:%x+/arcface%+flip$", enc.model_id)
    assert.are.equal(192, enc.dim)
    assert.are.equal("cosine", enc.metric)
    assert.are.equal(0.549, enc.threshold)
    assert.are.equal(door.DEFAULT_THRESHOLDS.mobilefacenet.euclidean, door.default_threshold(enc.model_id, "euclidean"))
  end)

  it("verifies a claim on a real face, and says why it refuses", function()
    local tony2 = assert(siamese.image.load(photo("Tony_Blair", 2)))
    local r = assert(d:verify("Tony_Blair", tony2))
    assert.is_true(r.accepted, r.reason)
    assert.are.equal("match", r.reason)
    assert.is_true(r.distance <= r.threshold and r.quality.ok and r.score >= 0.5)
    r = assert(d:verify("Serena_Williams", tony2))
    assert.is_false(r.accepted)
    assert.are.equal("distance above threshold", r.reason)
    -- a flat picture: refused before any distance
    r = assert(d:verify("Tony_Blair", siamese.image.new(250, 250, 3, ("\128"):rep(250 * 250 * 3))))
    assert.is_false(r.accepted)
    assert.is_nil(r.distance)
    assert.are.equal("no face at score >= 0.5", r.reason)
  end)

  it("identifies the enrolled person and refuses strangers in a group photo", function()
    local tony = d:identify(assert(siamese.image.load(photo("Tony_Blair", 3))))
    assert.are.equal(1, #tony)
    assert.are.equal("Tony_Blair", tony[1].name)
    assert.is_true(tony[1].accepted)
    local faces = d:identify(assert(siamese.image.load("spec/fixtures/faceapi/sample1.jpg")))
    assert.are.equal(3, #faces)
    for _, r in ipairs(faces) do
      assert.is_false(r.accepted)
      assert.is_string(r.reason)
    end
  end)

  it("refuses what MTCNN takes for a face but the network does not: the print of a dress", function()
    -- face-api's sample4.jpg: four people and, at score 0.96, the pattern of a dress (70x81 at
    -- 999,902), whose five points lie in a face's geometry
    local faces = d:identify(assert(siamese.image.load("spec/fixtures/faceapi/sample4.jpg")))
    local dress, real = nil, 0
    for _, r in ipairs(faces) do
      if r.box.y > 800 then dress = r elseif r.quality.ok then real = real + 1 end
    end
    assert.is_table(dress)
    assert.is_true(dress.score >= 0.9 and dress.box.width >= 40)
    assert.is_false(dress.quality.ok)
    assert.is_false(dress.accepted)
    assert.is_nil(dress.distance)
    assert.matches("^not a face to the recognition network %(embedding norm [%d.]+ < [%d.]+%)$", dress.reason)
    assert.is_true(dress.quality.embedding_norm < enc.recognizer.min_embedding_norm)
    assert.are.equal(4, real) -- the four people pass
  end)

  it("refuses a look-alike enrolment at the calibrated threshold", function()
    local f = assert(enc.main(assert(siamese.image.load(photo("Tony_Blair", 2)))))
    local ok, why = d:check_enrolment("Bill_Gates", f.descriptor, "new")
    assert.is_false(ok)
    assert.matches("within the threshold 0.549 of Tony_Blair at 0%.%d+", why)
  end)
end)
