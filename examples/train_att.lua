-- The classic AT&T Siamese experiment: 20,000 balanced pairs of the 40
-- people split 75/25; pair accuracy on the test quarter at the threshold
-- that is best on the training pairs. Like the Keras seed it reproduces,
-- the test pairs come from the same people (and images) as the training
-- ones: examples/train_att_unseen.lua is the protocol with unseen people.
--
-- --recipe seed (the default) is the seed's experiment as published:
-- images halved to 56x46 gray, its conv(6, 3x3)-ReLU-maxpool-dropout-
-- conv(12, 3x3)-ReLU-maxpool-dropout-dense(128)-dense(50) encoder,
-- euclidean distance, contrastive loss (margin 1), RMSprop (lr 1e-3),
-- batches of 128 pairs over the whole training list, 13 epochs, no
-- augmentation, accuracy at distance 0.5 (the seed reports 97.8 %).
--
-- --recipe ours compares the three losses on an equal budget (--steps
-- batches of 64 images an epoch, Adam with a cosine schedule, augmentation,
-- threshold chosen on the training pairs): encoder models/att_encoder.lua
-- (--encoder classic: the seed's); --loss contrastive (on the training
-- pairs) | triplet (P x K 16 x 4 over all images, semi-hard mining) | bce
-- (head on |e1 - e2|). Checkpoint: --out DIR/last.safetensors (--resume 1
-- continues from it). The last line printed is a JSON object.
--
-- usage: lua5.4 examples/train_att.lua [DATA_DIR] [--recipe seed|ours] [--epochs N] [--seed 1] [--threads 2]
--          recipe ours: [--loss contrastive|triplet|bce] [--steps 30] [--encoder bn|classic] [--out DIR] [--resume 0|1]
local siamese = require "siamese"
local json = require "siamese.json"
local eval = siamese.eval
local common = dofile((arg[0]:match("^(.*)/") or ".") .. "/att_common.lua")

local opts = common.options(arg, {root = "../shared/data/att_faces", recipe = "seed", loss = "contrastive",
                                  seed = 1, threads = 2, encoder = "bn", resume = 0})
local SEED_RECIPE = opts.recipe == "seed"
if not SEED_RECIPE and opts.recipe ~= "ours" then error("--recipe must be seed or ours, got " .. tostring(opts.recipe)) end
if SEED_RECIPE then opts.loss, opts.encoder = "contrastive", "classic" end
-- steps per epoch: the seed's batches of 128 pass once over its 15,000 training pairs
opts.steps = opts.steps or (SEED_RECIPE and math.ceil(15000 / 128) or 30)
opts.epochs = opts.epochs or (SEED_RECIPE and 13 or 8)
opts.out = opts.out or ("build/att_classic_" .. opts.loss)
siamese.set_num_threads(opts.threads)
siamese.manual_seed(opts.seed)
assert(require("siamese.fs").mkdir_p(opts.out))

local data = common.load(opts.root)
local all = common.pairs(data, 20000, opts.seed)
local function slice(p, first, last)
  local s = {left = {}, right = {}, same = {}}
  for k = first, last do
    s.left[#s.left + 1], s.right[#s.right + 1], s.same[#s.same + 1] = p.left[k], p.right[k], p.same[k]
  end
  return s
end
local train, test = slice(all, 1, 15000), slice(all, 15001, 20000)

local encoder = opts.encoder == "classic" and common.classic_encoder() or common.encoder(opts.loss)
local dim = opts.encoder == "classic" and 50 or common.ENCODER_OPTS.dim
local s = common.setup(opts.loss, data, encoder, {steps = opts.steps, seed = opts.seed, dim = dim, pairs = train,
                                                  per = SEED_RECIPE and 128 or 32, augment = not SEED_RECIPE})
local trainer = siamese.train.Trainer{
  model = s.model, epochs = opts.epochs, batches = s.batches, step = s.step,
  optimizer = SEED_RECIPE and siamese.optim.RMSprop(s.model, {lr = 1e-3}) or siamese.optim.Adam(s.model, {lr = 1e-3}),
  schedule = not SEED_RECIPE and siamese.optim.schedule.cosine(1e-3, opts.epochs, 1e-5) or nil,
  last = opts.out .. "/last.safetensors",
  metadata = {command = "lua5.4 examples/train_att.lua " .. table.concat(arg, " "), loss = opts.loss},
}
if opts.resume == 1 then assert(trainer:resume(trainer.last)) end
local first_epoch = trainer.epoch + 1
local start = siamese.clock()
local history = trainer:fit()
local seconds = siamese.clock() - start

local E = common.embed_all(s, data, not SEED_RECIPE) -- the seed does no test-time flip
local d, same = common.distances(s, data, train, E)
local threshold = SEED_RECIPE and 0.5 or eval.best_threshold(d, same)
local train_accuracy = eval.accuracy(d, same, threshold)
d, same = common.distances(s, data, test, E)
local images = 0
for e = first_epoch, #history do images = images + history[e].items end
local result = {accuracy = eval.accuracy(d, same, threshold), train_accuracy = train_accuracy, threshold = threshold,
                auc = eval.auc(eval.roc(d, same)), seconds = seconds, pairs_per_s = images / 2 / seconds,
                images_per_s = images / seconds, recipe = opts.recipe, loss = opts.loss, encoder = opts.encoder, epochs = opts.epochs,
                seed = opts.seed, threads = opts.threads}
io.stderr:write(string.format("test pairs (same people): accuracy %.2f %% at %.3f (train %.2f %%), AUC %.4f\n",
  100 * result.accuracy, threshold, 100 * train_accuracy, result.auc))
print(json.encode(result))
