-- Specs of what every siamese command shares (run as separate processes):
-- --version, one-line usage errors, errors as JSON under --json, Ctrl-C,
-- the photo options, no shell strings; and the commands compare and
-- gallery. Photos from examples/data/faces (Tony_Blair 1, 2, Serena_Williams
-- 1 pass the quality gate); the non-face is a flat gray PNG made here.
local json = require "siamese.json"
local support = dofile("spec/support.lua")

local FACES = "examples/data/faces"
local COMMANDS = {"embed", "compare", "enroll", "verify", "identify", "attendance", "gallery", "calibrate", "eval",
                  "serve", "watch"}

local q, run = support.q, support.siamese

local function photo(name, i)
  return string.format("%s/%s/%s_%04d.jpg", FACES, name, name, i)
end

local function count(s, plain)
  local n, i = 0, 1
  while true do
    local a, b = s:find(plain, i, true)
    if not a then return n end
    n, i = n + 1, b + 1
  end
end

-- The arguments that reach a command's own option parser (eval needs
-- its benchmark first).
local function cmd_args(cmd)
  return cmd == "eval" and "eval folder" or cmd
end

describe("siamese command line conventions", function()
  local dir
  setup(function() dir = support.temp_dir("cli_consistency") end)
  teardown(function() os.execute("rm -rf " .. q(dir)) end)

  it("--version prints the version, alone or after any command", function()
    local version = require("siamese")._VERSION
    assert.are.equal("siamese 0.1.0", version)
    local out, err, code = run("--version")
    assert.are.equal(0, code)
    assert.are.equal(version .. "\n", out)
    assert.are.equal("", err)
    for _, cmd in ipairs(COMMANDS) do
      out, _, code = run(cmd .. " --version")
      assert.are.equal(0, code, cmd)
      assert.are.equal(version .. "\n", out, cmd)
    end
    -- after "--" it is an argument, not the flag
    _, err, code = run("gallery list --gallery " .. q(dir .. "/none.gal") .. " -- --version")
    assert.are.equal(2, code)
    assert.matches("takes no argument", err, 1, true)
  end)

  it("a usage error is one line that points to the command's --help, for every command", function()
    for _, cmd in ipairs(COMMANDS) do
      local out, err, code = run(cmd_args(cmd) .. " --bogus-flag")
      assert.are.equal(2, code, cmd)
      assert.are.equal("", out, cmd)
      assert.are.equal("siamese: unknown option '--bogus-flag' (see siamese " .. cmd .. " --help)\n", err, cmd)
    end
    local cases = {
      {"compare " .. q(photo("Tony_Blair", 1)), "expected two photos, got 1", "compare"},
      {"gallery", "expected an action: list, info, remove, rename, export or import", "gallery"},
      {"eval pairs --root x", "--pairs FILE and --root DIR are required", "eval"},
      {"eval lfw --root x", "--root DIR and --pairs FILE are required", "eval"},
      {"serve", "--gallery FILE is required", "serve"},
    }
    for _, c in ipairs(cases) do
      local _, err, code = run(c[1])
      assert.are.equal(2, code, c[1])
      assert.are.equal("siamese: " .. c[2] .. " (see siamese " .. c[3] .. " --help)\n", err, c[1])
    end
    local _, err, code = run("frobnicate")
    assert.are.equal(2, code)
    assert.are.equal("siamese: unknown command 'frobnicate' (see siamese --help)\n", err)
  end)

  it("--json prints errors as one JSON object on stdout, for every command", function()
    for _, cmd in ipairs(COMMANDS) do
      local out, err, code = run(cmd_args(cmd) .. " --json --bogus-flag")
      assert.are.equal(2, code, cmd)
      assert.are.same({error = "unknown option '--bogus-flag'"}, json.decode(out), cmd)
      assert.are.equal(1, count(out, "\n"), cmd)
      -- stderr keeps the line for a person at a terminal
      assert.are.equal("siamese: unknown option '--bogus-flag' (see siamese " .. cmd .. " --help)\n", err, cmd)
    end
    -- not only usage errors: a missing file, a missing gallery, an unknown command
    local missing = dir .. "/missing.jpg"
    local out, _, code = run("compare --json " .. q(missing) .. " " .. q(photo("Tony_Blair", 1)))
    assert.are.equal(2, code)
    assert.are.same({error = missing .. ": No such file or directory"}, json.decode(out))
    out, _, code = run("gallery info --json --gallery " .. q(dir .. "/none.gal"))
    assert.are.equal(2, code)
    assert.matches("no such gallery", json.decode(out).error, 1, true)
    out, _, code = run("verify --gallery " .. q(dir .. "/none.gal") .. " --claim a --json x.jpg")
    assert.are.equal(2, code)
    assert.matches("no such gallery", json.decode(out).error, 1, true)
    out, _, code = run("frobnicate --json")
    assert.are.equal(2, code)
    assert.are.same({error = "unknown command 'frobnicate'"}, json.decode(out))
    -- without --json stdout stays empty
    out, _, code = run("compare " .. q(missing) .. " " .. q(photo("Tony_Blair", 1)))
    assert.are.equal(2, code)
    assert.are.equal("", out)
  end)

  it("Ctrl-C ends a running command with one line and exit status 130", function()
    local out_file, err_file = dir .. "/int.out", dir .. "/int.err"
    -- the shell of io.popen starts the command in the background and
    -- reports its pid, then its exit status
    local p = assert(io.popen(string.format("bin/siamese eval folder %s >%s 2>%s & echo $!; wait $!; echo $?",
      q(FACES), q(out_file), q(err_file))))
    local pid = assert(tonumber(p:read("l")))
    -- wait until it is embedding photos (its first progress line)
    local function err_text()
      local f = io.open(err_file, "rb")
      if not f then return "" end
      local s = f:read("a")
      f:close()
      return s
    end
    local siamese = require "siamese"
    local t0 = siamese.clock()
    while not err_text():find("eval folder:", 1, true) and siamese.clock() - t0 < 120 do
      os.execute("sleep 0.1")
    end
    assert.truthy(err_text():find("eval folder:", 1, true))
    os.execute("kill -INT " .. pid)
    local status = tonumber(p:read("l"))
    p:close()
    assert.are.equal(130, status)
    local err = support.read_file(err_file)
    -- the progress line is ended, then one line
    assert.matches("\nsiamese: interrupted\n$", err)
    assert.are.equal(1, count(err, "interrupted"))
    assert.is_nil(err:find("traceback", 1, true))
    assert.is_nil(err:find(".lua", 1, true))
    assert.are.equal("", support.read_file(out_file))
  end)

  it("photo options are checked naming the flag, and applied", function()
    local t1, t2 = q(photo("Tony_Blair", 1)), q(photo("Tony_Blair", 2))
    local cases = {
      {"compare --threads 0 " .. t1 .. " " .. t2, "--threads must be an integer from 1 to 1024, got 0", "compare"},
      {"compare --max-pixels -3 " .. t1 .. " " .. t2, "--max-pixels must be a positive integer, got -3", "compare"},
      {"compare --detector big " .. t1 .. " " .. t2, "argument for option '--detector' must be one of 'tiny', 'ssd'", "compare"},
      {"embed --threads 1025 " .. t1, "--threads must be an integer from 1 to 1024, got 1025", "embed"},
      {"eval folder " .. q(FACES) .. " --threads 2.5", "--threads must be an integer from 1 to 1024, got 2.5", "eval"},
      {"eval pairs --pairs p --root r --max-pixels 0", "--max-pixels must be a positive integer, got 0", "eval"},
      {"eval lfw --pairs p --root r --threads 0", "--threads must be an integer from 1 to 1024, got 0", "eval"},
      {"calibrate --gallery g --folder d --max-pixels 0", "--max-pixels must be a positive integer, got 0", "calibrate"},
      {"serve --gallery g --threads 0", "--threads must be an integer from 1 to 1024, got 0", "serve"},
    }
    for _, c in ipairs(cases) do
      local _, err, code = run(c[1])
      assert.are.equal(2, code, c[1])
      assert.are.equal("siamese: " .. c[2] .. " (see siamese " .. c[3] .. " --help)\n", err, c[1])
    end
    -- --max-pixels reaches the decoder (refused before any model is loaded)
    local _, err, code = run("compare --max-pixels 100 " .. t1 .. " " .. t2)
    assert.are.equal(2, code)
    assert.matches("exceeds the limit of 100 pixels", err, 1, true)
    -- --detector (faceapi), --min-face (mobilefacenet, the default) and --threads reach the face pipeline
    local out
    out, err, code = run("compare --pipeline faceapi --detector ssd --threads 1 --threshold 0.3 " .. t1 .. " " .. t2)
    assert.are.equal(1, code, err)
    assert.matches("^different people %(distance 0%.%d%d%d > threshold 0%.300%)\n$", out)
    out, err, code = run("compare --min-face 40 --threads 1 --threshold 0.1 " .. t1 .. " " .. t2)
    assert.are.equal(1, code, err)
    assert.matches("^different people %(cosine distance 0%.%d%d%d > threshold 0%.100%)\n$", out)
    out, err, code = run("compare --min-face 400 " .. t1 .. " " .. t2) -- larger than the 250x250 photos
    assert.are.equal(1, code, err)
    assert.matches("no face", out .. err, 1, true)
  end)

  it("errors of the benchmarks and the server name the flag, with correct plurals and no doubled paths", function()
    local one = dir .. "/one_person"
    os.execute("mkdir -p " .. q(one .. "/Tony_Blair"))
    support.write_file(one .. "/Tony_Blair/a.jpg", support.read_file(photo("Tony_Blair", 1)))
    local cases = {
      {"eval folder " .. q(one) .. " --strangers 1", "--strangers 1 leaves nobody to enroll among 1 person"},
      {"eval folder " .. q(FACES) .. " --strangers 5", "--strangers 5 leaves nobody to enroll among 5 people"},
      {"eval folder " .. q(FACES) .. " --far 2", "--far must be between 0 and 1, got 2"},
      {"eval folder " .. q(FACES) .. " --enroll 0", "--enroll must be a positive integer, got 0"},
      {"eval pairs --pairs p --root r --far 0", "--far must be between 0 and 1, got 0"},
      {"eval lfw --pairs p --root r --jitter -1", "--jitter must be a non-negative integer, got -1"},
      {"eval lfw --pairs p --root r --refine 9", "--refine must be an integer from 0 to 5, got 9"},
      {"serve --gallery g --port 70000", "--port must be an integer from 0 to 65535, got 70000"},
      {"serve --gallery g --max-upload 0", "--max-upload must be a positive integer, got 0"},
      {"serve --gallery g --threshold 0", "--threshold must be a number in (0, 2)"},
      {"calibrate --gallery g --folder d --max-pairs 0", "--max-pairs must be a positive integer, got 0"},
      {"calibrate --gallery g --folder d --roc x.jpg", "--roc needs a .png file name, got 'x.jpg'"},
      {"embed --score-threshold 0 x.jpg", "--score-threshold must be between 0 and 1, got 0"},
      {"compare --threshold 2.5 a.jpg b.jpg", "--threshold must be a number in (0, 2)"},
    }
    for _, c in ipairs(cases) do
      local _, err, code = run(c[1])
      assert.are.equal(2, code, c[1])
      assert.truthy(err:find("siamese: " .. c[2], 1, true), c[1] .. " -> " .. err)
    end
    local nodir = dir .. "/no/such/folder"
    local _, err, code = run("eval folder " .. q(nodir))
    assert.are.equal(2, code)
    assert.are.equal("siamese: " .. nodir .. ": no such directory\n", err)
    _, err, code = run("calibrate --gallery g --folder " .. q(nodir))
    assert.are.equal(2, code)
    assert.are.equal("siamese: --folder " .. nodir .. ": no such directory\n", err)
    local missing = dir .. "/missing.jpg"
    _, err, code = run("compare " .. q(photo("Tony_Blair", 1)) .. " " .. q(missing))
    assert.are.equal(2, code)
    assert.are.equal(1, count(err, missing))
  end)

  it("eval lfw --out takes any directory name: no shell command is run", function()
    -- 2 folds of one genuine and one impostor pair
    local pairs_file = dir .. "/pairs.txt"
    support.write_file(pairs_file, table.concat({
      "2\t1", "Tony_Blair\t1\t2", "Tony_Blair\t1\tSerena_Williams\t1",
      "Serena_Williams\t1\t2", "Serena_Williams\t2\tJunichiro_Koizumi\t1", ""}, "\n"))
    local odd = dir .. "/x'; touch INJECTED; echo '"
    local fs = require "siamese.fs"
    assert.is_nil(fs.kind("INJECTED"))
    local out, err, code = run("eval lfw --json --root " .. q(FACES) .. " --pairs " .. q(pairs_file)
      .. " --out " .. q(odd .. "/sub"))
    assert.are.equal(0, code, err)
    local doc = assert(json.decode(out))
    assert.are.equal(4, doc.pairs)
    assert.are.equal(odd .. "/sub/roc.png", doc.roc_png)
    assert.are.equal("directory", fs.kind(odd .. "/sub"))
    assert.are.equal("file", fs.kind(odd .. "/sub/roc.png"))
    assert.are.equal("file", fs.kind(odd .. "/sub/worst_pairs.png"))
    assert.is_nil(fs.kind("INJECTED"))
    assert.is_nil(fs.kind(dir .. "/INJECTED"))
    -- a path through a file is refused naming --out
    support.write_file(dir .. "/afile", "x")
    _, err, code = run("eval lfw --root " .. q(FACES) .. " --pairs " .. q(pairs_file) .. " --out " .. q(dir .. "/afile/sub"))
    assert.are.equal(2, code)
    assert.are.equal("siamese: --out " .. dir .. "/afile: exists and is not a directory\n", err)
  end)
end)

