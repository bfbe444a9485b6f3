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

local function canonical(zoom, shift)
  local c = align.CANONICAL
  local function move(p) return {0.5 + (p[1] - 0.5) * zoom, 0.5 + (p[2] - 0.5) * zoom + shift} end
  return {left_eye = move(c.left_eye), right_eye = move(c.right_eye), mouth = move(c.mouth)}
end

local function score(zoom, shift, flip)
  local canon = canonical(zoom, shift)
  local desc = {}
  for _, key in ipairs(order) do
    local f = faces[key]
    local chip = align.similarity_chip(f.image, f.landmarks, 150, canon)
    local d = fr:embed(chip)
    if flip then d = d:add(fr:embed(chip:flip())):scale(0.5) end
    desc[key] = d
  end
  local d, same, folds = lfw.distances(pairs_, desc)
  local m = lfw.metrics(d, same, folds)
  print(string.format("zoom %.2f shift %+.3f flip %-5s  accuracy %.2f %% +- %.2f  AUC %.4f  EER %.2f %%",
    zoom, shift, tostring(flip), 100 * m.accuracy, 100 * m.accuracy_std, m.auc, 100 * m.eer))
  io.stdout:flush()
end

for _, v in ipairs{{1, 0, false}, {0.9, 0, false}, {0.8, 0, false}, {1.1, 0, false},
                   {0.9, 0.03, false}, {0.9, -0.03, false}, {1, 0, true}} do
  score(v[1], v[2], v[3])
end
