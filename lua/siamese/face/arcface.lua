--- siamese.face.arcface: ArcFace-style face chips from five points (left
-- eye, right eye, nose, left and right mouth corner, as MTCNN gives them),
-- and the input tensors of networks trained on them (MobileFaceNet, the
-- InsightFace models).
--
--   local arcface = require "siamese.face.arcface"
--   local chip = arcface.chip(img, face.points)          -- 112x112 RGB
--   local x = arcface.to_tensor{chip, arcface.flip(chip)} -- [2,3,112,112], (v - 127.5) / 128
--
-- The chip: the least-squares similarity transform (rotation, uniform
-- scale, translation; never a reflection: siamese.face.align's closed
-- form, the same fit as skimage's SimilarityTransform.estimate / Umeyama
-- that InsightFace's norm_crop uses) taking the five points onto the
-- ArcFace template of a 112x112 chip, then a bilinear warp of the photo
-- (zeros outside it). Pixel (x, y) has its centre at (x, y) in both the
-- photo and the chip, as in OpenCV's warpAffine.
local align = require "siamese.face.align"
local T = require "siamese.tensor"

local arcface = {}

-- The five target points of the 112x112 ArcFace chip (InsightFace's
-- arcface_dst): left eye, right eye, nose tip, left and right mouth corner.
arcface.TEMPLATE_112 = {
  {38.2946, 51.6963}, {73.5318, 51.5014}, {56.0252, 71.7366}, {41.5493, 92.3655}, {70.7299, 92.2041},
}
arcface.SIZE = 112
arcface.MEAN, arcface.STD = 127.5, 128

local argcheck = require "siamese.argcheck"
local argerror, is_image, typename, is_number = argcheck.error, argcheck.is_image, argcheck.typename, argcheck.is_number

local function check_points(fname, argn, points)
  if type(points) ~= "table" or #points ~= 5 then
    argerror(fname, argn, "expected 5 points {x, y}, got %s",
      type(points) == "table" and (#points .. " entries") or typename(points))
  end
  for i, p in ipairs(points) do
    if type(p) ~= "table" or not is_number(p[1]) or not is_number(p[2]) then
      argerror(fname, argn, "point %d must be {x, y} with finite numbers", i)
    end
  end
end

local function check_size(fname, argn, size)
  if size == nil then return arcface.SIZE end
  if math.type(size) ~= "integer" or size < 1 or size > 4096 then
    argerror(fname, argn, "size must be an integer 1..4096, got %s", tostring(size))
  end
  return size
end

--- The template for a size x size chip (the 112 template times size / 112).
function arcface.template(size)
  size = check_size("template", 1, size)
  local k = size / 112
  local out = {}
  for i, p in ipairs(arcface.TEMPLATE_112) do out[i] = {p[1] * k, p[2] * k} end
  return out
end

--- The 2x3 matrix {{a, -b, tx}, {b, a, ty}} taking photo coordinates to
-- chip coordinates: the least-squares similarity (no reflection) of the
-- five points onto the template of a size x size chip (default 112).
-- Five coincident points are refused.
function arcface.transform(points, size)
  check_points("transform", 1, points)
  size = check_size("transform", 2, size)
  local spread = 0
  for i = 2, 5 do
    spread = spread + math.abs(points[i][1] - points[1][1]) + math.abs(points[i][2] - points[1][2])
  end
  if spread == 0 then argerror("transform", 1, "the five points coincide") end
  return align.similarity_transform(points, arcface.template(size))
end

--- The aligned RGB chip (size x size, default 112) of the face with these
-- five points in img (gray replicated, alpha dropped); bilinear sampling,
-- zeros outside the photo.
function arcface.chip(img, points, size)
  if not is_image(img) then argerror("chip", 1, "siamese.Image expected, got %s", typename(img)) end
  check_points("chip", 2, points)
  size = check_size("chip", 3, size)
  local m = arcface.transform(points, size)
  local rgb = img.channels == 3 and img or img:to_rgb()
  return rgb:warp_affine(m, size, size)
end

--- The chip of the mirrored face: the photo mirrored (x -> W - 1 - x) with
-- its five points (the eyes and the mouth corners swapping roles), aligned
-- onto the template on its own. Unlike the mirrored chip (arcface.flip),
-- its points land on the template: the template is not symmetric about
-- the chip's centre (the eyes' midpoint is at x = 55.91, the nose at
-- 56.03, the centre at 55.5), so a mirrored chip is off by about a pixel.
-- The photo is not copied: the mirror is folded into the warp's matrix.
function arcface.mirror_chip(img, points, size)
  if not is_image(img) then argerror("mirror_chip", 1, "siamese.Image expected, got %s", typename(img)) end
  check_points("mirror_chip", 2, points)
  size = check_size("mirror_chip", 3, size)
  local w1 = img.width - 1
  local function m(i) return {w1 - points[i][1], points[i][2]} end
  local mirrored = {m(2), m(1), m(3), m(5), m(4)}
  -- t maps the mirrored photo onto the chip; composed with the mirror
  -- F(x, y) = (w1 - x, y) it maps the photo itself: t(F(p)).
  local t = arcface.transform(mirrored, size)
  local composed = {{-t[1][1], t[1][2], t[1][1] * w1 + t[1][3]},
                    {-t[2][1], t[2][2], t[2][1] * w1 + t[2][3]}}
  local rgb = img.channels == 3 and img or img:to_rgb()
  return rgb:warp_affine(composed, size, size)
end

--- The mirrored chip (left and right swapped), for flip-averaged embeddings.
function arcface.flip(chip)
  if not is_image(chip) then argerror("flip", 1, "siamese.Image expected, got %s", typename(chip)) end
  return chip:flip()
end

--- The network input of one chip or a list of chips (all the same size,
-- RGB, or converted): [N, 3, size, size] floats (v - 127.5) / 128.
function arcface.to_tensor(chips)
  if is_image(chips) then chips = {chips} end
  if type(chips) ~= "table" or #chips == 0 then
    argerror("to_tensor", 1, "an image or a non-empty list of images expected, got %s", typename(chips))
  end
  local w, h = nil, nil
  for i, c in ipairs(chips) do
    if not is_image(c) then argerror("to_tensor", 1, "chips[%d] is %s, not a siamese.Image", i, typename(c)) end
    w, h = w or c.width, h or c.height
    if c.width ~= w or c.height ~= h then
      argerror("to_tensor", 1, "chips[%d] is %dx%d, chips[1] %dx%d", i, c.width, c.height, w, h)
    end
  end
  local x = T.zeros{#chips, 3, h, w}
  local norm = {scale = 1, mean = {arcface.MEAN, arcface.MEAN, arcface.MEAN},
                std = {arcface.STD, arcface.STD, arcface.STD}}
  for i, c in ipairs(chips) do
    norm.out = x:select(1, i)
    ;(c.channels == 3 and c or c:to_rgb()):to_tensor(norm)
  end
  return x
end

--- Embeddings [N, D] of chips (an image or a list) by net (an object with
-- :forward taking [N,3,H,W] and returning [N, D]); opts.flip = true adds
-- each chip's mirror's embedding to its own (the usual test-time
-- augmentation); opts.normalize = true scales each row to unit length.
function arcface.embed(net, chips, opts)
  if (type(net) ~= "table" and type(net) ~= "userdata") or not net.forward then
    argerror("embed", 1, "a network with a forward method expected, got %s", typename(net))
  end
  if opts ~= nil and type(opts) ~= "table" then argerror("embed", 3, "table expected, got %s", type(opts)) end
  opts = opts or {}
  if is_image(chips) then chips = {chips} end
  local x = arcface.to_tensor(chips)
  local e = net:forward(x)
  if not T.is_tensor(e) or e:dim() ~= 2 or e:shape(1) ~= #chips then
    error("embed: the network must return an [N, D] tensor", 2)
  end
  e = e:clone()
  if opts.flip then
    local mirrored = {}
    for i, c in ipairs(chips) do mirrored[i] = c:flip() end
    e:add_(net:forward(arcface.to_tensor(mirrored)))
  end
  if opts.normalize then
    local n = e:shape(1)
    for i = 1, n do
      local row = e:select(1, i)
      local norm = row:norm()
      if norm > 0 then row:scale_(1 / norm) end
    end
  end
  return e
end

return arcface
