--- siamese.face.align: face chips from 68 landmarks (iBUG order).
--
-- "similarity": the eye centres (means of points 36-41 and 42-47) and the
-- mouth centre (mean of 48-67) are mapped onto canonical positions of a
-- size x size chip by the least-squares similarity transform (rotation,
-- uniform scale, translation; Umeyama without reflection):
--   centred p', q';  a = sum(p'.q') / sum|p'|^2,
--   b = sum(p'_x q'_y - p'_y q'_x) / sum|p'|^2,
--   q = [a -b; b a] p + t,  t = mean(q) - [a -b; b a] mean(p)
-- then the photo is warped (bilinear) into the chip, so roll is removed and
-- every face has the same eye and mouth placement, like dlib's face chips.
--
-- The canonical positions (fractions of the chip side) are the average
-- positions of the eye and mouth centres in face-api's own square crop
-- (which puts their centroid at (0.5, 0.43) of the side and the mean
-- eye-mouth distance at 0.45 side), measured on the 2,923 faces of LFW's
-- development training pairs after levelling each face's eyes
-- (models/measure_canonical.lua): the network sees faces at the scale and
-- place it works best with, without tilt.
local align = {}

align.CANONICAL = {
  left_eye = {0.5 - 0.1847, 0.2972},
  right_eye = {0.5 + 0.1847, 0.2972},
  mouth = {0.5, 0.7090},
}

local function mean_point(points, first, last)
  local x, y = 0, 0
  for i = first, last do
    x, y = x + points[i + 1][1], y + points[i + 1][2]
  end
  local n = last - first + 1
  return {x / n, y / n}
end

