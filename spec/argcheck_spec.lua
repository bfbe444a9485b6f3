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
end)
