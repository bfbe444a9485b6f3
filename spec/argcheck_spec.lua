-- siamese.argcheck: the shared argument checks.
local argcheck = require "siamese.argcheck"
local image = require "siamese.image"

describe("siamese.argcheck", function()
  it("raises a message naming the function and the argument, blaming the caller's caller", function()
    local function public(x) if type(x) ~= "number" then argcheck.error("public", 1, "number expected, got %s", type(x)) end end
    local ok, err = pcall(function() public("a") end)
    assert.is_false(ok)
    assert.matches("bad argument #1 to 'public' %(number expected, got string%)", err)
    assert.matches("argcheck_spec.lua:%d+:", err) -- the caller's line, not argcheck's
    assert.is_nil(err:find("argcheck.lua", 1, true))
  end)

  it("raise blames the level it is given, as error() would from its caller; shape prints a tensor's shape", function()
    -- a wrapper of the usual kind: its callers' callers are blamed (level 3)
    local function arg_error(fname, n, msg) argcheck.raise(3, fname, n, msg) end
    local function public(x) if x == nil then arg_error("public", 2, "a value expected") end end
    local function user() public(nil) end -- line of this call is blamed
    local ok, err = pcall(user)
    assert.is_false(ok)
    assert.matches("^.-argcheck_spec.lua:%d+: bad argument #2 to 'public' %(a value expected%)$", err)
    local line = debug.getinfo(1, "l").currentline - 4 -- the line of user's body
    assert.matches("argcheck_spec.lua:" .. line .. ":", err)
    assert.are.equal("[2,3]", argcheck.shape(require("siamese").tensor.zeros{2, 3}))
  end)

  it("tells images, type names and finite numbers", function()
    local img = image.new(2, 2, 1)
    assert.is_true(argcheck.is_image(img))
    assert.is_false(argcheck.is_image({}))
    assert.is_false(argcheck.is_image(nil))
    assert.are.equal("siamese.Image", argcheck.typename(img))
    assert.are.equal("table", argcheck.typename({}))
    assert.are.equal("nil", argcheck.typename(nil))
    for _, v in ipairs{0, -1.5, 1e300} do assert.is_true(argcheck.is_number(v)) end
    for _, v in ipairs{0 / 0, math.huge, -math.huge, "1"} do assert.is_false(argcheck.is_number(v)) end
  end)

  it("image() passes an image and names the function, the argument and the type otherwise", function()
    local function predict(img) argcheck.image(img, "predict", 1) return true end
    assert.is_true(predict(image.new(2, 2, 3)))
    local function user() predict({}) end
    local ok, err = pcall(user)
    assert.is_false(ok)
    assert.matches("argcheck_spec.lua:%d+: bad argument #1 to 'predict' %(siamese.Image expected, got table%)$", err)
    assert.is_nil(err:find("argcheck.lua", 1, true))
  end)
end)
