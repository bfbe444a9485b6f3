-- Specs of the serialization helpers in siamese.core: write_atomic (atomic
-- file replacement, the new-file mode option) and tensor_from_bytes / tensor_to_bytes (little-endian
-- conversions for every safetensors dtype, bounds checks).
local core = require "siamese.core"
local T = core.tensor

local support = dofile("spec/support.lua")
local list_dir, read_all, remove_dir = support.list_dir, support.read_file, support.remove_dir
local function make_temp_dir() return support.temp_dir("fileio") end

-- Element values of a tensor in row-major order.
local function values(t)
  local bytes = core.tensor_to_bytes(t)
  local out = {}
  for i = 1, #bytes // 4 do out[i] = string.unpack("<f", bytes, 4 * i - 3) end
  return out
end

-- Asserts that fn(...) raises an error matching the Lua pattern.
local function raises(pattern, fn, ...)
  local ok, err = pcall(fn, ...)
  assert(not ok, "expected an error matching " .. pattern)
  assert(tostring(err):find(pattern), string.format("error %q does not match %q", tostring(err), pattern))
end

local function f32_bits(x)
  return string.unpack("<I4", string.pack("<f", x))
end

describe("core.write_atomic", function()
  local dir
  before_each(function() dir = make_temp_dir() end)
  after_each(function() remove_dir(dir) end)

  it("writes the concatenated strings and replaces an existing file", function()
    local path = dir .. "/out.bin"
    assert.is_true(core.write_atomic(path, "hello ", "world"))
    assert.are.equal("hello world", read_all(path))
    assert.is_true(core.write_atomic(path, "\0\1\2", "", "tail"))
    assert.are.equal("\0\1\2tail", read_all(path))
    assert.is_true(core.write_atomic(path))
    assert.are.equal("", read_all(path))
    assert.are.same({ "out.bin" }, list_dir(dir))
  end)

  it("writes large buffers", function()
    local path = dir .. "/big.bin"
    local big = string.rep("0123456789abcdef", 1 << 16)
    assert.is_true(core.write_atomic(path, big, big))
    assert.are.equal(big .. big, read_all(path))
  end)

  it("returns nil and a message naming the path for a missing directory, leaving nothing behind", function()
    local path = dir .. "/missing/out.bin"
    local ok, err = core.write_atomic(path, "data")
    assert.is_nil(ok)
    assert.matches("cannot create temporary file for '" .. dir:gsub("%p", "%%%0") .. "/missing/out.bin'", err)
    assert.matches("No such file or directory", err)
    assert.are.same({}, list_dir(dir))
  end)

  it("fails without touching the target when the target is a directory", function()
    local target = dir .. "/sub"
    os.execute("mkdir '" .. target .. "' && echo keep > '" .. target .. "/f'")
    local ok, err = core.write_atomic(target, "data")
    assert.is_nil(ok)
    assert.matches("rename", err)
    assert.are.same({ "sub" }, list_dir(dir))
    assert.are.equal("keep\n", read_all(target .. "/f"))
    os.remove(target .. "/f")
    os.remove(target)
  end)

  -- Runs core.write_atomic(path, opts, "data") in a child process with the
  -- given umask (this process's umask cannot be set from Lua); returns the
  -- permissions of the file written ("rw-------").
  local function write_with_umask(umask, path, mode)
    local lfs = require "lfs"
    local q = support.q
    local code = string.format([[local core = require "siamese.core"
      assert(core.write_atomic(%q, %s, "data"))]], path, mode and string.format("{mode = %d}", mode) or "{}")
    local cmd = string.format("umask %s && LUA_PATH_5_4=%s LUA_CPATH_5_4=%s lua5.4 -e %s", umask,
      q(package.path), q(package.cpath), q(code))
    assert(os.execute(cmd), cmd)
    assert.are.equal("data", read_all(path))
    return lfs.attributes(path, "permissions")
  end

  it("{mode = m} gives a new file that mode, minus the umask as open(2) does", function()
    -- under umask 022 the default is 0644: a mode that were ignored would show
    assert.are.equal("rw-r--r--", write_with_umask("022", dir .. "/default"))
    assert.are.equal("rw-------", write_with_umask("022", dir .. "/private", 384))    -- 0600
    assert.are.equal("rw-r-----", write_with_umask("022", dir .. "/group", 416))      -- 0640
    assert.are.equal("r--r--r--", write_with_umask("022", dir .. "/readonly", 292))   -- 0444
    assert.are.equal("rwxr-x---", write_with_umask("022", dir .. "/exec", 488))       -- 0750
    -- the umask still clears bits: 0644 under umask 077 is 0600
    assert.are.equal("rw-------", write_with_umask("077", dir .. "/masked", 420))
    assert.are.same({ "default", "exec", "group", "masked", "private", "readonly" }, list_dir(dir))
  end)

  it("{mode = m} leaves an existing file's mode as it is, and writes strings after the table", function()
    local lfs = require "lfs"
    local path = dir .. "/kept"
    assert.are.equal("rw-------", write_with_umask("022", path, 384))
    assert(os.execute("chmod 644 " .. support.q(path)))
    assert.is_true(core.write_atomic(path, { mode = 384 }, "new ", "bytes"))
    assert.are.equal("new bytes", read_all(path))
    assert.are.equal("rw-r--r--", lfs.attributes(path, "permissions"))
    assert.is_true(core.write_atomic(path, { mode = 384 }))  -- no strings: an empty file
    assert.are.equal("", read_all(path))
    assert.is_true(core.write_atomic(path, {}, "x"))          -- an empty table: the defaults
    assert.are.equal("x", read_all(path))
    assert.are.same({ "kept" }, list_dir(dir))
  end)

  it("refuses bad options, naming write_atomic and the argument", function()
    local p = dir .. "/x"
    raises("bad argument #2 to .*write_atomic.* %(mode must be an integer from 1 to 0777 %(octal; 511 in decimal%), "
           .. "got 0 %(octal 0%)%)", core.write_atomic, p, { mode = 0 }, "a")
    raises("got 512 %(octal 1000%)", core.write_atomic, p, { mode = 512 }, "a")   -- 01000: the sticky bit
    raises("got 2048 %(octal 4000%)", core.write_atomic, p, { mode = 2048 }, "a") -- setuid
    raises("got %-1%)", core.write_atomic, p, { mode = -1 }, "a")
    raises("got a string", core.write_atomic, p, { mode = "0600" }, "a")
    raises("got 1.5", core.write_atomic, p, { mode = 1.5 }, "a")
    raises("got a boolean", core.write_atomic, p, { mode = true }, "a")
    raises("bad argument #2 .*unknown option 'mdoe' %(the options are: mode%)", core.write_atomic, p, { mdoe = 384 }, "a")
    raises("bad argument #2 .*options are named %(mode%), got a number key", core.write_atomic, p, { 384 }, "a")
    raises("bad argument #3 to .*write_atomic.* %(string expected, got table%)", core.write_atomic, p, { mode = 384 }, {})
    raises("bad argument #4 .*string expected, got number", core.write_atomic, p, { mode = 384 }, "a", 5)
    assert.are.same({}, list_dir(dir))
  end)

  it("raises on misuse, naming the argument", function()
    raises("bad argument #3 to .*write_atomic.* %(string expected, got table%)",
           core.write_atomic, dir .. "/x", "a", {})
    raises("bad argument #1", core.write_atomic, nil, "a")
    raises("empty path", core.write_atomic, "", "a")
    raises("bad argument #1 .*zero byte", core.write_atomic, dir .. "/a\0b", "a")
    assert.are.same({}, list_dir(dir))
  end)
end)

describe("core.tensor_from_bytes", function()
  it("reads F32 bit for bit, at an offset, into a contiguous tensor", function()
    local bytes = "xyz" .. string.pack("<I4I4I4I4I4I4", 0x3f800000, 0x80000000, 0x7f800000,
                                       0x7fc00001, 0xffbfffff, 0x00000001)
    local t = core.tensor_from_bytes(bytes, 3, "F32", { 2, 3 })
    assert.are.same({ 2, 3 }, t:shape())
    assert.is_true(t:is_contiguous())
    assert.are.equal(bytes:sub(4), core.tensor_to_bytes(t))
    assert.are.equal(1, t:get(1, 1))
    assert.are.equal(0x80000000, f32_bits(t:get(1, 2)))
    assert.are.equal(math.huge, t:get(1, 3))
    assert.are.equal(2.0 ^ -149, t:get(2, 3))
  end)

  it("reads F16 normals, subnormals, zeros, infinities and NaN", function()
    local halves = { 0x3c00, 0xc100, 0x7bff, 0x0400, 0x03ff, 0x0001, 0x8001, 0x8000, 0x7c00, 0xfc00, 0x7e00, 0x7c01 }
    local bytes = string.pack("<" .. string.rep("I2", #halves), table.unpack(halves))
    local v = values(core.tensor_from_bytes(bytes, 0, "F16", { #halves }))
    assert.are.equal(1.0, v[1])
    assert.are.equal(-2.5, v[2])
    assert.are.equal(65504.0, v[3])
    assert.are.equal(2.0 ^ -14, v[4])
    assert.are.equal(1023 * 2.0 ^ -24, v[5])
    assert.are.equal(2.0 ^ -24, v[6])
    assert.are.equal(-(2.0 ^ -24), v[7])
    assert.are.equal(0x80000000, f32_bits(v[8]))
    assert.are.equal(math.huge, v[9])
    assert.are.equal(-math.huge, v[10])
    local t = core.tensor_from_bytes(bytes, 0, "F16", { #halves })
    local raw = core.tensor_to_bytes(t)
    assert.are.equal(0x7fc00000, string.unpack("<I4", raw, 41)) -- quiet NaN
    assert.are.equal(0x7f802000, string.unpack("<I4", raw, 45)) -- payload kept
  end)

  it("reads BF16 as the top half of a float32", function()
    local bytes = string.pack("<I2I2I2I2I2", 0x3f80, 0xc049, 0x0001, 0xff80, 0x7fc1)
    local t = core.tensor_from_bytes(bytes, 0, "BF16", { 5 })
    local raw = core.tensor_to_bytes(t)
    local bits = { string.unpack("<I4I4I4I4I4", raw) }
    bits[6] = nil -- the position after the last value
    assert.are.same({ 0x3f800000, 0xc0490000, 0x00010000, 0xff800000, 0x7fc10000 }, bits)
  end)

  it("reads F64 rounded to float32", function()
    local bytes = string.pack("<dddd", 1.5, math.pi, 1e300, -1e-300)
    local v = values(core.tensor_from_bytes(bytes, 0, "F64", { 4 }))
    assert.are.equal(1.5, v[1])
    assert.are.equal(string.unpack("<f", string.pack("<f", math.pi)), v[2])
    assert.are.equal(math.huge, v[3])
    assert.are.equal(0x80000000, f32_bits(v[4]))
  end)

  it("reads signed and unsigned integers and BOOL", function()
    local cases = {
      { "I64", string.pack("<i8i8i8", -1, math.mininteger, (1 << 24) + 1), { -1, -(2.0 ^ 63), 2.0 ^ 24 } },
      { "I32", string.pack("<i4i4i4", -2, 2147483647, -2147483648), { -2, 2.0 ^ 31, -(2.0 ^ 31) } },
      { "I16", string.pack("<i2i2i2", -32768, 32767, -5), { -32768, 32767, -5 } },
      { "I8", string.pack("<i1i1i1", -128, 127, 0), { -128, 127, 0 } },
      { "U8", "\0\255\128", { 0, 255, 128 } },
      { "BOOL", "\0\1\2", { 0, 1, 1 } },
    }
    for _, case in ipairs(cases) do
      local t = core.tensor_from_bytes(case[2], 0, case[1], { 3 })
      assert.are.same(case[3], values(t), case[1])
    end
  end)

  it("reads 0-dim and 0-element shapes", function()
    local s = core.tensor_from_bytes(string.pack("<f", 2.5), 0, "F32", {})
    assert.are.equal(0, s:dim())
    assert.are.equal(2.5, s:get())
    local e = core.tensor_from_bytes("", 0, "F16", { 3, 0 })
    assert.are.same({ 3, 0 }, e:shape())
    assert.are.equal(0, e:numel())
  end)

  it("raises when the bytes run out, naming the sizes", function()
    raises("bad argument #1 to .*tensor_from_bytes", core.tensor_from_bytes, string.rep("\0", 10), 4, "F16", { 2, 2 })
    raises("shape %[2,2%] of F16 needs 8 bytes at offset 4, but the string has 10 bytes %(6 after the offset%)",
           core.tensor_from_bytes, string.rep("\0", 10), 4, "F16", { 2, 2 })
    raises("needs 4 bytes", core.tensor_from_bytes, "abc", 0, "F32", { 1 })
    assert.has_no_error(function() core.tensor_from_bytes("abcd", 0, "F32", { 1 }) end)
    assert.has_no_error(function() core.tensor_from_bytes("abcd", 4, "F32", { 0 }) end)
  end)

  it("raises on a bad offset, dtype or shape", function()
    local from = core.tensor_from_bytes
    raises("bad argument #2 .*offset %-1 outside the 4%-byte string", from, "abcd", -1, "U8", { 1 })
    raises("offset 5 outside", from, "abcd", 5, "U8", { 0 })
    raises("bad argument #3 .*unsupported dtype 'F8'", from, "abcd", 0, "F8", { 1 })
    raises("bad argument #4 .*non%-negative integer", from, "abcd", 0, "U8", { -1 })
    raises("bad argument #4 .*table expected", from, "abcd", 0, "U8", 4)
    raises("at most 8", from, "abcd", 0, "U8", { 1, 1, 1, 1, 1, 1, 1, 1, 1 })
    raises("too large", from, "", 0, "U8", { 1 << 30, 1 << 30 })
  end)
end)

describe("core.tensor_to_bytes", function()
  it("writes little-endian float32 in row-major order", function()
    local t = T.new { { 1, 2, 3 }, { 4, 5, 6 } }
    assert.are.equal(string.pack("<ffffff", 1, 2, 3, 4, 5, 6), core.tensor_to_bytes(t))
    assert.are.equal(string.pack("<f", 7), core.tensor_to_bytes(T.new(7)))
    assert.are.equal("", core.tensor_to_bytes(T.zeros { 0, 5 }))
  end)

  it("walks strided views in their own row-major order", function()
    local t = T.new { { 1, 2, 3 }, { 4, 5, 6 } }
    assert.are.equal(string.pack("<ffffff", 1, 4, 2, 5, 3, 6), core.tensor_to_bytes(t:t()))
    assert.are.equal(string.pack("<ff", 2, 5), core.tensor_to_bytes(t:narrow(2, 2, 1)))
    assert.are.equal(string.pack("<fff", 4, 5, 6), core.tensor_to_bytes(t:select(1, 2)))
  end)

  it("raises for a non-tensor", function()
    raises("bad argument #1 .*siamese.Tensor expected", core.tensor_to_bytes, "abc")
  end)
end)
