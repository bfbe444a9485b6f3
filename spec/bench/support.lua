-- Shared by the benchmark scripts (run from the checkout's top folder):
-- the thread count (SIAMESE_THREADS, default 2), one JSON object per line,
-- a timer (and its median over rounds), and face-api's own timings.
local siamese = require "siamese"
local json = require "siamese.json"

local support = {threads = tonumber(os.getenv("SIAMESE_THREADS") or "") or 2}

--- Writes row t (plus the thread count) as one JSON line.
function support.emit(t)
  t.threads = support.threads
  io.write(json.encode(t), "\n")
  io.flush()
end

-- The clock support.time reads: wall-clock seconds (a script may set
-- os.clock, processor time, e.g. for CLOCK=cpu at one thread).
support.clock = siamese.clock

--- Seconds per call of fn: one warm-up call, then repeats for >= min_time
-- seconds (default 0.5).
function support.time(fn, min_time)
  local clock = support.clock
  fn()
  local n, t0 = 0, clock()
  repeat
    fn()
    n = n + 1
  until clock() - t0 >= (min_time or 0.5)
  return (clock() - t0) / n
end

--- The median over `rounds` (default 5) of support.time(fn, min_time)
-- (each round: a warm-up call, then repeats for >= min_time seconds,
-- default 0.2): seconds per call, less moved by a busy spell of the
-- shared machine than one long mean.
function support.median_time(fn, rounds, min_time)
  local t = {}
  for i = 1, rounds or 5 do t[i] = support.time(fn, min_time or 0.2) end
  table.sort(t)
  local n = #t
  return n % 2 == 1 and t[(n + 1) // 2] or (t[n // 2] + t[n // 2 + 1]) / 2
end

--- The build folder this process loads the core from (the first
-- "./DIR/?.so" of package.cpath, as the Makefile's RUN_LUA sets it), or
-- "build".
function support.build_dir()
  return package.cpath:match("%./([^;]-)/%?%.so") or "build"
end

--- face-api's own pipeline on its WASM backend (spec/bench/faceapi/bench.js
-- with the packages `make bench` installs into BUILD/faceapi-bench):
-- {embed_ms, detect_ms, faces} timed now, or nil when node or the packages
-- are missing (spec/bench/run.lua and bench_mtcnn.lua both use it).
function support.faceapi_times(dir)
  dir = dir or (support.build_dir() .. "/faceapi-bench/node_modules")
  local f = io.open(dir .. "/@vladmandic/face-api/package.json")
  if not f then return nil end
  f:close()
  local cmd = string.format("NODE_PATH=%s node spec/bench/faceapi/bench.js %s/@vladmandic/face-api/model "
    .. "spec/fixtures/faceapi/sample1.jpg 2>/dev/null", dir, dir)
  local p = io.popen(cmd)
  local out = p and p:read("a") or ""
  if p then p:close() end
  local ok, r = pcall(json.decode, out)
  if ok and type(r) == "table" and r.embed_ms and r.detect_ms then return r end
  return nil
end

return support
