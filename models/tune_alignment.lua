-- Tunes the similarity alignment on LFW's development pairs only
-- (pairsDevTrain.txt, split into 10 interleaved folds): detects and finds
-- the landmarks of every photo once, then scores chip geometries (a zoom
-- about the chip centre and a vertical shift applied to the canonical
-- positions of siamese.face.align) and flip averaging by 10-fold accuracy.
--
--   lua5.4 models/tune_alignment.lua [LFW_ROOT]     (from the checkout)
package.path = "./lua/?.lua;./lua/?/init.lua;" .. package.path
package.cpath = "./build/?.so;" .. package.cpath
local siamese = require "siamese"
local lfw = require "siamese.face.lfw"
local align = require "siamese.face.align"

local root = arg[1] or "../shared/data/lfw"
local pairs_ = assert(lfw.read_pairs(root .. "/pairsDevTrain.txt"))
local fr = assert(siamese.face.load())

-- Faces once.
local faces, order = {}, {}
local start = siamese.clock()
for _, p in ipairs(pairs_) do
  for _, side in ipairs{p.a, p.b} do
    local key = side[1] .. "/" .. side[2]
    if not faces[key] then
      local img = assert(siamese.image.load(lfw.image_path(root, side[1], side[2])))
      local f = lfw.find_face(fr, img)
      faces[key] = {image = img, landmarks = f.landmarks}
      order[#order + 1] = key
    end
  end
end
io.stderr:write(string.format("faces of %d photos in %.0f s\n", #order, siamese.clock() - start))

-- The mean shape of the 51 inner points (17-67), each face levelled about
-- its eye-mouth centroid and expressed in its face-api crop (fractions of
-- the side), over the faces found by the detector at its normal threshold.
local landmarks = require "siamese.face.landmarks"
local mean, count = {}, 0
for i = 1, 68 do mean[i] = {0, 0} end
for _, key in ipairs(order) do
  local f = faces[key]
  local r = landmarks.descriptor_rect(f.landmarks, f.image.width, f.image.height)
  if r and r.width == r.height then
    local le, re, mo = align.centres(f.landmarks)
    local cx, cy = (le[1] + re[1] + mo[1]) / 3, (le[2] + re[2] + mo[2]) / 3
    local a = -math.atan(re[2] - le[2], re[1] - le[1])
    for i, q in ipairs(f.landmarks) do
      local x, y = q[1] - cx, q[2] - cy
      mean[i][1] = mean[i][1] + (cx + x * math.cos(a) - y * math.sin(a) - r.x) / r.width
      mean[i][2] = mean[i][2] + (cy + x * math.sin(a) + y * math.cos(a) - r.y) / r.width
    end
    count = count + 1
  end
end
for i = 1, 68 do mean[i][1], mean[i][2] = mean[i][1] / count, mean[i][2] / count end
local inner = {}
for i = 18, 68 do inner[#inner + 1] = string.format("{%.4f, %.4f}", mean[i][1], mean[i][2]) end
print("mean inner shape (" .. count .. " faces): {" .. table.concat(inner, ", ") .. "}")

-- Chip by fitting all 51 inner points to the mean shape.
local function fit51_chip(img, points, zoom)
  local src, dst = {}, {}
  for i = 18, 68 do
    src[#src + 1] = points[i]
    dst[#dst + 1] = {(0.5 + (mean[i][1] - 0.5) * zoom) * 150, (0.5 + (mean[i][2] - 0.5) * zoom) * 150}
  end
  local m = align.similarity_transform(src, dst)
  local rgb = img.channels == 3 and img or img:to_rgb()
  return rgb:warp_affine(m, 150, 150)
end

local function canonical(zoom, shift)
  local c = align.CANONICAL
  local function move(p) return {0.5 + (p[1] - 0.5) * zoom, 0.5 + (p[2] - 0.5) * zoom + shift} end
  return {left_eye = move(c.left_eye), right_eye = move(c.right_eye), mouth = move(c.mouth)}
end

local function faceapi_chip(img, points)
  local r = landmarks.descriptor_rect(points, img.width, img.height)
  return img:crop(r.x, r.y, r.width, r.height)
end

local function score(zoom, shift, flip, fit51, faceapi)
  local canon = canonical(zoom, shift)
  local desc = {}
  for _, key in ipairs(order) do
    local f = faces[key]
    local chip = faceapi and faceapi_chip(f.image, f.landmarks)
      or fit51 and fit51_chip(f.image, f.landmarks, zoom)
      or align.similarity_chip(f.image, f.landmarks, 150, canon)
    local d = fr:embed(chip)
    if flip then d = d:add(fr:embed(chip:flip())):scale(0.5) end
    desc[key] = d
  end
  local d, same, folds = lfw.distances(pairs_, desc)
  local m = lfw.metrics(d, same, folds)
  print(string.format("%s zoom %.2f shift %+.3f flip %-5s  accuracy %.2f %% +- %.2f  AUC %.4f  EER %.2f %%",
    faceapi and "faceapi crop" or fit51 and "fit51       " or "3 centres   ", zoom, shift, tostring(flip), 100 * m.accuracy, 100 * m.accuracy_std, m.auc, 100 * m.eer))
  io.stdout:flush()
end

for _, v in ipairs{{1, 0, false, false, true}, {1, 0, false}, {1, 0, false, true}, {0.9, 0, false},
                   {1.1, 0, false}, {1, 0.03, false}, {1, -0.03, false}, {1, 0, true}} do
  score(v[1], v[2], v[3], v[4], v[5])
end
