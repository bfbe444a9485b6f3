-- Fine-tuning the pretrained face ResNet (siamese.face, face-api's port of
-- dlib's network) on a folder dataset with triplet loss: every layer but
-- the last block is frozen (frozen layers do no weight-gradient work and
-- the optimiser never sees them); the last down-sampling block and the
-- 256 -> 128 projection are trained, with an L2-normalising head, by P x K
-- semi-hard triplet loss.
--
-- Data: a folder with one sub-folder per person (default: the AT&T faces,
-- gray 92x112 photos, far from the colour web photos the network learnt
-- from); each photo is the chip as it is (padded to a square, resized to
-- 150x150), or with --detect 1 the face found and aligned by siamese.face.
-- --test people (chosen by the seed) are held out; the others train.
-- Since the frozen trunk runs in evaluation mode and is deterministic, its
-- output is computed once per chip (and its mirror image, the
-- augmentation) and only the last block runs while training.
--
-- Reports, on the held-out people, before (pretrained, euclidean on the
-- 128-D descriptors) and after fine-tuning: AUC, EER, verification accuracy
-- at the threshold best on the training people, one-shot identification.
-- The last line printed is a JSON object.
--
-- usage: lua5.4 examples/finetune_faces.lua [DIR] [--test 10] [--detect 0|1] [--epochs 15]
--          [--steps 20] [--lr 1e-3] [--seed 1] [--threads 2]
local siamese = require "siamese"
local json = require "siamese.json"
local recognition = require "siamese.face.recognition"
local common = dofile((arg[0]:match("^(.*)/") or ".") .. "/att_common.lua")
local nn, T, eval = siamese.nn, siamese.tensor, siamese.eval

local opts = common.options(arg, {root = "../shared/data/att_faces", test = 10, detect = 0, epochs = 15,
                                  steps = 20, lr = 1e-3, seed = 1, threads = 2})
siamese.set_num_threads(opts.threads)
siamese.manual_seed(opts.seed)

-- ---- data: aligned chips of the chosen people ---------------------------------------------
local fr = assert(siamese.face.load{model = "faceapi"})
local data = assert(siamese.data.folder(opts.root, {channels = 3, min_per_identity = 2}))
local held_out = select(2, data:split{seed = opts.seed, identities = {#data.names - opts.test, opts.test}})
local is_test = {}
for _, name in ipairs(held_out.names) do is_test[name] = true end
local chips, labels = {}, {}
local t0 = siamese.clock()
for i, img in ipairs(data.images) do
  local chip = img
  if opts.detect == 1 then
    local face = fr:main_face(img, {fallback = "centre"})
    chip = face and fr:align(img, face)
  end
  if chip then chips[#chips + 1], labels[#labels + 1] = chip, data.labels[i] end
  if i % 20 == 0 or i == data.count then
    io.stderr:write(string.format("\rchips: %d of %d photos (%.0f s)", #chips, i, siamese.clock() - t0))
  end
end
io.stderr:write("\n")

-- ---- the network: frozen trunk, trainable last block -----------------------------------------
local net = fr.recognition.net
local n = #net.modules            -- ..., down-block conv256_down_out, global avg pool, fc
local trunk, tail = nn.Sequential(), nn.Sequential()
for i = 1, n - 3 do trunk:add(net.modules[i]) end
for i = n - 2, n do tail:add(net.modules[i]) end
tail:add(nn.L2Normalize())
trunk:freeze()
local model = nn.Sequential{trunk, tail}
trunk:freeze(false)
local all_params = trunk:nparameters() + tail:nparameters()
trunk:freeze()
io.stderr:write(string.format("trainable parameters: %d of %d\n", model:nparameters(), all_params))

-- Trunk outputs of every chip and of its mirror image, computed once.
local function trunk_features(list)
  trunk:evaluate()
  local out
  for first = 1, #list, 16 do
    local last = math.min(first + 15, #list)
    local x = T.zeros{last - first + 1, 3, 150, 150}
    for i = first, last do x:select(1, i - first + 1):copy(recognition.preprocess(list[i])) end
    local f = trunk:forward(x)
    out = out and T.cat({out, f}, 1) or f:clone()
  end
  return out
end
local flipped = {}
for i, c in ipairs(chips) do flipped[i] = c:flip() end
local F = trunk_features(chips)
local Fflip = trunk_features(flipped)
io.stderr:write(string.format("trunk features %s computed in %.0f s\n", table.concat(F:shape(), "x"),
  siamese.clock() - t0))

-- Held-out people: the first --test identities.
local train_idx, test_idx = {}, {}
for i, label in ipairs(labels) do table.insert(is_test[data.names[label]] and test_idx or train_idx, i) end
local train_labels = {}
for k, i in ipairs(train_idx) do train_labels[k] = labels[i] end

local function rows(src, idx)
  local out = T.zeros{#idx, table.unpack(src:shape(), 2)}
  for k, i in ipairs(idx) do out:select(1, k):copy(src:select(1, i)) end
  return out
end

-- All pairs of a list of embeddings: distances and same flags.
local function all_pairs(E, idx)
  local D = T.cdist(E, E)
  local d, same = {}, {}
  for a = 1, #idx do
    for b = a + 1, #idx do d[#d + 1], same[#same + 1] = D:get(a, b), labels[idx[a]] == labels[idx[b]] end
  end
  return d, same
end

local function one_shot(E, idx)
  local enrolled, seen = {}, {}
  for k, i in ipairs(idx) do
    if not seen[labels[i]] then seen[labels[i]] = k; enrolled[#enrolled + 1] = k end
  end
  local D = T.cdist(E, E)
  local right, total = 0, 0
  for k, i in ipairs(idx) do
    if seen[labels[i]] ~= k then
      total = total + 1
      local best
      for _, g in ipairs(enrolled) do if not best or D:get(k, g) < D:get(k, best) then best = g end end
      if labels[idx[best]] == labels[i] then right = right + 1 end
    end
  end
  return right / total
end

local function report(embed)
  local Etr, Ete = embed(train_idx), embed(test_idx)
  local threshold = eval.best_threshold(all_pairs(Etr, train_idx))
  local d, same = all_pairs(Ete, test_idx)
  local roc = eval.roc(d, same)
  return {auc = eval.auc(roc), eer = (eval.eer(roc)), accuracy = eval.accuracy(d, same, threshold),
          threshold = threshold, one_shot = one_shot(Ete, test_idx)}
end

local function tail_embed(idx)
  tail:evaluate()
  return tail:forward(rows(F, idx)):clone()
end
local function pretrained_embed(idx) -- the untouched network: raw 128-D descriptors
  local t = nn.Sequential()
  for i = 1, #tail.modules - 1 do t:add(tail.modules[i]) end
  t:evaluate()
  return t:forward(rows(F, idx)):clone()
end

local before = report(pretrained_embed)

-- ---- training: P x K batches over the training people, semi-hard mining ---------------------
local criterion = siamese.loss.BatchTripletLoss{margin = 0.2, mining = "semihard"}
local P = math.min(8, #data.names - opts.test)
local trainer = siamese.train.Trainer{
  model = model, optimizer = siamese.optim.Adam(model, {lr = opts.lr}), epochs = opts.epochs,
  batches = function(epoch)
    local out, round = {}, 0
    while #out < opts.steps do
      round = round + 1
      for _, b in ipairs(siamese.data.pk_batches(train_labels, P, 4, opts.seed * 1000 + epoch * 10 + round)) do
        if #out < opts.steps then out[#out + 1] = b end
      end
    end
    return out
  end,
  step = function(b)
    local idx, lab = {}, {}
    local coin = T.rand{#b}
    for k, j in ipairs(b) do idx[k], lab[k] = train_idx[j], train_labels[j] end
    local x = T.zeros{#b, table.unpack(F:shape(), 2)}
    for k, i in ipairs(idx) do x:select(1, k):copy((coin:get(k) < 0.5 and F or Fflip):select(1, i)) end
    trunk:evaluate()                 -- frozen: never in training mode, and not run here
    local e = tail:forward(x)
    local l = criterion:forward(e, lab)
    tail:backward(x, criterion:backward(e, lab))
    return l, #b
  end,
}
local start = siamese.clock()
trainer:fit()
local seconds = siamese.clock() - start
local after = report(tail_embed)

io.stderr:write(string.format("held-out people (%d photos): AUC %.4f -> %.4f, EER %.2f %% -> %.2f %%, "
  .. "verification %.2f %% -> %.2f %%, one-shot %.2f %% -> %.2f %%\n", #test_idx, before.auc, after.auc,
  100 * before.eer, 100 * after.eer, 100 * before.accuracy, 100 * after.accuracy, 100 * before.one_shot,
  100 * after.one_shot))
print(json.encode{before = before, after = after, seconds = seconds, chips = #chips, people = #data.names,
                  test_people = opts.test, epochs = opts.epochs, steps = opts.steps, seed = opts.seed})
