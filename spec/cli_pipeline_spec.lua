-- Specs of --pipeline mobilefacenet across the command line (compare,
-- enroll, identify, verify, embed, eval folder, serve) and of the pipeline
-- options' usage errors, run as separate processes on the bundled LFW
-- photos (examples/data/faces). The MTCNN + MobileFaceNet pipeline gives
-- unit-length 192-D descriptors compared by cosine distance; its faces
-- carry five points, not 68 landmarks.
local json = require "siamese.json"
local door = require "siamese.door"
local support = dofile("spec/support.lua")

local FACES = "examples/data/faces"
local q, run = support.q, support.siamese
local has_sqlite = pcall(require, "luasql.sqlite3") -- enroll writes the audit log
local MFN_COSINE = door.DEFAULT_THRESHOLDS.mobilefacenet.cosine

local function photo(name, i)
  return string.format("%s/%s/%s_%04d.jpg", FACES, name, name, i)
end

-- A Lua pattern matching a number printed with %.3f.
local function p3(v) return (string.format("%.3f", v):gsub("%.", "%%.")) end

describe("--pipeline mobilefacenet", function()
  local dir
  setup(function() dir = support.temp_dir("cli_pipeline") end)
  teardown(function() os.execute("rm -rf " .. q(dir)) end)

  it("compare: the same person accepted, different people refused, with cosine distances", function()
    local out, err, code = run("compare --pipeline mobilefacenet " .. photo("Tony_Blair", 1) .. " "
      .. photo("Tony_Blair", 2))
    assert.are.equal(0, code, err)
    assert.matches("^same person %(cosine distance 0%.%d%d%d <= threshold " .. p3(MFN_COSINE) .. "%)\n$", out)
    out, err, code = run("compare --pipeline mobilefacenet --json " .. photo("Tony_Blair", 1) .. " "
      .. photo("Serena_Williams", 1))
    assert.are.equal(1, code, err)
    local r = assert(json.decode(out))
    assert.is_false(r.accepted)
    assert.are.equal("cosine", r.metric)
    assert.are.equal(MFN_COSINE, r.threshold)
    assert.is_true(r.distance > r.threshold)
    assert.are.equal("distance above threshold", r.reason)
    assert.matches("^mobilefacenet:%x+/arcface%+flip$", r.model)
    for _, p in ipairs(r.photos) do
      assert.is_true(p.quality.ok)
      assert.is_true(p.box.width > 40)
    end
    -- the faceapi pipeline stays available: euclidean, its own threshold
    out, err, code = run("compare --pipeline faceapi " .. photo("Tony_Blair", 1) .. " " .. photo("Tony_Blair", 2))
    assert.are.equal(0, code, err)
    assert.matches("^same person %(distance 0%.%d%d%d <= threshold 0%.600%)\n$", out)
  end)

  it("embed --json: 192 numbers of unit length and five points per face, no 68 landmarks", function()
    local out, err, code = run("embed --pipeline mobilefacenet --json " .. photo("Tony_Blair", 1))
    assert.are.equal(0, code, err)
    local doc = assert(json.decode(out))
    local faces = doc.images[1].faces
    assert.are.equal(1, #faces)
    local f = faces[1]
    assert.are.equal(192, #f.descriptor)
    local ss = 0
    for _, v in ipairs(f.descriptor) do
      assert.is_number(v)
      ss = ss + v * v
    end
    support.near(math.sqrt(ss), 1, 1e-4, "descriptor norm")
    assert.are.equal(5, #f.points5)
    assert.is_nil(f.landmarks)
    local b = f.box
    for _, p in ipairs(f.points5) do -- inside the face's box
      assert.is_true(p[1] > b.x and p[1] < b.x + b.width and p[2] > b.y and p[2] < b.y + b.height)
    end
    assert.is_true(f.points5[1][1] < f.points5[2][1]) -- left eye, then right eye
    -- without --json: a line per face naming the size, then the five points
    out, err, code = run("embed --pipeline mobilefacenet " .. photo("Tony_Blair", 1))
    assert.are.equal(0, code, err)
    assert.matches("face 1: box [%d.,]+ [%d.x]+ score [%d.]+ descriptor 192%-D |d| 1%.000 %[", out)
    assert.matches("\n    points5 [%d.,]+ [%d.,]+ [%d.,]+ [%d.,]+ [%d.,]+ %(eyes, nose, mouth corners%)\n", out)
  end)

  local it_sqlite = has_sqlite and it or pending
  it_sqlite("enroll makes a cosine gallery with the model id; the gallery commands follow it", function()
    local _
    local g = dir .. "/mfn.gallery"
    local out, err, code = run(("enroll --pipeline mobilefacenet --gallery %s Tony_Blair %s"):format(q(g),
      photo("Tony_Blair", 1)))
    assert.are.equal(0, code, err)
    assert.matches("%(cosine, threshold " .. p3(MFN_COSINE) .. ", model mobilefacenet:%x+/arcface%+flip%), created",
      out)
    -- an existing gallery names its pipeline: no --pipeline needed
    out, err, code = run(("enroll --json --gallery %s Serena_Williams %s"):format(q(g), photo("Serena_Williams", 1)))
    assert.are.equal(0, code, err)
    local r = assert(json.decode(out))
    assert.matches("^mobilefacenet:", r.model)
    assert.are.equal(MFN_COSINE, r.threshold)
    out, err, code = run("gallery info --json --gallery " .. q(g))
    assert.are.equal(0, code, err)
    r = assert(json.decode(out))
    assert.are.equal("cosine", r.metric)
    assert.are.equal(192, r.dim)
    assert.are.equal(door.default_threshold(r.model, "cosine"), r.threshold)

    out, err, code = run(("identify --json --gallery %s %s %s %s"):format(q(g), photo("Tony_Blair", 2),
      photo("Serena_Williams", 2), photo("Colin_Powell", 1)))
    assert.are.equal(0, code, err)
    r = assert(json.decode(out))
    local names = {}
    assert.are.equal(MFN_COSINE, r.threshold)
    for _, e in ipairs(r.photos) do
      for _, f in ipairs(e.faces) do names[#names + 1] = f.name == json.null and "unknown" or f.name end
    end
    assert.are.same({"Tony_Blair", "Serena_Williams", "unknown"}, names)

    out, err, code = run(("verify --gallery %s --claim Tony_Blair %s"):format(q(g), photo("Tony_Blair", 3)))
    assert.are.equal(0, code, err)
    assert.matches("^welcome, Tony_Blair %(distance 0%.%d%d%d <= threshold " .. p3(MFN_COSINE) .. "%)", out)
    out, err, code = run(("verify --json --pipeline mobilefacenet --gallery %s --claim Serena_Williams %s"):format(q(g),
      photo("Tony_Blair", 3)))
    assert.are.equal(1, code, err)
    r = assert(json.decode(out))
    assert.is_false(r.accepted)
    assert.is_true(r.distance > MFN_COSINE)

    -- attendance follows the gallery's pipeline too (an unknown face's chip kept for review)
    out, err, code = run(("attendance --json --gallery %s --db %s --time '2026-11-22 08:57' --review %s %s %s"):format(
      q(g), q(dir .. "/office.db"), q(dir .. "/review"), photo("Serena_Williams", 3), photo("Colin_Powell", 2)))
    assert.are.equal(0, code, err)
    assert.matches('"Serena_Williams"', out, 1, true)
    local review = support.list_dir(dir .. "/review")
    assert.are.equal(1, #review)
    local chip = assert(require("siamese.image").load(dir .. "/review/" .. review[1]))
    assert.are.equal(112, chip.width) -- ArcFace's chip

    -- the other pipeline is refused with a clear message, both ways
    _, err, code = run(("verify --pipeline faceapi --gallery %s --claim Tony_Blair %s"):format(q(g),
      photo("Tony_Blair", 3)))
    assert.are.equal(2, code)
    assert.matches("gallery made with the mobilefacenet pipeline (model mobilefacenet:", err, 1, true)
    assert.matches("not --pipeline faceapi", err, 1, true)
    local fg = dir .. "/faceapi.gallery"
    _, err, code = run(("enroll --pipeline faceapi --gallery %s Tony_Blair %s"):format(q(fg), photo("Tony_Blair", 1)))
    assert.are.equal(0, code, err)
    for _, cmd in ipairs{"identify", "verify --claim Tony_Blair"} do
      _, err, code = run(("%s --pipeline mobilefacenet --gallery %s %s"):format(cmd, q(fg), photo("Tony_Blair", 2)))
      assert.are.equal(2, code)
      assert.matches("^siamese: gallery made with the faceapi pipeline %(model faceapi_recognition:%x+/dlib%), "
        .. "not %-%-pipeline mobilefacenet: use %-%-pipeline faceapi, or enroll again into a new gallery with "
        .. "%-%-pipeline mobilefacenet\n$", err)
    end
    -- --detector belongs to faceapi: refused with a mobilefacenet gallery
    _, err, code = run(("identify --detector ssd --gallery %s %s"):format(q(g), photo("Tony_Blair", 2)))
    assert.are.equal(2, code)
    assert.matches("--detector is for --pipeline faceapi", err, 1, true)
  end)

  it("eval folder: the encoder's metric (cosine) by default", function()
    local people = dir .. "/people"
    for _, name in ipairs{"Tony_Blair", "Serena_Williams"} do
      os.execute("mkdir -p " .. q(people .. "/" .. name))
      for i = 1, 2 do os.execute(string.format("cp %s %s", q(photo(name, i)), q(people .. "/" .. name .. "/"))) end
    end
    local out, err, code = run("eval folder --json --pipeline mobilefacenet " .. q(people))
    assert.are.equal(0, code, err)
    local m = assert(json.decode(out))
    assert.are.equal("cosine", m.metric)
    assert.matches("^mobilefacenet:", m.model)
    assert.are.equal(4, m.photos)
    assert.are.equal(1, m.rank1)
  end)

  it("refuses options of the other pipeline with one usage line", function()
    local a, b = photo("Tony_Blair", 1), photo("Tony_Blair", 2)
    local cases = {
      {"compare --pipeline mobilefacenet --detector ssd " .. a .. " " .. b, "--detector is for --pipeline faceapi",
       "compare"},
      {"compare --pipeline faceapi --min-face 30 " .. a .. " " .. b, "--min-face is for --pipeline mobilefacenet",
       "compare"},
      {"compare --detector ssd " .. a .. " " .. b, "--detector is for --pipeline faceapi", "compare"},
      {"compare --pipeline mobilefacenet --min-face 5 " .. a .. " " .. b,
       "--min-face must be a number of pixels from 6 to 10000, got 5", "compare"},
      {"compare --pipeline mobilefacenet --min-face 20000 " .. a .. " " .. b,
       "--min-face must be a number of pixels from 6 to 10000, got 20000", "compare"},
      {"compare --pipeline dlib " .. a .. " " .. b,
       "argument for option '--pipeline' must be one of 'faceapi', 'mobilefacenet'", "compare"},
      {"compare --pipeline mobilefacenet --model att " .. a .. " " .. b,
       "--pipeline and --min-face are for the face model (--model face)", "compare"},
      {"embed --pipeline mobilefacenet --align similarity " .. a, "--align is for --pipeline faceapi", "embed"},
      {"embed --pipeline mobilefacenet --landmarks full " .. a, "--landmarks is for --pipeline faceapi", "embed"},
      {"embed --pipeline mobilefacenet --score-threshold 0.3 " .. a, "--score-threshold is for --pipeline faceapi",
       "embed"},
      {"identify --pipeline mobilefacenet --detector tiny --gallery x.gallery " .. a,
       "--detector is for --pipeline faceapi", "identify"},
      {"enroll --pipeline mobilefacenet --detector ssd --gallery x.gallery Tony " .. a,
       "--detector is for --pipeline faceapi", "enroll"},
      {"eval folder --pipeline faceapi --min-face 40 " .. FACES, "--min-face is for --pipeline mobilefacenet",
       "eval"},
      {"eval lfw --detector ssd --pairs p --root r", "--detector is for --pipeline faceapi", "eval"},
      {"serve --pipeline mobilefacenet --detector ssd --gallery x.gallery", "--detector is for --pipeline faceapi",
       "serve"},
    }
    for _, c in ipairs(cases) do
      local out, err, code = run(c[1])
      assert.are.equal(2, code, c[1])
      assert.are.equal("", out, c[1])
      assert.are.equal("siamese: " .. c[2] .. " (see siamese " .. c[3] .. " --help)\n", err, c[1])
    end
    assert.is_nil(io.open("x.gallery", "rb"), "nothing was created")
  end)

  it("lists --pipeline and --min-face in every photo command's --help", function()
    for _, cmd in ipairs{"compare", "embed", "enroll", "verify", "identify", "attendance", "calibrate", "eval",
                         "serve"} do
      local out, _, code = run(cmd .. " --help")
      assert.are.equal(0, code)
      assert.matches("--pipeline mobilefacenet|faceapi", out, 1, true)
      assert.matches("--min-face N", out, 1, true)
    end
  end)
end)

-- serve with the pipeline: the front's stand-in and the workers agree on
-- the model id, a new gallery is cosine with the pipeline's threshold.
local web_ok = pcall(function() assert(require("siamese.app.web.deps").setup()) end)
local describe_web = web_ok and describe or function(name) describe(name, function() pending("needs lua-http") end) end

describe_web("siamese serve --pipeline mobilefacenet", function()
  local web, dir, srv, gpath
  setup(function()
    web = dofile("spec/web_support.lua")
    dir = support.temp_dir("cli_pipeline_web")
    gpath = dir .. "/door.gallery"
    srv = web.start("--quiet --workers 1 --pipeline mobilefacenet --gallery " .. gpath)
  end)
  teardown(function()
    if srv then srv.stop() end
    os.execute("rm -rf " .. q(dir))
  end)

  it("verifies over HTTP with cosine distances, and enrolls into a mobilefacenet gallery", function()
    local status, r = web.request("GET", srv.url .. "/api/people")
    assert.are.equal(200, status)
    assert.are.equal("cosine", r.metric)
    assert.are.equal(MFN_COSINE, r.threshold)
    assert.matches("^mobilefacenet:%x+/arcface%+flip$", r.model)
    local fr = assert(require("siamese.face").load{model = "mobilefacenet"})
    assert.are.equal(fr.model_id, r.model) -- the front's stand-in names the workers' model
    status, r = web.request("POST", srv.url .. "/api/verify",
      {image1 = web.file(web.photo("Tony_Blair", 1)), image2 = web.file(web.photo("Tony_Blair", 2))})
    assert.are.equal(200, status)
    assert.is_true(r.accepted)
    assert.are.equal("cosine", r.metric)
    assert.is_true(r.distance <= r.threshold)
    status, r = web.request("POST", srv.url .. "/api/verify",
      {image1 = web.file(web.photo("Tony_Blair", 1)), image2 = web.file(web.photo("Serena_Williams", 1))})
    assert.are.equal(200, status)
    assert.is_false(r.accepted)
    status, r = web.request("POST", srv.url .. "/api/enroll",
      {name = "Tony", image = web.file(web.photo("Tony_Blair", 1))})
    assert.are.equal(200, status, r and r.error)
    local g = assert(require("siamese.gallery").load(gpath))
    assert.are.equal(fr.model_id, g:model())
    assert.are.equal("cosine", g:metric())
    assert.are.equal(192, g:dim())
  end)

  it("refuses to serve the gallery with the other pipeline, and a faceapi gallery with mobilefacenet", function()
    local workers, gallery = require "siamese.app.web.workers", require "siamese.gallery"
    local mine = dir .. "/mfn.gallery"
    local mg = gallery.new{dim = 192, metric = "cosine", threshold = MFN_COSINE,
      model = assert(workers.front_recognizer{pipeline = "mobilefacenet"}).model_id}
    assert(mg:save(mine))
    local code, err = web.run_failing("--port 0 --pipeline faceapi --gallery " .. mine)
    assert.are.equal(2, code)
    assert.matches("gallery made with the mobilefacenet pipeline", err, 1, true)
    local other = dir .. "/faceapi.gallery"
    local fg = gallery.new{dim = 128, metric = "euclidean", threshold = 0.6,
      model = assert(workers.front_recognizer{pipeline = "faceapi"}).model_id}
    assert(fg:save(other))
    code, err = web.run_failing("--port 0 --pipeline mobilefacenet --gallery " .. other)
    assert.are.equal(2, code)
    assert.matches("gallery made with the faceapi pipeline", err, 1, true)
  end)
end)
