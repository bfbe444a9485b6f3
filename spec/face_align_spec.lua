-- Specs of siamese.face.align: the similarity transform and chips.
--
-- Everything here is Lua double arithmetic: a value computed in n
-- roundings from terms whose magnitudes sum to mag is within
-- gamma64(n) mag of exact (spec/face_bounds.lua, u = 2^-53); each bound
-- counts the library's and the expected value's roundings.
local siamese = require "siamese"
local align = require "siamese.face.align"
local bounds = dofile("spec/face_bounds.lua")
local g64 = bounds.gamma64

local function near(a, b, tol)
  assert(math.abs(a - b) <= tol, string.format("%.17g vs %.17g (bound %.3g)", a, b, tol))
end

-- The least-squares similarity fit of N points (source coordinates below
-- X, targets below Y, source spread den = sum |p - mean|^2) in doubles:
-- a = sum p'.q' / den (b likewise) errs by the centring (means of N
-- values, gamma64(N + 2) X and Y per coordinate), the N products and sums
-- (gamma64(2N + 2) of sum |p'||q'| <= N X Y), and the targets' own
-- rounding when the test computes them (gamma64(8) Y): within
-- gamma64(2N + 8) 4 N X Y / den. The translation t = mean q - [a -b; b a]
-- mean p adds 2 X that and a few roundings on terms below Y + 2 |a| X.
local function spread(points)
  local mx, my = 0, 0
  for _, p in ipairs(points) do mx, my = mx + p[1] / #points, my + p[2] / #points end
  local den = 0
  for _, p in ipairs(points) do den = den + (p[1] - mx) ^ 2 + (p[2] - my) ^ 2 end
  return den
end
local function fit_bound(N, X, Y, den)
  return g64(2 * N + 8) * 4 * N * X * Y / den
end
local function translation_bound(N, X, Y, den, scale)
  return fit_bound(N, X, Y, den) * 2 * X + g64(8) * (Y + 2 * scale * X)
end
-- a point mapped by a fitted matrix: its entries' errors times the
-- point's coordinates, and the product's own roundings
local function mapped_bound(N, X, Y, den, scale)
  return fit_bound(N, X, Y, den) * 2 * X + translation_bound(N, X, Y, den, scale) + g64(4) * (2 * scale * X + Y)
