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

return align
