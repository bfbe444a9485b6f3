-- The classic AT&T Siamese experiment: 20,000 balanced pairs of the 40
-- people split 75/25; pair accuracy on the test quarter at the threshold
-- that is best on the training pairs. Like the Keras seed it reproduces,
-- the test pairs come from the same people (and images) as the training
-- ones: examples/train_att_unseen.lua is the protocol with unseen people.
--
-- Encoder: models/att_encoder.lua (--encoder classic: the seed's
-- conv(6)-conv(12)-dense(128)-dense(50)); --loss contrastive (on the
-- training pairs) | triplet (P x K 16 x 4 over all images, semi-hard
-- mining) | bce (head on |e1 - e2|). Checkpoint: --out DIR/last.safetensors
-- (--resume 1 continues from it). The last line printed is a JSON object.
--
-- usage: lua5.4 examples/train_att.lua [DATA_DIR] [--loss contrastive] [--epochs 8] [--steps 30]
--          [--seed 1] [--threads 2] [--encoder bn|classic] [--out DIR] [--resume 0|1]
local siamese = require "siamese"
local json = require "siamese.json"
local eval = siamese.eval
local common = dofile((arg[0]:match("^(.*)/") or ".") .. "/att_common.lua")

local opts = common.options(arg, {root = "../shared/data/att_faces", loss = "contrastive", epochs = 8, steps = 30,
                                  seed = 1, threads = 2, encoder = "bn", resume = 0})
opts.out = opts.out or ("build/att_classic_" .. opts.loss)
siamese.set_num_threads(opts.threads)
siamese.manual_seed(opts.seed)
os.execute("mkdir -p '" .. opts.out .. "'")

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
local s = common.setup(opts.loss, data, encoder, {steps = opts.steps, seed = opts.seed, dim = dim, pairs = train})
local trainer = siamese.train.Trainer{
  model = s.model, optimizer = siamese.optim.Adam(s.model, {lr = 1e-3}), epochs = opts.epochs,
  batches = s.batches, step = s.step, schedule = siamese.optim.schedule.cosine(1e-3, opts.epochs, 1e-5),
  last = opts.out .. "/last.safetensors",
  metadata = {command = "lua5.4 examples/train_att.lua " .. table.concat(arg, " "), loss = opts.loss},
}
if opts.resume == 1 then assert(trainer:resume(trainer.last)) end
local first_epoch = trainer.epoch + 1
local start = siamese.clock()
local history = trainer:fit()
local seconds = siamese.clock() - start

local E = common.embed_all(s, data)
local d, same = common.distances(s, data, train, E)
local threshold = eval.best_threshold(d, same)
local train_accuracy = eval.accuracy(d, same, threshold)
d, same = common.distances(s, data, test, E)
local images = 0
for e = first_epoch, #history do images = images + history[e].items end
local result = {accuracy = eval.accuracy(d, same, threshold), train_accuracy = train_accuracy, threshold = threshold,
                auc = eval.auc(eval.roc(d, same)), seconds = seconds, pairs_per_s = images / 2 / seconds,
                images_per_s = images / seconds, loss = opts.loss, encoder = opts.encoder, epochs = opts.epochs,
                seed = opts.seed, threads = opts.threads}
io.stderr:write(string.format("test pairs (same people): accuracy %.2f %% at %.3f (train %.2f %%), AUC %.4f\n",
  100 * result.accuracy, threshold, 100 * train_accuracy, result.auc))
print(json.encode(result))
