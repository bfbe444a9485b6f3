-- Shared parts of the AT&T Siamese examples: options, the encoders, the
-- three training set-ups (contrastive pairs, P x K triplets with semi-hard
-- mining, BCE head on |e1 - e2|), pair distances and one-shot
-- identification. Loaded with dofile by the scripts.
local siamese = require "siamese"
local nn, T, eval = siamese.nn, siamese.tensor, siamese.eval

local common = {}
local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."

--- Reads --name value options (numbers when they look like numbers) and
-- one positional data folder.
function common.options(argv, defaults)
  local opts = {}
  for k, v in pairs(defaults) do opts[k] = v end
  local i = 1
  while i <= #argv do
    local key = argv[i]:match("^%-%-([%w_]+)$")
    if key then
      local v = argv[i + 1] or error("option --" .. key .. " needs a value")
      opts[key] = math.tointeger(tonumber(v)) or tonumber(v) or v
      i = i + 2
    else
      opts.root = argv[i]
      i = i + 1
    end
  end
  return opts
end

--- The seed's encoder: conv(6, 3x3)-ReLU-maxpool-dropout-conv(12, 3x3)-
-- ReLU-maxpool-dropout-dense(128)-dense(50) on 1x56x46 input.
function common.classic_encoder()
  return nn.Sequential{
    nn.Conv2d(1, 6, 3), nn.ReLU(true), nn.MaxPool2d(2), nn.Dropout(0.1),
    nn.Conv2d(6, 12, 3), nn.ReLU(true), nn.MaxPool2d(2), nn.Dropout(0.1),
    nn.Flatten(), nn.Linear(12 * 12 * 10, 128), nn.ReLU(true), nn.Linear(128, 50),
  }
end

common.DEFINITION = here .. "/../models/att_encoder.lua"
common.ENCODER_OPTS = {width = 16, dim = 64, dropout = 0.2}

--- The shipped encoder's network (models/att_encoder.lua): batch-norm
-- convolutions, L2-normalised 64-D embeddings; for the BCE loss without
-- the normalisation (the head's weighted |e1 - e2| needs the scale, as in
-- Koch et al.).
function common.encoder(loss)
  local o = {}
  for k, v in pairs(common.ENCODER_OPTS) do o[k] = v end
  o.normalise = loss ~= "bce"
  common.built_opts = o -- what export_encoder records
  return dofile(common.DEFINITION)(o)
end

-- Normalisation of the inputs (recorded in the exported encoder, with the
-- test-time flip averaging the results use) and the training augmentation
-- (drawn from the library RNG, so checkpointed).
common.PREPROCESSING = {channels = 1, width = 46, height = 56, resize = "area", scale = 1 / 255,
                        mean = {0.5}, std = {0.5}, flip_average = true}
local NORM = {mean = 0.5, std = 0.5}
local FLIPPED = {flip = 1, mean = 0.5, std = 0.5, seed = 1}
local AUGMENT = {flip = 0.5, shift = 3, brightness = 0.2, contrast = 0.2, mean = 0.5, std = 0.5}

--- Saves the encoder as a shipped model (siamese.encoder.load reads it):
-- weights plus metadata naming its definition, input, preprocessing,
-- embedding size and how it was trained (extra fields).
function common.export_encoder(encoder, path, extra)
  local meta = {
    architecture = "models/att_encoder.lua", definition_opts = common.built_opts or common.ENCODER_OPTS,
    input_size = {1, 56, 46}, preprocessing = common.PREPROCESSING, embedding_size = common.ENCODER_OPTS.dim,
    distance = "euclidean", normalised = "L2",
  }
  for k, v in pairs(extra or {}) do meta[k] = v end
  return encoder:save(path, meta)
end

--- The dataset of a folder, images as the encoder expects them.
function common.load(root)
  return assert(siamese.data.folder(root, {channels = 1, width = 46, height = 56}))
end

