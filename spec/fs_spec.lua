-- Specs of siamese.fs: directories made without a shell.
local fs = require "siamese.fs"
local support = dofile("spec/support.lua")

describe("siamese.fs", function()
  local dir
  before_each(function() dir = support.temp_dir("fs") end)
  after_each(function() os.execute("rm -rf '" .. dir .. "'") end)

  it("mkdir_p creates a directory and its parents, and accepts one that exists", function()
    local path = dir .. "/a/b/c"
    assert.is_true(fs.mkdir_p(path))
    assert.are.equal("directory", fs.kind(path))
    assert.is_true(fs.mkdir_p(path))
    assert.is_true(fs.mkdir_p(dir .. "/a//b/./d/"))
    assert.are.equal("directory", fs.kind(dir .. "/a/b/d"))
  end)

  it("mkdir_p takes any byte but / as a name: no shell sees the path", function()
    local odd = dir .. "/x'; touch INJECTED; echo '$(touch INJECTED2) \"q\""
    assert.is_true(fs.mkdir_p(odd))
    assert.are.equal("directory", fs.kind(odd))
    assert.is_nil(fs.kind(dir .. "/INJECTED"))
    assert.is_nil(fs.kind("INJECTED"))
    assert.is_nil(fs.kind("INJECTED2"))
  end)

  it("mkdir_p works on relative paths", function()
    local cwd = assert(require("lfs").currentdir())
    assert(require("lfs").chdir(dir))
    local ok, err = fs.mkdir_p("rel/sub")
    assert(require("lfs").chdir(cwd))
    assert.is_true(ok, err)
    assert.are.equal("directory", fs.kind(dir .. "/rel/sub"))
  end)

  it("mkdir_p refuses a path through a file, naming the part, and an empty path", function()
    support.write_file(dir .. "/file", "x")
    local ok, err = fs.mkdir_p(dir .. "/file/sub")
    assert.is_nil(ok)
    assert.are.equal(dir .. "/file: exists and is not a directory", err)
    ok, err = fs.mkdir_p("")
    assert.is_nil(ok)
    assert.matches("empty", err)
    assert.is_nil((fs.mkdir_p("a\0b")))
  end)

  it("size and kind of files", function()
    support.write_file(dir .. "/f", "12345")
    assert.are.equal(5, fs.size(dir .. "/f"))
    assert.are.equal("file", fs.kind(dir .. "/f"))
    local n, err = fs.size(dir .. "/missing")
    assert.is_nil(n)
    assert.matches("missing", err, 1, true)
  end)
end)
