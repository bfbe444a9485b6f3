-- core.image.area_crops: MTCNN's R-Net/O-Net batches in one C pass; the
-- same values as crop -> to_tensor -> resize_tensor{method = "area"}.
local siamese = require "siamese"
local core = require "siamese.core"
local T = siamese.tensor
local image = siamese.image
local support = dofile("spec/support.lua")

local NORM = {scale = 1, mean = {127.5, 127.5, 127.5}, std = {128, 128, 128}}

-- A deterministic RGB pattern with detail at every scale.
local function pattern(w, h)
  local img = image.new(w, h, 3)
  for y = 0, h - 1 do
    for x = 0, w - 1 do img:set(x, y, (x * 7 + y * 3) % 256, (x * y) % 251, (x * 13 + y * y) % 256) end
  end
  return img
end

-- crop, to_tensor, resize_tensor: the composition area_crops replaces.
local function reference(img, box, size)
  local c = img:crop(box[1], box[2], box[3], box[4]):to_tensor(NORM)
  if box[3] == size and box[4] == size then return c end
  return image.resize_tensor(c, size, size, {method = "area"})
end

-- The largest |a - b| of two tensors of one shape.
local function maxdiff(a, b)
  local d = a:clone():sub_(b)
  return math.max(d:max(), -d:min())
end

describe("core.image.area_crops", function()
  local img = pattern(97, 83)
  local boxes = {{10, 5, 40, 40}, {0, 0, 24, 24}, {60, 50, 50, 45}, {-7, -3, 30, 20}, {3, 4, 1, 1}, {20, 20, 13, 70}}

  it("gives, per box, the values of crop, to_tensor and the area resize in turn (same operations)", function()
    for _, size in ipairs{24, 48} do
      local out = T.zeros{#boxes, 3, size, size}
      assert.are.equal(out, core.image.area_crops(img, boxes, out, NORM))
      for b, box in ipairs(boxes) do
        local ref = reference(img, box, size)
        local got = out:select(1, b)
        -- the same products and sums in the same order: equal, not merely close
        assert.are.equal(0, maxdiff(got, ref), "box " .. b .. " at size " .. size)
      end
    end
  end)

  it("writes the transposed crop ([C, x, y]) with transpose = true", function()
    local out = T.zeros{#boxes, 3, 24, 24}
    core.image.area_crops(img, boxes, out, {scale = 1, mean = NORM.mean, std = NORM.std, transpose = true})
    for b, box in ipairs(boxes) do
      local ref = reference(img, box, 24):transpose(2, 3)
      assert.are.equal(0, maxdiff(out:select(1, b), ref), "box " .. b)
    end
  end)

  it("skips empty boxes, leaving their rows as they were", function()
    local out = T.zeros{2, 3, 24, 24}:fill(5)
    core.image.area_crops(img, {{0, 0, 0, 10}, {1, 1, 24, 24}}, out, NORM)
    assert.are.equal(5, out:select(1, 1):min())
    assert.are.equal(5, out:select(1, 1):max())
    assert.are.equal(0, maxdiff(out:select(1, 2), reference(img, {1, 1, 24, 24}, 24)))
  end)

  it("refuses misuse naming the argument", function()
    local out = T.zeros{1, 3, 24, 24}
    support.assert_error(function() core.image.area_crops(img, {{0, 0, 24}}, out, NORM) end,
      "bad argument #2", "boxes[1][4]")
    support.assert_error(function() core.image.area_crops(img, {{0, 0, 70000, 24}}, out, NORM) end,
      "bad argument #2", "size in 0..65535")
    support.assert_error(function() core.image.area_crops(img, {"box"}, out, NORM) end, "boxes[1] must be a table")
    support.assert_error(function() core.image.area_crops(img, {{0, 0, 24, 24}, {0, 0, 24, 24}}, out, NORM) end,
      "bad argument #3")
    support.assert_error(function() core.image.area_crops(img, {{0, 0, 24, 24}}, T.zeros{1, 1, 24, 24}, NORM) end,
      "bad argument #3")
    support.assert_error(function() core.image.area_crops(img, {{0, 0, 24, 24}}, T.zeros{1, 3, 24, 20}, NORM) end,
      "bad argument #3")
  end)
end)
