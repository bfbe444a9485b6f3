-- Specs of siamese.viz: montage layout and the ROC picture.
local siamese = require "siamese"
local viz = require "siamese.viz"
local eval = require "siamese.eval"

describe("siamese.viz", function()
  it("montage lays tiles in a grid with coloured frames", function()
    local a = siamese.image.new(4, 3, 1, string.rep("\100", 12))
    local m = viz.montage({a, {image = a, border = {255, 0, 0}}, a}, {columns = 2, border = 1})
    assert.are.equal(2 * 6, m.width)
    assert.are.equal(2 * 5, m.height)
    assert.are.same({40, 40, 40}, {m:get(0, 0)})       -- default frame
    assert.are.same({100, 100, 100}, {m:get(1, 1)})    -- tile pixel
    assert.are.same({255, 0, 0}, {m:get(6, 0)})        -- second tile's red frame
    assert.are.same({40, 40, 40}, {m:get(6, 5)})       -- empty cell: background
    local big = siamese.image.new(8, 6, 3)
    assert.are.equal(6 * 2, viz.montage({a, big}, {border = 1, columns = 2}).width) -- resized to the first tile
    assert.has_error(function() viz.montage({}) end)
  end)

  it("roc_image draws the curve on a log-FAR grid", function()
    local roc = eval.roc({0.1, 0.2, 0.3, 0.4}, {true, false, true, false})
    local img = viz.roc_image(roc, {width = 200, height = 150})
    assert.are.equal(200, img.width)
    assert.are.equal(150, img.height)
    local red = 0
    for y = 0, 149 do
      for x = 0, 199 do
        local r, g = img:get(x, y)
        if r == 200 and g == 30 then red = red + 1 end
      end
    end
    assert.is_true(red > 50)
  end)
end)