end

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
    local X, Y, den = 10, 25, spread(src)     -- |src| <= 10, |dst| <= s 10 + 5 < 25
    near(m[1][1], s * math.cos(th), fit_bound(4, X, Y, den) + g64(4) * s)
    near(m[2][1], s * math.sin(th), fit_bound(4, X, Y, den) + g64(4) * s)
    near(m[1][3], tx, translation_bound(4, X, Y, den, s))
    near(m[2][3], ty, translation_bound(4, X, Y, den, s))
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
    local le, re, mo = align.centres(pts)
    -- photo -> chip: 3 centres below 2 * 150 * sqrt(2) + 40 < 470, targets below 150, scale 1/2
    local tol = mapped_bound(3, 470, 150, spread{le, re, mo}, 0.5)
    near(m[1][1] * le[1] + m[1][2] * le[2] + m[1][3], c.left_eye[1] * 150, tol)
    near(m[2][1] * le[1] + m[2][2] * le[2] + m[2][3], c.left_eye[2] * 150, tol)
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
    -- the chip targets (padding + m) / 1.5 * 150 of points 17-67 (the fits use some of them)
    local targets = {}
    for i = 1, #align.DLIB_MEAN_FACE_X do
      targets[i] = {(0.25 + align.DLIB_MEAN_FACE_X[i]) / 1.5 * 150, (0.25 + align.DLIB_MEAN_FACE_Y[i]) / 1.5 * 150}
    end
    for _, fit in ipairs{"dlib", "inner"} do
      local m = align.dlib_transform(pts, 150, 0.25, fit)  -- chip -> photo
      -- chip -> photo: N <= 51 targets below 150 (spread at least that of
      -- the 33 dlib points, a subset of the 51), photo points below 1.3 * 100 * sqrt(2) + 45 < 230
      local N, X, Y = 51, 150, 230
      local dlib_subset = {}
      for i = 17, 67 do
        if not (i <= 26 or (i >= 55 and i <= 59) or i >= 65) then dlib_subset[#dlib_subset + 1] = targets[i - 16] end
      end
      local den = math.min(spread(targets), spread(dlib_subset))
      -- the nose base (33) at (0.25 + m) / 1.5 * 150 of the chip
      local cx = (0.25 + align.DLIB_MEAN_FACE_X[33 - 16]) / 1.5 * 150
      local cy = (0.25 + align.DLIB_MEAN_FACE_Y[33 - 16]) / 1.5 * 150
      near(m[1][1] * cx + m[1][2] * cy + m[1][3], pts[34][1], mapped_bound(N, X, Y, den, 1.3))
      near(m[2][1] * cx + m[2][2] * cy + m[2][3], pts[34][2], mapped_bound(N, X, Y, den, 1.3))
      near(math.sqrt(m[1][1] ^ 2 + m[2][1] ^ 2), 1.3 * 100 * 1.5 / 150, 2 * fit_bound(N, X, Y, den) + g64(8) * 1.3)
    end
    -- the 5-point fit: close (its targets are dlib's 5-point model's, not
    -- the mean face's): 1 degree is a semantic criterion, not round-off
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
    local function apply(m, q) return {m[1][1] * q[1] + m[1][2] * q[2] + m[1][3], m[2][1] * q[1] + m[2][2] * q[2] + m[2][3]} end
    local function abs_of(m)
      return {{math.abs(m[1][1]), math.abs(m[1][2]), math.abs(m[1][3])}, {math.abs(m[2][1]), math.abs(m[2][2]), math.abs(m[2][3])}}
    end
    -- sum of the terms' magnitudes: the same expression on absolute values;
    -- each side rounds at most 6 times along its chain
    local mag = apply(abs_of(a), apply(abs_of(b), {5, 3}))
    local abp, a_bp = apply(ab, p), apply(a, apply(b, p))
    near(abp[1], a_bp[1], g64(12) * mag[1])
    near(abp[2], a_bp[2], g64(12) * mag[2])
    -- a a^-1: the determinant's cancellation kappa = (|a11 a22| + |a12 a21|) / |det|
    -- scales the inverse's relative error (gamma64(4)); then 3 terms per entry
    local inv = align.invert(a)
    local det = a[1][1] * a[2][2] - a[1][2] * a[2][1]
    local kappa = (math.abs(a[1][1] * a[2][2]) + math.abs(a[1][2] * a[2][1])) / math.abs(det)
    local ainv = abs_of(inv)
    -- the inverse's translation is a sum of terms |inv| |a3|
    ainv[1][3] = ainv[1][1] * math.abs(a[1][3]) + ainv[1][2] * math.abs(a[2][3])
    ainv[2][3] = ainv[2][1] * math.abs(a[1][3]) + ainv[2][2] * math.abs(a[2][3])
    local M = align.compose(abs_of(a), ainv)
    M[1][3], M[2][3] = M[1][3] + math.abs(a[1][3]), M[2][3] + math.abs(a[2][3])
    local id = align.compose(a, inv)
    local want = {{1, 0, 0}, {0, 1, 0}}
    for i = 1, 2 do
      for j = 1, 3 do near(id[i][j], want[i][j], g64(12) * kappa * M[i][j]) end
    end
    assert.has_error(function() align.invert({{1, 2, 0}, {2, 4, 0}}) end)
  end)

  it("draws dlib-style jitter within its bounds", function()
    local mid = function() return 0.5 end
    local m, mirror = align.jitter_transform(150, mid)
    assert.is_false(mirror)
    near(m[1][2], 0, 0)                                -- no rotation at the middle draw: sin(0) exactly
    -- box = floor(144 / 0.985) either way; k cos(0) = k: one division on each side
    near(m[1][1], math.floor(144 / 0.985) / 150, g64(1))
    -- centre kept (t = 0 exactly: 0.5 * 0.04 = 0.02): a few roundings below 2 * 74.5
    near(m[1][1] * 74.5 + m[1][3], 74.5, g64(6) * 2 * 74.5)
    local seed = 7
    local function rand() seed = (seed * 1103515245 + 12345) % 2147483648; return seed / 2147483648 end
    local mirrored = 0
    for _ = 1, 200 do
      local j, flip = align.jitter_transform(150, rand)
      local k = math.sqrt(j[1][1] ^ 2 + j[2][1] ^ 2)
      -- box >= 144 and k = box / 150 |(cos, sin)|: a few roundings (the
      -- upper end: box <= floor(144 / 0.97) = 148, well below 148.5)
      assert(k >= 144 / 150 - g64(8) and k <= 148.5 / 150, "scale " .. k)
      -- the angle back through cos, sin and atan: a few roundings of 3 degrees
      assert(math.abs(math.atan(j[2][1], j[1][1])) <= math.rad(3) * (1 + g64(8)))
      local cx = j[1][1] * 74.5 + j[1][2] * 74.5 + j[1][3]
      -- the shift is at most 0.02 * 144; the centre's roundings on terms below 3 * 150
      assert(math.abs(cx - 74.5) <= 0.02 * 144 + g64(8) * 3 * 150)
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
