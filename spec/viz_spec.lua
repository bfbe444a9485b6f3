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

  it("draws boxes, points and text in place", function()
    local img = siamese.image.new(40, 30, 3)
    viz.draw_box(img, {x = 2, y = 3, width = 10, height = 8}, {255, 0, 0}, 1)
    assert.are.same({255, 0, 0}, {img:get(2, 3)})
    assert.are.same({255, 0, 0}, {img:get(12, 11)})
    assert.are.same({0, 0, 0}, {img:get(7, 7)})      -- inside stays
    viz.draw_box(img, {x = -5, y = -5, width = 100, height = 100}, {1, 2, 3}) -- clipped, no error
    viz.draw_points(img, {{20, 20}}, {0, 255, 0})
    assert.are.same({0, 255, 0}, {img:get(21, 20)})
    viz.draw_text(img, 1, 1, "Ab1", {255, 255, 255}, 1)
    -- 'A' row 1 is .###.: pixel (2,1) lit, (1,1) not
    assert.are.same({255, 255, 255}, {img:get(2, 1)})
    assert.are.same({0, 0, 0}, {img:get(1, 1)})
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
