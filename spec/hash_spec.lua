-- Specs of siamese.hash: CRC-32 and SHA-256 against published test vectors
-- (FIPS 180-2 appendix B; the CRC-32 check value of "123456789").
local siamese = require "siamese"
local support = dofile("spec/support.lua")
local hash = siamese.hash

describe("siamese.hash", function()
  it("crc32 gives the IEEE check value and zlib's values", function()
    local n, hex = hash.crc32("123456789")
    assert.are.equal(0xCBF43926, n)
    assert.are.equal("cbf43926", hex)
    assert.are.equal(0, (hash.crc32("")))
    -- zlib.crc32(b"The quick brown fox jumps over the lazy dog") = 0x414FA339
    assert.are.equal(0x414FA339, (hash.crc32("The quick brown fox jumps over the lazy dog")))
  end)

  it("sha256 matches the FIPS 180-2 vectors", function()
    assert.are.equal("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", hash.sha256("abc"))
    assert.are.equal("248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
      hash.sha256("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"))
    assert.are.equal("cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0",
      hash.sha256(string.rep("a", 1000000)))
    assert.are.equal("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", hash.sha256(""))
  end)

  it("sha256 handles every padding boundary like the one-shot reference", function()
    -- lengths around 55/56/64 bytes cross the padding cases; the file form
    -- streams in 64 KiB pieces; both must agree with coreutils' sha256sum.
    local dir = support.temp_dir("hash")
    for _, n in ipairs{55, 56, 57, 63, 64, 65, 119, 120, 65535, 65536, 65537, 200000} do
      local s = string.rep("x", n - 1) .. string.char(n % 256)
      local path = dir .. "/f" .. n
      support.write_file(path, s)
      local p = assert(io.popen("sha256sum " .. path))
      local want = p:read("l"):match("^(%x+)")
      p:close()
      assert.are.equal(want, hash.sha256(s))
      assert.are.equal(want, hash.file_sha256(path))
    end
    support.remove_dir(dir)
  end)

  it("file_sha256 agrees with sha256sum and returns nil, message for a missing file", function()
    local path = "models/faceapi_recognition.safetensors"
    local p = assert(io.popen("sha256sum " .. path))
    local want = p:read("l"):match("^(%x+)")
    p:close()
    assert.are.equal(want, hash.file_sha256(path))
    local ok, err = hash.file_sha256("/nonexistent/file")
    assert.is_nil(ok)
    assert.truthy(err:find("/nonexistent/file", 1, true))
    ok, err = hash.file_sha256("spec") -- a directory
    assert.is_nil(ok)
    assert.truthy(err:find("spec", 1, true))
  end)

  it("raises on a non-string argument", function()
    assert.has_error(function() hash.sha256({}) end)
    assert.has_error(function() hash.crc32(nil) end)
  end)
end)
