-- The classic AT&T Siamese experiment, end to end: images halved to 56x46
-- gray; encoder conv(6, 3x3)-ReLU-maxpool-dropout-conv(12, 3x3)-ReLU-
-- maxpool-dropout-dense(128)-dense(50); euclidean distance; contrastive
-- loss (margin 1); RMSprop; batch 128; 20,000 pairs (balanced genuine /
-- impostor) split 75/25; pair accuracy at distance threshold 0.5.
--
-- Like the seed it reproduces, the pairs of the test split come from the
-- same 40 people as the training ones (examples/train_att_unseen.lua is
-- the protocol with unseen people). The last line printed is a JSON object.
--
-- usage: lua5.4 examples/train_att.lua [DATA_DIR] [--epochs N] [--seed N] [--threads N]
local siamese = require "siamese"
local json = require "siamese.json"
local common = dofile((arg[0]:match("^(.*)/") or ".") .. "/att_common.lua")

local opts = common.options(arg, {root = "../shared/data/att_faces", epochs = 13, seed = 1, threads = 2})
siamese.set_num_threads(math.floor(opts.threads))
siamese.manual_seed(math.floor(opts.seed))

local data = assert(siamese.data.folder(opts.root, {channels = 1, width = 46, height = 56}))
local all = common.pairs(data, 20000, opts.seed)
local function slice(p, first, last)
  local s = {left = {}, right = {}, same = {}}
  for k = first, last do
    s.left[#s.left + 1], s.right[#s.right + 1], s.same[#s.same + 1] = p.left[k], p.right[k], p.same[k]
  end
  return s
end
local train, test = slice(all, 1, 15000), slice(all, 15001, 20000)

local net = siamese.nn.Siamese(common.encoder())
local criterion = siamese.loss.ContrastiveLoss{margin = 1}
local opt = siamese.optim.RMSprop(net, {lr = 1e-3})

local function accuracy(p)
  local d, same = common.distances(net, data, p)
  return siamese.eval.accuracy(d, same, 0.5)
end

local start = siamese.clock()
for epoch = 1, math.floor(opts.epochs) do
  local t0 = siamese.clock()
  local loss = common.train_epoch(net, criterion, opt, data, train, 128, epoch, opts.epochs, start)
  io.stderr:write(string.format("\repoch %d/%d loss %.4f, train accuracy %.2f %%, test accuracy %.2f %% (%.1f s)\n",
    epoch, opts.epochs, loss, 100 * accuracy(train), 100 * accuracy(test), siamese.clock() - t0))
end
local seconds = siamese.clock() - start
print(json.encode{accuracy = accuracy(test), train_accuracy = accuracy(train), seconds = seconds,
  pairs_per_s = opts.epochs * #train.left / seconds, epochs = opts.epochs, seed = opts.seed, threads = opts.threads})
