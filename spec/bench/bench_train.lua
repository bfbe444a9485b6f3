-- Training speed against PyTorch (run by `make bench`; one JSON line per
-- figure, like spec/bench/run.lua).
--
-- Two nets, each trained for WARMUP + STEPS steps by ours
-- (spec/bench/train_worker.lua) and by PyTorch (spec/bench/torch_train.py,
-- Debian's python3-torch with torch.set_num_threads(THREADS)) on the same
-- batches, written here to one safetensors file both read:
--   att: the AT&T Siamese net (examples/att_common.lua), 128 pairs of
--        1x56x46 faces per step, contrastive loss, RMSprop;
--   big: 4 blocks conv3x3-BN-ReLU-maxpool (32-64-128-256) on 1x112x92,
--        global average pool, linear 128, L2-normalised, batch-hard
--        triplet loss on P = 8 identities x K = 4 images, Adam.
-- Both frameworks run as child processes, one after the other, ROUNDS times
-- alternately; the best throughput of each is reported (the machine is
-- shared and drifts). Each row also gives items per CPU-second of each
-- process (cpu_value, cpu_baseline, cpu_ratio), a figure that contention
-- from other jobs distorts less than wall-clock throughput. Memory: each child's own peak RSS (VmHWM), nothing
-- subtracted; the RSS once model and batches were ready is given beside it
-- (idle_MiB), so the peak minus it is what training added.
--
-- OpenBLAS: Debian 12's OpenBLAS 0.3.21 does not recognise recent Xeons
-- and runs its Haswell (AVX2) kernels there; when the CPU has AVX-512 and
-- OPENBLAS_CORETYPE is unset, both children get OPENBLAS_CORETYPE=SkylakeX
-- (its AVX-512 kernels). PyTorch loads the same OpenBLAS (through
-- libblas.so.3), so both frameworks run with the same library setting; the
-- rows name it (openblas_coretype).
--
-- Environment: SIAMESE_THREADS (2), SIAMESE_BENCH_ROUNDS (2),
-- SIAMESE_ATT (../shared/data/att_faces), SIAMESE_PYTHON (/usr/bin/python3).
-- Without the data or without torch the affected rows are skipped with a
-- message on stderr.
local siamese = require "siamese"
local json = require "siamese.json"

local threads = tonumber(os.getenv("SIAMESE_THREADS") or "") or 2
local rounds = tonumber(os.getenv("SIAMESE_BENCH_ROUNDS") or "") or 2
local root = os.getenv("SIAMESE_ATT") or "../shared/data/att_faces"
local python = os.getenv("SIAMESE_PYTHON") or "/usr/bin/python3"
local lua = arg[-1] or "lua5.4"

local coretype = os.getenv("OPENBLAS_CORETYPE")
if not coretype then
  local f = io.open("/proc/cpuinfo")
  local info = f and f:read("a") or ""
  if f then f:close() end
  if info:match("flags[^\n]* avx512f") then coretype = "SkylakeX" end
end
-- Both frameworks use libgomp, whose idle threads spin between parallel
-- regions by default: on a machine other jobs keep busy the spinning
-- steals the CPU the working thread needs (measured here: 3x the CPU time
-- for the same steps at 2 threads). Unless OMP_WAIT_POLICY is set, both
-- children run with OMP_WAIT_POLICY=passive (threads sleep when idle).
local wait_policy = os.getenv("OMP_WAIT_POLICY") or "passive"
local env = "OMP_WAIT_POLICY=" .. wait_policy .. " " .. (coretype and ("OPENBLAS_CORETYPE=" .. coretype .. " ") or "")

local function note(msg) io.stderr:write("bench_train: ", msg, "\n") end

local function emit(t)
  t.threads = threads
  t.openblas_coretype = coretype or "detected"
  t.omp_wait_policy = wait_policy
  io.write(json.encode(t), "\n")
  io.flush()
end

local function sh_quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

local small = siamese.data.folder(root, {channels = 1, width = 46, height = 56})
local full = small and siamese.data.folder(root, {channels = 1})
if not (small and full) then
  note("no AT&T faces at " .. root .. ": training benchmarks skipped")
  return
end
local have_torch = os.execute(sh_quote(python) .. " -c 'import torch' 2>/dev/null")
if not have_torch then note(python .. " cannot import torch: PyTorch rows skipped") end

local common = dofile("examples/att_common.lua")

-- Batches both frameworks train on.
local function att_batches(nb)
  local p = common.pairs(small, nb * 128, 1)
  local t = {}
  for k = 1, nb do
    local l, r, y = {}, {}, {}
    for i = (k - 1) * 128 + 1, k * 128 do l[#l + 1], r[#r + 1], y[#y + 1] = p.left[i], p.right[i], p.same[i] end
    t["a" .. k], t["b" .. k], t["y" .. k] = small:batch(l), small:batch(r), siamese.tensor.new(y)
  end
  return t
end

local function big_batches(nb)
  local pk = siamese.data.pk_batches(full.labels, 8, 4, 1)
  local t = {}
  for k = 1, nb do
    local labels = {}
    for i, idx in ipairs(pk[k]) do labels[i] = full.labels[idx] end
    t["x" .. k], t["labels" .. k] = full:batch(pk[k]), siamese.tensor.new(labels)
  end
  return t
end

local function run(cmd)
  local p = assert(io.popen(cmd))
  local out = p:read("a")
  local ok = p:close()
  local line = out:match("(%b{})%s*$")
  if not ok or not line then
    note("failed: " .. cmd .. "\n" .. out)
    return nil
  end
  return json.decode(line)
end

local function bench(which, unit, nb, warmup, steps)
  local file = os.tmpname()
  assert(siamese.safetensors.save(file, which == "att" and att_batches(nb) or big_batches(nb)))
  local args = table.concat({which, sh_quote(file), warmup, steps, threads}, " ")
  local ours, ref
  for _ = 1, rounds do
    local o = run(env .. sh_quote(lua) .. " spec/bench/train_worker.lua " .. args)
    if o and (not ours or o.items_per_s > ours.items_per_s) then ours = o end
    if have_torch then
      local r = run(env .. sh_quote(python) .. " spec/bench/torch_train.py " .. args)
      if r and (not ref or r.items_per_s > ref.items_per_s) then ref = r end
    end
  end
  os.remove(file)
  if not ours then return end
  local mib = function(kib) return kib / 1024 end
  local speed = {name = "train_" .. which .. "_" .. unit:gsub("/", "_per_"), value = ours.items_per_s, unit = unit,
                 steps = steps, batch = ours.items, cpu_value = ours.steps * ours.items / ours.cpu_seconds}
  local mem = {name = "train_" .. which .. "_peak_rss", value = mib(ours.peak_kib), unit = "MiB",
               idle_MiB = mib(ours.rss_idle_kib)}
  if ref then
    local name = string.format("%s, %d threads, same net and batches", ref.version, threads)
    speed.baseline, speed.ratio, speed.baseline_name = ref.items_per_s, ours.items_per_s / ref.items_per_s, name
    -- items per CPU-second (all threads): less sensitive to other load
    -- on the machine than wall-clock throughput
    speed.cpu_baseline = ref.steps * ref.items / ref.cpu_seconds
    speed.cpu_ratio = speed.cpu_value / speed.cpu_baseline
    mem.baseline, mem.ratio, mem.baseline_name = mib(ref.peak_kib), ours.peak_kib / ref.peak_kib, name
    mem.baseline_idle_MiB = mib(ref.rss_idle_kib)
  end
  emit(speed)
  emit(mem)
end

bench("att", "pairs/s", 8, 3, 30)
bench("big", "images/s", 4, 1, 6)
