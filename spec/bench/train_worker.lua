-- Child process of bench_train.lua: trains one of the two benchmark nets
-- on the batches of a safetensors file for warm-up + timed steps and
-- prints one JSON line {items_per_s, seconds, cpu_seconds (process CPU
-- time of the timed steps, all threads), steps, items, rss_idle_kib,
-- peak_kib, loss_first, loss_last}. spec/bench/torch_train.py is its
-- PyTorch twin (same architecture, data, losses, optimiser, thread count).
--
-- usage: lua5.4 spec/bench/train_worker.lua att|big BATCH_FILE WARMUP STEPS THREADS
--
-- Peak memory is this process's VmHWM (/proc/self/status) at the end;
-- rss_idle_kib is VmRSS after the model and the batches are ready (before
-- the first step), so peak - idle is what training itself added.
local siamese = require "siamese"
local json = require "siamese.json"
local nn = siamese.nn

local which, file = arg[1], arg[2]
local warmup, steps, threads = tonumber(arg[3]), tonumber(arg[4]), tonumber(arg[5])
assert(which == "att" or which == "big", "usage: train_worker.lua att|big BATCH_FILE WARMUP STEPS THREADS")
siamese.set_num_threads(threads)
siamese.manual_seed(1)

local function status_kib(field)
  local f <close> = assert(io.open("/proc/self/status"))
  return tonumber(f:read("a"):match(field .. ":%s*(%d+)"))
end

local batches = assert(siamese.safetensors.load(file))
local nbatches = 0
while batches["x" .. (nbatches + 1)] or batches["a" .. (nbatches + 1)] do nbatches = nbatches + 1 end

-- The benchmark's bigger net: 4 blocks conv3x3(pad 1, no bias)-BN-ReLU-
-- maxpool2 with 32-64-128-256 channels, global average pool, linear to
-- 128, L2-normalised.
local function big_encoder()
  local layers, cin = {}, 1
  for _, c in ipairs{32, 64, 128, 256} do
    for _, m in ipairs{nn.Conv2d(cin, c, 3, {padding = 1, bias = false}), nn.BatchNorm2d(c), nn.ReLU(true),
                        nn.MaxPool2d(2)} do
      layers[#layers + 1] = m
    end
    cin = c
  end
  for _, m in ipairs{nn.GlobalAvgPool2d(), nn.Linear(256, 128), nn.L2Normalize()} do layers[#layers + 1] = m end
  return nn.Sequential(layers)
end

local step_fn, items
if which == "att" then
  local common = dofile("examples/att_common.lua")
  local net = nn.Siamese(common.classic_encoder()):skipInputGrad()
  local criterion = siamese.loss.ContrastiveLoss{margin = 1}
  local opt = siamese.optim.RMSprop(net, {lr = 1e-3})
  net:training()
  items = batches.a1:shape(1) -- pairs per step
  step_fn = function(k)
    local x1, x2, y = batches["a" .. k], batches["b" .. k], batches["y" .. k]
    net:zeroGradParameters()
    local d = net:forward{x1, x2}
    local l = criterion:forward(d, y)
    net:backward({x1, x2}, criterion:backward(d, y))
    opt:step()
    return l
  end
else
  local net = big_encoder():skipInputGrad()
  local criterion = siamese.loss.BatchTripletLoss{margin = 0.2, mining = "hard"}
  local opt = siamese.optim.Adam(net, {lr = 1e-3})
  net:training()
  items = batches.x1:shape(1) -- images per step
  step_fn = function(k)
    local x, labels = batches["x" .. k], batches["labels" .. k]
    net:zeroGradParameters()
    local e = net:forward(x)
    local l = criterion:forward(e, labels)
    net:backward(x, criterion:backward(e, labels))
    opt:step()
    return l
  end
end

collectgarbage()
local idle = status_kib("VmRSS")
local loss_first, loss_last
for s = 1, warmup do loss_first = step_fn((s - 1) % nbatches + 1) end
local t0, c0 = siamese.clock(), os.clock()
for s = 1, steps do loss_last = step_fn((warmup + s - 1) % nbatches + 1) end
local seconds, cpu = siamese.clock() - t0, os.clock() - c0
io.write(json.encode{items_per_s = steps * items / seconds, seconds = seconds, cpu_seconds = cpu, steps = steps, items = items,
  rss_idle_kib = idle, peak_kib = status_kib("VmHWM"), loss_first = loss_first, loss_last = loss_last}, "\n")