--- Eye and mouth centres of 68 points (0-based iBUG indices 36-41, 42-47, 48-67).
function align.centres(points)
  if type(points) ~= "table" or #points ~= 68 then
    error("align: expected 68 landmark points, got " .. (type(points) == "table" and #points or type(points)), 3)
  end
  return mean_point(points, 36, 41), mean_point(points, 42, 47), mean_point(points, 48, 67)
end

--- Least-squares similarity transform taking points src[i] to dst[i];
-- returns the 2x3 matrix {{a, -b, tx}, {b, a, ty}}.
function align.similarity_transform(src, dst)
  local n = #src
  local sx, sy, dx, dy = 0, 0, 0, 0
  for i = 1, n do
    sx, sy, dx, dy = sx + src[i][1], sy + src[i][2], dx + dst[i][1], dy + dst[i][2]
  end
  sx, sy, dx, dy = sx / n, sy / n, dx / n, dy / n
  local num_a, num_b, den = 0, 0, 0
  for i = 1, n do
    local px, py = src[i][1] - sx, src[i][2] - sy
    local qx, qy = dst[i][1] - dx, dst[i][2] - dy
    num_a = num_a + px * qx + py * qy
    num_b = num_b + px * qy - py * qx
    den = den + px * px + py * py
  end
  if den == 0 then error("align: the source points coincide", 2) end
  local a, b = num_a / den, num_b / den
  return {{a, -b, dx - (a * sx - b * sy)}, {b, a, dy - (b * sx + a * sy)}}
end

--- The 2x3 matrix mapping photo coordinates to a size x size chip.
function align.chip_transform(points, size, canonical)
  canonical = canonical or align.CANONICAL
  local le, re, mo = align.centres(points)
  local function at(p) return {p[1] * size, p[2] * size} end
  return align.similarity_transform({le, re, mo},
    {at(canonical.left_eye), at(canonical.right_eye), at(canonical.mouth)})
end

--- The similarity-aligned RGB chip (size x size, default 150) of a face.
function align.similarity_chip(img, points, size, canonical)
  size = size or 150
  local m = align.chip_transform(points, size, canonical)
  local rgb = img.channels == 3 and img or img:to_rgb()
  return rgb:warp_affine(m, size, size)
end

-- ---------------------------------------------------------------------------
-- dlib's face chips
-- ---------------------------------------------------------------------------

-- dlib's mean face shape: the average positions of iBUG points 17-67 in
-- the unit square, from get_face_chip_details in
-- dlib/image_transforms/interpolation.h (dlib, Boost Software License 1.0,
-- Copyright Davis E. King). Reference data: the target shape dlib's face
-- recognition network was trained on.
align.DLIB_MEAN_FACE_X = {
  0.000213256, 0.0752622, 0.18113, 0.29077, 0.393397, 0.586856, 0.689483, 0.799124,
  0.904991, 0.98004, 0.490127, 0.490127, 0.490127, 0.490127, 0.36688, 0.426036,
  0.490127, 0.554217, 0.613373, 0.121737, 0.187122, 0.265825, 0.334606, 0.260918,
  0.182743, 0.645647, 0.714428, 0.793132, 0.858516, 0.79751, 0.719335, 0.254149,
  0.340985, 0.428858, 0.490127, 0.551395, 0.639268, 0.726104, 0.642159, 0.556721,
  0.490127, 0.423532, 0.338094, 0.290379, 0.428096, 0.490127, 0.552157, 0.689874,
  0.553364, 0.490127, 0.42689,
}
align.DLIB_MEAN_FACE_Y = {
  0.106454, 0.038915, 0.0187482, 0.0344891, 0.0773906, 0.0773906, 0.0344891,
  0.0187482, 0.038915, 0.106454, 0.203352, 0.307009, 0.409805, 0.515625, 0.587326,
  0.609345, 0.628106, 0.609345, 0.587326, 0.216423, 0.178758, 0.179852, 0.231733,
  0.245099, 0.244077, 0.231733, 0.179852, 0.178758, 0.216423, 0.244077, 0.245099,
  0.780233, 0.745405, 0.727388, 0.742578, 0.727388, 0.745405, 0.780233, 0.864805,
  0.902192, 0.909281, 0.902192, 0.864805, 0.784792, 0.778746, 0.785343, 0.778746,
  0.784792, 0.824182, 0.831803, 0.824182,
}
-- The targets of dlib's 5-point chips (same source): the outer and inner
-- corners of the eyes and the base of the nose, here by iBUG index.
align.DLIB_FIVE_POINTS = {
  {45, 0.8595674595992, 0.2134981538014}, {42, 0.6460604764104, 0.2289674387677},
  {36, 0.1205750620789, 0.2137274526848}, {39, 0.3340850613712, 0.2290642403242},
  {33, 0.4901123135679, 0.6277975316475},
}

-- Which of the 68 points (0-based) each fit uses: dlib's own 68-point chip
-- skips the eyebrows (17-26) and the lower lip (55-59, 65-67).
local function fit_indices(fit)
  local list = {}
  if fit == "five" then
    for _, t in ipairs(align.DLIB_FIVE_POINTS) do list[#list + 1] = t[1] end
  else
    for i = 17, 67 do
      local skip = fit == "dlib" and ((i <= 26) or (i >= 55 and i <= 59) or i >= 65)
      if not skip then list[#list + 1] = i end
    end
  end
  return list
end

local FITS = {dlib = true, inner = true, five = true}

--- The 2x3 matrix mapping CHIP coordinates to photo coordinates of dlib's
-- face chip (get_face_chip_details(shape, size, padding)): the least-squares
-- similarity from the mean-face targets (padding + m) / (1 + 2 padding) *
-- size onto the photo's points. fit: "dlib" (default: dlib's 33 points of
-- a 68-point shape), "inner" (all 51 points 17-67) or "five" (dlib's
-- 5-point chip: eye corners 36, 39, 42, 45 and nose base 33).
function align.dlib_transform(points, size, padding, fit)
  if type(points) ~= "table" or #points ~= 68 then
    error("align: expected 68 landmark points, got " .. (type(points) == "table" and #points or type(points)), 2)
  end
  size, padding, fit = size or 150, padding or 0.25, fit or "dlib"
  if not FITS[fit] then error("align: fit must be 'dlib', 'inner' or 'five', got " .. tostring(fit), 2) end
  local from, to = {}, {}
  local five = {}
  for _, t in ipairs(align.DLIB_FIVE_POINTS) do five[t[1]] = t end
  for _, i in ipairs(fit_indices(fit)) do
    local mx, my
    if fit == "five" then
      mx, my = five[i][2], five[i][3]
    else
      mx, my = align.DLIB_MEAN_FACE_X[i - 16], align.DLIB_MEAN_FACE_Y[i - 16]
    end
    from[#from + 1] = {(padding + mx) / (1 + 2 * padding) * size, (padding + my) / (1 + 2 * padding) * size}
    to[#to + 1] = points[i + 1]
  end
  return align.similarity_transform(from, to)
end

--- dlib's face chip (size x size RGB, default 150, padding 0.25; see
-- dlib_transform). jitter, when given, is a 2x3 matrix applied to chip
-- coordinates first (chip -> chip), e.g. from align.jitter_transform.
function align.dlib_chip(img, points, size, padding, fit, jitter)
  size = size or 150
  local m = align.dlib_transform(points, size, padding, fit)
  if jitter then m = align.compose(m, jitter) end
  local rgb = img.channels == 3 and img or img:to_rgb()
  return rgb:warp_affine(m, size, size, {inverse = true})
end

--- The product of two 2x3 affine matrices: (a o b)(p) = a(b(p)).
function align.compose(a, b)
  return {
    {a[1][1] * b[1][1] + a[1][2] * b[2][1], a[1][1] * b[1][2] + a[1][2] * b[2][2],
     a[1][1] * b[1][3] + a[1][2] * b[2][3] + a[1][3]},
    {a[2][1] * b[1][1] + a[2][2] * b[2][1], a[2][1] * b[1][2] + a[2][2] * b[2][2],
     a[2][1] * b[1][3] + a[2][2] * b[2][3] + a[2][3]},
  }
end

--- The inverse of a 2x3 similarity/affine matrix.
function align.invert(m)
  local det = m[1][1] * m[2][2] - m[1][2] * m[2][1]
  if det == 0 then error("align: singular matrix", 2) end
  local a, b, c, d = m[2][2] / det, -m[1][2] / det, -m[2][1] / det, m[1][1] / det
  return {{a, b, -(a * m[1][3] + b * m[2][3])}, {c, d, -(c * m[1][3] + d * m[2][3])}}
end

--- dlib's jitter_image as a chip -> chip matrix for a size x size chip:
-- the chip shrunk by 3 pixels a side, moved by up to +-2 % of its side,
-- scaled by 1/s with s uniform in [0.97, 1), rotated by up to +-3 degrees
-- about its centre. rand() returns uniform numbers in [0, 1) (e.g.
-- math.random). Returns the matrix and whether to mirror the chip (p 0.5).
function align.jitter_transform(size, rand)
  local side = size - 6
  local c = (size - 1) / 2
  local tx, ty = (rand() * 0.04 - 0.02) * side, (rand() * 0.04 - 0.02) * side
  local box = math.floor(side / (0.97 + rand() * 0.03))
  local angle = (rand() * 6 - 3) * math.pi / 180
  local k = box / size
  local cs, sn = k * math.cos(angle), k * math.sin(angle)
  -- output pixel u -> c + t + k R (u - c)
  return {{cs, -sn, c + tx - (cs * c - sn * c)}, {sn, cs, c + ty - (sn * c + cs * c)}}, rand() > 0.5
end

return align
