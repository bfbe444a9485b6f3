-- Specs of img:to_square_tensor (sm_image_square_tf): the RGB path with
-- both rows and columns inside the image, and the no-resize path, against
-- the general path (an RGBA copy of the image, whose first three channels
-- must be equal bit for bit), on downscales and upscales, centred or not,
-- wide and tall images.
local siamese = require "siamese"
local image, T = siamese.image, siamese.tensor

local function rgb_and_rgba(w, h, seed)
  siamese.manual_seed(seed)
  local rgb = image.from_tensor(T.rand{3, h, w}, {scale = 1 / 255})
  local rgba = image.new(w, h, 4)
  for y = 0, h - 1 do for x = 0, w - 1 do
    local r, g, b = rgb:get(x, y)
    rgba:set(x, y, r, g, b, 255)
  end end
  return rgb, rgba
end

describe("img:to_square_tensor", function()
  it("the RGB and no-resize paths equal the general path bit for bit", function()
    local opts = {scale = 1, mean = {117.001, 114.697, 97.404}, std = {255, 255, 255}}
    for i, c in ipairs{{97, 61, 40}, {61, 97, 40}, {50, 31, 83}, {64, 64, 64}, {40, 23, 40}, {23, 40, 40}} do
      local rgb, rgba = rgb_and_rgba(c[1], c[2], i)
      for _, centred in ipairs{false, true} do
        opts.centred = centred
        local a = rgb:to_square_tensor(c[3], opts)
        local b = rgba:to_square_tensor(c[3], {scale = 1, mean = {117.001, 114.697, 97.404, 0},
                                               std = {255, 255, 255, 1}, centred = centred})
        assert.are.same({3, c[3], c[3]}, a:shape())
        local d = 0
        local av, bv = a:view(-1), b:narrow(1, 1, 3):contiguous():view(-1)
        for k = 1, av:numel() do d = math.max(d, math.abs(av:get(k) - bv:get(k))) end
        assert(d == 0, string.format("case %d centred %s: %g", i, tostring(centred), d))
      end
    end
  end)
end)
