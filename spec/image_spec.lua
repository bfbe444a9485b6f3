-- Specs of siamese.image: decoding against reference decodes of the fixtures
-- (spec/fixtures/images, made by make_fixtures.py), every public function on
-- hand-computable cases, and every misuse raising a message that names the
-- argument.
local image = require "siamese.image"
local tensor = require "siamese.tensor"

local FIX = "spec/fixtures/images/"
local read = dofile("spec/support.lua").read_file
local bounds = dofile("spec/face_bounds.lua")

-- Float32 resampling (resize_tensor): the sample positions (dst + 0.5)
-- scale - 0.5 or dst in / out, below the input size n, round 3 times
-- (absolute gamma(3) n, moving a weight that much), then per axis a lerp
-- (or an area's weighted sum) of values below vmax: within
-- gamma(8) vmax (2 + 2 n) of exact on both axes, the float32 store included.
local function resize_bound(vmax, n)
  return bounds.gamma(8) * vmax * (2 + 2 * n)
end

local function bytes_of(values)
  local parts = {}
  for i, v in ipairs(values) do parts[i] = string.char(v) end
  return table.concat(parts)
end

local function values_of(s)
  local out = {}
  for i = 1, #s do out[i] = s:byte(i) end
  return out
end

-- An image from a flat table of samples.
local function img_of(w, h, c, values)
  return image.new(w, h, c, bytes_of(values))
end

-- Deterministic varied content.
local function pattern(w, h, c, seed)
  local v, state = {}, seed or 1
  for i = 1, w * h * c do
    state = (state * 1103515245 + 12345) % 2147483648
    v[i] = state // 65536 % 256
  end
  return img_of(w, h, c, v)
end

-- A smooth picture (JPEG-friendly).
local function smooth(w, h, c)
  local v = {}
  for y = 0, h - 1 do
    for x = 0, w - 1 do
      local px = { x * 255 // (w - 1), y * 255 // (h - 1), (x + y) * 255 // (w + h - 2), 200 }
      for k = 1, c do v[#v + 1] = px[k] end
    end
  end
  return img_of(w, h, c, v)
end

local function max_abs_diff(a, b)
  assert.are.equal(#a, #b)
  local worst, at = 0, nil
  for i = 1, #a do
    local d = math.abs(a:byte(i) - b:byte(i))
    if d > worst then worst, at = d, i end
  end
  return worst, at
end

local function mean_abs_diff(a, b)
  local sum = 0
  for i = 1, #a do sum = sum + math.abs(a:byte(i) - b:byte(i)) end
  return sum / #a
end

-- Asserts that fn(...) raises an error containing every given fragment.
local function raises(fragments, fn, ...)
  local ok, err = pcall(fn, ...)
  assert.is_false(ok, "expected an error")
  err = tostring(err)
  if type(fragments) == "string" then fragments = { fragments } end
  for _, frag in ipairs(fragments) do
    assert(err:find(frag, 1, true), ("error %q does not mention %q"):format(err, frag))
  end
end

local function tensor_values(t)
  local out = {}
  local function walk(x)
    if type(x) == "table" then
      for _, y in ipairs(x) do walk(y) end
    else
      out[#out + 1] = x
    end
  end
  walk(t:totable())
  return out
end

local function assert_close_list(expected, got, tol)
  assert.are.equal(#expected, #got)
  for i = 1, #expected do
    assert(math.abs(expected[i] - got[i]) <= tol,
      ("entry %d: expected %s, got %s"):format(i, expected[i], got[i]))
  end
end

-- ---------------------------------------------------------------------------

describe("siamese.image fixtures", function()
  local manifest = dofile(FIX .. "manifest.lua")

  it("cover every promised variant", function()
    local names = {}
    for _, f in ipairs(manifest) do names[f.name] = true end
    for _, want in ipairs {
      "png gray 1-bit", "png gray 2-bit", "png gray 4-bit", "png gray 8-bit", "png gray 16-bit",
      "png gray+alpha 8-bit", "png gray+alpha 16-bit", "png rgb 8-bit", "png rgb 16-bit",
      "png rgba 8-bit", "png rgba 16-bit",
      "png palette 1-bit", "png palette 2-bit", "png palette 4-bit", "png palette 8-bit",
      "png palette 1-bit tRNS", "png palette 2-bit tRNS", "png palette 4-bit tRNS", "png palette 8-bit tRNS",
      "png gray 8-bit tRNS", "png rgb 8-bit tRNS", "png rgb 8-bit interlaced",
      "P2 maxval 255", "P2 maxval 1000", "P2 maxval 65535", "P5 maxval 255", "P5 maxval 1000",
      "P5 maxval 65535", "P3 maxval 255", "P3 maxval 65535", "P6 maxval 255", "P6 maxval 65535",
      "jpeg gray", "jpeg rgb 4:4:4", "jpeg rgb 4:2:0", "jpeg progressive", "jpeg cmyk (adobe)",
    } do
      assert(names[want], "missing fixture: " .. want)
    end
  end)

  for _, f in ipairs(manifest) do
    it("decodes " .. f.name .. " (" .. f.file .. ") like the reference", function()
      local img, err = image.load(FIX .. f.file)
      assert(img, err)
      assert.are.equal(f.width, img.width)
      assert.are.equal(f.height, img.height)
      assert.are.equal(f.channels, img.channels)
      local worst, at = max_abs_diff(read(FIX .. f.reference), img:bytes())
      -- not round-off: the manifest's tolerance is the documented decoder
      -- criterion (0 for PNG/PNM, whose samples are known; 1 level for
      -- JPEG against ImageMagick's decode: IDCTs may round differently;
      -- spec/fixtures/images/README.md)
      assert(worst <= f.tolerance,
        ("%s: sample %d differs by %d (tolerance %d)"):format(f.file, at or 0, worst, f.tolerance))

      local info = assert(image.probe(read(FIX .. f.file)))
      assert.are.same({ format = f.format, width = f.width, height = f.height, channels = f.channels }, info)
    end)
  end
end)

describe("siamese.image jpeg_decoder = 'jpeg-js'", function()
  -- References written by jpeg-js 0.4.4 itself (make_jpegjs_refs.js).
  for _, case in ipairs {
    { "gray", "gray", 1 }, { "rgb444", "rgb", 3 }, { "rgb420", "rgb", 3 }, { "progressive", "rgb", 3 },
  } do
    local name, ext, channels = case[1], case[2], case[3]
    it("decodes " .. name .. ".jpg to jpeg-js's very samples", function()
      local img = assert(image.load(FIX .. name .. ".jpg", { jpeg_decoder = "jpeg-js" }))
      assert.are.equal(channels, img.channels)
      local worst, at = max_abs_diff(read(FIX .. "ref/" .. name .. ".jpegjs." .. ext), img:bytes())
      assert(worst == 0, ("%s: sample %d differs by %d"):format(name, at or 0, worst))
    end)
  end

  it("differs from libjpeg's default decode only where chroma is subsampled or rounded", function()
    local data = read(FIX .. "rgb420.jpg")
    local a = assert(image.decode(data))
    local b = assert(image.decode(data, { jpeg_decoder = "jpeg-js" }))
    local c = assert(image.decode(data, { jpeg_decoder = "libjpeg" }))
    assert.are.equal(a:bytes(), c:bytes())
    assert.are_not.equal(a:bytes(), b:bytes())
  end)

  it("leaves other formats and CMYK JPEGs as they decode by default", function()
    for _, file in ipairs { "cmyk.jpg", "rgb8.png", "p6_255.ppm" } do
      local data = read(FIX .. file)
      assert.are.equal(assert(image.decode(data)):bytes(), assert(image.decode(data, { jpeg_decoder = "jpeg-js" })):bytes())
    end
  end)

  it("refuses an unknown decoder, naming the option", function()
    local ok, err = pcall(image.decode, read(FIX .. "gray.jpg"), { jpeg_decoder = "pillow" })
    assert.is_false(ok)
    assert.matches("jpeg_decoder must be 'libjpeg' or 'jpeg%-js', got 'pillow'", err)
  end)

  it("returns nil, message on truncated data", function()
    local data = read(FIX .. "progressive.jpg")
    for _, cut in ipairs { 100, 300, #data - 10 } do
      local img, err = image.decode(data:sub(1, cut), { jpeg_decoder = "jpeg-js" })
      assert.is_nil(img)
      assert.is_string(err)
    end
  end)
end)

describe("siamese.image decoding", function()
  local png = read(FIX .. "rgb8.png")

  it("returns nil, message on empty, garbage and wrong-magic data", function()
    for _, data in ipairs { "", "x", "garbage that is not an image", "GIF89a\1\0\1\0",
                            "\137PNG\r\n\26", "P7 1 1 255\n\0", "P1\n1 1\n1", "\255\216" } do
      local img, err = image.decode(data)
      assert.is_nil(img)
      assert.is_string(err)
      local info, perr = image.probe(data)
      assert.is_nil(info)
      assert.is_string(perr)
    end
  end)

  it("returns nil, message on truncated data of each format", function()
    for _, name in ipairs { "rgb8.png", "p6_255.ppm", "p2_1000.pgm", "rgb444.jpg", "progressive.jpg" } do
      local data = read(FIX .. name)
      for _, len in ipairs { #data // 2, #data - 20, 12 } do
        local img, err = image.decode(data:sub(1, len))
        assert.is_nil(img, name .. " cut to " .. len)
        assert.is_string(err)
      end
    end
    local _, err = image.decode(read(FIX .. "rgb444.jpg"):sub(1, 400))
    assert.matches("jpeg", err)
  end)

  it("refuses PNM samples above maxval and bad maxvals", function()
    assert.is_nil(image.decode("P5 2 1 100\n\50\101"))
    local _, err = image.decode("P2 2 1 100\n 50 101")
    assert.matches("exceeds maxval", err)
    assert.is_nil(image.decode("P5 1 1 0\n\0"))
    assert.is_nil(image.decode("P5 1 1 65536\n\0\0"))
    assert.is_nil(image.decode("P5 0 1 255\n"))
    assert.is_nil(image.decode("P2 2 1 255\n 1"))              -- truncated ASCII
    assert.is_nil(image.decode("P6 2 2 65535\n" .. ("\0"):rep(23)))
  end)

  it("decodes small hand-written PNM with comments and 16-bit samples", function()
    local img = assert(image.decode("P2\n# c\n3 1 # width height\n1000\n0 500 1000\n"))
    assert.are.same({ 0, 128, 255 }, values_of(img:bytes()))     -- round(500*255/1000) = 127.5 -> 128
    img = assert(image.decode("P5 2 1 65535\n\0\128\255\255"))
    assert.are.same({ 0, 255 }, values_of(img:bytes()))
    img = assert(image.decode("P5 2 1 65535\n\1\1\128\127"))     -- 257 -> 1, 32895 -> 127.998 -> 128
    assert.are.same({ 1, 128 }, values_of(img:bytes()))
  end)

  it("load names the path of a missing or corrupt file", function()
    local img, err = image.load("/nonexistent/siamese/face.png")
    assert.is_nil(img)
    assert.matches("/nonexistent/siamese/face.png", err, 1, true)
    local tmp = os.tmpname()
    local f = assert(io.open(tmp, "wb")); f:write("not an image"); f:close()
    img, err = image.load(tmp)
    os.remove(tmp)
    assert.is_nil(img)
    assert.matches(tmp, err, 1, true)
  end)

  it("applies max_pixels before decoding, per call and globally", function()
    local old = image.get_max_pixels()
    assert.are.equal(64000000, old)
    local img, err = image.decode(png, { max_pixels = 17 * 13 - 1 })
    assert.is_nil(img)
    assert.matches("limit", err)
    assert(image.decode(png, { max_pixels = 17 * 13 }))
    image.set_max_pixels(100)
    assert.are.equal(100, image.get_max_pixels())
    img, err = image.decode(png)
    assert.is_nil(img)
    assert.matches("limit", err)
    assert(image.decode(png, { max_pixels = 1000 }))
    assert(image.probe(png), "probe reports the size whatever the limit")
    image.set_max_pixels(old)
    assert(image.decode(png))
  end)

  it("refuses absurd dimensions with a message naming the limit", function()
    local img, err = image.decode("P5 100000 100000 255\n\0")
    assert.is_nil(img)
    assert.matches("limit", err)
    img, err = image.decode("P5 60000 60000 255\n\0")
    assert.is_nil(img)
    assert.matches("limit", err)
  end)

  it("raises on misuse", function()
    raises({ "#1", "decode", "string expected" }, image.decode, 5)
    raises({ "#1", "probe", "string expected" }, image.probe, nil)
    raises({ "max_pixels" }, image.decode, png, { max_pixels = 0 })
    raises({ "max_pixels", "integer" }, image.decode, png, { max_pixels = 1.5 })
    raises({ "#2", "table expected" }, image.decode, png, "opts")
    raises({ "#1", "set_max_pixels", "max_pixels" }, image.set_max_pixels, -1)
    raises({ "#1", "load", "string expected" }, image.load, 42)
  end)
end)

describe("siamese.image objects", function()
  it("new makes a zero image or copies exactly w*h*c bytes", function()
    local img = image.new(3, 2, 1)
    assert.are.equal(3, img.width)
    assert.are.equal(2, img.height)
    assert.are.equal(1, img.channels)
    assert.are.equal(("\0"):rep(6), img:bytes())
    img = image.new(2, 1, 3, "abcdef")
    assert.are.equal("abcdef", img:bytes())
    assert.are.same({ 100, 101, 102 }, { img:get(1, 0) })
  end)

  it("tostring shows size and channels", function()
    assert.are.equal("siamese.Image(92x112, 1 channel)", tostring(image.new(92, 112, 1)))
    assert.are.equal("siamese.Image(5x4, 3 channels)", tostring(image.new(5, 4, 3)))
  end)

  it("new raises naming the argument and sizes", function()
    raises({ "#1", "width must be 1..65535, got 0" }, image.new, 0, 2, 1)
    raises({ "#2", "height must be 1..65535, got 70000" }, image.new, 2, 70000, 1)
    raises({ "#3", "channels must be 1..4, got 5" }, image.new, 2, 2, 5)
    raises({ "#4", "expected 2*3*1 = 6 bytes, got 3" }, image.new, 2, 3, 1, "abc")
    raises({ "#1", "number has no integer representation" }, image.new, 2.5, 2, 1)
    raises({ "#4", "string expected" }, image.new, 1, 1, 1, 7)
  end)

  it("get and set address pixel (x, y), 0-based", function()
    local img = image.new(3, 2, 2)
    img:set(2, 1, 7, 250)
    assert.are.same({ 7, 250 }, { img:get(2, 1) })
    assert.are.same({ 0, 0 }, { img:get(0, 0) })
    assert.are.equal(("\0"):rep(10) .. "\7\250", img:bytes())
    assert.are.equal(img, img:set(0, 0, 1, 2), "set returns the image")
  end)

  it("get and set raise on out-of-range pixels and bad values", function()
    local img = image.new(3, 2, 1)
    raises({ "get", "pixel (3, 0) is outside the 3x2 image" }, function() return img:get(3, 0) end)
    raises({ "get", "pixel (0, -1) is outside the 3x2 image" }, function() return img:get(0, -1) end)
    raises({ "set", "expected 1 channel values, got 2" }, function() img:set(0, 0, 1, 2) end)
    raises({ "set", "0..255, got 256" }, function() img:set(0, 0, 256) end)
    raises({ "set", "0..255, got 1.5" }, function() img:set(0, 0, 1.5) end)
    raises({ "get", "number has no integer representation" }, function() return img:get(0.5, 0) end)
  end)

  it("clone copies the pixels", function()
    local a = pattern(4, 3, 3, 5)
    local b = a:clone()
    assert.are.equal(a:bytes(), b:bytes())
    b:set(0, 0, 1, 2, 3)
    assert.are_not.equal(a:bytes(), b:bytes())
  end)
end)

describe("siamese.image encoding", function()
  it("round-trips PNG bit-exactly for 1..4 channels", function()
    for c = 1, 4 do
      local img = pattern(13, 7, c, c)
      local data = assert(img:encode("png"))
      assert.are.equal("\137PNG", data:sub(1, 4))
      local back = assert(image.decode(data))
      assert.are.equal(c, back.channels)
      assert.are.equal(img:bytes(), back:bytes())
    end
  end)

  it("round-trips JPEG closely; alpha is dropped, gray stays gray", function()
    for c = 1, 4 do
      local img = smooth(40, 30, c)
      local data = assert(img:encode("jpeg"))
      assert.are.equal("\255\216\255", data:sub(1, 3))
      local back = assert(image.decode(data))
      local want = (c <= 2) and 1 or 3
      assert.are.equal(want, back.channels)
      local ref = (c == want) and img or (want == 1 and img:grayscale() or img:to_rgb())
      -- not round-off: JPEG is lossy; a mean of 2.5 levels is a semantic
      -- criterion for a smooth picture at the default quality
      assert(mean_abs_diff(ref:bytes(), back:bytes()) < 2.5)
    end
  end)

  it("honours the JPEG quality", function()
    local img = pattern(32, 32, 3, 9)
    local low = assert(img:encode("jpg", { quality = 10 }))
    local high = assert(img:encode("jpg", { quality = 100 }))
    assert(#low < #high)
    assert.are.equal(#assert(img:encode("jpeg")), #assert(img:encode("jpeg", { quality = 90 })))
  end)

  it("writes PNM: pgm gray, ppm RGB, pnm by channel count", function()
    local gray, rgb = pattern(5, 3, 1, 2), pattern(5, 3, 3, 3)
    local p5 = assert(gray:encode("pgm"))
    assert.are.equal("P5\n5 3\n255\n" .. gray:bytes(), p5)
    assert.are.equal(gray:bytes(), assert(image.decode(p5)):bytes())
    local p6 = assert(rgb:encode("ppm"))
    assert.are.equal("P6\n5 3\n255\n" .. rgb:bytes(), p6)
    assert.are.equal(p5, gray:encode("pnm"))
    assert.are.equal(p6, rgb:encode("pnm"))
    assert.are.equal(rgb:grayscale():bytes(), image.decode(rgb:encode("pgm")):bytes())
    assert.are.equal(gray:to_rgb():bytes(), image.decode(gray:encode("ppm")):bytes())
  end)

  it("raises on unknown formats and bad options", function()
    local img = image.new(2, 2, 3)
    raises({ "encode", "unknown format 'bmp'" }, function() return img:encode("bmp") end)
    raises({ "encode", "quality", "1..100, got 0" }, function() return img:encode("jpeg", { quality = 0 }) end)
    raises({ "encode", "quality", "1..100, got 101" }, function() return img:encode("jpeg", { quality = 101 }) end)
    raises({ "encode", "quality", "integer" }, function() return img:encode("jpeg", { quality = 50.5 }) end)
    raises({ "encode", "string expected" }, function() return img:encode() end)
  end)
end)

describe("siamese.image save and load", function()
  local base

  before_each(function()
    base = os.tmpname()
    os.remove(base)
  end)

  it("saves and loads each format by extension", function()
    local rgb = pattern(9, 7, 3, 11)
    for _, ext in ipairs { "png", "ppm", "pnm" } do
      local path = base .. "." .. ext
      assert.is_true(rgb:save(path))
      assert.are.equal(rgb:bytes(), assert(image.load(path)):bytes())
      assert.is_nil(io.open(path .. ".tmp"), "no temporary file left")
      os.remove(path)
    end
    local picture = smooth(24, 16, 3)
    for _, ext in ipairs { "jpg", "jpeg", "JPG" } do
      local path = base .. "." .. ext
      assert.is_true(picture:save(path, { quality = 95 }))
      local back = assert(image.load(path))
      -- not round-off: JPEG is lossy (a semantic criterion, as above)
      assert(mean_abs_diff(picture:bytes(), back:bytes()) < 2.5)
      os.remove(path)
    end
    local gray = pattern(9, 7, 1, 12)
    assert.is_true(gray:save(base .. ".pgm"))
    assert.are.equal(gray:bytes(), assert(image.load(base .. ".pgm")):bytes())
    os.remove(base .. ".pgm")
  end)

  it("takes the format from opts.format", function()
    local img = pattern(4, 4, 4, 3)
    assert.is_true(img:save(base, { format = "png" }))
    assert.are.equal("\137PNG", read(base):sub(1, 4))
    assert.are.equal(img:bytes(), image.load(base):bytes())
    os.remove(base)
  end)

  it("returns nil, message for an unwritable path and leaves nothing behind", function()
    local img = image.new(2, 2, 1)
    local path = "/nonexistent-siamese-dir/out.png"
    local ok, err = img:save(path)
    assert.is_nil(ok)
    assert.is_string(err)
    assert.is_nil(io.open(path .. ".tmp"))
    -- The rename fails when the target is a directory: the temporary goes too.
    local dir = base .. "_dir.png"
    assert(os.execute("mkdir '" .. dir .. "'"))
    ok, err = img:save(dir)
    assert.is_nil(ok)
    assert.is_string(err)
    assert.is_nil(io.open(dir .. ".tmp"), "temporary file removed")
    os.remove(dir)
  end)

  it("raises when the format cannot be told", function()
    local img = image.new(2, 2, 1)
    raises({ "save", "cannot tell the format" }, function() img:save(base .. ".bmp") end)
    raises({ "save", "cannot tell the format" }, function() img:save(base) end)
    raises({ "save", "string expected" }, function() img:save(7) end)
    raises({ "unknown format 'gif'" }, function() img:save(base, { format = "gif" }) end)
  end)
end)

describe("siamese.image resize", function()
  -- 2x2 gray [0 100; 200 40] enlarged to 4x4, worked by hand (see image_ops.c):
  --  bilinear: source positions 0, .25, .75, 1 on both axes
  --  tf:       source positions 0, .5, 1, 1 (dst * in / out, clamped tap)
  --  nearest:  floor((dst + .5) / 2) = 0, 0, 1, 1; area (upscaling) the same.
  local src = img_of(2, 2, 1, { 0, 100, 200, 40 })
  local expected = {
    bilinear = { 0, 25, 75, 100, 50, 59, 76, 85, 150, 126, 79, 55, 200, 160, 80, 40 },
    tf = { 0, 50, 100, 100, 100, 85, 70, 70, 200, 120, 40, 40, 200, 120, 40, 40 },
    nearest = { 0, 0, 100, 100, 0, 0, 100, 100, 200, 200, 40, 40, 200, 200, 40, 40 },
    area = { 0, 0, 100, 100, 0, 0, 100, 100, 200, 200, 40, 40, 200, 200, 40, 40 },
  }

  for method, want in pairs(expected) do
    it("enlarges 2x2 to 4x4 with " .. method, function()
      local out = src:resize(4, 4, { method = method })
      assert.are.equal(4, out.width)
      assert.are.equal(4, out.height)
      assert.are.same(want, values_of(out:bytes()))
    end)
  end

  it("area shrinks to exact block means, rounded to nearest", function()
    -- 2x2 blocks: {10,20,30,41} -> 25.25, {1,2,2,2} -> 1.75, {0,0,0,1} -> .25, {1,2,1,2} -> 1.5
    local img = img_of(4, 4, 1, {
      10, 20, 1, 2,
      30, 41, 2, 2,
      0, 0, 1, 2,
      0, 1, 1, 2,
    })
    assert.are.same({ 25, 2, 0, 2 }, values_of(img:resize(2, 2, { method = "area" }):bytes()))
    assert.are.same({ 25, 2, 0, 2 }, values_of(img:resize(2, 2):bytes()), "auto picks area at 2x")
    -- fractional overlap: 3 -> 2 pixels, out0 = (0 + 90/2) / 1.5, out1 = (90/2 + 180) / 1.5
    local row = img_of(3, 1, 1, { 0, 90, 180 })
    assert.are.same({ 30, 150 }, values_of(row:resize(2, 1, { method = "area" }):bytes()))
  end)

  it("area averages each channel separately", function()
    local img = img_of(2, 1, 3, { 10, 0, 255, 20, 100, 0 })
    assert.are.same({ 15, 50, 128 }, values_of(img:resize(1, 1, { method = "area" }):bytes()))
  end)

  it("auto uses area when shrinking 2x or more on either axis, else bilinear", function()
    local img = pattern(8, 8, 3, 4)
    local function same(a, b) return a:bytes() == b:bytes() end
    assert(same(img:resize(4, 4), img:resize(4, 4, { method = "area" })))
    assert(same(img:resize(4, 8), img:resize(4, 8, { method = "area" })))
    assert(same(img:resize(6, 6), img:resize(6, 6, { method = "bilinear" })))
    assert(same(img:resize(16, 16), img:resize(16, 16, { method = "bilinear" })))
    assert.is_false(same(img:resize(6, 6, { method = "area" }), img:resize(6, 6, { method = "bilinear" })))
  end)

  it("keeps the image at the same size with every method", function()
    local img = pattern(7, 5, 2, 8)
    for _, m in ipairs { "auto", "bilinear", "area", "nearest", "tf" } do
      assert.are.equal(img:bytes(), img:resize(7, 5, { method = m }):bytes(), m)
    end
  end)

  it("raises on bad sizes and methods", function()
    local img = image.new(4, 4, 1)
    raises({ "resize", "width must be 1..65535, got 0" }, function() return img:resize(0, 4) end)
    raises({ "resize", "height must be 1..65535, got 70000" }, function() return img:resize(4, 70000) end)
    raises({ "resize", "unknown method 'cubic'" }, function() return img:resize(2, 2, { method = "cubic" }) end)
    raises({ "resize", "number has no integer representation" }, function() return img:resize(2.5, 2) end)
    raises({ "resize", "table expected" }, function() return img:resize(2, 2, "area") end)
  end)
end)

describe("siamese.image.resize_tensor", function()
  local t = tensor.new { { { 0, 1 }, { 2, 3 } } }     -- [1,2,2]

  it("follows the TensorFlow 1 grid on floats (no rounding)", function()
    local out = image.resize_tensor(t, 4, 4, { method = "tf" })
    assert.are.same({ 1, 4, 4 }, out:shape())
    assert_close_list({ 0, .5, 1, 1, 1, 1.5, 2, 2, 2, 2.5, 3, 3, 2, 2.5, 3, 3 }, tensor_values(out), resize_bound(3, 2))
    -- 5 -> 3: src = 0, 5/3, 10/3
    local row = tensor.new { { { 0, 10, 20, 30, 40 } } }
    local r = image.resize_tensor(row, 1, 3, { method = "tf" })
    assert_close_list({ 0, 10 + 10 * 2 / 3, 30 + 10 / 3 }, tensor_values(r), resize_bound(40, 5))
  end)

  it("does bilinear, nearest and area on floats", function()
    local b = image.resize_tensor(t, 4, 4, { method = "bilinear" })
    assert_close_list({ 0, .25, .75, 1, .5, .75, 1.25, 1.5, 1.5, 1.75, 2.25, 2.5, 2, 2.25, 2.75, 3 },
      tensor_values(b), resize_bound(3, 2))
    local n = image.resize_tensor(t, 4, 4, { method = "nearest" })
    assert_close_list({ 0, 0, 1, 1, 0, 0, 1, 1, 2, 2, 3, 3, 2, 2, 3, 3 }, tensor_values(n), 0)
    local a = image.resize_tensor(t, 1, 1, { method = "area" })
    assert_close_list({ 1.5 }, tensor_values(a), resize_bound(3, 2))
    local row = tensor.new { { { 0, 90, 180 } } }
    assert_close_list({ 30, 150 }, tensor_values(image.resize_tensor(row, 1, 2, { method = "area" })),
      resize_bound(180, 3))
  end)

  it("handles [N,C,H,W] batches and strided views", function()
    local batch = tensor.zeros(2, 3, 4, 6)
    for n = 1, 2 do for c = 1, 3 do for y = 1, 4 do for x = 1, 6 do
      batch:set(n, c, y, x, n * 100 + c * 10 + y + x / 10)
    end end end end
    local out = image.resize_tensor(batch, 2, 3, { method = "area" })
    assert.are.same({ 2, 3, 2, 3 }, out:shape())
    -- top-left 2x2 block of plane (2, 3): mean of y in {1,2}, x in {1,2}
    -- values below 237 stored in float32 (U each), then the area's sum
    assert.is_true(math.abs(out:get(2, 3, 1, 1) - (230 + 1.5 + 0.15)) <= 237 * bounds.U + resize_bound(237, 6))
    local view = batch:transpose(3, 4)                  -- [2,3,6,4], not contiguous
    local vo = image.resize_tensor(view, 6, 4, { method = "bilinear" })
    assert_close_list(tensor_values(view:contiguous()), tensor_values(vo), resize_bound(237, 6))
  end)

  it("matches the 8-bit resize before rounding", function()
    local img = pattern(9, 7, 3, 6)
    local ft = img:to_tensor { scale = 1 }
    for _, m in ipairs { "bilinear", "tf", "area", "nearest" } do
      local want = img:resize(5, 4, { method = m })
      local got = image.from_tensor(image.resize_tensor(ft, 4, 5, { method = m }), { scale = 1 })
      -- not a float tolerance: both round the same value to 8 bits, and a
      -- value within resize_bound of a .5 boundary may round either way:
      -- one level is the quantisation step, the only difference possible
      assert(max_abs_diff(want:bytes(), got:bytes()) <= 1, m)
    end
  end)

  it("raises on bad tensors, sizes and methods", function()
    raises({ "resize_tensor", "[C,H,W] or [N,C,H,W]", "[2,2]" },
      image.resize_tensor, tensor.zeros(2, 2), 4, 4)
    raises({ "resize_tensor", "height must be 1..65535, got 0" }, image.resize_tensor, t, 0, 4)
    raises({ "resize_tensor", "unknown method 'lanczos'" }, image.resize_tensor, t, 4, 4, { method = "lanczos" })
    raises({ "resize_tensor", "empty" }, image.resize_tensor, tensor.zeros(1, 0, 3), 4, 4)
    raises({ "#1", "siamese.Tensor expected" }, image.resize_tensor, image.new(2, 2, 1), 4, 4)
  end)
end)

describe("siamese.image crop, pad, flip", function()
  local img = img_of(3, 2, 1, { 1, 2, 3, 4, 5, 6 })

  it("crops inside the image", function()
    local c = img:crop(1, 0, 2, 2)
    assert.are.same({ 2, 3, 5, 6 }, values_of(c:bytes()))
  end)

  it("fills areas outside the image with zeros", function()
    assert.are.same({ 0, 0, 0, 0, 0, 1, 2, 3, 0, 4, 5, 6 }, values_of(img:crop(-1, -1, 4, 3):bytes()))
    assert.are.same({ 6, 0, 0, 0 }, values_of(img:crop(2, 1, 2, 2):bytes()))
    assert.are.same({ 0, 0, 0, 0 }, values_of(img:crop(10, -5, 2, 2):bytes()))
    assert.are.same({ 0, 0 }, values_of(img:crop(-3, 0, 1, 2):bytes()))
  end)

  it("crops multi-channel images", function()
    local rgb = img_of(2, 1, 3, { 1, 2, 3, 4, 5, 6 })
    assert.are.same({ 4, 5, 6, 0, 0, 0 }, values_of(rgb:crop(1, 0, 2, 1):bytes()))
  end)

  it("raises on bad crop arguments", function()
    raises({ "bad argument #3 to 'crop'", "crop size must be positive, got 0x5" },
      function() return img:crop(0, 0, 0, 5) end)
    raises({ "crop", "crop size must be positive, got 2x-1" }, function() return img:crop(0, 0, 2, -1) end)
    raises({ "crop", "number has no integer representation" }, function() return img:crop(0.5, 0, 1, 1) end)
    raises({ "crop", "out of range" }, function() return img:crop(math.maxinteger, 0, 1, 1) end)
    raises({ "crop", "exceeds 65535" }, function() return img:crop(0, 0, 70000, 1) end)
  end)

  it("pads with a value per side", function()
    local p = img:pad { left = 1, top = 0, right = 2, bottom = 1, value = 9 }
    assert.are.equal(6, p.width)
    assert.are.equal(3, p.height)
    assert.are.same({ 9, 1, 2, 3, 9, 9, 9, 4, 5, 6, 9, 9, 9, 9, 9, 9, 9, 9 }, values_of(p:bytes()))
    assert.are.same({ 0, 1, 2, 3, 0, 4, 5, 6 }, values_of(img:pad { left = 1 }:bytes()))
    local rgb = img_of(1, 1, 3, { 1, 2, 3 })
    assert.are.same({ 7, 8, 9, 1, 2, 3 }, values_of(rgb:pad { left = 1, value = { 7, 8, 9 } }:bytes()))
  end)

  it("raises on bad pad options", function()
    raises({ "pad", "table expected" }, function() return img:pad() end)
    raises({ "pad", "option 'left' must be 0..65535, got -1" }, function() return img:pad { left = -1 } end)
    raises({ "pad", "option 'value' must be an integer 0..255, got 300" },
      function() return img:pad { value = 300 } end)
    raises({ "pad", "one value per channel (1), got 2" }, function() return img:pad { value = { 1, 2 } } end)
    raises({ "pad", "exceeds 65535" }, function() return img:pad { right = 65535 } end)
  end)

  it("flips horizontally", function()
    assert.are.same({ 3, 2, 1, 6, 5, 4 }, values_of(img:flip():bytes()))
    local rgb = img_of(2, 1, 3, { 1, 2, 3, 4, 5, 6 })
    assert.are.same({ 4, 5, 6, 1, 2, 3 }, values_of(rgb:flip():bytes()))
  end)
end)

describe("siamese.image conversions", function()
  it("grayscale uses ITU-R 601 integer weights (like PIL)", function()
    local rgb = img_of(3, 1, 3, { 255, 0, 0, 10, 200, 30, 255, 255, 255 })
    -- (255*299 + 500) // 1000 = 76; (10*299 + 200*587 + 30*114 + 500) // 1000 = 124
    assert.are.same({ 76, 124, 255 }, values_of(rgb:grayscale():bytes()))
    local rgba = img_of(1, 1, 4, { 0, 255, 0, 7 })
    assert.are.same({ 150 }, values_of(rgba:grayscale():bytes()))
    local ga = img_of(2, 1, 2, { 10, 1, 20, 2 })
    assert.are.same({ 10, 20 }, values_of(ga:grayscale():bytes()))
    local g = img_of(2, 1, 1, { 10, 20 })
    assert.are.equal(g:bytes(), g:grayscale():bytes())
  end)

  it("to_rgb replicates gray and drops alpha", function()
    assert.are.same({ 5, 5, 5, 9, 9, 9 }, values_of(img_of(2, 1, 1, { 5, 9 }):to_rgb():bytes()))
    assert.are.same({ 5, 5, 5 }, values_of(img_of(1, 1, 2, { 5, 99 }):to_rgb():bytes()))
    assert.are.same({ 1, 2, 3 }, values_of(img_of(1, 1, 4, { 1, 2, 3, 4 }):to_rgb():bytes()))
    assert.are.same({ 1, 2, 3 }, values_of(img_of(1, 1, 3, { 1, 2, 3 }):to_rgb():bytes()))
  end)
end)

describe("siamese.image warp_affine", function()
  local img = pattern(5, 4, 3, 21)

  it("translates by whole pixels (nested and flat matrices)", function()
    local out = img:warp_affine({ { 1, 0, 2 }, { 0, 1, 1 } }, 5, 4)
    for y = 0, 3 do
      for x = 0, 4 do
        local want = (x >= 2 and y >= 1) and { img:get(x - 2, y - 1) } or { 0, 0, 0 }
        assert.are.same(want, { out:get(x, y) })
      end
    end
    assert.are.equal(out:bytes(), img:warp_affine({ 1, 0, 2, 0, 1, 1 }, 5, 4):bytes())
    local bordered = img:warp_affine({ 1, 0, 2, 0, 1, 1 }, 5, 4, { border = { 7, 8, 9 } })
    assert.are.same({ 7, 8, 9 }, { bordered:get(0, 0) })
    assert.are.same({ img:get(0, 0) }, { bordered:get(2, 1) })
  end)

  it("rotates by 90 degrees exactly", function()
    -- destination (x', y') = (h - 1 - y, x): a quarter turn, output h x w
    local w, h = img.width, img.height
    local c, s = math.cos(math.pi / 2), math.sin(math.pi / 2)
    local M = { { c, -s, h - 1 }, { s, c, 0 } }
    local out = img:warp_affine(M, h, w)
    for y = 0, w - 1 do
      for x = 0, h - 1 do
        assert.are.same({ img:get(y, h - 1 - x) }, { out:get(x, y) })
      end
    end
    -- inverse = true takes the destination -> source map directly
    local inv = img:warp_affine({ { 0, 1, 0 }, { -1, 0, h - 1 } }, h, w, { inverse = true })
    assert.are.equal(out:bytes(), inv:bytes())
  end)

  it("samples bilinearly between pixels", function()
    local row = img_of(2, 1, 1, { 0, 101 })
    local out = row:warp_affine({ 1, 0, -0.5, 0, 1, 0 }, 1, 1)   -- samples (0.5, 0)
    assert.are.same({ 51 }, values_of(out:bytes()))                -- 50.5 rounds up
  end)

  it("raises on singular and malformed matrices", function()
    raises({ "warp_affine", "singular" }, function() return img:warp_affine({ 1, 2, 0, 2, 4, 0 }, 5, 4) end)
    raises({ "warp_affine", "{{a,b,c},{d,e,f}}" }, function() return img:warp_affine({ 1, 0, 0 }, 5, 4) end)
    raises({ "warp_affine", "{{a,b,c},{d,e,f}}" }, function() return img:warp_affine({ { 1, 0 }, { 0, 1 } }, 5, 4) end)
    raises({ "warp_affine", "entry 2 is not a number" },
      function() return img:warp_affine({ 1, "x", 0, 0, 1, 0 }, 5, 4) end)
    raises({ "warp_affine", "not finite" }, function() return img:warp_affine({ 1, 0, 0 / 0, 0, 1, 0 }, 5, 4) end)
    raises({ "warp_affine", "width must be 1..65535, got 0" },
      function() return img:warp_affine({ 1, 0, 0, 0, 1, 0 }, 0, 4) end)
    raises({ "warp_affine", "table expected" }, function() return img:warp_affine(nil, 5, 4) end)
    raises({ "warp_affine", "border", "one value per channel (3)" },
      function() return img:warp_affine({ 1, 0, 0, 0, 1, 0 }, 5, 4, { border = { 1 } }) end)
  end)
end)

describe("siamese.image tensors", function()
  it("to_tensor gives [C,H,W] floats (pixel * scale - mean) / std", function()
    local img = img_of(2, 1, 3, { 0, 51, 255, 255, 102, 0 })
    local t = img:to_tensor()
    assert.are.same({ 3, 1, 2 }, t:shape())
    -- (p scale - mean) / std in float32: the scale's and the result's
    -- roundings, a product, a difference and a quotient (or reciprocal
    -- product): gamma(5) (255 scale + |mean|) / std
    assert_close_list({ 0, 1, .2, .4, 1, 0 }, tensor_values(t), bounds.gamma(5) * 1)
    local n = img:to_tensor { scale = 1, mean = { 0, 50, 100 }, std = { 1, 2, 5 } }
    assert_close_list({ 0, 255, 0.5, 26, 31, -20 }, tensor_values(n), bounds.gamma(5) * 255)
    local s = img:to_tensor { mean = 0.5, std = 0.5 }
    assert_close_list({ -1, 1, -0.6, -0.2, 1, -1 }, tensor_values(s), bounds.gamma(5) * (1 + 0.5) / 0.5)
  end)

  it("to_tensor writes into opts.out, also a view of a batch", function()
    local img = pattern(4, 3, 3, 33)
    local batch = tensor.zeros(2, 3, 3, 4)
    local view = batch:select(1, 2)
    local got = img:to_tensor { out = view }
    assert.are.equal(view, got)
    local want = img:to_tensor()
    for c = 1, 3 do for y = 1, 3 do for x = 1, 4 do
      assert.are.equal(want:get(c, y, x), batch:get(2, c, y, x))
      assert.are.equal(0, batch:get(1, c, y, x))
    end end end
  end)

  it("from_tensor inverts to_tensor exactly for 1..4 channels", function()
    for c = 1, 4 do
      local img = pattern(6, 5, c, 40 + c)
      assert.are.equal(img:bytes(), image.from_tensor(img:to_tensor()):bytes())
      local opts = { mean = 0.5, std = 0.25 }
      assert.are.equal(img:bytes(), image.from_tensor(img:to_tensor(opts), opts):bytes())
    end
  end)

  it("from_tensor rounds and clamps", function()
    local t = tensor.new { { { -0.5, 2, 0.5 / 255, 1.49 / 255, 0 / 0 } } }
    assert.are.same({ 0, 255, 1, 1, 0 }, values_of(image.from_tensor(t):bytes()))
    local img = image.from_tensor(tensor.new { { { 10 } }, { { 20 } } }, { scale = 1, mean = { 1, 2 }, std = { 2, 3 } })
    assert.are.same({ 21, 62 }, values_of(img:bytes()))
  end)

  it("raises on bad shapes and options", function()
    local img = image.new(4, 3, 3)
    raises({ "to_tensor", "must have shape [3,3,4]", "[3,4,3]" },
      function() return img:to_tensor { out = tensor.zeros(3, 4, 3) } end)
    raises({ "to_tensor", "option 'out' must be a tensor" }, function() return img:to_tensor { out = {} } end)
    raises({ "to_tensor", "option 'std' must be finite and non-zero" }, function() return img:to_tensor { std = 0 } end)
    raises({ "to_tensor", "option 'mean' must have one number per channel (3), got 2" },
      function() return img:to_tensor { mean = { 1, 2 } } end)
    raises({ "to_tensor", "option 'scale'" }, function() return img:to_tensor { scale = 0 } end)
    raises({ "from_tensor", "C 1..4", "[5,2,2]" }, image.from_tensor, tensor.zeros(5, 2, 2))
    raises({ "from_tensor", "[C,H,W]", "[2,2]" }, image.from_tensor, tensor.zeros(2, 2))
    raises({ "from_tensor", "[1,0,2]" }, image.from_tensor, tensor.zeros(1, 0, 2))
    raises({ "from_tensor", "siamese.Tensor expected" }, image.from_tensor, img)
  end)
end)

describe("siamese.image pad mode 'edge'", function()
  it("replicates the edge pixels on every side", function()
    local img = img_of(3, 2, 1, { 1, 2, 3, 4, 5, 6 })
    local p = img:pad { left = 2, top = 1, right = 1, bottom = 2, mode = "edge" }
    assert.are.equal(6, p.width)
    assert.are.equal(5, p.height)
    assert.are.same({
      1, 1, 1, 2, 3, 3,
      1, 1, 1, 2, 3, 3,
      4, 4, 4, 5, 6, 6,
      4, 4, 4, 5, 6, 6,
      4, 4, 4, 5, 6, 6,
    }, values_of(p:bytes()))
    local rgb = img_of(2, 1, 3, { 1, 2, 3, 4, 5, 6 })
    assert.are.same({ 1, 2, 3, 1, 2, 3, 4, 5, 6, 4, 5, 6 },
      values_of(rgb:pad { left = 1, right = 1, mode = "edge" }:bytes()))
    assert.are.same(values_of(img:pad { left = 1 }:bytes()),
      values_of(img:pad { left = 1, mode = "constant" }:bytes()))
  end)

  it("raises on an unknown mode", function()
    local img = image.new(2, 2, 1)
    raises({ "pad", "unknown mode 'wrap' (expected constant or edge)" },
      function() return img:pad { mode = "wrap" } end)
  end)
end)
