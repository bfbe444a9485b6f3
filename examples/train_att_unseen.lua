-- The honest AT&T protocol: the encoder of examples/train_att.lua is
-- trained on pairs of 30 people (25 for training, 5 for choosing the
-- threshold) and tested on the 10 people it never saw: verification
-- accuracy at the validation threshold, AUC and EER on test pairs, and
-- one-shot 10-way identification (image 1 of each unseen person enrolled,
-- the other 90 images identified by the nearest enrolled one).
-- The last line printed is a JSON object.
--
-- usage: lua5.4 examples/train_att_unseen.lua [DATA_DIR] [--epochs N] [--seed N] [--threads N]
local siamese = require "siamese"
local json = require "siamese.json"
local eval = siamese.eval
local common = dofile((arg[0]:match("^(.*)/") or ".") .. "/att_common.lua")

local opts = common.options(arg, {root = "../shared/data/att_faces", epochs = 13, seed = 1, threads = 2})
siamese.set_num_threads(math.floor(opts.threads))
siamese.manual_seed(math.floor(opts.seed))

local data = assert(siamese.data.folder(opts.root, {channels = 1, width = 46, height = 56}))
local train, val, test = data:split{seed = opts.seed, identities = {25, 5, 10}}
local train_pairs = common.pairs(train, 15000, opts.seed)
local val_pairs = common.pairs(val, 2000, opts.seed + 1)
local test_pairs = common.pairs(test, 5000, opts.seed + 2)

local encoder = common.encoder()
local net = siamese.nn.Siamese(encoder)
local criterion = siamese.loss.ContrastiveLoss{margin = 1}
local opt = siamese.optim.RMSprop(net, {lr = 1e-3})

-- One-shot identification: enroll the first image of each person.
local function one_shot(dataset)
  local enrolled, queries, seen = {}, {}, {}
  for i, label in ipairs(dataset.labels) do
    if not seen[label] then seen[label] = true; enrolled[#enrolled + 1] = i else queries[#queries + 1] = i end
  end
  encoder:evaluate()
  local g = encoder:forward(dataset:batch(enrolled)):clone()
  local q = encoder:forward(dataset:batch(queries)):clone()
  local _, nearest = siamese.tensor.cdist(q, g):min(2)
  local right = 0
  for k, i in ipairs(queries) do
    if dataset.labels[enrolled[nearest:get(k)]] == dataset.labels[i] then right = right + 1 end
  end
  return right / #queries
end

local start = siamese.clock()
local result
for epoch = 1, math.floor(opts.epochs) do
  local loss = common.train_epoch(net, criterion, opt, train, train_pairs, 128, epoch, opts.epochs, start)
  local vd, vs = common.distances(net, val, val_pairs)
  local threshold = eval.best_threshold(vd, vs)
  local td, ts = common.distances(net, test, test_pairs)
  local roc = eval.roc(td, ts)
  result = {accuracy = eval.accuracy(td, ts, threshold), threshold = threshold, auc = eval.auc(roc),
            eer = (eval.eer(roc)), one_shot_10way = one_shot(test)}
  io.stderr:write(string.format(
    "\repoch %d/%d loss %.4f | unseen people: verification %.2f %% at %.3f, AUC %.4f, EER %.2f %%, one-shot %.2f %%\n",
    epoch, opts.epochs, loss, 100 * result.accuracy, threshold, result.auc, 100 * result.eer, 100 * result.one_shot_10way))
end
result.seconds = siamese.clock() - start
result.seed, result.epochs = opts.seed, opts.epochs
print(json.encode(result))