--- n balanced pairs of a dataset: rounds of one genuine and one impostor
-- partner per image (siamese.data.balanced_pairs), seeded.
function common.pairs(dataset, n, seed)
  local left, right, same = {}, {}, {}
  local round = 0
  while #left < n do
    round = round + 1
    local l, r, s = siamese.data.balanced_pairs(dataset.labels, seed * 1000 + round)
    for k = 1, math.min(#l, n - #left) do
      left[#left + 1], right[#right + 1], same[#same + 1] = l[k], r[k], s[k]
    end
  end
  return {left = left, right = right, same = same}
end

--- The model, criterion, per-epoch batches and training step of one loss:
--   contrastive  Siamese(encoder), euclidean distance, margin 1, opts.per pairs a step (32)
--   bce          Siamese(encoder, absdiff, head Linear(dim, 1)), BCE on logits
--   triplet      the encoder on P x K = 16 x 4 batches, semi-hard mining, margin 0.2
-- Every step sees 64 images. opts: steps (per epoch), seed, pairs (a fixed
-- training pair list for contrastive/bce; default: fresh balanced pairs of
-- the dataset each epoch), dim (embedding size), per (pairs a step),
-- augment (false: the plain normalised images).
function common.setup(loss, dataset, encoder, opts)
  local s = {encoder = encoder, loss = loss}
  local steps, seed = opts.steps, opts.seed
  if loss == "pixels" then -- the untrained baseline: standardised pixels
    s.encoder = common.pixels()
    s.model = s.encoder
    return s
  end
  if loss == "triplet" then
    s.model = encoder
    s.criterion = siamese.loss.BatchTripletLoss{margin = opts.margin or 0.2, mining = "semihard"}
    s.batches = function(epoch)
      local out, round = {}, 0
      while #out < steps do
        round = round + 1
        for _, b in ipairs(siamese.data.pk_batches(dataset.labels, 16, 4, seed * 100000 + epoch * 100 + round)) do
          if #out < steps then out[#out + 1] = b end
        end
      end
      return out
    end
    s.step = function(b)
      local labels = {}
      for k, i in ipairs(b) do labels[k] = dataset.labels[i] end
      local x = dataset:batch(b, AUGMENT)
      local e = encoder:forward(x)
      local l = s.criterion:forward(e, labels)
      encoder:backward(x, s.criterion:backward(e, labels))
      return l, #b
    end
    return s
  end
  if loss == "contrastive" then
    s.model = nn.Siamese(encoder)
    s.criterion = siamese.loss.ContrastiveLoss{margin = 1}
  elseif loss == "bce" then
    s.head = nn.Linear(opts.dim, 1)
    s.model = nn.Siamese(encoder, {distance = "absdiff", head = s.head})
    s.criterion = siamese.loss.BCELoss{logits = true}
  else
    error("--loss must be contrastive, triplet or bce, got " .. tostring(loss))
  end
  local per = opts.per or 32
  local look = opts.augment == false and NORM or AUGMENT
  s.batches = function(epoch)
    local p = opts.pairs or common.pairs(dataset, steps * per, seed * 100000 + epoch)
    local out = {}
    local first = ((epoch - 1) * steps * per) % #p.left -- walk through a fixed list
    for k = 1, steps do
      local b = {left = {}, right = {}, same = {}}
      for j = 1, per do
        local i = (first + (k - 1) * per + j - 1) % #p.left + 1
        b.left[j], b.right[j], b.same[j] = p.left[i], p.right[i], p.same[i]
      end
      out[k] = b
    end
    return out
  end
  s.step = function(b)
    local x1, x2, y = dataset:batch(b.left, look), dataset:batch(b.right, look), T.new(b.same)
    local out = s.model:forward{x1, x2}
    local l = s.criterion:forward(out, y)
    s.model:backward({x1, x2}, s.criterion:backward(out, y))
    return l, 2 * #b.left
  end
  return s
end

--- The raw-pixel "encoder" of examples/att_pixel_baseline.lua: each image
-- flattened, its mean removed, L2-normalised. No parameters.
function common.pixels()
  local m = nn.Module()
  function m.updateOutput(self, x)
    local n = x:shape(1)
    self.output = x:contiguous():view(n, -1):clone()
    for i = 1, n do
      local r = self.output:select(1, i)
      r:sub_(r:mean())
      r:scale_(1 / r:norm())
    end
    return self.output
  end
  return m
end

--- Embeddings [n, dim] of every image of a dataset (evaluation mode),
-- averaged with those of the mirror images (test-time flip; L2-normalised
-- again unless the encoder is the BCE one, whose head takes raw vectors).
-- flip = false: the plain embeddings (validation during training).
-- (The plain batch draws its unused augmentation seed from the library
-- RNG and the mirrored one has a fixed seed, so validation consumes the
-- same random numbers with or without the flip.)
function common.embed_all(s, dataset, flip)
  s.model:evaluate()
  local idx = {}
  for i = 1, dataset.count do idx[i] = i end
  local E = s.encoder:forward(dataset:batch(idx, NORM)):clone()
  if flip == false then return E end
  E:add_(s.encoder:forward(dataset:batch(idx, FLIPPED)))
  if s.loss == "bce" then return E:scale_(0.5) end
  for i = 1, E:shape(1) do
    local r = E:select(1, i)
    r:scale_(1 / r:norm())
  end
  return E
end

local function rows(E, idx)
  local out = T.zeros{#idx, E:shape(2)}
  for k, i in ipairs(idx) do out:select(1, k):copy(E:select(1, i)) end
  return out
end

--- Pair "distances" (smaller = more alike) and booleans same: euclidean
-- between embeddings (E, or those of embed_all(s, dataset, flip)), or minus
-- the BCE head's logit.
function common.distances(s, dataset, p, E, flip)
  E = E or common.embed_all(s, dataset, flip)
  local d, same = {}, {}
  local a, b = rows(E, p.left), rows(E, p.right)
  local out
  if s.head then
    out = s.head:forward(nn.AbsDiff():forward{a, b}):view(-1):scale(-1)
  else
    out = a:sub(b):norm(2, 2):view(-1)
  end
  for k = 1, out:numel() do d[k], same[k] = out:get(k), p.same[k] == 1 end
  return d, same
end

--- One-shot identification: the first image of each person enrolled, every
-- other image matched to the nearest enrolled one (by common.distances).
function common.one_shot(s, dataset, E)
  E = E or common.embed_all(s, dataset)
  local enrolled, queries, seen = {}, {}, {}
  for i, label in ipairs(dataset.labels) do
    if not seen[label] then seen[label] = true; enrolled[#enrolled + 1] = i else queries[#queries + 1] = i end
  end
  local right = 0
  for _, q in ipairs(queries) do
    local p = {left = {}, right = {}, same = {}}
    for k, g in ipairs(enrolled) do p.left[k], p.right[k], p.same[k] = q, g, 0 end
    local d = common.distances(s, dataset, p, E)
    local best = 1
    for k = 2, #d do if d[k] < d[best] then best = k end end
    if dataset.labels[enrolled[best]] == dataset.labels[q] then right = right + 1 end
  end
  return right / #queries
end

--- Verification on pairs at a threshold, with AUC and EER.
function common.verification(s, dataset, p, threshold)
  local d, same = common.distances(s, dataset, p)
  local roc = eval.roc(d, same)
  return {accuracy = eval.accuracy(d, same, threshold), auc = eval.auc(roc), eer = (eval.eer(roc))}
end

return common
