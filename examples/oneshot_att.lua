-- One-shot identification on AT&T people an encoder never saw, through a
-- gallery (siamese.gallery) and siamese.eval.
--
-- The split is the one of examples/train_att_unseen.lua (seed 1): 25
-- people to train, 5 to validate, 10 unseen. On the 10 unseen people:
--   closed set: photo 1 of each enrolled, the other 90 identified (rank-1);
--   open set: 5 of the 10 left out of the gallery (strangers, all their
--   photos are probes), 5 enrolled with photo 1 (their other photos are
--   probes). The threshold is the one at 1 % false-accept rate on
--   verification pairs of the 5 validation people (never the test
--   people); reported: strangers rejected and detection-and-identification
--   rate (DIR) there, averaged over --draws random choices of strangers;
--   and for reference the threshold at 1 % false alarms among the test
--   strangers themselves (eval.open_set, an oracle) with its DIR.
--
-- Encoders: --model att (the trained AT&T encoder, whole 92x112 photo) or
-- --model face (the pretrained face pipeline, --pipeline, default
-- siamese.face.DEFAULT_MODEL). AT&T photos are small gray face crops; for
-- the face model --crop whole embeds the whole photo as the chip (resized
-- to the network's input), --crop detect aligns the main face found by
-- the detector (fallback "centre": a low detection score, then the
-- centred region). --pipeline mobilefacenet: MTCNN's five points, the
-- ArcFace 112x112 chip; --pipeline faceapi: the 150x150 chip, with --align
-- dlib|similarity|faceapi (default dlib).
--
-- usage: lua5.4 examples/oneshot_att.lua [ATT_DIR] [--model att|face] [--crop whole|detect]
--                                        [--pipeline mobilefacenet|faceapi]
--                                        [--align dlib|similarity|faceapi]
--                                        [--far 0.01] [--draws 20] [--seed 1]
-- The last line printed is a JSON object.
local siamese = require "siamese"
local json = require "siamese.json"
local eval = siamese.eval
local T = siamese.tensor

local opts = {root = "../shared/data/att_faces", model = "att", crop = "whole", far = 0.01, draws = 20, seed = 1}
do
  local i = 1
  while i <= #arg do
    local key = arg[i]:match("^%-%-([%w_]+)$")
    if key then
      local v = arg[i + 1] or error("option --" .. key .. " needs a value")
      opts[key] = tonumber(v) or v
      i = i + 2
    else
      opts.root, i = arg[i], i + 1
    end
  end
end

-- Embeds every image of a dataset: Tensor [n, dim], model id, notes.
local fr
local function embed(ds)
  if opts.model == "face" then
    if (opts.pipeline or siamese.face.DEFAULT_MODEL) == "mobilefacenet" then
      fr = fr or assert(siamese.face.load{model = "mobilefacenet"})
    else
      fr = fr or assert(siamese.face.load{model = "faceapi", align = opts.align})
    end
    local chips, how = {}, {}
    for i, img in ipairs(ds.images) do
      local chip = img:to_rgb()
      if opts.crop == "detect" then
        local f, found = fr:main_face(img, {fallback = "centre"})
        chip = fr:align(img, f)
        how[found] = (how[found] or 0) + 1
      end
      chips[i] = chip
      if i % 50 == 0 then io.stderr:write(string.format("\rprepared %d/%d photos", i, #ds.images)) end
    end
    io.stderr:write("\n")
    return fr:embed_batch(chips), fr.model_id, how
  end
  local enc = assert(siamese.encoder.load(opts.model))
  return enc:embed_batch(ds.images), enc.model_id
end

local function rows_of(E, indices)
  local rows = {}
  for k, i in ipairs(indices) do rows[k] = E:narrow(1, i, 1) end
  return T.cat(rows, 1)
end

local data = assert(siamese.data.folder(opts.root, {channels = 1}))
local _, val, test = data:split{seed = math.floor(opts.seed), identities = {25, 5, 10}}
local start = siamese.clock()
local Ev, model_id = embed(val)
local Et, _, how = embed(test)

-- the threshold at opts.far on every pair of the validation people
local dv, sv = {}, {}
for i = 1, val.count do
  for j = i + 1, val.count do
    dv[#dv + 1] = Ev:narrow(1, i, 1):sub(Ev:narrow(1, j, 1)):norm()
    sv[#sv + 1] = val.labels[i] == val.labels[j]
  end
end
local _, threshold = eval.tar_at_far(eval.roc(dv, sv), opts.far)

-- photo 1 (the first file) of each enrolled person -> gallery; the rest probe it
local function one_shot(enrolled_people)
  local g = siamese.gallery.new{dim = Et:shape(2), metric = "euclidean", threshold = threshold, model = model_id}
  local enrolled, names, probes, truth, seen = {}, {}, {}, {}, {}
  for i, label in ipairs(test.labels) do
    local name = test.names[label]
    if enrolled_people[label] and not seen[label] then
      seen[label] = true
      enrolled[#enrolled + 1], names[#names + 1] = i, name
    else
      probes[#probes + 1] = i
      truth[#truth + 1] = enrolled_people[label] and name or false
    end
  end
  g:add_many(names, rows_of(Et, enrolled), model_id)
  return g, rows_of(Et, probes), truth
end

local everybody = {}
for l = 1, #test.names do everybody[l] = true end
local g, queries, truth = one_shot(everybody)
local rank1 = eval.rank1(g, queries, truth)

local sums = {rejected = 0, dir = 0, oracle_dir = 0, oracle_threshold = 0, oracle_draws = 0}
for draw = 1, math.floor(opts.draws) do
  local order = require("siamese.core").data.permutation(#test.names, math.floor(opts.seed) * 1000 + draw)
  local enrolled_people = {}
  for k = 1, 5 do enrolled_people[order[k]] = true end
  local g5, q5, t5 = one_shot(enrolled_people)
  local _, predicted, distances = eval.rank1(g5, q5, t5)
  local rejected, strangers, hits, genuine = 0, 0, 0, 0
  for i, d in ipairs(distances) do
    if t5[i] then
      genuine = genuine + 1
      if predicted[i] == t5[i] and d <= threshold then hits = hits + 1 end
    else
      strangers = strangers + 1
      if d > threshold then rejected = rejected + 1 end
    end
  end
  local dir, oracle_t = eval.open_set{distances = distances, predicted = predicted, labels = t5, far = opts.far}
  -- -inf: no probe is closer than the nearest strangers (nothing accepted;
  -- DIR 0), left out of the mean threshold
  if oracle_t > -math.huge then
    sums.oracle_threshold = sums.oracle_threshold + oracle_t
    sums.oracle_draws = sums.oracle_draws + 1
  end
  sums.rejected = sums.rejected + rejected / strangers
  sums.dir = sums.dir + hits / genuine
  sums.oracle_dir = sums.oracle_dir + dir
end
sums.oracle_threshold = sums.oracle_threshold / math.max(sums.oracle_draws, 1)
for _, k in ipairs{"rejected", "dir", "oracle_dir"} do sums[k] = sums[k] / opts.draws end

local result = {
  model = model_id, crop = opts.model == "face" and opts.crop or "whole", faces_found = how,
  people = #test.names, probes = queries:shape(1), rank1 = rank1, far = opts.far, draws = opts.draws,
  threshold = threshold, strangers_rejected = sums.rejected, dir = sums.dir,
  oracle_threshold = sums.oracle_threshold, oracle_dir = sums.oracle_dir, seconds = siamese.clock() - start,
}
print(string.format("%s on %d unseen AT&T people: one-shot rank-1 %.2f %% (%d probes)", model_id, result.people,
  100 * rank1, result.probes))
print(string.format("open set (5 enrolled, 5 strangers, %d draws): threshold %.3f (FAR %g on validation pairs): "
  .. "strangers rejected %.2f %%, DIR %.2f %%; oracle threshold %.3f: DIR %.2f %%", result.draws, threshold, opts.far,
  100 * result.strangers_rejected, 100 * result.dir, result.oracle_threshold, 100 * result.oracle_dir))
print(json.encode(result))
