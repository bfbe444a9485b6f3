-- Robustness of image.decode against damaged input: truncated and byte-mutated
-- copies of the fixtures (PNG, PNM, JPEG) must each give an image or nil and a
-- message, never raise or crash; giant headers are refused before anything
-- large is allocated; a progressive JPEG with hundreds of scans is refused.
--
-- The mutations come from a fixed seed, printed; set SIAMESE_SEED to replay or
-- to explore another one:  SIAMESE_SEED=123 busted spec/image_fuzz_spec.lua
local image = require "siamese.image"

local FIX = "spec/fixtures/images/"
local SEED = math.tointeger(tonumber(os.getenv("SIAMESE_SEED") or "")) or 20250607
print(("image fuzz seed: %d (SIAMESE_SEED=%d to replay)"):format(SEED, SEED))

local function read(name)
  local f = assert(io.open(FIX .. name, "rb"))
  local data = f:read("a")
  f:close()
  return data
end

-- Decodes data; asserts the call returned normally with one of the two
-- allowed shapes. Returns true when it produced an image.
-- Decodes with libjpeg's reconstruction and with jpeg-js's (the JPEG
-- coefficient path); true when the default one succeeded.
local function decode_returns_normally(data, what)
  local decoded
  for _, decoder in ipairs { "libjpeg", "jpeg-js" } do
    local ok, img, err = pcall(image.decode, data, { jpeg_decoder = decoder })
    assert(ok, ("%s (%s): decode raised: %s"):format(what, decoder, tostring(img)))
    if img ~= nil then
      assert.are.equal(img.width * img.height * img.channels, #img:bytes(), what)
    else
      assert(type(err) == "string" and #err > 0, what .. ": expected nil, message")
    end
    if decoded == nil then decoded = img ~= nil end
  end
  return decoded
end

local function mutate(data, rng)
  local bytes = { data:byte(1, -1) }
  for _ = 1, rng(1, 4) do
    -- half of the damage lands in the header, where the parsers decide sizes
    local limit = (rng(0, 1) == 0) and math.min(#bytes, 64) or #bytes
    bytes[rng(1, limit)] = rng(0, 255)
  end
  local parts = {}
  for i, b in ipairs(bytes) do parts[i] = string.char(b) end
  return table.concat(parts)
end

-- CRC-32 (IEEE) for hand-built PNG chunks.
local crc_table = {}
for i = 0, 255 do
  local c = i
  for _ = 1, 8 do
    c = (c & 1 ~= 0) and (0xEDB88320 ~ (c >> 1)) or (c >> 1)
  end
  crc_table[i] = c
end
local function crc32(s)
  local c = 0xFFFFFFFF
  for i = 1, #s do c = crc_table[(c ~ s:byte(i)) & 0xFF] ~ (c >> 8) end
  return c ~ 0xFFFFFFFF
end
local function png_chunk(kind, data)
  return string.pack(">I4", #data) .. kind .. data .. string.pack(">I4", crc32(kind .. data))
end

-- Lua-heap allocation during fn in KB (image pixels live there), collector off.
local function kb_allocated(fn)
  collectgarbage("collect")
  collectgarbage("stop")
  local before = collectgarbage("count")
  fn()
  local after = collectgarbage("count")
  collectgarbage("restart")
  return after - before
end

describe("image.decode on damaged input", function()
  local rng

  before_each(function()
    math.randomseed(SEED)
    rng = math.random
  end)

  it("survives every truncation of small files", function()
    local calls = 0
    for _, name in ipairs { "gray1.png", "pal2_trns.png", "p5_255.pgm", "p2_1000.pgm", "gray.jpg" } do
      local data = read(name)
      local decoded = 0
      for len = 0, #data - 1 do
        if decode_returns_normally(data:sub(1, len), name .. " cut to " .. len) then decoded = decoded + 1 end
        calls = calls + 1
      end
      -- only cuts after the pixel data may still decode (e.g. a missing IEND)
      assert(decoded < #data // 4, name .. ": too many truncations decoded")
    end
    assert(calls > 500)
  end)

  it("survives sampled truncations of the other fixtures", function()
    for _, name in ipairs { "rgb16.png", "rgba16_adam7.png", "pal8_trns.png", "p3_65535.ppm",
                            "p6_65535.ppm", "rgb444.jpg", "rgb420.jpg", "progressive.jpg", "cmyk.jpg" } do
      local data = read(name)
      for _ = 1, 15 do
        decode_returns_normally(data:sub(1, rng(0, #data - 1)), name .. " truncated")
      end
    end
  end)

  it("survives byte mutations of every format", function()
    local names = { "gray8.png", "graya16.png", "rgb8_adam7.png", "pal4_trns.png", "rgb16_trns.png",
                    "p2_255.pgm", "p5_65535.pgm", "p3_255.ppm", "p6_255.ppm",
                    "gray.jpg", "rgb420.jpg", "progressive.jpg", "cmyk.jpg" }
    local calls, failed = 0, 0
    for _, name in ipairs(names) do
      local data = read(name)
      for i = 1, 30 do
        if not decode_returns_normally(mutate(data, rng), ("%s mutation %d"):format(name, i)) then
          failed = failed + 1
        end
        calls = calls + 1
      end
    end
    assert(calls >= 390)
    assert(failed > 0, "some mutations should be refused")
  end)

  it("refuses a PNG header of 60000x60000 pixels without allocating", function()
    local ihdr = string.pack(">I4I4BBBBB", 60000, 60000, 8, 2, 0, 0, 0)
    local data = "\137PNG\r\n\26\n" .. png_chunk("IHDR", ihdr) .. png_chunk("IDAT", "x") .. png_chunk("IEND", "")
    local img, err
    local kb = kb_allocated(function() img, err = image.decode(data) end)
    assert.is_nil(img)
    assert.matches("limit", err)
    assert(kb < 64, ("allocated %.1f KB"):format(kb))
    local info = assert(image.probe(data), "probe reports the size")
    assert.are.same({ format = "png", width = 60000, height = 60000, channels = 3 }, info)
    -- a side above 65535 is refused even by probe
    local wide = "\137PNG\r\n\26\n" .. png_chunk("IHDR", string.pack(">I4I4BBBBB", 70000, 1, 8, 0, 0, 0, 0))
      .. png_chunk("IDAT", "x") .. png_chunk("IEND", "")
    local none, perr = image.probe(wide)
    assert.is_nil(none)
    assert.matches("limit", perr)
  end)

  it("refuses a PGM header of 100000x100000 pixels without allocating", function()
    local img, err
    local kb = kb_allocated(function() img, err = image.decode("P5 100000 100000 255\n\0\0\0") end)
    assert.is_nil(img)
    assert.matches("limit", err)
    assert(kb < 64)
    img, err = image.decode("P6 30000 30000 255\n\0\0\0")
    assert.is_nil(img)
    assert.matches("limit", err)
  end)

  it("refuses a JPEG frame of 60000x60000 pixels without allocating", function()
    local data = read("gray.jpg")
    local sof = data:find("\255\192", 3, true)
    assert(sof, "baseline SOF0 marker")
    local patched = data:sub(1, sof + 4) .. string.pack(">I2I2", 60000, 60000) .. data:sub(sof + 9)
    local img, err
    local kb = kb_allocated(function() img, err = image.decode(patched) end)
    assert.is_nil(img)
    assert.matches("limit", err)
    assert(kb < 64)
  end)

  it("refuses a progressive JPEG with more than 500 scans", function()
    local data = read("progressive.jpg")
    -- The first scan (DC, all components) decodes the same when repeated;
    -- libjpeg only warns about the bogus progression.
    local first = data:find("\255\218", 3, true)
    local after = first + 2
    repeat
      after = data:find("\255", after + 1, true)
      local m = data:byte(after + 1)
    until m ~= 0 and not (m >= 0xD0 and m <= 0xD7)
    local scan = data:sub(first, after - 1)
    local function with_scans(n) return data:sub(1, first - 1) .. scan:rep(n) .. data:sub(after) end
    assert(image.decode(with_scans(20)), "a few repeated scans are fine")
    local img, err = image.decode(with_scans(600))
    assert.is_nil(img)
    assert.matches("scans", err)
  end)
end)
