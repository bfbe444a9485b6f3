-- Specs of the command-line option parser.
local args = require "siamese.app.cli.args"

describe("siamese.app.cli.args", function()
  local spec = {
    json = {kind = "flag", default = false, help = "print JSON"},
    align = {kind = "string", default = "similarity", choices = {"faceapi", "similarity"}, help = "the chip"},
    threshold = {kind = "number", arg = "T", help = "the largest distance still the same person"},
    max_pixels = {kind = "number", arg = "N", help = "refuse images with more pixels"},
  }

  it("reads flags, values in both spellings and positionals", function()
    local o, p = assert(args.parse({"a.jpg", "--json", "--align", "faceapi", "--threshold=0.5", "b.jpg"}, spec))
    assert.is_true(o.json)
    assert.are.equal("faceapi", o.align)
    assert.are.equal(0.5, o.threshold)
    assert.are.same({"a.jpg", "b.jpg"}, p)
    o, p = assert(args.parse({"--", "--json"}, spec))
    assert.is_false(o.json)
    assert.are.equal("similarity", o.align)
    assert.is_nil(o.threshold)
    assert.are.same({"--json"}, p)
  end)

  it("spells _ as - (and accepts _), starts at first, lets the last repeat win, takes values starting with -",
    function()
    local o, p = assert(args.parse({"x", "--max-pixels", "5", "--max_pixels=7", "--threshold", "-1", "-", "--threshold",
                                    "0.25"}, spec, 2))
    assert.are.equal(7, o.max_pixels)
    assert.are.equal(0.25, o.threshold)
    assert.are.same({"-"}, p)
    o = assert(args.parse({"--threshold", "-0.5"}, spec))
    assert.are.equal(-0.5, o.threshold)
  end)

  it("refuses unknown options, missing values, bad numbers and choices, in one line", function()
    local function err(argv) return select(2, args.parse(argv, spec)) end
    assert.are.equal("unknown option '--nope'", err{"--nope"})
    assert.are.equal("unknown option '--tresholds'; did you mean '--threshold'?", err{"--tresholds", "1"})
    assert.are.equal("option '--align' requires an argument", err{"--align"})
    assert.are.equal("argument for option '--threshold' must be a number, got 'x'", err{"--threshold", "x"})
    assert.are.equal("argument for option '--align' must be one of 'faceapi', 'similarity'", err{"--align=dlib"})
    assert.are.equal("option '--json' does not take arguments", err{"--json=1"})
    assert.are.equal("unknown option '-x'", err{"-x"})
  end)

  it("raises on a spec entry without a known kind", function()
    assert.has_error(function() args.parse({}, {x = {kind = "int"}}) end)
  end)

  it("help: usage, description, every option with its value's name and description, epilog", function()
    local text = args.help{usage = "usage: siamese thing [options] PHOTO", description = "Does a thing.",
                           epilog = "exit status: 0 done", spec = spec}
    assert.matches("^usage: siamese thing %[options%] PHOTO\n\nDoes a thing%.\n\nOptions:\n", text)
    local function has(line) assert.truthy(text:find(line, 1, true), line) end
    has("\n   --align faceapi|similarity\n                           the chip\n")
    has("\n   --json                  print JSON\n")
    has("\n   --max-pixels N          refuse images with more pixels\n")
    has("\n   --threshold T           the largest distance still the same person\n")
    assert.matches("\n\nexit status: 0 done$", text)
    assert.is_nil(text:find("max_pixels", 1, true))
    for line in text:gmatch("[^\n]+") do assert.is_true(#line <= 79, line) end
  end)

  it("every command's options have a description in its --help", function()
    for _, name in ipairs{"attendance", "audit", "calibrate", "compare", "embed", "enroll", "eval", "eval_pairs",
                          "eval_folder", "gallery", "identify", "serve", "token", "verify", "watch"} do
      local cmd = require("siamese.app.cli." .. name)
      assert.matches("^usage: siamese ", cmd.usage, 1, false)
      for key, s in pairs(cmd.spec) do
        assert.is_string(s.help, name .. " --" .. key)
      end
      local text = args.help(cmd)
      for key in pairs(cmd.spec) do
        assert.truthy(text:find("\n   --" .. key:gsub("_", "-"), 1, true), name .. " --" .. key)
      end
    end
  end)
end)

describe("siamese.app.cli.photo_options", function()
  local photo_options = require "siamese.app.cli.photo_options"
  local siamese = require "siamese"

  it("merges --detector, --threads and --max-pixels into a command's options", function()
    local spec = photo_options.merge{json = {kind = "flag", default = false}}
    local o, p = assert(args.parse({"--detector", "ssd", "--threads=2", "--max-pixels", "1000", "a.jpg"}, spec))
    assert.are.equal("ssd", o.detector)
    assert.are.equal(2, o.threads)
    assert.are.equal(1000, o.max_pixels)
    assert.are.same({"a.jpg"}, p)
    assert.matches("must be one of 'tiny', 'ssd'", select(2, args.parse({"--detector", "big"}, spec)))
    o = assert(args.parse({}, spec))
    assert.is_nil(o.detector)
    assert.is_nil(o.threads)
    assert.is_nil(o.max_pixels)
    assert.matches("--max-pixels N", args.help{usage = "usage: siamese x", spec = spec}, 1, true)
  end)

  it("refuses bad values naming the flag, applying nothing", function()
    local cases = {
      {{threads = 0}, "--threads must be an integer from 1 to 1024, got 0"},
      {{threads = 1025}, "--threads must be an integer from 1 to 1024, got 1025"},
      {{threads = 1.5}, "--threads must be an integer from 1 to 1024, got 1.5"},
      {{max_pixels = 0}, "--max-pixels must be a positive integer, got 0"},
      {{max_pixels = -5}, "--max-pixels must be a positive integer, got -5"},
      {{max_pixels = 2.5}, "--max-pixels must be a positive integer, got 2.5"},
      {{detector = "big"}, "--detector must be tiny or ssd, got 'big'"},
    }
    for _, c in ipairs(cases) do
      local ok, err = photo_options.apply(c[1])
      assert.is_nil(ok)
      assert.are.equal(c[2], err)
    end
  end)

  it("applies threads and the pixel limit", function()
    local threads, limit = siamese.get_num_threads(), siamese.image.get_max_pixels()
    local opts = {threads = threads + 0.0, max_pixels = 12345}
    assert.is_true(photo_options.apply(opts))
    assert.are.equal(threads, siamese.get_num_threads())
    assert.are.equal(12345, siamese.image.get_max_pixels())
    assert.are.equal("integer", math.type(opts.threads))
    siamese.image.set_max_pixels(limit)
    assert.is_true(photo_options.apply{})
  end)
end)

describe("siamese.app.cli.inputs.parse_time", function()
  local inputs = require "siamese.app.cli.inputs"
  it("reads 'YYYY-MM-DD HH:MM[:SS]' (or with a T) as local time", function()
    local t = os.time{year = 2026, month = 11, day = 22, hour = 8, min = 55, sec = 0}
    assert.are.equal(t, inputs.parse_time("2026-11-22 08:55"))
    assert.are.equal(t, inputs.parse_time("2026-11-22T08:55:00"))
    assert.are.equal(t + 7, inputs.parse_time("2026-11-22 08:55:07"))
    assert.are.equal(os.time{year = 2028, month = 2, day = 29, hour = 0, min = 0, sec = 0},
      inputs.parse_time("2028-02-29 00:00"))  -- a leap day
  end)
  it("refuses texts that are not such a time or name none", function()
    for _, s in ipairs{"yesterday", "2026-11-22", "2026-11-22 8:55", "2026-11-22 08:55:", "2026-11-22 08:5512",
                       "2026-11-22 08:55:7", "2026-02-30 08:00", "2027-02-29 08:00", "2026-04-31 08:00",
                       "2026-13-01 08:00", "2026-11-22 24:00", "2026-11-22 08:60", "2026-11-22 08:55:60",
                       " 2026-11-22 08:55", "2026-11-22 08:55 "} do
      assert.is_nil(inputs.parse_time(s), s)
    end
    assert.is_nil(inputs.parse_time(nil))
  end)
end)