describe("siamese compare", function()
  local dir, gray
  setup(function()
    dir = support.temp_dir("cli_compare")
    -- a flat gray 400x300 photo: no face
    local image = require "siamese.image"
    local img = image.new(400, 300, 1)
    for y = 0, 299 do for x = 0, 399 do img:set(x, y, 128) end end
    gray = dir .. "/gray.png"
    assert(img:save(gray))
  end)
  teardown(function() os.execute("rm -rf " .. q(dir)) end)

  it("says same person for two photos of one person (exit 0)", function()
    local out, err, code = run("compare " .. q(photo("Tony_Blair", 1)) .. " " .. q(photo("Tony_Blair", 2)))
    assert.are.equal(0, code, err)
    assert.matches("^same person %(cosine distance 0%.%d%d%d <= threshold 0%.549%)\n$", out)
  end)

  it("says different people (exit 1); --json with the euclidean metric and its default threshold", function()
    local a, b = photo("Tony_Blair", 1), photo("Serena_Williams", 1)
    local out, err, code = run("compare --json --metric euclidean " .. q(a) .. " " .. q(b))
    assert.are.equal(1, code, err)
    local doc = assert(json.decode(out))
    assert.is_false(doc.accepted)
    assert.are.equal("euclidean", doc.metric)
    local door = require "siamese.door"
    assert.are.equal(door.DEFAULT_THRESHOLDS.mobilefacenet.euclidean, doc.threshold)
    assert.is_true(doc.distance > doc.threshold and doc.distance <= 2)
    assert.are.equal("distance above threshold", doc.reason)
    assert.are.equal(2, #doc.photos)
    for i, path in ipairs{a, b} do
      local p = doc.photos[i]
      assert.are.equal(path, p.photo)
      assert.is_number(p.box.x)
      assert.is_true(p.box.width >= 40)
      assert.is_true(p.score >= 0.5)
      assert.is_true(p.quality.ok)
    end
  end)

  it("refuses a photo without a face, naming it (exit 1)", function()
    local a = photo("Tony_Blair", 1)
    local out, err, code = run("compare --json " .. q(a) .. " " .. q(gray))
    assert.are.equal(1, code, err)
    local doc = assert(json.decode(out))
    assert.is_false(doc.accepted)
    assert.are.equal(json.null, doc.distance)
    assert.are.equal(0.549, doc.threshold)
    assert.are.equal(gray .. ": no face at score >= 0.5", doc.reason)
    assert.is_true(doc.photos[1].quality.ok)
    assert.are.equal(json.null, doc.photos[2].box)
  end)

  it("refuses bad usage (exit 2) before loading a model", function()
    local a = q(photo("Tony_Blair", 1))
    local cases = {
      {"compare", "expected two photos, got 0"},
      {"compare " .. a .. " " .. a .. " " .. a, "expected two photos, got 3"},
      {"compare --metric manhattan " .. a .. " " .. a, "argument for option '--metric' must be one of 'euclidean', 'cosine'"},
      {"compare --threshold 0 " .. a .. " " .. a, "--threshold must be a number in (0, 2) for euclidean distances"},
      {"compare --fallback maybe " .. a .. " " .. a, "argument for option '--fallback' must be one of 'none', 'threshold', 'centre'"},
      {"compare " .. a .. " " .. q(dir .. "/none.png"), dir .. "/none.png: No such file or directory"},
    }
    for _, c in ipairs(cases) do
      local out, err, code = run(c[1])
      assert.are.equal(2, code, c[1])
      assert.are.equal("", out)
      assert.truthy(err:find(c[2], 1, true), c[1] .. " -> " .. err)
      assert.are.equal(1, count(err, "\n"), c[1])
    end
  end)
end)

describe("siamese gallery", function()
  local dir, file
  local gallery = require "siamese.gallery"
  local tensor = require "siamese.tensor"
  local fs = require "siamese.fs"

  before_each(function()
    dir = support.temp_dir("cli_gallery")
    file = dir .. "/office.gallery"
    local g = gallery.new{dim = 4, metric = "euclidean", threshold = 0.6, model = "test_model:0123"}
    g:add("Alice", tensor.ones{2, 4})
    g:add("Bob", tensor.zeros{4})
    assert(g:save(file))
  end)
  after_each(function() os.execute("rm -rf " .. q(dir)) end)

  local function gal(args) return run("gallery " .. args .. " --gallery " .. q(file)) end

  it("lists the people with their templates", function()
    local out, err, code = gal("list")
    assert.are.equal(0, code, err)
    assert.are.equal(file .. ": 2 identities, 3 templates\n  Alice  2 templates\n  Bob    1 template\n", out)
    out, _, code = gal("list --json")
    assert.are.equal(0, code)
    assert.are.same({gallery = file, people = {{name = "Alice", templates = 2}, {name = "Bob", templates = 1}}},
      json.decode(out))
  end)

  it("describes the gallery", function()
    local out, err, code = gal("info --json")
    assert.are.equal(0, code, err)
    assert.are.same({gallery = file, model = "test_model:0123", metric = "euclidean", threshold = 0.6, dim = 4,
                     identities = 2, templates = 3, bytes = fs.size(file), score_mode = "nearest"},
      json.decode(out))
    out, _, code = gal("info")
    assert.are.equal(0, code)
    assert.matches("2 identities, 3 templates", out, 1, true)
    assert.matches("model      test_model:0123", out, 1, true)
    assert.matches("threshold  0.6000", out, 1, true)
    assert.matches("file       " .. fs.size(file) .. " bytes", out, 1, true)
  end)

  it("removes a person, saving the file; refuses an unknown name", function()
    local before = support.read_file(file)
    local _, err, code = gal("remove Carol")
    assert.are.equal(2, code)
    assert.are.equal("siamese: unknown identity 'Carol' in " .. file .. " (enrolled: 2 identities)\n", err)
    _, err, code = gal("remove alice")
    assert.are.equal(2, code)
    assert.matches("did you mean 'Alice'?", err, 1, true)
    assert.are.equal(before, support.read_file(file))
    local out
    out, err, code = gal("remove --json Alice")
    assert.are.equal(0, code, err)
    assert.are.same({gallery = file, removed = "Alice", templates = 2, identities = 1}, json.decode(out))
    local g = assert(gallery.load(file))
    assert.are.same({"Bob"}, g:names())
    out, _, code = gal("remove Bob")
    assert.are.equal(0, code)
    assert.are.equal("removed Bob (1 template); " .. file .. " now holds 0 identities\n", out)
    out = gal("list")
    assert.are.equal(file .. ": 0 identities, 0 templates\n", out)
  end)

  it("renames a person; a refused new name is a usage error and leaves the file as it was", function()
    local before = support.read_file(file)
    local cases = {
      {"rename Bob " .. q("B\u{200B}ob"), "contains an invisible or control character U+200B"},
      {"rename Bob " .. q("   "), "name is empty"},
      {"rename Bob " .. q(string.rep("x", 65)), "at most 64"},
      {"rename Bob alice", "'alice' differs from the enrolled 'Alice' only by case"},
    }
    for _, c in ipairs(cases) do
      local out, err, code = gal(c[1])
      assert.are.equal(2, code, c[1])
      assert.are.equal("", out)
      assert.truthy(err:find(c[2], 1, true), c[1] .. " -> " .. err)
      assert.truthy(err:find("(see siamese gallery --help)\n", 1, true), err)
      assert.is_nil(err:find("gallery.lua", 1, true))
      assert.are.equal(1, count(err, "\n"))
    end
    local _, err, code = gal("rename Bob Alice")
    assert.are.equal(2, code)
    assert.matches("'Alice' already exists", err, 1, true)
    _, err, code = gal("rename Carol Dave")
    assert.are.equal(2, code)
    assert.matches("unknown identity 'Carol'", err, 1, true)
    assert.are.equal(before, support.read_file(file))
    local out
    out, err, code = gal("rename --json Bob " .. q("  Robert "))
    assert.are.equal(0, code, err)
    assert.are.same({gallery = file, renamed = "Bob", name = "Robert"}, json.decode(out))
    local g = assert(gallery.load(file))
    assert.is_true(g:has("Robert"))
    assert.is_false(g:has("Bob"))
    out, _, code = gal("rename Robert Bobby")
    assert.are.equal(0, code)
    assert.are.equal("renamed Robert to Bobby in " .. file .. "\n", out)
  end)

  it("refuses bad usage and a missing or damaged gallery (exit 2)", function()
    local cases = {
      {"gallery list", "--gallery FILE is required"},
      {"gallery --gallery " .. q(file), "expected an action: list, info, remove, rename, export or import"},
      {"gallery drop --gallery " .. q(file), "unknown action 'drop'"},
      {"gallery list extra --gallery " .. q(file), "gallery list takes no argument, got 1 argument"},
      {"gallery remove --gallery " .. q(file), "gallery remove takes one NAME, got 0 arguments"},
      {"gallery rename Bob --gallery " .. q(file), "gallery rename takes OLD NEW, got 1 argument"},
      {"gallery export --gallery " .. q(file), "gallery export takes one OUT file, got 0 arguments"},
      {"gallery import --gallery " .. q(file), "gallery import takes one IN file, got 0 arguments"},
      {"gallery list --overwrite --gallery " .. q(file), "--overwrite is for gallery export"},
      {"gallery import --gallery " .. q(file) .. " " .. q(file), "exists: import fills a new gallery file"},
      {"gallery export --gallery " .. q(file) .. " " .. q(file), "exists (give --overwrite to replace it)"},
      {"gallery list --gallery " .. q(dir .. "/none.gal"), "no such gallery"},
    }
    for _, c in ipairs(cases) do
      local _, err, code = run(c[1])
      assert.are.equal(2, code, c[1])
      assert.truthy(err:find(c[2], 1, true), c[1] .. " -> " .. err)
    end
    support.write_file(dir .. "/bad.gal", "not a gallery")
    local _, err, code = run("gallery info --gallery " .. q(dir .. "/bad.gal"))
    assert.are.equal(2, code)
    assert.truthy(#err > 0)
    assert.are.equal("not a gallery", support.read_file(dir .. "/bad.gal"))
  end)
end)
