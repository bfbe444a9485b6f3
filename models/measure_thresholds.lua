-- Thresholds of the face pipeline per metric, measured on LFW.
--
--   lua5.4 models/measure_thresholds.lua [LFW_ROOT]
--
-- Embeds the photos of pairsDevTrain.txt (the face as `eval lfw` finds it)
-- and prints, for the euclidean and the cosine distance: the false-accept
-- rate (impostor pairs accepted) and false-reject rate (genuine pairs
-- refused) at a threshold, and the cosine threshold with the same
-- false-accept rate as the euclidean default 0.6 (door.DEFAULT_THRESHOLDS
-- takes it). Then the same rates at the defaults on pairs.txt (all 6,000
-- pairs, no tuning there). Results: models/README.md, "Thresholds".
package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
package.cpath = "build/?.so;" .. package.cpath
local siamese = require "siamese"
local lfw = require "siamese.face.lfw"
local door = require "siamese.door"

local root = arg[1] or "../shared/data/lfw"
local fr = assert(siamese.face.load())

local function distances(pairs_file)
  local list = assert(lfw.read_pairs(root .. "/" .. pairs_file))
  local start = siamese.clock()
  local desc = lfw.embed_images(fr, root, list, function(i, n)
    if i % 200 == 0 or i == n then
      local rate = i / (siamese.clock() - start)
      io.stderr:write(string.format("\r%s: %d/%d photos, %.1f/s, ETA %ds   ", pairs_file, i, n, rate, (n - i) // rate))
    end
  end)
  io.stderr:write("\n")
  local out = {euclidean = {}, cosine = {}, same = {}}
  for i, p in ipairs(list) do
    local a, b = desc[p.a[1] .. "/" .. p.a[2]], desc[p.b[1] .. "/" .. p.b[2]]
    out.euclidean[i] = door.distance(a, b, "euclidean")
    out.cosine[i] = door.distance(a, b, "cosine")
    out.same[i] = p.same
  end
  return out
end

local function rates(d, same, t)
  local fa, fr_, ni, ng = 0, 0, 0, 0
  for i = 1, #d do
    if same[i] then ng = ng + 1; if d[i] > t then fr_ = fr_ + 1 end
    else ni = ni + 1; if d[i] <= t then fa = fa + 1 end end
  end
  return fa / ni, fr_ / ng, fa, ni, fr_, ng
end

local dev = distances("pairsDevTrain.txt")
local far = rates(dev.euclidean, dev.same, 0.6)
-- the largest cosine threshold whose false-accept rate is at most far
local sorted = {}
for i, d in ipairs(dev.cosine) do if not dev.same[i] then sorted[#sorted + 1] = d end end
table.sort(sorted)
local allowed = math.floor(far * #sorted + 1e-9)
local t_cos = allowed < #sorted and (allowed > 0 and (sorted[allowed] + sorted[allowed + 1]) / 2 or sorted[1] / 2) or sorted[#sorted]
print(string.format("DevTrain: euclidean 0.6 -> FAR %.4f; cosine threshold with FAR <= that: %.4f", far, t_cos))
for _, m in ipairs{{"euclidean", 0.6}, {"cosine", t_cos}} do
  local a, r, fa, ni, fr2, ng = rates(dev[m[1]], dev.same, m[2])
  print(string.format("DevTrain %-9s %.4f: FAR %.4f (%d/%d), FRR %.4f (%d/%d)", m[1], m[2], a, fa, ni, r, fr2, ng))
end
local full = distances("pairs.txt")
for _, m in ipairs{{"euclidean", 0.6}, {"cosine", t_cos}} do
  local a, r, fa, ni, fr2, ng = rates(full[m[1]], full.same, m[2])
  print(string.format("pairs.txt %-9s %.4f: FAR %.4f (%d/%d), FRR %.4f (%d/%d)", m[1], m[2], a, fa, ni, r, fr2, ng))
end
