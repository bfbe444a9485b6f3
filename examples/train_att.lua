-- The classic AT&T Siamese experiment, end to end: images halved to 56x46
-- gray; encoder conv(6, 3x3)-ReLU-maxpool-dropout-conv(12, 3x3)-ReLU-
-- maxpool-dropout-dense(128)-dense(50); euclidean distance; contrastive
-- loss (margin 1); RMSprop; batch 128; 20,000 pairs (balanced genuine /
-- impostor) split 75/25; pair accuracy at distance threshold 0.5.
--
-- Like the seed it reproduces, the pairs of the test split come from the
-- same 40 people as the training ones (the "honest" protocol with unseen
-- people is a separate script). The last line printed is a JSON object.
--
-- usage: lua5.4 examples/train_att.lua [DATA_DIR] [--epochs N] [--seed N] [--threads N]
local siamese = require "siamese"
local json = require "siamese.json"
local nn, T = siamese.nn, siamese.tensor

local args = {root = "../shared/data/att_faces", epochs = 13, seed = 1, threads = 2}
local i = 1
while i <= #arg do
  local a = arg[i]
  local key = a:match("^%-%-(%w+)$")
  if key then
    args[key] = tonumber(arg[i + 1]) or error("option --" .. key .. " needs a number")
    i = i + 2
  else
    args.root = a
    i = i + 1
  end
end
siamese.set_num_threads(math.floor(args.threads))
siamese.manual_seed(math.floor(args.seed))

local data = assert(siamese.data.folder(args.root, {channels = 1, width = 46, height = 56}))

-- 20,000 balanced pairs: rounds of one genuine and one impostor partner per image.
local left, right, same = {}, {}, {}
local round = 0
while #left < 20000 do
  round = round + 1
  local l, r, s = siamese.data.balanced_pairs(data.labels, args.seed * 1000 + round)
  for k = 1, #l do
    if #left < 20000 then left[#left + 1], right[#right + 1], same[#same + 1] = l[k], r[k], s[k] end
  end
end
local ntrain = 15000

local function encoder()
  return nn.Sequential{
    nn.Conv2d(1, 6, 3), nn.ReLU(true), nn.MaxPool2d(2), nn.Dropout(0.1),
    nn.Conv2d(6, 12, 3), nn.ReLU(true), nn.MaxPool2d(2), nn.Dropout(0.1),
    nn.Flatten(), nn.Linear(12 * 12 * 10, 128), nn.ReLU(true), nn.Linear(128, 50),
  }
end

local net = nn.Siamese(encoder())
local criterion = siamese.loss.ContrastiveLoss{margin = 1}
local opt = siamese.optim.RMSprop(net, {lr = 1e-3})
local batch_size = 128

local function batch_of(first, last)
  local li, ri, y = {}, {}, {}
  for k = first, last do
    li[#li + 1], ri[#ri + 1], y[#y + 1] = left[k], right[k], same[k]
  end
  return data:batch(li), data:batch(ri), T.new(y)
end

local function accuracy(first, last)
  net:evaluate()
  local right_answers = 0
  for b = first, last, 512 do
    local e = math.min(b + 511, last)
    local x1, x2, y = batch_of(b, e)
    local d = net:forward{x1, x2}
    for k = 1, d:numel() do
      if (d:get(k) < 0.5) == (y:get(k) == 1) then right_answers = right_answers + 1 end
    end
  end
  net:training()
  return right_answers / (last - first + 1)
end

local start = siamese.clock()
local steps_per_epoch = math.ceil(ntrain / batch_size)
for epoch = 1, math.floor(args.epochs) do
  local loss_sum, t0 = 0, siamese.clock()
  for step = 1, steps_per_epoch do
    local first = (step - 1) * batch_size + 1
    local x1, x2, y = batch_of(first, math.min(first + batch_size - 1, ntrain))
    net:zeroGradParameters()
    local d = net:forward{x1, x2}
    loss_sum = loss_sum + criterion:forward(d, y)
    net:backward({x1, x2}, criterion:backward(d, y))
    opt:step()
    if step % 20 == 0 or step == steps_per_epoch then
      local done = (epoch - 1) * steps_per_epoch + step
      local rate = done * batch_size / (siamese.clock() - start)
      local eta = (args.epochs * steps_per_epoch - done) * batch_size / rate
      io.stderr:write(string.format("\repoch %d/%d step %d/%d loss %.4f %.0f pairs/s ETA %.0fs   ",
        epoch, args.epochs, step, steps_per_epoch, loss_sum / step, rate, eta))
    end
  end
  io.stderr:write(string.format("\repoch %d/%d loss %.4f, train accuracy %.2f %%, test accuracy %.2f %% (%.1f s)\n",
    epoch, args.epochs, loss_sum / steps_per_epoch, 100 * accuracy(1, ntrain), 100 * accuracy(ntrain + 1, #left),
    siamese.clock() - t0))
end
local seconds = siamese.clock() - start
print(json.encode{accuracy = accuracy(ntrain + 1, #left), train_accuracy = accuracy(1, ntrain), seconds = seconds,
  pairs_per_s = args.epochs * ntrain / seconds, epochs = args.epochs, seed = args.seed, threads = args.threads})
