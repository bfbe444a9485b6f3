-- Shared parts of the AT&T Siamese examples: options, the encoder of the
-- classic experiment, balanced pair lists, one training epoch with a
-- progress line, and pair distances. Loaded with dofile by the scripts.
local siamese = require "siamese"
local nn, T = siamese.nn, siamese.tensor

local common = {}

--- Reads --name value options (numbers) and one positional data folder.
function common.options(argv, defaults)
  local opts = {}
  for k, v in pairs(defaults) do opts[k] = v end
  local i = 1
  while i <= #argv do
    local key = argv[i]:match("^%-%-(%w+)$")
    if key then
      opts[key] = tonumber(argv[i + 1]) or error("option --" .. key .. " needs a number")
      i = i + 2
    else
      opts.root = argv[i]
      i = i + 1
    end
  end
  return opts
end

--- conv(6, 3x3)-ReLU-maxpool-dropout-conv(12, 3x3)-ReLU-maxpool-dropout-
-- dense(128)-dense(50) on 1x56x46 input.
function common.encoder()
  return nn.Sequential{
    nn.Conv2d(1, 6, 3), nn.ReLU(true), nn.MaxPool2d(2), nn.Dropout(0.1),
    nn.Conv2d(6, 12, 3), nn.ReLU(true), nn.MaxPool2d(2), nn.Dropout(0.1),
    nn.Flatten(), nn.Linear(12 * 12 * 10, 128), nn.ReLU(true), nn.Linear(128, 50),
  }
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

-- Pairs first..last as two image batches and a label tensor.
local function batch_of(dataset, p, first, last)
  local li, ri, y = {}, {}, {}
  for k = first, last do li[#li + 1], ri[#ri + 1], y[#y + 1] = p.left[k], p.right[k], p.same[k] end
  return dataset:batch(li), dataset:batch(ri), T.new(y)
end

--- One epoch over the pairs in batches; prints a progress line to stderr
-- (epoch, step, loss, pairs/s, ETA). Returns the mean loss.
function common.train_epoch(net, criterion, opt, dataset, p, batch_size, epoch, epochs, start)
  local steps = math.ceil(#p.left / batch_size)
  local loss_sum = 0
  net:training()
  for step = 1, steps do
    local first = (step - 1) * batch_size + 1
    local x1, x2, y = batch_of(dataset, p, first, math.min(first + batch_size - 1, #p.left))
    net:zeroGradParameters()
    local d = net:forward{x1, x2}
    loss_sum = loss_sum + criterion:forward(d, y)
    net:backward({x1, x2}, criterion:backward(d, y))
    opt:step()
    if step % 20 == 0 or step == steps then
      local done = (epoch - 1) * steps + step
      local rate = done * batch_size / (siamese.clock() - start)
      io.stderr:write(string.format("\repoch %d/%d step %d/%d loss %.4f %.0f pairs/s ETA %.0fs   ",
        epoch, epochs, step, steps, loss_sum / step, rate, (epochs * steps - done) * batch_size / rate))
    end
  end
  return loss_sum / steps
end

--- Distances of the pairs (evaluation mode) and their labels as booleans.
function common.distances(net, dataset, p)
  net:evaluate()
  local d, same = {}, {}
  for b = 1, #p.left, 512 do
    local e = math.min(b + 511, #p.left)
    local x1, x2 = batch_of(dataset, p, b, e)
    local out = net:forward{x1, x2}
    for k = 1, out:numel() do d[#d + 1] = out:get(k); same[#same + 1] = p.same[b + k - 1] == 1 end
  end
  return d, same
end

return common
