-- Specs of the command-line option parser.
local args = require "siamese.cli.args"

describe("siamese.cli.args", function()
  local spec = {
    json = {kind = "flag", default = false},
    align = {kind = "string", default = "similarity", choices = {"faceapi", "similarity"}},
    threshold = {kind = "number"},
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
    assert.are.same({"--json"}, p)
  end)

  it("refuses unknown options, missing values, bad numbers and choices", function()
    assert.matches("unknown option %-%-nope", select(2, args.parse({"--nope"}, spec)))
    assert.matches("needs a value", select(2, args.parse({"--align"}, spec)))
    assert.matches("needs a number", select(2, args.parse({"--threshold", "x"}, spec)))
    assert.matches("must be one of faceapi, similarity", select(2, args.parse({"--align=dlib"}, spec)))
    assert.matches("takes no value", select(2, args.parse({"--json=1"}, spec)))
    assert.matches("unknown option %-x", select(2, args.parse({"-x"}, spec)))
  end)
end)
