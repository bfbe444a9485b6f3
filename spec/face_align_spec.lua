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

  -- 68 points: dlib's mean face (points 17-67) placed in a photo by a
  -- known similarity, points 0-16 anywhere.
  local function dlib_face(scale, angle, tx, ty)
    local pts = {}
    for i = 0, 67 do
      local x, y = 0.5, 0.5
      if i >= 17 then x, y = align.DLIB_MEAN_FACE_X[i - 16], align.DLIB_MEAN_FACE_Y[i - 16] end
      x, y = x * 100, y * 100
      pts[i + 1] = {scale * (math.cos(angle) * x - math.sin(angle) * y) + tx,
                    scale * (math.sin(angle) * x + math.cos(angle) * y) + ty}
    end
    return pts
  end

  it("fits dlib's chip exactly to a face shaped like dlib's mean face", function()
    local pts = dlib_face(1.3, math.rad(-12), 30, 45)
    for _, fit in ipairs{"dlib", "inner"} do
      local m = align.dlib_transform(pts, 150, 0.25, fit)  -- chip -> photo
      -- the nose base (33) at (0.25 + m) / 1.5 * 150 of the chip
      local cx = (0.25 + align.DLIB_MEAN_FACE_X[33 - 16]) / 1.5 * 150
      local cy = (0.25 + align.DLIB_MEAN_FACE_Y[33 - 16]) / 1.5 * 150
      near(m[1][1] * cx + m[1][2] * cy + m[1][3], pts[34][1], 1e-6)
      near(m[2][1] * cx + m[2][2] * cy + m[2][3], pts[34][2], 1e-6)
      near(math.sqrt(m[1][1] ^ 2 + m[2][1] ^ 2), 1.3 * 100 * 1.5 / 150, 1e-9)
    end
    -- the 5-point fit: close (its targets are dlib's 5-point model's, not the mean face's)
    local m5 = align.dlib_transform(pts, 150, 0.25, "five")
    near(math.atan(m5[2][1], m5[1][1]), math.rad(-12), math.rad(1))
    assert.has_error(function() align.dlib_transform(pts, 150, 0.25, "seven") end)
    assert.has_error(function() align.dlib_transform({{1, 2}}) end)
  end)

  it("composes and inverts affine matrices", function()
    local a = {{1.2, -0.3, 4}, {0.3, 1.2, -7}}
    local b = {{0.9, 0.1, 2}, {-0.2, 1.1, 3}}
    local ab = align.compose(a, b)
    local p = {5, -3}
    local bp = {b[1][1] * p[1] + b[1][2] * p[2] + b[1][3], b[2][1] * p[1] + b[2][2] * p[2] + b[2][3]}
    near(ab[1][1] * p[1] + ab[1][2] * p[2] + ab[1][3], a[1][1] * bp[1] + a[1][2] * bp[2] + a[1][3], 1e-12)
    near(ab[2][1] * p[1] + ab[2][2] * p[2] + ab[2][3], a[2][1] * bp[1] + a[2][2] * bp[2] + a[2][3], 1e-12)
    local id = align.compose(a, align.invert(a))
    near(id[1][1], 1, 1e-12); near(id[1][2], 0, 1e-12); near(id[1][3], 0, 1e-12)
    near(id[2][1], 0, 1e-12); near(id[2][2], 1, 1e-12); near(id[2][3], 0, 1e-12)
    assert.has_error(function() align.invert({{1, 2, 0}, {2, 4, 0}}) end)
  end)

  it("draws dlib-style jitter within its bounds", function()
    local mid = function() return 0.5 end
    local m, mirror = align.jitter_transform(150, mid)
    assert.is_false(mirror)
    near(m[1][2], 0, 1e-12)                          -- no rotation at the middle draw
    near(m[1][1], math.floor(144 / 0.985) / 150, 1e-12)
    near(m[1][1] * 74.5 + m[1][3], 74.5, 1e-9)         -- centre kept
    local seed = 7
    local function rand() seed = (seed * 1103515245 + 12345) % 2147483648; return seed / 2147483648 end
    local mirrored = 0
    for _ = 1, 200 do
      local j, flip = align.jitter_transform(150, rand)
      local k = math.sqrt(j[1][1] ^ 2 + j[2][1] ^ 2)
      assert(k >= 144 / 150 - 1e-9 and k <= 148.5 / 150, "scale " .. k)
      assert(math.abs(math.atan(j[2][1], j[1][1])) <= math.rad(3) + 1e-12)
      local cx = j[1][1] * 74.5 + j[1][2] * 74.5 + j[1][3]
      assert(math.abs(cx - 74.5) <= 0.02 * 144 + 1e-9)
      if flip then mirrored = mirrored + 1 end
    end
    assert(mirrored > 60 and mirrored < 140, "mirrored " .. mirrored)
  end)

  it("cuts dlib's chip, jittered or not", function()
    local img = siamese.image.new(200, 200, 3)
    for y = 0, 199, 7 do for x = 0, 199, 5 do img:set(x, y, (x * 3 + y) % 256, x % 256, y % 256) end end
    local pts = dlib_face(1.2, 0.1, 40, 30)
    local chip = align.dlib_chip(img, pts)
    assert.are.equal(150, chip.width)
    assert.are.equal(150, chip.height)
    local same = align.dlib_chip(img, pts, 150, 0.25, "dlib", {{1, 0, 0}, {0, 1, 0}})
    assert.are.equal(chip:bytes(), same:bytes())
    local moved = align.dlib_chip(img, pts, 150, 0.25, "dlib", {{1, 0, 3}, {0, 1, 0}})
    assert.are_not.equal(chip:bytes(), moved:bytes())
  end)
end)
