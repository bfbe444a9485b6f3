-- Specs of the top-level module: what require "siamese" gives.
local siamese = require "siamese"

describe("require 'siamese'", function()
  it("exposes the library's parts", function()
    assert.matches("^siamese %d+%.%d+%.%d+$", siamese._VERSION)
    for _, part in ipairs{"tensor", "image", "nn", "loss", "optim", "eval", "viz", "json", "safetensors", "data"} do
      assert.is_table(siamese[part], part)
    end
  end)

  it("clock is a monotonic wall clock in seconds", function()
    local t0 = siamese.clock()
    local t1 = siamese.clock()
    assert.is_true(t1 >= t0)
    os.execute("sleep 0.05")
    assert.is_true(siamese.clock() - t1 >= 0.04)
  end)

  it("manual_seed fixes the random numbers", function()
    siamese.manual_seed(123)
    local a = siamese.tensor.rand{4}:totable()
    siamese.manual_seed(123)
    assert.are.same(a, siamese.tensor.rand{4}:totable())
    assert.has_error(function() siamese.manual_seed(1.5) end)
  end)
end)
