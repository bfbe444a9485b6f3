-- The recognition net's forward alone, to compare two checkouts run one
-- after the other (alternate them a few times: the machine's speed drifts).
-- Prints the best ms per face of seven windows of 0.15 s at batch B
-- (default 1), SIAMESE_THREADS threads (default 2):
--   make && LUA_PATH_5_4="./lua/?.lua;./lua/?/init.lua;;" LUA_CPATH_5_4="./build/?.so;;" \
--     lua5.4 spec/bench/face_forward.lua [B]
local siamese = require "siamese"

siamese.set_num_threads(tonumber(os.getenv("SIAMESE_THREADS") or "") or 2)
local B = tonumber(arg[1] or "1")
local net = assert(require("siamese.face.recognition").load()).net
siamese.manual_seed(1)
local x = siamese.tensor.randn{B, 3, 150, 150}
for _ = 1, 10 do net:forward(x) end
local best = math.huge
for _ = 1, 7 do
  local n, t0 = 0, siamese.clock()
  repeat
    net:forward(x)
    n = n + 1
  until siamese.clock() - t0 >= 0.15
  best = math.min(best, (siamese.clock() - t0) / n)
end
io.write(string.format("%.3f\n", best * 1000 / B))
