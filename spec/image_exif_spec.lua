-- Specs of EXIF orientation in siamese.image: a JPEG whose APP1 "Exif" segment
-- says Orientation N (1..8) loads upright, turned as the EXIF/TIFF standard
-- defines N; {exif = false} keeps the stored pixels; malformed EXIF of every
-- kind loads as orientation 1, never an error.
--
-- The test files are made here, deterministically: an APP1 segment built by
-- the TIFF writer below is spliced into a fixture JPEG's bytes (after SOI, or
-- after its JFIF APP0). The entropy-coded data is untouched, so the decode is
-- the very same and the upright image must equal the plain decode turned by
-- the expected rotation/flip exactly. The expected turns are composed from
-- mirrors and the transpose written here in Lua, independently of the C code;
-- a second check places coloured corner blocks and names where the standard
-- says each corner must end up.
local image = require "siamese.image"
local support = dofile("spec/support.lua")

local FIX = "spec/fixtures/images/"
local read = support.read_file

-- ---- building EXIF ------------------------------------------------------------

local TAG_ORIENTATION, SHORT, LONG, BYTE, ASCII = 0x0112, 3, 4, 1, 2

-- TIFF data (what follows "Exif\0\0") with one IFD0.
-- order: "II" (little-endian) or "MM" (big-endian).
-- entries: list of { tag, type, count, value } where value is a number (a
-- SHORT: written in the first two bytes of the 4-byte value field, in the
-- file's byte order) or a 4-byte string (the raw value field).
-- o (optional): magic (default 42), count (the entry count written,
-- default #entries), mark (the byte-order mark written, default order).
local function tiff(order, entries, o)
  o = o or {}
  local e = order == "II" and "<" or ">"
  local parts = { o.mark or order, string.pack(e .. "I2I4", o.magic or 42, 8) }   -- IFD0 right after
  parts[#parts + 1] = string.pack(e .. "I2", o.count or #entries)
  for _, ent in ipairs(entries) do
    local tag, typ, count, value = ent[1], ent[2], ent[3], ent[4]
    local field = type(value) == "string" and value or string.pack(e .. "I2I2", value, 0)
    assert(#field == 4)
    parts[#parts + 1] = string.pack(e .. "I2I2I4", tag, typ, count) .. field
  end
  parts[#parts + 1] = string.pack(e .. "I4", 0)                                  -- no next IFD
  return table.concat(parts)
end

-- The usual Orientation entry, alone or after a Make entry pointing elsewhere.
local function orientation_tiff(order, n, with_make)
  local entries = {}
  if with_make then
    local e = order == "II" and "<" or ">"
    entries[1] = { 0x010F, ASCII, 6, string.pack(e .. "I4", 100) }
  end
  entries[#entries + 1] = { TAG_ORIENTATION, SHORT, 1, n }
  return tiff(order, entries)
end

local function segment(marker, body)
  assert(#body + 2 <= 0xFFFF)
  return "\255" .. string.char(marker) .. string.pack(">I2", #body + 2) .. body
end

local function exif_app1(tiff_data)
  return segment(0xE1, "Exif\0\0" .. tiff_data)
end

-- The JPEG with the segments inserted after SOI, or after the segment that
-- follows SOI (the fixtures' JFIF APP0) when after_app0.
local function splice(jpeg, segments, after_app0)
  assert(jpeg:sub(1, 2) == "\255\216")
  local at = 3
  if after_app0 then
    assert(jpeg:byte(3) == 0xFF)
    at = 5 + string.unpack(">I2", jpeg, 5)
  end
  return jpeg:sub(1, at - 1) .. segments .. jpeg:sub(at)
end

-- ---- expected turns, in Lua --------------------------------------------------------

-- {w, h, c, px} with px[y * w + x + 1] the pixel's bytes.
local function pixels_of(img)
  local s, c, px = img:bytes(), img.channels, {}
  for i = 1, img.width * img.height do px[i] = s:sub((i - 1) * c + 1, i * c) end
  return { w = img.width, h = img.height, c = c, px = px }
end

local function remap(p, w, h, src)  -- out(x, y) = p(src(x, y))
  local px = {}
  for y = 0, h - 1 do
    for x = 0, w - 1 do
      local sx, sy = src(x, y)
      px[y * w + x + 1] = p.px[sy * p.w + sx + 1]
    end
  end
  return { w = w, h = h, c = p.c, px = px }
end

local function flip_h(p) return remap(p, p.w, p.h, function(x, y) return p.w - 1 - x, y end) end
local function flip_v(p) return remap(p, p.w, p.h, function(x, y) return x, p.h - 1 - y end) end
local function transpose(p) return remap(p, p.h, p.w, function(x, y) return y, x end) end

-- What makes the stored image upright, per the EXIF 2.3 / TIFF 6.0 table.
local TURNS = {
  [1] = {},                           -- top-left: as stored
  [2] = { flip_h },                   -- top-right: mirrored left-right
  [3] = { flip_h, flip_v },           -- bottom-right: rotated 180
  [4] = { flip_v },                   -- bottom-left: mirrored top-bottom
  [5] = { transpose },                -- left-top: transpose
  [6] = { transpose, flip_h },        -- right-top: rotate 90 clockwise
  [7] = { transpose, flip_h, flip_v },-- right-bottom: transverse
  [8] = { transpose, flip_v },        -- left-bottom: rotate 90 counter-clockwise
}

local function turned(img, n)
  local p = pixels_of(img)
  for _, op in ipairs(TURNS[n]) do p = op(p) end
  return p.w, p.h, table.concat(p.px)
end

-- Asserts img is plain turned by orientation n, byte for byte.
local function assert_turned(plain, img, n, what)
  local w, h, bytes = turned(plain, n)
  assert.are.equal(w, img.width, what)
  assert.are.equal(h, img.height, what)
  assert.are.equal(plain.channels, img.channels, what)
  assert(bytes == img:bytes(), what .. ": pixels differ from the expected turn")
  assert.are.equal(n, img.orientation, what)
end

local tmp
setup(function() tmp = support.temp_dir("exif") end)
teardown(function() support.remove_dir(tmp) end)

local function write_tmp(name, bytes)
  local path = tmp .. "/" .. name
  support.write_file(path, bytes)
  return path
end

-- ---------------------------------------------------------------------------

describe("siamese.image EXIF orientation", function()
  local rgb444 = read(FIX .. "rgb444.jpg")
  local plain = assert(image.load(FIX .. "rgb444.jpg"))

  it("the test turns are what the standard names them", function()
    -- a 3x2 image: the turns of "ABC/DEF" written out by hand
    local p = { w = 3, h = 2, c = 1, px = { "A", "B", "C", "D", "E", "F" } }
    local function apply(n)
      local q = p
      for _, op in ipairs(TURNS[n]) do q = op(q) end
      return q.w .. "x" .. q.h .. ":" .. table.concat(q.px)
    end
    assert.are.equal("3x2:ABCDEF", apply(1))
    assert.are.equal("3x2:CBAFED", apply(2))
    assert.are.equal("3x2:FEDCBA", apply(3))
    assert.are.equal("3x2:DEFABC", apply(4))
    assert.are.equal("2x3:ADBECF", apply(5))
    assert.are.equal("2x3:DAEBFC", apply(6))  -- clockwise: the left column D,A becomes the top row
    assert.are.equal("2x3:FCEBDA", apply(7))
    assert.are.equal("2x3:CFBEAD", apply(8))  -- counter-clockwise: the right column C,F becomes the top row
  end)

  assert(plain.orientation == 1 and plain.width == 35 and plain.height == 23)

  for _, order in ipairs { "II", "MM" } do
    for n = 1, 8 do
      it(("loads orientation %d (%s) turned upright, exactly"):format(n, order), function()
        for _, variant in ipairs {
          { after_app0 = false, with_make = false },
          { after_app0 = true, with_make = true },
        } do
          local data = splice(rgb444, exif_app1(orientation_tiff(order, n, variant.with_make)), variant.after_app0)
          local path = write_tmp(("o%d_%s.jpg"):format(n, order), data)
          local what = ("orientation %d %s%s"):format(n, order, variant.after_app0 and " after APP0" or "")
          assert_turned(plain, assert(image.load(path)), n, what)
          assert_turned(plain, assert(image.decode(data)), n, what .. " (decode)")
          assert_turned(plain, assert(image.load(path, { exif = true })), n, what .. " (exif = true)")

          local kept = assert(image.load(path, { exif = false }))
          assert.are.equal(plain:bytes(), kept:bytes())
          assert.are.same({ 35, 23, 1 }, { kept.width, kept.height, kept.orientation })

          local w, h = turned(plain, n)
          assert.are.same({ format = "jpeg", width = w, height = h, channels = 3 }, image.probe(data))
          assert.are.same({ format = "jpeg", width = 35, height = 23, channels = 3 }, image.probe(data, { exif = false }))
        end
      end)
    end
  end

  it("puts the corners where the standard says (a sideways phone photo)", function()
    -- stored 48x32: red block at the stored top-left, green at the top-right
    local w, h = 48, 32
    local bytes = {}
    for y = 0, h - 1 do
      for x = 0, w - 1 do
        local px = "\128\128\128"
        if y < 12 and x < 12 then px = "\255\0\0" elseif y < 12 and x >= w - 12 then px = "\0\255\0" end
        bytes[#bytes + 1] = px
      end
    end
    local jpeg = assert(image.new(w, h, 3, table.concat(bytes)):encode("jpeg", { quality = 100 }))
    local function corner_colour(img, right, bottom)
      local x = right and img.width - 4 or 3
      local y = bottom and img.height - 4 or 3
      local r, g, b = img:get(x, y)
      if r > 200 and g < 60 and b < 60 then return "red" end
      if g > 200 and r < 60 and b < 60 then return "green" end
      assert(math.abs(r - 128) < 30 and math.abs(g - 128) < 30, "unexpected colour")
      return "gray"
    end
    -- where the red and green corners must be once upright: TL, TR, BL, BR
    local expect = {
      [1] = { "red", "green", "gray", "gray" },
      [2] = { "green", "red", "gray", "gray" },   -- mirrored
      [3] = { "gray", "gray", "green", "red" },   -- 180
      [4] = { "gray", "gray", "red", "green" },   -- mirrored top-bottom
      [5] = { "red", "gray", "green", "gray" },   -- transposed: top row becomes left column
      [6] = { "gray", "red", "gray", "green" },   -- 90 clockwise: top row becomes right column
      [7] = { "gray", "green", "gray", "red" },   -- transversed
      [8] = { "green", "gray", "red", "gray" },   -- 90 counter-clockwise: top row becomes left column, upwards
    }
    for _, order in ipairs { "II", "MM" } do
      for n = 1, 8 do
        local img = assert(image.decode(splice(jpeg, exif_app1(orientation_tiff(order, n)))))
        local swapped = n >= 5
        assert.are.same({ swapped and h or w, swapped and w or h }, { img.width, img.height })
        assert.are.same(expect[n], {
          corner_colour(img, false, false), corner_colour(img, true, false),
          corner_colour(img, false, true), corner_colour(img, true, true),
        }, ("orientation %d %s"):format(n, order))
      end
    end
  end)

  it("turns every JPEG kind: gray, 4:2:0, progressive, CMYK, and the jpeg-js decoder", function()
    for _, file in ipairs { "gray.jpg", "rgb420.jpg", "progressive.jpg", "cmyk.jpg", "rgb444.jpg" } do
      local data = read(FIX .. file)
      for _, decoder in ipairs { "libjpeg", "jpeg-js" } do
        local base = assert(image.decode(data, { jpeg_decoder = decoder }))
        for n = 1, 8 do
          local order = n % 2 == 0 and "II" or "MM"
          local img = assert(image.decode(splice(data, exif_app1(orientation_tiff(order, n))), { jpeg_decoder = decoder }))
          assert_turned(base, img, n, ("%s %s orientation %d"):format(file, decoder, n))
        end
      end
    end
  end)

  it("applies max_pixels to the turned image as to the stored one", function()
    local data = splice(rgb444, exif_app1(orientation_tiff("II", 6)))
    local img, err = image.decode(data, { max_pixels = 35 * 23 - 1 })
    assert.is_nil(img)
    assert.matches("limit", err)
    img = assert(image.decode(data, { max_pixels = 35 * 23 }))
    assert.are.same({ 23, 35 }, { img.width, img.height })
  end)

  it("reports orientation 1 for images it did not turn", function()
    local img = assert(image.decode(splice(rgb444, exif_app1(orientation_tiff("MM", 8)))))
    assert.are.equal(8, img.orientation)
    assert.are.equal(1, img:clone().orientation)
    assert.are.equal(1, img:flip().orientation)
    assert.are.equal(1, image.new(2, 2, 1).orientation)
    assert.are.equal(1, plain.orientation)
  end)

  it("leaves PNG, PGM and PPM alone", function()
    for _, file in ipairs { "rgb8.png", "gray8.png", "rgba8.png", "p5_255.pgm", "p6_255.ppm" } do
      local a = assert(image.load(FIX .. file))
      local b = assert(image.load(FIX .. file, { exif = false }))
      assert.are.equal(a:bytes(), b:bytes())
      assert.are.same({ b.width, b.height, 1 }, { a.width, a.height, a.orientation })
    end
  end)

  it("set_exif(false) makes not applying it the default of load and decode; an explicit option wins", function()
    local data = splice(rgb444, exif_app1(orientation_tiff("II", 6, false)), false)
    local path = write_tmp("default6.jpg", data)
    assert.is_true(image.get_exif())
    image.set_exif(false)
    local ok, err = pcall(function()
      assert.is_false(image.get_exif())
      local a, b = assert(image.load(path)), assert(image.decode(data))
      assert.are.same({ 35, 23, 1 }, { a.width, a.height, a.orientation })
      assert.are.same({ 35, 23 }, { b.width, b.height })
      local c = assert(image.load(path, { exif = true }))
      assert.are.same({ 23, 35, 6 }, { c.width, c.height, c.orientation })
    end)
    image.set_exif(true)
    assert(ok, err)
    assert.are.equal(23, assert(image.load(path)).width)
    assert.has_error(function() image.set_exif("no") end, "bad argument #1 to 'set_exif' (boolean expected, got string)")
  end)

  it("raises on a non-boolean exif option, naming the function and argument", function()
    local path = write_tmp("opt.jpg", rgb444)
    for _, bad in ipairs { 1, "no", {} } do
      local ok, err = pcall(image.decode, rgb444, { exif = bad })
      assert.is_false(ok)
      assert.matches("bad argument #2 to '[%w.]*decode' %(option 'exif' must be a boolean, got " .. type(bad), err)
      ok, err = pcall(image.load, path, { exif = bad })
      assert.is_false(ok)
      assert.matches("bad argument #2 to 'load' %(option 'exif' must be a boolean, got " .. type(bad), err)
      ok, err = pcall(image.probe, rgb444, { exif = bad })
      assert.is_false(ok)
      assert.matches("bad argument #2 to '[%w.]*probe' %(option 'exif' must be a boolean", err)
    end
    assert(image.decode(rgb444, { exif = false }))
    assert(image.decode(rgb444, { exif = nil }))
  end)
end)

describe("siamese.image malformed EXIF", function()
  local rgb444 = read(FIX .. "rgb444.jpg")
  local plain = assert(image.load(FIX .. "rgb444.jpg"))

  -- Loads the JPEG carrying these segments; it must decode as stored.
  local function assert_ignored(segments, what)
    local path = write_tmp("bad.jpg", splice(rgb444, segments))
    local ok, img, err = pcall(image.load, path)
    assert(ok, what .. ": raised " .. tostring(img))
    assert(img, what .. ": " .. tostring(err))
    assert.are.same({ 35, 23, 1 }, { img.width, img.height, img.orientation }, what)
    assert(img:bytes() == plain:bytes(), what .. ": pixels differ")
    assert.are.same({ format = "jpeg", width = 35, height = 23, channels = 3 },
                    image.probe(support.read_file(path)), what)
  end

  local function short(order, v)  -- a SHORT value field
    return string.pack((order == "II" and "<" or ">") .. "I2I2", v, 0)
  end

  for _, order in ipairs { "II", "MM" } do
    local e = order == "II" and "<" or ">"
    local good = orientation_tiff(order, 6)

    it("ignores truncated EXIF (" .. order .. ")", function()
      -- header 8 bytes, entry count 2, the entry 12: cut anywhere before the
      -- entry is whole, the segment (consistent in itself) is ignored
      for cut = 0, 8 + 2 + 12 - 1 do
        assert_ignored(exif_app1(good:sub(1, cut)), ("cut to %d bytes"):format(cut))
      end
      -- the entry table whole, the next-IFD offset cut: the entry is read
      local img = assert(image.decode(splice(rgb444, exif_app1(good:sub(1, 8 + 2 + 12)))))
      assert.are.equal(6, img.orientation)
      -- an APP1 holding the identifier only, or cut inside it
      assert_ignored(segment(0xE1, "Exif\0\0"), "identifier only")
      assert_ignored(segment(0xE1, "Exif"), "identifier cut")
      assert_ignored(segment(0xE1, ""), "empty APP1")
    end)

    it("ignores offsets pointing outside the segment (" .. order .. ")", function()
      for _, off in ipairs { #good, #good - 1, #good + 100, 1000, 65535, 0x7FFFFFFF, 0xFFFFFFFF, 0, 4, 7 } do
        local bad = good:sub(1, 4) .. string.pack(e .. "I4", off) .. good:sub(9)
        assert_ignored(exif_app1(bad), ("IFD offset %d"):format(off))
      end
    end)

    it("ignores an IFD claiming more entries than the segment holds (" .. order .. ")", function()
      for _, count in ipairs { 2, 100, 5461, 60000, 65535 } do
        assert_ignored(exif_app1(tiff(order, { { TAG_ORIENTATION, SHORT, 1, 6 } }, { count = count })),
                       ("%d entries claimed"):format(count))
      end
      assert_ignored(exif_app1(tiff(order, { { TAG_ORIENTATION, SHORT, 1, 6 } }, { count = 0 })), "0 entries")
    end)

    it("ignores an Orientation entry of the wrong count or type (" .. order .. ")", function()
      for _, count in ipairs { 0, 2, 0xFFFFFFFF } do
        assert_ignored(exif_app1(tiff(order, { { TAG_ORIENTATION, SHORT, count, 6 } })), ("count %d"):format(count))
      end
      assert_ignored(exif_app1(tiff(order, { { TAG_ORIENTATION, LONG, 1, string.pack(e .. "I4", 6) } })), "LONG")
      assert_ignored(exif_app1(tiff(order, { { TAG_ORIENTATION, BYTE, 1, "\6\0\0\0" } })), "BYTE")
      assert_ignored(exif_app1(tiff(order, { { TAG_ORIENTATION, 8, 1, 6 } })), "SSHORT")
      assert_ignored(exif_app1(tiff(order, { { TAG_ORIENTATION, 0, 1, 6 } })), "type 0")
    end)

    it("ignores Orientation values outside 1..8 (" .. order .. ")", function()
      for _, v in ipairs { 0, 9, 255, 256, 0x0600, 0xFFFF } do
        assert_ignored(exif_app1(tiff(order, { { TAG_ORIENTATION, SHORT, 1, v } })), ("value %d"):format(v))
      end
      -- the value in the other byte order is 6 * 256: out of range
      local other = order == "II" and ">" or "<"
      assert_ignored(exif_app1(tiff(order, { { TAG_ORIENTATION, SHORT, 1, string.pack(other .. "I2I2", 6, 0) } })),
                     "value in the wrong byte order")
    end)

    it("ignores a bad TIFF header (" .. order .. ")", function()
      assert_ignored(exif_app1(tiff(order, { { TAG_ORIENTATION, SHORT, 1, 6 } }, { magic = 43 })), "magic 43")
      assert_ignored(exif_app1(tiff(order, { { TAG_ORIENTATION, SHORT, 1, 6 } }, { mark = "IM" })), "mark IM")
      assert_ignored(exif_app1(tiff(order, { { TAG_ORIENTATION, SHORT, 1, 6 } }, { mark = order:lower() })), "mark lower case")
      assert_ignored(segment(0xE1, "Exif\0\1" .. good), "identifier Exif\\0\\1")
      assert_ignored(segment(0xE2, "Exif\0\0" .. good), "APP2, not APP1")
      assert_ignored(exif_app1(tiff(order, { { 0x0110, SHORT, 1, 6 }, { 0x0113, SHORT, 1, 6 } })), "no Orientation tag")
    end)
  end

  it("reads the first Exif APP1 only, past other APP1 segments", function()
    local xmp = segment(0xE1, "http://ns.adobe.com/xap/1.0/\0<x:xmpmeta/>")
    local img = assert(image.decode(splice(rgb444, xmp .. exif_app1(orientation_tiff("II", 6)))))
    assert.are.equal(6, img.orientation)
    img = assert(image.decode(splice(rgb444, exif_app1(orientation_tiff("II", 6)) .. exif_app1(orientation_tiff("MM", 8)))))
    assert.are.equal(6, img.orientation)
    img = assert(image.decode(splice(rgb444, exif_app1(orientation_tiff("II", 0)) .. exif_app1(orientation_tiff("MM", 8)))))
    assert.are.equal(1, img.orientation, "a bad first Exif segment is not passed over for a later one")
  end)

  it("mutated EXIF never raises or reads out of place (fixed seed)", function()
    local state = 12345
    local function rnd(n)
      state = (state * 1103515245 + 12345) % 2147483648
      return state // 65536 % n
    end
    local seen = {}
    for _ = 1, 400 do
      local t = { orientation_tiff(rnd(2) == 0 and "II" or "MM", 1 + rnd(8), rnd(2) == 0):byte(1, -1) }
      for _ = 1, 1 + rnd(3) do t[1 + rnd(#t)] = rnd(256) end
      local data = splice(rgb444, exif_app1(string.char(table.unpack(t))))
      local ok, img, err = pcall(image.decode, data)
      assert(ok, tostring(img))
      assert(img, err)
      local n = img.orientation
      assert(n >= 1 and n <= 8)
      assert_turned(plain, img, n, "mutated EXIF, orientation " .. n)
      seen[n] = true
    end
    assert(seen[1] and seen[6], "the mutations both kept and spoiled orientations")
  end)

  it("a segment running past the end of the file is a corrupt JPEG: nil, message", function()
    local cut = splice(rgb444, exif_app1(orientation_tiff("II", 6))):sub(1, 20)
    local img, err = image.decode(cut)
    assert.is_nil(img)
    assert.is_string(err)
    -- an APP1 length claiming more than the whole file
    local data = "\255\216\255\225\255\255Exif\0\0" .. orientation_tiff("II", 6)
    img, err = image.decode(data)
    assert.is_nil(img)
    assert.is_string(err)
  end)
end)
