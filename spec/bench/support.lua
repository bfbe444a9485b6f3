-- Shared by the benchmark scripts (run from the checkout's top folder):
-- the thread count (SIAMESE_THREADS, default 2), one JSON object per line,
-- and a timer.
local siamese = require "siamese"
local json = require "siamese.json"

local support = {threads = tonumber(os.getenv("SIAMESE_THREADS") or "") or 2}

--- Writes row t (plus the thread count) as one JSON line.
function support.emit(t)
  t.threads = support.threads
  io.write(json.encode(t), "\n")
  io.flush()
end

--- Seconds per call of fn: one warm-up call, then repeats for >= min_time
-- seconds (default 0.5).
function support.time(fn, min_time)
  fn()
  local n, t0 = 0, siamese.clock()
  repeat
    fn()
    n = n + 1
  until siamese.clock() - t0 >= (min_time or 0.5)
  return (siamese.clock() - t0) / n
end

return support
