-- The door's default threshold of a face pipeline, calibrated on LFW's
-- development photos only (pairsDevTrain.txt and pairsDevTest.txt).
--
--   lua5.4 models/calibrate_threshold.lua [--pipeline mobilefacenet|faceapi] [--far F] [LFW_ROOT]
--
-- Embeds every photo the Dev pairs use (the face as `eval lfw` finds it),
-- then compares every photo with every other: pairs of one person are
-- genuine, pairs of two people impostors (about 12 million, far more than
-- the Dev files' 1,600 impostor pairs, so a false-accept rate of 1e-3 is
-- measured on thousands of accepts, not one or two). Prints the distance
-- (the pipeline's metric) at which the false-accept rate is F (default
-- 0.001), the false-reject rate there, and then both rates at that
-- distance on pairs.txt's 6,000 pairs (no tuning there). The result goes
-- into door.DEFAULT_THRESHOLDS; models/README.md, "Thresholds".
package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
package.cpath = "build/?.so;" .. package.cpath
local siamese = require "siamese"
local lfw = require "siamese.face.lfw"
local door = require "siamese.door"
local T = siamese.tensor

local pipeline, far, root = "mobilefacenet", 0.001, "../shared/data/lfw"
local i = 1
while i <= #arg do
  if arg[i] == "--pipeline" then pipeline, i = arg[i + 1], i + 2
  elseif arg[i] == "--far" then far, i = tonumber(arg[i + 1]), i + 2
  else root, i = arg[i], i + 1 end
end
assert(pipeline == "mobilefacenet" or pipeline == "faceapi", "--pipeline mobilefacenet|faceapi")
assert(far and far > 0 and far < 1, "--far must be in (0, 1)")

local fr = assert(siamese.face.load{model = pipeline})
local metric = fr.metric or "euclidean"

local function embed(list, label)
  local start = siamese.clock()
  return lfw.embed_images(fr, root, list, function(k, n)
    if k % 200 == 0 or k == n then
      local rate = k / (siamese.clock() - start)
      io.stderr:write(string.format("\r%s: %d/%d photos, %.1f/s, ETA %ds   ", label, k, n, rate, (n - k) // rate))
    end
  end)
end

-- The Dev photos (both files), embedded once.
local dev = {}
for _, f in ipairs{"pairsDevTrain.txt", "pairsDevTest.txt"} do
  for _, p in ipairs(assert(lfw.read_pairs(root .. "/" .. f))) do dev[#dev + 1] = p end
end
local desc = embed(dev, "Dev")
io.stderr:write("\n")
local keys = {}
for key in pairs(desc) do keys[#keys + 1] = key end
table.sort(keys)
local n = #keys
local X = T.zeros{n, fr.dim}
for k, key in ipairs(keys) do X:select(1, k):copy(desc[key]) end
-- all distances at once (one sgemm), then split into genuine and impostor
local D = T.cdist(X, X, metric)
local person = {}
for k, key in ipairs(keys) do person[k] = key:match("^(.*)/") end
local genuine, impostor = {}, {}
for a = 1, n do
  local row = D:select(1, a):totable()
  for b = a + 1, n do
    if person[b] == person[a] then genuine[#genuine + 1] = row[b] else impostor[#impostor + 1] = row[b] end
  end
end
table.sort(impostor)
-- the largest threshold accepting at most far of the impostors: midway
-- between the last allowed and the first refused impostor distance
local allowed = math.floor(far * #impostor)
local t = allowed > 0 and (impostor[allowed] + impostor[allowed + 1]) / 2 or impostor[1] / 2
local function rates(d, same, thr)
  local fa, fr_, ni, ng = 0, 0, 0, 0
  for k = 1, #d do
    if same[k] then ng = ng + 1; if d[k] > thr then fr_ = fr_ + 1 end
    else ni = ni + 1; if d[k] <= thr then fa = fa + 1 end end
  end
  return fa, ni, fr_, ng
end
local gs = {}
for k = 1, #genuine do gs[k] = true end
local _, _, gfr, gn = rates(genuine, gs, t)
print(string.format("%s (%s), Dev photos %d: %d genuine, %d impostor pairs", fr.model_id, metric, n, #genuine, #impostor))
print(string.format("threshold %.4f: FAR %.5f (%d impostor pairs accepted), FRR %.4f (%d/%d genuine refused)",
  t, allowed / #impostor, allowed, gfr / gn, gfr, gn))
local full = assert(lfw.read_pairs(root .. "/pairs.txt"))
local fdesc = embed(full, "pairs.txt")
io.stderr:write("\n")
local d, same = {}, {}
for k, p in ipairs(full) do
  d[k] = door.distance(fdesc[p.a[1] .. "/" .. p.a[2]], fdesc[p.b[1] .. "/" .. p.b[2]], metric)
  same[k] = p.same
end
local fa, ni, fr2, ng = rates(d, same, t)
print(string.format("pairs.txt at %.4f: FAR %.4f (%d/%d), FRR %.4f (%d/%d)", t, fa / ni, fa, ni, fr2 / ng, fr2, ng))
