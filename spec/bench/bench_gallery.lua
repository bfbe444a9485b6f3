-- Gallery benchmark (make bench): exact k-NN over 1,000,000 random 128-D
-- templates at batch 1 and 64. One JSON object per line, as run.lua.
-- Reference measured in the same run: the sgemm of the same M, N, K
-- (queries x templates x 128, one product writing the whole [M, N] matrix,
-- at the same thread count) — the search does that work plus the norms and
-- top-k, so ratio = search rate / sgemm rate (target >= 1/1.5). FAISS
-- IndexFlatL2 (Debian's python3-faiss, through /usr/bin/python3) on the same
-- sizes is run when installed. SIAMESE_GALLERY_N changes the size.
local siamese = require "siamese"
local json = require "siamese.json"
local T = siamese.tensor

local bench = dofile("spec/bench/support.lua")
local threads = bench.threads
siamese.set_num_threads(threads)
siamese.manual_seed(1)
local N = tonumber(os.getenv("SIAMESE_GALLERY_N") or "") or 1000000
local DIM, K = 128, 10

local emit = bench.emit
local function time(fn, min_time) return bench.time(fn, min_time or 1) end

local function rss_bytes()
  local f = io.open("/proc/self/status")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  local kb = s:match("VmRSS:%s*(%d+)")
  return kb and tonumber(kb) * 1024
end

local function names_for(n)
  local names = {}
  for i = 1, n do names[i] = "person" .. i end
  return names
end

-- Enrolment: templates/s for N/10 and N in one add_many call each; equal
-- rates mean the cost is linear in n.
local data = T.randn{N, DIM}
local small_n = N // 10
local rate_small
do
  local g = siamese.gallery.new{dim = DIM, model = "bench"}
  local names, rows = names_for(small_n), data:narrow(1, 1, small_n)
  local t0 = siamese.clock()
  g:add_many(names, rows)
  rate_small = small_n / (siamese.clock() - t0)
  g:close()
end
local g = siamese.gallery.new{dim = DIM, model = "bench"}
local names = names_for(N)
local t0 = siamese.clock()
g:add_many(names, data)
local rate = N / (siamese.clock() - t0)
names = nil -- luacheck: ignore 311
collectgarbage()
emit{name = string.format("gallery_enrol_%d", N), value = rate, unit = "templates/s", baseline = rate_small,
     ratio = rate / rate_small, baseline_name = string.format("add_many of %d (linear: ratio ~1)", small_n)}
emit{name = string.format("gallery_memory_%d", N), value = g:memory(), unit = "bytes",
     baseline = N * DIM * 4, ratio = g:memory() / (N * DIM * 4), baseline_name = "N x 128 float32",
     rss = rss_bytes()}

local ours = {}
for _, batch in ipairs{1, 64} do
  local q = T.randn{batch, DIM}
  local out = T.zeros{batch, N}
  local tt = data:t()
  local s_gemm = time(function() T.matmul(q, tt, out) end)
  out = nil -- luacheck: ignore 311
  collectgarbage()
  local s_search = time(function() g:search(q, K) end)
  ours[batch] = batch / s_search
  emit{name = string.format("gallery_search_%d_b%d_k%d", N, batch, K), value = batch / s_search, unit = "queries/s",
       baseline = batch / s_gemm, ratio = s_gemm / s_search,
       baseline_name = string.format("sgemm %dx%dx%d", batch, N, DIM)}
  local s_id = time(function() g:identify_batch(q, {k = K}) end)
  emit{name = string.format("gallery_identify_%d_b%d_k%d", N, batch, K), value = batch / s_id, unit = "queries/s",
       baseline = batch / s_gemm, ratio = s_gemm / s_id,
       baseline_name = string.format("sgemm %dx%dx%d", batch, N, DIM)}
end
emit{name = "gallery_rss_after_search", value = rss_bytes(), unit = "bytes"}
g:close()
data = nil -- luacheck: ignore 311
collectgarbage()

-- FAISS IndexFlatL2 on the same sizes, in its own process.
local py = [[
import json, sys, time
try:
    import numpy as np, faiss
except Exception as e:
    print(json.dumps({"skip": str(e)})); sys.exit(0)
faiss.omp_set_num_threads(int(sys.argv[2]))
n, d, k = int(sys.argv[1]), 128, int(sys.argv[3])
x = np.random.default_rng(1).standard_normal((n, d), dtype=np.float32)
index = faiss.IndexFlatL2(d)
index.add(x)
for b in (1, 64):
    q = np.random.default_rng(2).standard_normal((b, d), dtype=np.float32)
    index.search(q, k)
    reps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < 1.0:
        index.search(q, k); reps += 1
    print(json.dumps({"batch": b, "qps": b * reps / (time.perf_counter() - t0)}))
]]
local script = os.tmpname()
do
  local f = assert(io.open(script, "w"))
  f:write(py)
  f:close()
end
-- FAISS gets its best settings on a shared machine: passive OpenMP waiting
-- and single-threaded OpenBLAS calls inside its own threads (its default
-- spinning threads run several times slower when the cores are busy).
local p = io.popen(string.format("OMP_NUM_THREADS=%d OMP_WAIT_POLICY=PASSIVE OPENBLAS_NUM_THREADS=1 " ..
  "/usr/bin/python3 %s %d %d %d 2>&1", threads, script, N, threads, K))
for line in p:lines() do
  local ok, r = pcall(json.decode, line)
  if ok and type(r) == "table" and r.skip then
    emit{name = "faiss_flatl2", skipped = "python3-faiss not available: " .. r.skip}
  elseif ok and type(r) == "table" and r.batch then
    emit{name = string.format("faiss_flatl2_%d_b%d_k%d", N, r.batch, K), value = r.qps, unit = "queries/s",
         ours = ours[r.batch], ratio = ours[r.batch] / r.qps, ratio_name = "siamese search / faiss"}
  end
end
p:close()
os.remove(script)
