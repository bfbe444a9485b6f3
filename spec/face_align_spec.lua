-- Specs of siamese.face.align: the similarity transform and chips.
local siamese = require "siamese"
local align = require "siamese.face.align"

local function near(a, b, tol) assert(math.abs(a - b) <= (tol or 1e-9), a .. " vs " .. b) end

-- 68 points whose eye and mouth centres are the given ones.
local function points_with(le, re, mo)
  local p = {}
  for i = 0, 67 do
    local c = (i >= 36 and i <= 41) and le or (i >= 42 and i <= 47) and re or (i >= 48) and mo or {0, 0}
    p[i + 1] = {c[1], c[2]}
  end
  return p
end

describe("siamese.face.align", function()
  it("recovers a known rotation, scale and translation exactly", function()
    local th, s, tx, ty = 0.3, 1.7, 5, -2
    local src = {{0, 0}, {10, 0}, {3, 7}, {-4, 2}}
    local dst = {}
    for i, p in ipairs(src) do
      dst[i] = {s * (math.cos(th) * p[1] - math.sin(th) * p[2]) + tx, s * (math.sin(th) * p[1] + math.cos(th) * p[2]) + ty}
    end
    local m = align.similarity_transform(src, dst)
    near(m[1][1], s * math.cos(th))
    near(m[2][1], s * math.sin(th))
    near(m[1][3], tx)
    near(m[2][3], ty)
    assert.has_error(function() align.similarity_transform({{1, 1}, {1, 1}}, {{0, 0}, {1, 1}}) end)
  end)

  it("maps the eyes and mouth of a tilted face onto the canonical chip positions", function()
    local c = align.CANONICAL
    -- a face rotated by 20 degrees, scaled by 2 and moved
    local th = math.rad(20)
    local function place(p)
      local x, y = p[1] * 150, p[2] * 150
      return {2 * (math.cos(th) * x - math.sin(th) * y) + 40, 2 * (math.sin(th) * x + math.cos(th) * y) + 10}
    end
    local pts = points_with(place(c.left_eye), place(c.right_eye), place(c.mouth))
    local m = align.chip_transform(pts, 150)
    local le = align.centres(pts)
    near(m[1][1] * le[1] + m[1][2] * le[2] + m[1][3], c.left_eye[1] * 150, 1e-6)
    near(m[2][1] * le[1] + m[2][2] * le[2] + m[2][3], c.left_eye[2] * 150, 1e-6)
  end)

  it("cuts an RGB chip of the requested size", function()
    local img = siamese.image.new(64, 64, 1)
    local chip = align.similarity_chip(img, points_with({20, 25}, {44, 25}, {32, 45}), 96)
    assert.are.equal(96, chip.width)
    assert.are.equal(3, chip.channels)
    assert.has_error(function() align.similarity_chip(img, {{0, 0}}) end)
  end)
end)
