-- Load check of the web demo (`make bench` runs it): `siamese serve` in a
-- subprocess, 200 POST /api/verify requests from this process over
-- loopback with at most 4 in flight. Every answer must be a 200 with the
-- verdict and distance that the same app gives in-process, and the server
-- must still answer afterwards. Prints JSON lines:
--   web_verify_p50_ms / web_verify_p99_ms: client-side latency; baseline =
--     one verify handled in-process by the same app (decode, detect, embed,
--     draw, JSON; no HTTP), ratio = latency / baseline. The server runs one
--     request at a time, so with 4 in flight the ideal p50 ratio is ~4.
--   web_verify_ms_per_request: wall time / requests (ideal ratio 1; the
--     excess is HTTP, multipart and the client's own work on 2 vCPUs).
--   web_verify_in_process_ms: the baseline (mean of before and after the load).
--   web_verify_correct: requests answered correctly (of 200), and
--     web_server_alive_after_load (1 = yes).
local web = dofile("spec/web_support.lua")
local siamese = require "siamese"
local json = require "siamese.json"
local multipart = require "siamese.web.multipart"
local server = require "siamese.web.server"
local cqueues = require "cqueues"

local N, IN_FLIGHT = tonumber(os.getenv("WEB_REQUESTS") or "") or 200, 4
local bench = dofile("spec/bench/support.lua")
local threads = bench.threads
siamese.set_num_threads(threads)

local emit = bench.emit
-- Pairs of photos (same person and different people) and their bodies.
-- (photos whose face passes the door's quality gate: detected at score 0.5)
local people = {{"Colin_Powell", 3, 4}, {"Tony_Blair", 1, 2}, {"Serena_Williams", 1, 2}, {"Junichiro_Koizumi", 1, 3}}
local pairs_ = {}
for i, p in ipairs(people) do
  local q = people[i % #people + 1]
  for _, pair in ipairs{{web.photo(p[1], p[2]), web.photo(p[1], p[3])}, {web.photo(p[1], p[3]), web.photo(q[1], q[2])}} do
    local body, ct = multipart.encode{image1 = web.file(pair[1]), image2 = web.file(pair[2])}
    pairs_[#pairs_ + 1] = {body = body, ct = ct, name = pair[1]:match("[^/]*$") .. " vs " .. pair[2]:match("[^/]*$")}
  end
end

-- The reference: the same app in this process, which also gives the
-- expected answer of every pair.
local tmp = os.tmpname()
os.remove(tmp)
local app = assert(server.new{gallery = tmp})
for _, p in ipairs(pairs_) do
  local status, body = app:handle{method = "POST", path = "/api/verify", content_type = p.ct, body = p.body}
  assert(status == 200, body)
  p.expected = json.decode(body)
end
-- ms per in-process verify, over every pair at least once and >= 3 s.
local function reference_ms()
  local reps, t0 = 0, siamese.clock()
  repeat
    local p = pairs_[reps % #pairs_ + 1]
    app:handle{method = "POST", path = "/api/verify", content_type = p.ct, body = p.body}
    reps = reps + 1
  until reps >= #pairs_ and siamese.clock() - t0 >= 3
  return (siamese.clock() - t0) / reps * 1000
end
-- measured before and after the load (the mean is the baseline), since a
-- shared machine's speed drifts during the minutes of the run
local ref_before = reference_ms()

local srv = web.start("--quiet --gallery " .. tmp)
local http_request = require "http.request"
local latencies, correct, failures = {}, 0, {}
local next_i, done = 1, 0
local cq = cqueues.new()
local wall0 = cqueues.monotime()
for _ = 1, IN_FLIGHT do
  cq:wrap(function()
    while next_i <= N do
      local i = next_i
      next_i = next_i + 1
      local p = pairs_[(i - 1) % #pairs_ + 1]
      local req = http_request.new_from_uri(srv.url .. "/api/verify")
      req.headers:upsert(":method", "POST")
      req.headers:upsert("content-type", p.ct)
      req:set_body(p.body)
      local t = cqueues.monotime()
      local headers, stream = req:go(120)
      local raw = headers and stream:get_body_as_string(120)
      latencies[#latencies + 1] = (cqueues.monotime() - t) * 1000
      local r = raw and json.decode(raw)
      if headers and headers:get(":status") == "200" and r and r.same == p.expected.same
         and math.abs(r.distance - p.expected.distance) < 1e-3 then
        correct = correct + 1
      else
        failures[#failures + 1] = p.name .. ": " .. tostring(headers and headers:get(":status")) .. " " .. tostring(raw or stream):sub(1, 200)
      end
      done = done + 1
      if done % 50 == 0 then
        io.stderr:write(("bench_web: %d/%d requests, %.1f req/s\n"):format(done, N, done / (cqueues.monotime() - wall0)))
      end
    end
  end)
end
local ok, err = cq:loop()
local wall_ms = (cqueues.monotime() - wall0) * 1000
local alive = srv.alive() and web.request("GET", srv.url .. "/api/people") == 200
srv.stop()
local ref_after = reference_ms()
local ref_ms = (ref_before + ref_after) / 2
os.remove(tmp)
assert(ok, err)
for _, f in ipairs(failures) do io.stderr:write("bench_web: wrong answer: ", f, "\n") end

table.sort(latencies)
local function pct(q) return latencies[math.max(1, math.ceil(q * #latencies))] end
local function r3(x) return math.floor(x * 1000 + 0.5) / 1000 end
emit{name = "web_verify_p50_ms", value = r3(pct(0.5)), unit = "ms", baseline = r3(ref_ms),
     ratio = r3(pct(0.5) / ref_ms), in_flight = IN_FLIGHT, requests = N}
emit{name = "web_verify_p99_ms", value = r3(pct(0.99)), unit = "ms", baseline = r3(ref_ms),
     ratio = r3(pct(0.99) / ref_ms), in_flight = IN_FLIGHT, requests = N}
emit{name = "web_verify_ms_per_request", value = r3(wall_ms / N), unit = "ms", baseline = r3(ref_ms),
     ratio = r3(wall_ms / N / ref_ms), in_flight = IN_FLIGHT, requests = N}
emit{name = "web_verify_in_process_ms", value = r3(ref_ms), unit = "ms", before = r3(ref_before), after = r3(ref_after)}
emit{name = "web_verify_correct", value = correct, unit = "requests", requests = N}
emit{name = "web_server_alive_after_load", value = alive and 1 or 0, unit = "bool"}
if correct ~= N or not alive then os.exit(1) end
