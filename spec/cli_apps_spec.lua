-- Specs of the gallery commands of bin/siamese (enroll, verify, identify,
-- attendance, calibrate, eval pairs/folder), run as separate processes on
-- the bundled LFW photos (examples/data/faces). Photos are few: the face
-- pipeline takes a fraction of a second each.
local json = require "siamese.json"
local support = dofile("spec/support.lua")

local FACES = "examples/data/faces"

local q, run = support.q, support.siamese

local function photo(name, i)
  return string.format("%s/%s/%s_%04d.jpg", FACES, name, name, i)
end

local has_sqlite = pcall(require, "luasql.sqlite3")

describe("siamese gallery commands", function()
  local dir, people, gallery_file
  setup(function()
    dir = support.temp_dir("cli_apps")
    -- two people with two photos each, and a folder with a photo of no face
    people = dir .. "/people"
    for _, name in ipairs{"Tony_Blair", "Serena_Williams"} do
      os.execute("mkdir -p " .. q(people .. "/" .. name))
      for i = 1, 2 do os.execute(string.format("cp %s %s", q(photo(name, i)), q(people .. "/" .. name .. "/"))) end
    end
    os.execute("mkdir -p " .. q(people .. "/Nobody"))
    os.execute("cp spec/fixtures/images/gray8.png " .. q(people .. "/Nobody/blank.png"))
    gallery_file = dir .. "/office.gallery"
  end)
  teardown(function() os.execute("rm -rf " .. q(dir)) end)

  it("lists the commands, and each has --help", function()
    local out, _, code = run("--help")
    assert.are.equal(0, code)
    for _, cmd in ipairs{"enroll", "verify", "identify", "attendance", "calibrate", "eval"} do
      assert.matches("\n  " .. cmd .. " ", out, 1, true)
      local text, _, c = run(cmd .. " --help")
      assert.are.equal(0, c)
      assert.matches("usage: siamese " .. cmd, text, 1, true)
      assert.matches("--json", text, 1, true)
    end
  end)

  it("refuses bad usage with a message and exit code 2, before loading any model", function()
    local cases = {
      {"enroll Tony x.jpg", "--gallery FILE is required"},
      {"enroll --gallery g.gal Tony", "expected NAME PHOTO"},
      {"enroll --gallery g.gal --from-folder " .. q(dir .. "/none"), "none"},
      {"enroll --gallery g.gal --bogus x", "unknown option '--bogus'"},
      {"verify --gallery " .. q(dir .. "/missing.gal") .. " --claim a x.jpg", "no such gallery"},
      {"verify --gallery g.gal x.jpg", "--claim NAME is required"},
      {"verify --gallery g.gal --claim a x.jpg y.jpg", "exactly one PHOTO"},
      {"identify --gallery g.gal", "no photo given"},
      {"identify --gallery g.gal --k 0 x.jpg", "--k must be a positive integer"},
      {"attendance --gallery g.gal x.jpg", "--db FILE|URL is required"},
      {"attendance --db " .. q(dir .. "/none.db") .. " --report", "no such attendance database"},
      {"attendance --db " .. q(dir .. "/none.db") .. " --gallery " .. q(dir .. "/missing.gal") .. " x.jpg", "no such gallery"},
      {"attendance --db x.db --report --date 22.11.2026", "--date must be YYYY-MM-DD"},
      {"attendance --db x.db --gallery g.gal --time noon x.jpg", "--time must be"},
      {"calibrate --gallery g.gal", "either --pairs FILE --root DIR or --folder DIR"},
      {"calibrate --gallery g.gal --folder x --far 2", "--far must be between 0 and 1"},
      {"eval", "expected 'siamese eval lfw|pairs|folder'"},
      {"eval folder", "expected 'siamese eval folder DIR'"},
      {"eval folder " .. q(people) .. " --strangers 3", "leaves nobody to enroll"},
      {"eval pairs --root x", "--pairs FILE and --root DIR are required"},
    }
    for _, case in ipairs(cases) do
      local _, err, code = run(case[1])
      assert.are.equal(2, code, case[1])
      assert.truthy(err:find(case[2], 1, true), case[1] .. " -> " .. err)
    end
    -- neither a listing nor a failed recording creates a database
    assert.is_nil(io.open(dir .. "/none.db"))
  end)

  it("refuses a damaged gallery and one made with another model", function()
    local bad = dir .. "/bad.gallery"
    support.write_file(bad, "this is not a gallery")
    local _, err, code = run("verify --gallery " .. q(bad) .. " --claim a " .. q(photo("Tony_Blair", 1)))
    assert.are.equal(2, code)
    assert.truthy(#err > 0)
    assert.are.equal("this is not a gallery", support.read_file(bad))
    local gallery = require "siamese.gallery"
    local g = gallery.new{dim = 128, metric = "euclidean", threshold = 0.6, model = "other_model:0123456789abcdef"}
    g:add("Tony_Blair", require("siamese.tensor").zeros{128})
    local other = dir .. "/other.gallery"
    assert(g:save(other))
    _, err, code = run("verify --gallery " .. q(other) .. " --claim Tony_Blair " .. q(photo("Tony_Blair", 1)))
    assert.are.equal(2, code)
    assert.matches("other_model:0123456789abcdef", err, 1, true)
    _, err, code = run("enroll --gallery " .. q(other) .. " --model face Tony_Blair " .. q(photo("Tony_Blair", 1)))
    assert.are.equal(2, code)
    assert.matches("gallery made with model other_model", err, 1, true)
  end)

  it("enrolls a folder of people, reporting photos without a face", function()
    local out, _, code = run("enroll --json --gallery " .. q(gallery_file) .. " --from-folder " .. q(people))
    assert.are.equal(0, code)
    local doc = assert(json.decode(out))
    assert.is_true(doc.created)
    assert.matches("^mobilefacenet:%x+/arcface%+flip$", doc.model)
    assert.are.equal(4, #doc.enrolled)
    assert.are.equal(2, doc.identities)
    assert.are.equal(4, doc.templates)
    assert.are.equal(1, #doc.skipped)
    assert.matches("Nobody/blank.png$", doc.skipped[1].photo)
    assert.are.equal("no face at score >= 0.5", doc.skipped[1].reason)
    for _, e in ipairs(doc.enrolled) do
      assert.is_number(e.box.width)
      assert.truthy(e.photo:find(e.name, 1, true))
    end
    -- only a photo without a face: nothing enrolled, exit 1, gallery unchanged
    local before = support.read_file(gallery_file)
    local _, err
    _, err, code = run("enroll --gallery " .. q(gallery_file) .. " Nobody " .. q(people .. "/Nobody/blank.png"))
    assert.are.equal(1, code)
    assert.matches("no face at score >= 0.5", err, 1, true)
    assert.are.equal(before, support.read_file(gallery_file))
  end)

  it("verify: welcome (exit 0), go away (exit 1), unknown claim (exit 2)", function()
    local out, _, code = run("verify --gallery " .. q(gallery_file) .. " --claim Tony_Blair " .. q(photo("Tony_Blair", 3)))
    assert.are.equal(0, code)
    assert.matches("^welcome, Tony_Blair %(distance [%d.]+ <= threshold 0%.549%)", out)
    out, _, code = run("verify --json --gallery " .. q(gallery_file) .. " --claim Serena_Williams " .. q(photo("Tony_Blair", 3)))
    assert.are.equal(1, code)
    local doc = assert(json.decode(out))
    assert.is_false(doc.accepted)
    assert.are.equal("Serena_Williams", doc.claim)
    assert.is_true(doc.distance > doc.threshold)
    assert.are.equal(0.549, doc.threshold)
    local err
    _, err, code = run("verify --gallery " .. q(gallery_file) .. " --claim Nobody " .. q(photo("Tony_Blair", 3)))
    assert.are.equal(2, code)
    assert.matches("unknown identity 'Nobody'", err, 1, true)
    _, err, code = run("verify --gallery " .. q(gallery_file) .. " --claim Tony_Blair /nonexistent.jpg")
    assert.are.equal(2, code)
    assert.matches("nonexistent", err)
  end)

  it("enroll: a new name enrols, an enrolled one needs --add or --replace; duplicates and look-alikes refused", function()
    local g = dir .. "/intent.gallery"
    local function enroll(args_) return run("enroll --json --gallery " .. q(g) .. " " .. args_) end
    local out, err, code = enroll("Tony_Blair " .. q(photo("Tony_Blair", 1)))
    assert.are.equal(0, code, err)
    -- an enrolled name without --add/--replace: a usage error, nothing saved
    local before = support.read_file(g)
    _, err, code = run("enroll --gallery " .. q(g) .. " Tony_Blair " .. q(photo("Tony_Blair", 2)))
    assert.are.equal(2, code)
    assert.matches("'Tony_Blair' is already enrolled (1 template): use --add", err, 1, true)
    -- the same name in another case, and names with invisible characters
    _, err, code = run("enroll --gallery " .. q(g) .. " tony_blair " .. q(photo("Tony_Blair", 2)))
    assert.are.equal(2, code)
    assert.matches("differs from the enrolled 'Tony_Blair' only by case", err, 1, true)
    for _, bad in ipairs{"Tony\u{200B}Blair", "\u{202E}rialB", "Tony\1"} do
      local name = load("return '" .. bad .. "'")()
      _, err, code = run("enroll --gallery " .. q(g) .. " " .. q(name) .. " " .. q(photo("Tony_Blair", 2)))
      assert.are.equal(2, code, bad)
      assert.matches("invisible or control character U+", err, 1, true)
    end
    assert.are.equal(before, support.read_file(g))
    -- --add: another photo of him; the same photo twice is refused
    out, _, code = enroll("--add Tony_Blair " .. q(photo("Tony_Blair", 2)) .. " " .. q(photo("Tony_Blair", 2)))
    assert.are.equal(0, code)
    local doc = assert(json.decode(out))
    assert.are.equal(1, #doc.enrolled)
    assert.are.equal(1, #doc.skipped)
    assert.matches("already enrolled as 'Tony_Blair'", doc.skipped[1].reason, 1, true)
    -- a photo of someone else added to him: refused (far from his templates), unless --force
    out, _, code = enroll("--add Tony_Blair " .. q(photo("Serena_Williams", 2)))
    assert.are.equal(1, code)
    assert.matches("above the threshold", assert(json.decode(out)).skipped[1].reason, 1, true)
    -- his photo under another name: refused as his look-alike, unless --force
    _, err, code = run("enroll --gallery " .. q(g) .. " Bill_Gates " .. q(photo("Tony_Blair", 3)))
    assert.are.equal(1, code)
    assert.matches("within the threshold 0.549 of Tony_Blair at 0.", err, 1, true)
    out, _, code = enroll("--force Bill_Gates " .. q(photo("Tony_Blair", 3)))
    assert.are.equal(0, code)
    -- --replace: his templates replaced by one new photo
    out, _, code = enroll("--replace --force Tony_Blair " .. q(photo("Tony_Blair", 5)))
    assert.are.equal(0, code)
    assert.are.equal(2, assert(json.decode(out)).templates) -- Tony's two replaced by one, and Bill's
    _, err, code = run("enroll --gallery " .. q(g) .. " --add --replace Tony_Blair " .. q(photo("Tony_Blair", 5)))
    assert.are.equal(2, code)
    assert.matches("not both", err, 1, true)
  end)

  it("names an unreadable photo once, not twice", function()
    local text = dir .. "/text.jpg"
    support.write_file(text, "hello\n")
    local g = dir .. "/plain.gallery"
    for _, cmd in ipairs{"enroll --gallery " .. q(g) .. " Newbie " .. q(text),
                         "identify --gallery " .. q(gallery_file) .. " " .. q(text),
                         "verify --gallery " .. q(gallery_file) .. " --claim Tony_Blair " .. q(text),
                         "compare " .. q(text) .. " " .. q(photo("Tony_Blair", 1))} do
      local _, err, code = run(cmd)
      assert.are.equal(2, code, cmd)
      local _, n = err:gsub((text:gsub("%p", "%%%0")), "")
      assert.are.equal(1, n, err)
      assert.matches("unknown image format", err, 1, true)
    end
  end)

  it("thresholds: checked everywhere, defaulting per model and metric", function()
    local g = dir .. "/thresholds.gallery"
    for _, t in ipairs{"1e999", "0x10", "5", "0", "-1", "nan"} do
      local _, err, code = run("enroll --gallery " .. q(g) .. " --threshold " .. t .. " Tony_Blair " .. q(photo("Tony_Blair", 1)))
      assert.are.equal(2, code, t)
      assert.truthy(err:find("--threshold must be a number in (0, 2)", 1, true) or err:find("must be a number", 1, true), err)
      assert.is_nil(io.open(g), "no gallery made with --threshold " .. t)
    end
    local out, _, code = run("enroll --json --metric euclidean --gallery " .. q(g) .. " Tony_Blair " .. q(photo("Tony_Blair", 1)))
    assert.are.equal(0, code)
    local doc = assert(json.decode(out))
    -- unit descriptors: the euclidean default is the cosine one's sqrt(2 * 0.549), not cosine's 0.549
    assert.are.equal(1.0479, doc.threshold)
    -- an impostor is refused with the euclidean default
    out, _, code = run("verify --json --gallery " .. q(g) .. " --claim Tony_Blair " .. q(photo("Serena_Williams", 1)))
    assert.are.equal(1, code)
    assert.is_false(assert(json.decode(out)).accepted)
    out, _, code = run("verify --json --gallery " .. q(g) .. " --claim Tony_Blair " .. q(photo("Tony_Blair", 2)))
    assert.are.equal(0, code)
    local _, err
    _, err, code = run("verify --gallery " .. q(g) .. " --claim Tony_Blair --threshold 1e999 " .. q(photo("Serena_Williams", 1)))
    assert.are.equal(2, code)
    assert.matches("--threshold must be a number in (0, 2) for euclidean distances, got inf", err, 1, true)
    _, err, code = run("identify --gallery " .. q(g) .. " --threshold 5 " .. q(photo("Serena_Williams", 1)))
    assert.are.equal(2, code)
    assert.matches("--threshold must be", err, 1, true)
  end)

  it("honours a JPEG's EXIF orientation (a phone photo stored sideways), unless --ignore-exif", function()
    local g = dir .. "/exif.gallery"
    assert.are.equal(0, select(3, run("enroll --gallery " .. q(g) .. " Tony_Blair " .. q(photo("Tony_Blair", 1)))))
    -- Tony Blair's second photo stored turned 90 degrees counter-clockwise, tagged
    -- orientation 6 (display turned 90 degrees clockwise), as a phone writes it
    local up = assert(require("siamese.image").load(photo("Tony_Blair", 2)))
    local w, h, c, bytes = up.width, up.height, up.channels, up:bytes()
    local rows = {}
    for y = 0, w - 1 do
      local row = {}
      for x = 0, h - 1 do
        local sx, sy = w - 1 - y, x -- stored (x, y) shows upright (w - 1 - y, x)
        local i = (sy * w + sx) * c
        row[#row + 1] = bytes:sub(i + 1, i + c)
      end
      rows[#rows + 1] = table.concat(row)
    end
    local stored = require("siamese.image").new(h, w, c, table.concat(rows))
    local jpeg = assert(stored:encode("jpeg", {quality = 95}))
    local tiff = "II*\0" .. string.pack("<I4I2I2I2I4I2I2I4", 8, 1, 0x0112, 3, 1, 6, 0, 0)
    local body = "Exif\0\0" .. tiff
    local app1 = "\255\225" .. string.pack(">I2", #body + 2) .. body
    local sideways = dir .. "/sideways.jpg"
    support.write_file(sideways, jpeg:sub(1, 2) .. app1 .. jpeg:sub(3))
    local out, err, code = run("verify --gallery " .. q(g) .. " --claim Tony_Blair " .. q(sideways))
    assert.are.equal(0, code, out .. err)
    assert.matches("^welcome, Tony_Blair", out)
    out, _, code = run("verify --json --ignore-exif --gallery " .. q(g) .. " --claim Tony_Blair " .. q(sideways))
    assert.are.equal(1, code)
    assert.is_false(assert(json.decode(out)).accepted)
  end)

  it("identify names known faces and calls the others unknown", function()
    local out, _, code = run("identify --json --k 2 --gallery " .. q(gallery_file) .. " " .. q(photo("Tony_Blair", 3))
      .. " spec/fixtures/faceapi/sample1.jpg /nonexistent.jpg")
    assert.are.equal(2, code) -- the unreadable photo
    local doc = assert(json.decode(out))
    assert.are.equal(3, #doc.photos)
    local tony = doc.photos[1].faces
    assert.are.equal(1, #tony)
    assert.are.equal("Tony_Blair", tony[1].name)
    assert.are.equal(2, #tony[1].candidates)
    assert.are.equal("Tony_Blair", tony[1].candidates[1].name)
    assert.is_true(tony[1].candidates[1].distance <= tony[1].candidates[2].distance)
    local group = doc.photos[2].faces
    assert.are.equal(3, #group)
    for _, f in ipairs(group) do
      assert.are.equal(json.null, f.name)
      assert.is_false(f.accepted)
      -- unknown, or not decided on (the quality gate refused the face)
      assert.is_true(f.quality.ok and f.distance > doc.threshold or not f.quality.ok and f.distance == json.null)
    end
    assert.matches("nonexistent", doc.photos[3].error)
    out, _, code = run("identify --gallery " .. q(gallery_file) .. " " .. q(photo("Serena_Williams", 3)))
    assert.are.equal(0, code)
    assert.matches("face 1 at [%d,x ]+: Serena_Williams %(distance", out)
  end)

  it("attendance records arrivals and unknown faces, and reports who came when", function()
    if not has_sqlite then
      pending("lua-sql-sqlite3 is not installed")
      return
    end
    local db, review = dir .. "/office.db", dir .. "/review"
    local base = "attendance --json --gallery " .. q(gallery_file) .. " --db " .. q(db)
    local out, _, code = run(base .. " --time '2026-11-22 09:05:00' --review " .. q(review) .. " "
      .. q(photo("Serena_Williams", 3)) .. " spec/fixtures/faceapi/sample2.jpg")
    assert.are.equal(0, code)
    local doc = assert(json.decode(out))
    assert.are.equal(1, doc.recognised)
    assert.is_true(doc.unknown >= 1)
    assert.are.equal(1 + doc.unknown, #doc.events)
    assert.are.equal("Serena_Williams", doc.events[1].name)
    local crop = doc.events[2].crop
    assert.matches("%.png$", crop)
    assert.truthy(require("siamese.image").load(crop))
    out, _, code = run(base .. " --time '2026-11-22 08:55:00' " .. q(photo("Tony_Blair", 3)))
    assert.are.equal(0, code)
    assert.are.equal("Tony_Blair", assert(json.decode(out)).events[1].name)
    out, _, code = run(base .. " --time '2026-11-22 17:30' " .. q(photo("Serena_Williams", 4)))
    assert.are.equal(0, code)
    assert.are.equal("2026-11-22 17:30:00", assert(json.decode(out)).at)
    out, _, code = run("attendance --json --db " .. q(db) .. " --report --date 2026-11-22")
    assert.are.equal(0, code)
    doc = assert(json.decode(out))
    assert.are.equal("2026-11-22", doc.date)
    assert.are.same({{name = "Tony_Blair", first = "08:55:00", last = "08:55:00", count = 1},
                     {name = "Serena_Williams", first = "09:05:00", last = "17:30:00", count = 2}}, doc.people)
    out, _, code = run("attendance --db " .. q(db) .. " --report --date 2026-11-22")
    assert.are.equal(0, code)
    assert.matches("08:55:00  Tony_Blair", out, 1, true)
    out, _, code = run("attendance --json --db " .. q(db) .. " --unknowns")
    assert.are.equal(0, code)
    doc = assert(json.decode(out))
    assert.is_true(#doc.unknown >= 1)
    assert.are.equal("spec/fixtures/faceapi/sample2.jpg", doc.unknown[1].photo)
    assert.are.equal("2026-11-22 09:05:00", doc.unknown[1].at)
    -- a damaged database is refused and left as it was
    local bad = dir .. "/bad.db"
    support.write_file(bad, string.rep("x", 4096))
    local err
    _, err, code = run("attendance --gallery " .. q(gallery_file) .. " --db " .. q(bad) .. " " .. q(photo("Tony_Blair", 3)))
    assert.are.equal(2, code)
    assert.matches("not a database", err)
    assert.are.equal(string.rep("x", 4096), support.read_file(bad))
  end)

  it("calibrate stores the threshold at the target false-accept rate", function()
    local roc = dir .. "/roc.png"
    local out, _, code = run("calibrate --json --gallery " .. q(gallery_file) .. " --folder " .. q(people)
      .. " --far 0.01 --roc " .. q(roc))
    assert.are.equal(0, code)
    local doc = assert(json.decode(out))
    assert.are.equal(2, doc.genuine)
    assert.are.equal(4, doc.impostor)
    assert.are.equal(1, doc.skipped)
    assert.is_true(doc.saved)
    assert.are.equal(0.549, doc.previous_threshold)
    assert.is_number(doc.threshold)
    assert.is_true(doc.auc >= 0 and doc.auc <= 1)
    local img = assert(require("siamese.image").load(roc))
    assert.is_true(img.width > 100)
    out, _, code = run("verify --json --gallery " .. q(gallery_file) .. " --claim Tony_Blair " .. q(photo("Tony_Blair", 2)))
    assert.are.equal(0, code) -- an enrolled photo itself: distance 0
    -- the same threshold, as every command prints numbers: rounded to 4 decimals
    local function r4(v) return math.floor(v * 1e4 + 0.5) / 1e4 end
    assert.are.equal(r4(doc.threshold), assert(json.decode(out)).threshold)
    -- --dry-run on a pairs file leaves the gallery alone
    local pairs_file = dir .. "/pairs.txt"
    support.write_file(pairs_file, "1\nTony_Blair 1 2\nTony_Blair 1 Serena_Williams 1\n")
    local before = support.read_file(gallery_file)
    out, _, code = run("calibrate --json --dry-run --gallery " .. q(gallery_file) .. " --pairs " .. q(pairs_file)
      .. " --root " .. FACES .. " --far 0.5")
    assert.are.equal(0, code)
    doc = assert(json.decode(out))
    assert.is_false(doc.saved)
    assert.are.equal(2, doc.pairs)
    assert.are.equal(before, support.read_file(gallery_file))
  end)

  it("eval pairs and eval folder report verification and identification figures", function()
    local pairs_file = dir .. "/pairs2.txt"
    support.write_file(pairs_file, "2\nTony_Blair 1 2\nSerena_Williams 1 2\nTony_Blair 1 Serena_Williams 2\n"
      .. "Serena_Williams 1 Tony_Blair 2\n")
    local out, _, code = run("eval pairs --json --pairs " .. q(pairs_file) .. " --root " .. FACES)
    assert.are.equal(0, code)
    local doc = assert(json.decode(out))
    assert.are.equal(4, doc.pairs)
    assert.are.equal(1.0, doc.auc)
    assert.is_number(doc.accuracy)
    assert.is_number(doc.eer)
    out, _, code = run("eval folder --json --strangers 1 --seed 3 " .. q(people))
    assert.are.equal(0, code)
    doc = assert(json.decode(out))
    assert.are.equal(3, doc.people)
    assert.are.equal(4, doc.photos)
    assert.are.equal(1, doc.skipped)
    assert.are.equal(2, doc.probes)
    assert.are.equal(1.0, doc.rank1)
    assert.are.equal(2, doc.genuine_pairs)
    assert.are.equal(4, doc.impostor_pairs)
    assert.is_number(doc.open_set.threshold)
    assert.is_number(doc.open_set.dir)
    assert.is_number(doc.open_set.rejection)
  end)
end)

describe("examples enroll.lua, door.lua, attendance.lua", function()
  local dir
  setup(function() dir = support.temp_dir("examples_apps") end)
  teardown(function() os.execute("rm -rf " .. q(dir)) end)

  -- Runs an example script against this checkout; returns stdout and the exit code.
  local function script(name, args)
    local p = assert(io.popen("LUA_PATH_5_4='./lua/?.lua;./lua/?/init.lua;;' LUA_CPATH_5_4='./build/?.so;;' lua5.4 examples/"
      .. name .. " " .. args .. " 2>&1"))
    local out = p:read("a")
    local _, _, code = p:close()
    return out, code
  end

  it("enroll a person, open the door for them and not for someone else, record attendance", function()
    local g = dir .. "/faces.gallery"
    local out, code = script("enroll.lua", q(g) .. " Tony_Blair " .. q(photo("Tony_Blair", 1)))
    assert.are.equal(0, code, out)
    assert.matches("1 people, 1 templates", out)
    out, code = script("door.lua", q(g) .. " Tony_Blair " .. q(photo("Tony_Blair", 2)))
    assert.are.equal(0, code, out)
    assert.matches("^welcome, Tony_Blair", out)
    out, code = script("door.lua", q(g) .. " Tony_Blair " .. q(photo("Serena_Williams", 1)))
    assert.are.equal(1, code, out)
    assert.matches("^go away", out)
    if not has_sqlite then return end
    out, code = script("attendance.lua", q(g) .. " " .. q(dir .. "/a.db") .. " " .. q(photo("Tony_Blair", 3)))
    assert.are.equal(0, code, out)
    assert.matches("Tony_Blair_0003.jpg: Tony_Blair", out, 1, true)
    assert.matches("first arrivals on %d+%-%d+%-%d+:\n  %d+:%d+:%d+ Tony_Blair %(1 sighting%)", out)
  end)
end)
