-- Specs of siamese.safetensors: bit-identical save/load round trips,
-- metadata, a file written from PyTorch, every kind of corrupt header,
-- truncation at every length, random byte mutations, atomic replacement
-- and misuse messages.
local core = require "siamese.core"
local json = require "siamese.json"
local safetensors = require "siamese.safetensors"
local T = core.tensor

local FIXTURE_DIR = "spec/fixtures/safetensors/"

local support = dofile("spec/support.lua")
local list_dir, read_all, remove_dir = support.list_dir, support.read_file, support.remove_dir
local function make_temp_dir() return support.temp_dir("st") end

-- A safetensors file from a header (JSON text or a table) and data bytes.
local function st_bytes(header, data)
  local text = type(header) == "string" and header or json.encode(header)
  return string.pack("<I8", #text) .. text .. (data or "")
end

local function entry(dtype, shape, first, last)
  return { dtype = dtype, shape = json.array(shape), data_offsets = json.array { first, last } }
end

local function assert_same_tensor(expected, got, name)
  assert.are.same(expected:shape(), got:shape(), name)
  assert(core.tensor_to_bytes(expected) == core.tensor_to_bytes(got), "bits of " .. tostring(name) .. " differ")
end

-- A tensor holding NaNs with payloads (quiet and signalling), infinities,
-- -0, the smallest subnormal and the largest float.
local function special_values()
  local bits = { 0x7fc00001, 0xffbfffff, 0x7f800001, 0x7f800000, 0xff800000, 0x80000000, 0x00000001, 0x7f7fffff }
  local bytes = string.pack("<" .. string.rep("I4", #bits), table.unpack(bits))
  return core.tensor_from_bytes(bytes, 0, "F32", { 2, 4 }), bytes
end

local function sample_tensors()
  core.manual_seed(1234)
  local specials = special_values()
  return {
    ["conv1.weight"] = T.randn { 8, 3, 5, 5 },
    ["conv1.bias"] = T.randn { 8 },
    ["fc.weight"] = T.randn { 6, 4 }:t(), -- a strided view
    specials = specials,
    empty = T.zeros { 0, 7 },
    scalar = T.new(3.25),
    ["name with \"quotes\" and ünïcode"] = T.ones { 2 },
  }
end

describe("safetensors save and load", function()
  local dir
  before_each(function() dir = make_temp_dir() end)
  after_each(function() remove_dir(dir) end)

  it("round-trips tensors bit for bit, including NaN payloads, infinities, -0 and empty tensors", function()
    local tensors = sample_tensors()
    local path = dir .. "/model.safetensors"
    assert.is_true(safetensors.save(path, tensors))
    local back, metadata = safetensors.load(path)
    assert.is_table(back)
    assert.are.same({}, metadata)
    local count = 0
    for name, t in pairs(tensors) do
      count = count + 1
      assert_same_tensor(t, back[name], name)
      assert.is_true(back[name]:is_contiguous())
    end
    for _ in pairs(back) do count = count - 1 end
    assert.are.equal(0, count)
    assert.are.equal(select(2, special_values()), core.tensor_to_bytes(back.specials))
    assert.are.same({ "model.safetensors" }, list_dir(dir))
  end)

  it("writes the same bytes again after a load, and decode(encode(x)) equals load(save(x))", function()
    local tensors = sample_tensors()
    local p1, p2 = dir .. "/a.safetensors", dir .. "/b.safetensors"
    assert.is_true(safetensors.save(p1, tensors, { arch = "test" }))
    local back, metadata = safetensors.load(p1)
    assert.is_true(safetensors.save(p2, back, metadata))
    assert.are.equal(read_all(p1), read_all(p2))
    assert.are.equal(read_all(p1), safetensors.encode(tensors, { arch = "test" }))
    local decoded = safetensors.decode(read_all(p1))
    for name, t in pairs(tensors) do assert_same_tensor(t, decoded[name], name) end
    assert.are.same({ "a.safetensors", "b.safetensors" }, list_dir(dir)) -- no temporaries left
  end)

  it("writes the standard layout: padded JSON header, F32 data in sorted-name order", function()
    local bytes = safetensors.encode({ b = T.new { 1, 2 }, a = T.new { { 3 } }, c = T.zeros { 0 } })
    local n = string.unpack("<I8", bytes)
    assert.are.equal(0, n % 8)
    assert.are.equal(8 + n + 12, #bytes)
    local header_text = bytes:sub(9, 8 + n)
    assert.matches("^{.*} *$", header_text)
    local header = json.decode(header_text)
    assert.are.same({ dtype = "F32", shape = { 1, 1 }, data_offsets = { 0, 4 } }, header.a)
    assert.are.same({ dtype = "F32", shape = { 2 }, data_offsets = { 4, 12 } }, header.b)
    assert.are.same({ dtype = "F32", shape = { 0 }, data_offsets = { 12, 12 } }, header.c)
    assert.is_nil(header.__metadata__)
    assert.are.equal(string.pack("<fff", 3, 1, 2), bytes:sub(9 + n))
  end)

  it("stores metadata as strings, JSON-encoding other values", function()
    local path = dir .. "/meta.safetensors"
    local metadata = { arch = "facenet-small", input_size = { 3, 96, 96 }, embedding = 128,
                       normalize = true, mean = 0.5 }
    assert.is_true(safetensors.save(path, { w = T.zeros { 1 } }, metadata))
    local _, back = safetensors.load(path)
    assert.are.same({ arch = "facenet-small", input_size = "[3,96,96]", embedding = "128",
                      normalize = "true", mean = "0.5" }, back)
    local header = json.decode(read_all(path):sub(9, 8 + string.unpack("<I8", read_all(path))))
    assert.are.equal("facenet-small", header.__metadata__.arch)
  end)

  it("saves and loads an empty tensor table", function()
    local path = dir .. "/empty.safetensors"
    assert.is_true(safetensors.save(path, {}, { note = "nothing" }))
    local back, metadata = safetensors.load(path)
    assert.are.same({}, back)
    assert.are.same({ note = "nothing" }, metadata)
  end)
end)

describe("safetensors from PyTorch", function()
  local expected = dofile(FIXTURE_DIR .. "expected.lua")

  it("loads every tensor written by make_fixture.py with the values PyTorch holds", function()
    local tensors, metadata = safetensors.load(FIXTURE_DIR .. "pytorch.safetensors")
    assert(tensors, metadata)
    assert.are.same(expected.metadata, metadata)
    local seen = 0
    for name, want in pairs(expected.tensors) do
      seen = seen + 1
      local t = tensors[name]
      assert(t, "missing tensor " .. name)
      assert.are.same(want.shape, t:shape(), name)
      local bytes = core.tensor_to_bytes(t)
      assert.are.equal(#want.values * 4, #bytes, name)
      for i, v in ipairs(want.values) do
        local got = string.unpack("<f", bytes, 4 * i - 3)
        if v ~= v then
          assert(got ~= got, string.format("%s[%d]: expected NaN, got %.17g", name, i, got))
        else
          assert(string.pack("<d", got) == string.pack("<d", v),
                 string.format("%s[%d]: expected %.17g, got %.17g (%s)", name, i, v, got, want.dtype))
        end
      end
    end
    for _ in pairs(tensors) do seen = seen - 1 end
    assert.are.equal(0, seen)
  end)

  it("reads the seeded nn.Linear as a [3,4] weight and a [3] bias", function()
    local tensors = safetensors.load(FIXTURE_DIR .. "pytorch.safetensors")
    assert.are.same({ 3, 4 }, tensors["fc.weight"]:shape())
    assert.are.same({ 3, 2, 3, 3 }, tensors["conv.weight"]:shape())
    assert.are.equal(expected.tensors["fc.bias"].values[2], tensors["fc.bias"]:get(2))
  end)
end)

describe("safetensors refuses corrupt data with nil, message", function()
  local good_data = string.pack("<ff", 1, 2)

  local cases = {
    { "an empty file", "", "0 bytes, too short" },
    { "a 5-byte file", "\8\0\0\0\0", "5 bytes, too short" },
    { "an absurd header length",
      string.pack("<I8", 200 * 1024 * 1024) .. "{}",
      "header length 209715200 is absurd" },
    { "a header length above 2^63",
      string.pack("<i8", -1) .. "{}",
      "header length 18446744073709551616 is absurd" },
    { "a header length beyond the file",
      string.pack("<I8", 100) .. "{}",
      "header length 100 runs past the end of the 10%-byte file" },
    { "a header that is not JSON",
      st_bytes("{\"a\":", ""),
      "header is not valid JSON %(json: expected a value, got end of text at byte 6" },
    { "a header with invalid UTF-8",
      st_bytes("{\"\xff\":1}", ""),
      "header is not valid JSON %(json: invalid UTF%-8 at byte 3" },
    { "a header that is an array", st_bytes("[]", ""), "header is an array, expected a JSON object" },
    { "a header that is a string", st_bytes('"x"', ""), "header is a string, expected a JSON object" },
    { "an entry that is not an object", st_bytes('{"a":[1]}', ""), "tensor 'a' is described by an array" },
    { "an unknown dtype",
      st_bytes({ a = entry("F33", { 2 }, 0, 8) }, good_data),
      "tensor 'a': unsupported dtype 'F33'" },
    { "a missing dtype",
      st_bytes('{"a":{"shape":[2],"data_offsets":[0,8]}}', good_data),
      "tensor 'a': dtype is missing" },
    { "a numeric dtype",
      st_bytes('{"a":{"dtype":4,"shape":[2],"data_offsets":[0,8]}}', good_data),
      "dtype is a number" },
    { "a negative shape entry",
      st_bytes({ a = entry("F32", { -2 }, 0, 8) }, good_data),
      "shape entry 1 is a number, expected a non%-negative integer" },
    { "a float shape entry",
      st_bytes('{"a":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}}', good_data),
      "shape entry 1 is the number 2.0" },
    { "a string shape entry",
      st_bytes('{"a":{"dtype":"F32","shape":["2"],"data_offsets":[0,8]}}', good_data),
      "shape entry 1 is a string" },
    { "a shape that is not an array",
      st_bytes('{"a":{"dtype":"F32","shape":2,"data_offsets":[0,8]}}', good_data),
      "shape is a number, expected an array" },
    { "a 9-dimensional shape",
      st_bytes({ a = entry("F32", { 1, 1, 1, 1, 1, 1, 1, 1, 2 }, 0, 8) }, good_data),
      "shape has 9 dimensions, at most 8" },
    { "an enormous shape",
      st_bytes({ a = entry("F32", { 1 << 40, 1 << 40 }, 0, 8) }, good_data),
      "shape %[1099511627776,1099511627776%] is too large" },
    { "one data offset",
      st_bytes('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0]}}', good_data),
      "data_offsets must be a pair of non%-negative integers" },
    { "three data offsets",
      st_bytes({ a = { dtype = "F32", shape = { 2 }, data_offsets = { 0, 8, 8 } } }, good_data),
      "data_offsets must be a pair" },
    { "string data offsets",
      st_bytes('{"a":{"dtype":"F32","shape":[2],"data_offsets":["0",8]}}', good_data),
      "data_offsets must be a pair" },
    { "float data offsets",
      st_bytes('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8.0]}}', good_data),
      "data_offsets must be a pair" },
    { "negative data offsets",
      st_bytes({ a = entry("F32", { 2 }, -8, 0) }, good_data),
      "data_offsets must be a pair" },
    { "reversed data offsets",
      st_bytes({ a = entry("F32", { 0 }, 8, 0) }, good_data),
      "data_offsets %[8,0%] end before they begin" },
    { "a size that does not match the shape",
      st_bytes({ a = entry("F32", { 3 }, 0, 8) }, good_data),
      "data_offsets %[0,8%] hold 8 bytes, but shape %[3%] of F32 needs 12" },
    { "a size that does not match the dtype",
      st_bytes({ a = entry("F16", { 2 }, 0, 8) }, good_data),
      "shape %[2%] of F16 needs 4" },
    { "offsets beyond the data",
      st_bytes({ a = entry("F32", { 2 }, 0, 8) }, "abcd"),
      "data_offsets %[0,8%] run past the 4%-byte data section" },
    { "offsets far beyond the data",
      st_bytes({ a = entry("U8", { 2 }, math.maxinteger - 2, math.maxinteger) }, "ab"),
      "run past the 2%-byte data section" },
    { "overlapping tensors",
      st_bytes({ a = entry("F32", { 2 }, 0, 8), b = entry("F32", { 2 }, 4, 12) }, good_data .. "abcd"),
      "tensor 'b' at %[4,12%] overlaps the previous tensor, which ends at 8" },
    { "a gap between tensors",
      st_bytes({ a = entry("F32", { 1 }, 0, 4), b = entry("F32", { 1 }, 8, 12) }, good_data .. "abcd"),
      "gap in the data section: bytes %[4,8%) belong to no tensor %(next is 'b'%)" },
    { "a gap at the start",
      st_bytes({ a = entry("F32", { 1 }, 4, 8) }, good_data),
      "gap in the data section: bytes %[0,4%)" },
    { "trailing bytes after the tensors",
      st_bytes({ a = entry("F32", { 2 }, 0, 8) }, good_data .. "xx"),
      "the tensors cover 8 bytes, but the data section has 10" },
    { "data without any tensor",
      st_bytes("{}", "abc"),
      "the tensors cover 0 bytes, but the data section has 3" },
    { "a non-string metadata value",
      st_bytes({ __metadata__ = { k = 1 } }, ""),
      "__metadata__ value of 'k' is a number, expected a string" },
    { "a null metadata value",
      st_bytes('{"__metadata__":{"k":null}}', ""),
      "__metadata__ value of 'k' is null" },
    { "metadata that is an array",
      st_bytes('{"__metadata__":["a"]}', ""),
      "__metadata__ is an array, expected an object" },
    { "metadata that is a string", st_bytes('{"__metadata__":"a"}', ""), "__metadata__ is a string" },
  }

  for _, case in ipairs(cases) do
    it("for " .. case[1], function()
      local tensors, err = safetensors.decode(case[2])
      assert.is_nil(tensors)
      assert.is_string(err)
      assert(err:find("^safetensors: ") and err:find(case[3]),
             string.format("message %q does not match %q", err, case[3]))
    end)
  end

  it("accepts what those cases are variations of", function()
    local tensors = assert(safetensors.decode(st_bytes({ a = entry("F32", { 2 }, 0, 8) }, good_data)))
    assert.are.same({ 1, 2 }, tensors.a:totable())
    tensors = assert(safetensors.decode(st_bytes({ a = entry("F32", { 1 }, 0, 4), b = entry("F32", { 1 }, 4, 8) },
                                                 good_data)))
    assert.are.equal(2, tensors.b:get(1))
    -- zero-sized tensors may sit anywhere, also at the same offset as others
    local header = { z = entry("F32", { 0, 3 }, 4, 4), y = entry("I64", { 0 }, 0, 0),
                     a = entry("F32", { 1 }, 0, 4), b = entry("F32", { 1 }, 4, 8) }
    tensors = assert(safetensors.decode(st_bytes(header, good_data)))
    assert.are.same({ 0, 3 }, tensors.z:shape())
    local _, metadata = assert(safetensors.decode(st_bytes('{"__metadata__":null}', "")))
    assert.are.same({}, metadata)
    -- header padded with spaces, extra fields ignored
    local padded = '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"x":1}}   '
    tensors = assert(safetensors.decode(st_bytes(padded, good_data)))
    assert.are.equal(1, tensors.a:get(1))
  end)

  it("names the path when loading fails", function()
    local tensors, err = safetensors.load("/nonexistent/dir/model.safetensors")
    assert.is_nil(tensors)
    assert.matches("^safetensors: /nonexistent/dir/model.safetensors: No such file", err)
    tensors, err = safetensors.load("spec")
    assert.is_nil(tensors)
    assert.matches("^safetensors: spec: ", err)
    local dir = make_temp_dir()
    local path = dir .. "/short.safetensors"
    assert(core.write_atomic(path, "abc"))
    tensors, err = safetensors.load(path)
    assert.is_nil(tensors)
    assert.are.equal("safetensors: " .. path .. ": file is 3 bytes, too short for the 8-byte header length", err)
    remove_dir(dir)
  end)
end)

describe("safetensors under damage", function()
  local valid = read_all(FIXTURE_DIR .. "pytorch.safetensors")

  it("refuses a truncated copy at every length from 0 to the full size", function()
    assert.is_table(safetensors.decode(valid))
    for len = 0, #valid - 1 do
      local ok, tensors, err = pcall(safetensors.decode, valid:sub(1, len))
      assert(ok, string.format("length %d raised: %s", len, tostring(tensors)))
      assert(tensors == nil and type(err) == "string", "length " .. len .. " was accepted")
    end
  end)

  it("returns normally for random byte mutations", function()
    local seed = tonumber(os.getenv("SIAMESE_SEED")) or 20240611
    print(string.format("safetensors mutation seed %d (set SIAMESE_SEED to change it)", seed))
    math.randomseed(seed)
    local header_len = string.unpack("<I8", valid)
    local json_chars = '0123456789[]{},:"-.eE '
    local accepted, refused = 0, 0
    for round = 1, 400 do
      local bytes = valid
      for _ = 1, math.random(1, 3) do
        local pos, byte
        if math.random() < 0.7 then
          pos = math.random(9, 8 + header_len)
        else
          pos = math.random(1, #bytes)
        end
        if math.random() < 0.5 then
          local k = math.random(1, #json_chars)
          byte = json_chars:sub(k, k)
        else
          byte = string.char(math.random(0, 255))
        end
        bytes = bytes:sub(1, pos - 1) .. byte .. bytes:sub(pos + 1)
      end
      local ok, tensors, info = pcall(safetensors.decode, bytes)
      assert(ok, string.format("seed %d round %d raised: %s", seed, round, tostring(tensors)))
      if tensors then
        assert.is_table(info)
        accepted = accepted + 1
      else
        assert(type(info) == "string", string.format("seed %d round %d: no message", seed, round))
        refused = refused + 1
      end
    end
    assert.are.equal(400, accepted + refused)
  end)
end)

describe("safetensors atomic replacement", function()
  local dir, path, good
  before_each(function()
    dir = make_temp_dir()
    path = dir .. "/model.safetensors"
    assert.is_true(safetensors.save(path, { w = T.new { 1, 2, 3 } }, { version = "1" }))
    good = read_all(path)
  end)
  after_each(function() remove_dir(dir) end)

  it("returns nil, message for a path in a missing directory and creates nothing", function()
    local ok, err = safetensors.save(dir .. "/missing/model.safetensors", { w = T.zeros { 2 } })
    assert.is_nil(ok)
    assert.matches("^safetensors: cannot create temporary file for .*missing/model.safetensors.*No such file", err)
    assert.are.same({ "model.safetensors" }, list_dir(dir))
  end)

  it("leaves the old file intact when a value cannot be written", function()
    assert.has_error(function() safetensors.save(path, { w = "not a tensor" }) end)
    assert.has_error(function() safetensors.save(path, { w = T.zeros { 2 } }, { bad = 0 / 0 }) end)
    assert.are.equal(good, read_all(path))
    assert.are.same({ "model.safetensors" }, list_dir(dir))
  end)

  it("leaves the old file intact when the disk refuses the write half-way", function()
    -- A child process with a 16-block file size limit (SIGXFSZ ignored, so
    -- write fails with EFBIG) tries to replace the file with a 40 KB one.
    local script = dir .. "/child.lua"
    local f = assert(io.open(script, "w"))
    f:write([[
      local safetensors = require "siamese.safetensors"
      local T = require("siamese.core").tensor
      local ok, err = safetensors.save(arg[1], { w = T.zeros { 100, 100 } })
      io.write(tostring(ok), "|", tostring(err))
    ]])
    f:close()
    local build = os.getenv("SIAMESE_BUILD") or "build"
    local cmd = string.format("LUA_PATH_5_4='lua/?.lua;lua/?/init.lua;;' LUA_CPATH_5_4='%s/?.so;;' "
                              .. "sh -c \"trap '' XFSZ; ulimit -f 16; exec lua5.4 '%s' '%s'\" 2>&1",
                              build, script, path)
    local p = assert(io.popen(cmd))
    local out = p:read("a")
    p:close()
    os.remove(script)
    assert.matches("^nil|safetensors: cannot write temporary file for '.*model.safetensors': File too large", out)
    assert.are.equal(good, read_all(path))
    assert.are.same({ "model.safetensors" }, list_dir(dir))
  end)
end)

describe("safetensors misuse", function()
  local function raises(pattern, fn, ...)
    local ok, err = pcall(fn, ...)
    assert.is_false(ok)
    assert(tostring(err):find(pattern), string.format("error %q does not match %q", tostring(err), pattern))
  end

  it("raises for values that are not tensors, naming the argument and the key", function()
    raises("bad argument #2 to 'safetensors.save' %(value of 'w' is a number, expected a siamese.Tensor%)",
           safetensors.save, "/tmp/x.safetensors", { w = 1 })
    raises("bad argument #2 to 'safetensors.encode' %(value of 'b' is a table", safetensors.encode, { b = {} })
    raises("bad argument #2 to 'safetensors.save' %(tensor names must be strings, got a number key%)",
           safetensors.save, "/tmp/x.safetensors", { T.zeros { 1 } })
    raises("'__metadata__' is reserved", safetensors.save, "/tmp/x.safetensors", { __metadata__ = T.zeros { 1 } })
    raises("bad argument #2 to 'safetensors.save' %(table of name %-> tensor expected, got string%)",
           safetensors.save, "/tmp/x.safetensors", "w")
  end)

  it("raises for a bad path or metadata", function()
    raises("bad argument #1 to 'safetensors.save' %(string expected, got nil%)", safetensors.save, nil, {})
    raises("bad argument #3 to 'safetensors.save' %(metadata must be a table", safetensors.save, "/tmp/x", {}, "m")
    raises("bad argument #3 to 'safetensors.save' %(metadata keys must be strings",
           safetensors.save, "/tmp/x", {}, { 1 })
    raises("bad argument #1 to 'safetensors.load' %(string expected, got number%)", safetensors.load, 5)
    raises("bad argument #1 to 'safetensors.decode' %(string expected, got nil%)", safetensors.decode)
  end)
end)

describe("safetensors.raw", function()
  it("saves bytes in their own dtype and loads them as float32", function()
    local bytes = safetensors.encode({q = safetensors.raw("U8", {2, 2}, "\0\1\128\255"), f = T.new{1.5}})
    local t = assert(safetensors.decode(bytes))
    assert.are.same({{0, 1}, {128, 255}}, t.q:totable())
    assert.are.same({1.5}, t.f:totable())
  end)

  it("refuses a byte count that does not fit the shape, and unknown dtypes", function()
    assert.has_error(function() safetensors.raw("U8", {3}, "ab") end)
    assert.has_error(function() safetensors.raw("X9", {1}, "a") end)
    assert.has_error(function() safetensors.raw("F16", {1.5}, "ab") end)
  end)
end)
