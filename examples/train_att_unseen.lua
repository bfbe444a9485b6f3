-- The honest AT&T protocol: an encoder trained on 25 people, its epoch and
-- threshold chosen on 5 others (validation), tested on the 10 people it
-- never saw: verification accuracy at the validation threshold, AUC and EER
-- on balanced test pairs, and one-shot 10-way identification (image 1 of
-- each unseen person enrolled, the other 90 images identified).
--
-- Encoder: models/att_encoder.lua (batch-norm convolutions, 64-D unit
-- embeddings); inputs augmented (flip, shift, brightness, contrast).
-- --loss contrastive | triplet (P x K 16 x 4, semi-hard mining) | bce, or
-- pixels: no training, the raw-pixel baseline on the same people and pairs.
-- Checkpoints (siamese.train) go to --out: last.safetensors (each epoch,
-- --resume 1 continues from it) and best.safetensors (best validation AUC);
-- --export PATH writes the best encoder with its metadata (models/).
-- The last line printed is a JSON object.
--
-- usage: lua5.4 examples/train_att_unseen.lua [DATA_DIR] [--loss triplet] [--epochs 20]
--          [--steps 20] [--seed 1] [--threads 2] [--margin 0.2 (triplet)] [--wd 0 (AdamW decay)]
--          [--out DIR] [--resume 0|1] [--export PATH]
local siamese = require "siamese"
local json = require "siamese.json"
local eval = siamese.eval
local common = dofile((arg[0]:match("^(.*)/") or ".") .. "/att_common.lua")

local opts = common.options(arg, {root = "../shared/data/att_faces", loss = "triplet", epochs = 20, steps = 20,
                                  seed = 1, threads = 2, resume = 0, margin = 0.2, wd = 0})
opts.out = opts.out or ("build/att_unseen_" .. opts.loss)
siamese.set_num_threads(opts.threads)
siamese.manual_seed(opts.seed)
assert(require("siamese.fs").mkdir_p(opts.out))

local data = common.load(opts.root)
local train, val, test = data:split{seed = opts.seed, identities = {25, 5, 10}}
local val_pairs = common.pairs(val, 2000, opts.seed + 1)
local test_pairs = common.pairs(test, 5000, opts.seed + 2)

local encoder = common.encoder(opts.loss)
local s = common.setup(opts.loss, train, encoder, {steps = opts.steps, seed = opts.seed, dim = common.ENCODER_OPTS.dim,
                                                  margin = opts.margin})
local command = string.format("lua5.4 examples/train_att_unseen.lua %s --loss %s --epochs %d --steps %d --seed %d "
  .. "--threads %d --margin %g --wd %g", opts.root, opts.loss, opts.epochs, opts.steps, opts.seed, opts.threads,
  opts.margin, opts.wd)

if opts.loss == "pixels" then -- no training: the raw-pixel baseline on the same people and pairs
  local vd, vs = common.distances(s, val, val_pairs)
  local result = common.verification(s, test, test_pairs, eval.best_threshold(vd, vs))
  result.one_shot, result.loss = common.one_shot(s, test), "pixels"
  print(json.encode(result))
  return
end

local trainer = siamese.train.Trainer{
  model = s.model, epochs = opts.epochs,
  optimizer = opts.wd > 0 and siamese.optim.AdamW(s.model, {lr = 1e-3, weight_decay = opts.wd})
                          or siamese.optim.Adam(s.model, {lr = 1e-3}),
  batches = s.batches, step = s.step,
  schedule = siamese.optim.schedule.cosine(1e-3, opts.epochs, 1e-5),
  validate = function() -- AUC on the validation people, without the test-time flip
    local d, same = common.distances(s, val, val_pairs, nil, false)
    return eval.auc(eval.roc(d, same))
  end,
  last = opts.out .. "/last.safetensors", best = opts.out .. "/best.safetensors",
  metadata = {command = command, loss = opts.loss, seed = opts.seed},
}
if opts.resume == 1 then assert(trainer:resume(trainer.last)) end
local first_epoch = trainer.epoch + 1
local start = siamese.clock()
local history = trainer:fit()
local seconds = siamese.clock() - start

-- The best epoch's model, evaluated once on the unseen people.
assert(siamese.train.load_model(s.model, trainer.best))
local vd, vs = common.distances(s, val, val_pairs)
local threshold = eval.best_threshold(vd, vs)
local result = common.verification(s, test, test_pairs, threshold)
result.one_shot = common.one_shot(s, test)
result.threshold, result.best_epoch, result.val_auc = threshold, history.best_epoch, history.best_score
local images = 0
for e = first_epoch, #history do images = images + history[e].items end
result.seconds = seconds
result.images_per_s = images / seconds
result.pairs_per_s = images / 2 / seconds
result.loss, result.epochs, result.seed, result.threads = opts.loss, opts.epochs, opts.seed, opts.threads
io.stderr:write(string.format(
  "unseen people (best epoch %d): verification %.2f %% at %.3f, AUC %.4f, EER %.2f %%, one-shot %.2f %%\n",
  history.best_epoch, 100 * result.accuracy, threshold, result.auc, 100 * result.eer, 100 * result.one_shot))

if opts.export then
  assert(common.export_encoder(encoder, opts.export, {
    training_command = command .. " --export " .. opts.export, loss = opts.loss, best_epoch = history.best_epoch,
    dataset = "AT&T (ORL) faces: 25 training identities, 5 validation (split seed " .. opts.seed .. ")",
    results = {verification = result.accuracy, auc = result.auc, eer = result.eer, one_shot = result.one_shot,
               threshold = threshold, protocol = "10 unseen AT&T people"},
  }))
end
print(json.encode(result))
