-- The door's embedding-norm check of the MTCNN + MobileFaceNet pipeline
-- (siamese.face.quality.check_embedding, mfn.MIN_EMBEDDING_NORM), measured
-- on LFW's development photos only (pairsDevTrain.txt, pairsDevTest.txt).
--
-- For every photo: the norm of MobileFaceNet's embedding of the chip
-- (before normalisation, without the mirror) of the photo's own face (the
-- best detection containing the centre, as `eval lfw` takes it; at MTCNN's
-- normal thresholds only), and of every other detection in the photo
-- (people behind, and MTCNN's mistakes: logos, hands, two faces at once).
-- Prints the quantiles of both, the threshold the rule gives (the 0.1 %
-- quantile of the photos' own faces, rounded down to an integer: at most
-- one LFW face in a thousand refused) and what it refuses of the others;
-- writes a montage of the lowest-norm detections to build/norms.png.
--
--   lua5.4 models/measure_embedding_norms.lua [LFW_ROOT]     (from the checkout)
package.path = "./lua/?.lua;./lua/?/init.lua;" .. package.path
package.cpath = "./build/?.so;" .. package.cpath
local siamese = require "siamese"
local lfw = require "siamese.face.lfw"
local arcface = require "siamese.face.arcface"
local viz = siamese.viz

local root = arg[1] or "../shared/data/lfw"
local pairs_ = {}
for _, f in ipairs{"pairsDevTrain.txt", "pairsDevTest.txt"} do
  for _, p in ipairs(assert(lfw.read_pairs(root .. "/" .. f))) do pairs_[#pairs_ + 1] = p end
end
local keys, side_of = lfw.photos(pairs_)
local fr = assert(siamese.face.load{model = "mobilefacenet"})

local function norm_of(img, f)
  local chip = fr:align(img, f)
  return arcface.embed(fr.net, {chip}):select(1, 1):norm(), chip
end

local function same_box(a, b)
  return a.x == b.x and a.y == b.y and a.width == b.width and a.height == b.height
end

local own, others, lowest = {}, {}, {}
local start = siamese.clock()
for i, key in ipairs(keys) do
  local side = side_of[key]
  local img = assert(siamese.image.load(lfw.image_path(root, side[1], side[2])))
  local main = fr:main_face(img, {central = true})
  for _, f in ipairs(fr:detect(img)) do
    local n, chip = norm_of(img, f)
    if main and same_box(f.box, main.box) then
      own[#own + 1] = n
    else
      others[#others + 1] = n
    end
    lowest[#lowest + 1] = {n = n, chip = chip, own = main and same_box(f.box, main.box)}
  end
  if i % 100 == 0 or i == #keys then
    local rate = i / (siamese.clock() - start)
    io.stderr:write(string.format("\rnorms: %d/%d photos, %.1f/s, ETA %ds   ", i, #keys, rate,
      math.floor((#keys - i) / rate)))
  end
end
io.stderr:write("\n")

local function quantile(list, q)
  local s = {table.unpack(list)}
  table.sort(s)
  return s[math.max(1, math.floor(q * #s + 0.5))], s
end
local function below(list, t)
  local k = 0
  for _, v in ipairs(list) do if v < t then k = k + 1 end end
  return k
end

local q001, sorted_own = quantile(own, 0.001)
local threshold = math.floor(q001)
print(string.format("own faces: %d of %d photos; min %.1f, 0.1 %% %.1f, 1 %% %.1f, median %.1f", #own, #keys,
  sorted_own[1], q001, quantile(own, 0.01), quantile(own, 0.5)))
local _, sorted_others = quantile(others, 0.5)
print(string.format("other detections: %d; min %.1f, median %.1f", #others, sorted_others[1],
  sorted_others[math.max(1, #sorted_others // 2)]))
print(string.format("rule: threshold %d (the 0.1 %% quantile of own faces, rounded down): refuses %d own faces, "
  .. "%d other detections", threshold, below(own, threshold), below(others, threshold)))

-- The lowest-norm detections, labelled (yellow: a photo's own face).
table.sort(lowest, function(a, b) return a.n < b.n end)
local tiles = {}
for k = 1, math.min(30, #lowest) do
  local t = lowest[k].chip:resize(160, 160)
  viz.draw_text(t, 4, 4, string.format("%.1f", lowest[k].n), lowest[k].own and {255, 220, 0} or {255, 255, 255}, 2)
  tiles[k] = t
end
assert(require("siamese.fs").mkdir_p("build"))
assert(viz.montage(tiles, {columns = 6, border = 2}):save("build/norms.png"))
print("wrote build/norms.png")
