-- The pixel baseline: one-shot face identification and verification on the bundled
-- AT&T faces (examples/data/att_faces, 10 people x 10 photos).
--
-- Until the trained encoders and the pretrained face network land, the
-- embedding is the honest baseline: the photo shrunk to 46x56 by area
-- averaging, standardised and L2-normalised, compared by euclidean distance.
-- One photo per person is enrolled; every other photo is identified (1:N)
-- and every pair is verified (1:1). Writes build/demo/montage.png.
--
-- usage: lua5.4 examples/att_pixel_baseline.lua [DATA_DIR] [OUT_DIR]
local siamese = require "siamese"
local eval = require "siamese.eval"
local viz = require "siamese.viz"
local T, image = siamese.tensor, siamese.image

local root = arg[1] or "examples/data/att_faces"
local out_dir = arg[2] or "build/demo"
local W, H = 46, 56

local function embed(img)
  local v = img:grayscale():resize(W, H, {method = "area"}):to_tensor():view(-1)
  v = v:sub(v:mean())
  return v:scale(1 / v:norm())
end

-- Load sX/Y.pgm for every subject present.
local people, photos = {}, {}
for s = 1, 1000 do
  local dir = string.format("%s/s%d", root, s)
  local first = image.load(dir .. "/1.pgm")
  if not first then break end
  people[#people + 1] = "s" .. s
  for y = 1, 10 do
    local img = assert(image.load(string.format("%s/%d.pgm", dir, y)))
    photos[#photos + 1] = {person = #people, index = y, image = img}
  end
end
assert(#people >= 2, "no AT&T subjects found under " .. root)
local clock = os.clock()

local all = T.zeros{#photos, W * H}
for i, p in ipairs(photos) do all:select(1, i):copy(embed(p.image)) end

-- 1:N — enroll photo 1 of each person, identify the others.
local enrolled, probes = {}, {}
for i, p in ipairs(photos) do
  if p.index == 1 then enrolled[#enrolled + 1] = i else probes[#probes + 1] = i end
end
local function rows(list)
  local m = T.zeros{#list, W * H}
  for r, i in ipairs(list) do m:select(1, r):copy(all:select(1, i)) end
  return m
end
local dist = T.cdist(rows(probes), rows(enrolled))
local best_d, best_j = dist:min(2)
local correct, per_person, tiles = 0, {}, {}
for r, i in ipairs(probes) do
  local p = photos[i]
  local guess = photos[enrolled[best_j:get(r)]].person
  local ok = guess == p.person
  if ok then correct = correct + 1 end
  per_person[p.person] = per_person[p.person] or {right = 0, total = 0, wrong = {}}
  local pp = per_person[p.person]
  pp.total = pp.total + 1
  if ok then pp.right = pp.right + 1 else pp.wrong[#pp.wrong + 1] = string.format("%d.pgm->%s", p.index, people[guess]) end
  p.ok, p.distance = ok, best_d:get(r)
end

-- 1:1 — every pair of photos, same person or not.
local full = T.cdist(all, all)
local d, same = {}, {}
for i = 1, #photos do
  for j = i + 1, #photos do
    d[#d + 1] = full:get(i, j)
    same[#same + 1] = photos[i].person == photos[j].person
  end
end
local roc = eval.roc(d, same)
local eer, eer_t = eval.eer(roc)
local tar, tar_t = eval.tar_at_far(roc, 0.01)

print(string.format("siamese demo: %d people, %d photos, embedding = %dx%d pixels (baseline)", #people, #photos, W, H))
print("")
print("person  identified  mistakes")
for k, name in ipairs(people) do
  local pp = per_person[k]
  print(string.format("%-6s  %4d / %-4d  %s", name, pp.right, pp.total, table.concat(pp.wrong, " ")))
end
print("")
print(string.format("one-shot identification (1 enrolled photo each): rank-1 %.1f %% (%d / %d)",
  100 * correct / #probes, correct, #probes))
print(string.format("verification over %d pairs: AUC %.4f, EER %.1f %% at distance %.3f, TAR %.1f %% at FAR 1 %% (distance %.3f)",
  #d, eval.auc(roc), 100 * eer, eer_t, 100 * tar, tar_t))

-- Montage: one row per person; enrolled photo framed blue, the others green
-- when identified correctly and red when not.
for k = 1, #people do
  for _, p in ipairs(photos) do
    if p.person == k then
      local color = p.index == 1 and {60, 120, 255} or (p.ok and {40, 200, 60} or {230, 40, 40})
      tiles[#tiles + 1] = {image = p.image, border = color}
    end
  end
end
assert(require("siamese.fs").mkdir_p(out_dir))
local path = out_dir .. "/montage.png"
assert(viz.montage(tiles, {columns = 10, border = 3}):save(path))
print(string.format("wrote %s (blue: enrolled, green: identified, red: mistaken); %.2f s", path, os.clock() - clock))
