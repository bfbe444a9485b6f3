-- Load check of the web demo (`make bench` runs it): `siamese serve` in a
-- subprocess (its default worker processes, one per core, at least 2)
-- and verify requests from this process over loopback: first one at a
-- time (N/4 of them, at least 8), then N (WEB_REQUESTS, default 96) with 4
-- in flight while a second client lists the people (GET /api/people)
-- every 100 ms. Every answer must be a 200 with the verdict and distance
-- that the same app gives in-process. Prints JSON lines:
--   web_verify_1_in_flight: requests/s one at a time; p50_ms is the
--     single-request latency, ratio = it / one in-process verify.
--   web_verify_4_in_flight: requests/s with 4 in flight, ratio = that /
--     requests/s with 1 in flight (target >= 1.5).
--   web_verify_p99_4_in_flight_ms: p99 latency with 4 in flight, ratio = it
--     / the single-request latency (target <= 3).
--   web_people_under_load_ms: GET /api/people latency while the verifies
--     run (p50; max_ms, p99_ms).
--   web_verify_in_process_ms: one verify handled in-process by the same app
--     (decode, detect, embed, draw, JSON; mean of before and after).
--   web_verify_correct, web_server_alive_after_load (1 = yes).
local web = dofile("spec/web_support.lua")
local siamese = require "siamese"
local json = require "siamese.json"
local multipart = require "siamese.app.web.multipart"
local server = require "siamese.app.web.server"
local cqueues = require "cqueues"

local N, IN_FLIGHT = tonumber(os.getenv("WEB_REQUESTS") or "") or 96, 4
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

-- The server as `make bench` starts it (default --workers: one per core,
-- at least 2), deployed as it should be: with access tokens (a door token
-- verifies, an admin token lists the people), each call checked and
-- written to the audit log. Two phases on the same server: requests one at
-- a time, then 4 in flight while a second client lists the people every
-- 100 ms.
local DOOR, ADMIN = web.bearer(web.add_token(tmp, "door")), web.bearer(web.add_token(tmp, "admin"))
local srv = web.start("--quiet --gallery " .. tmp)
local http_request = require "http.request"
local correct, failures, total = 0, {}, 0

local function verify_once(p)
  local req = http_request.new_from_uri(srv.url .. "/api/verify")
  req.headers:upsert(":method", "POST")
  req.headers:upsert("content-type", p.ct)
  req.headers:upsert("authorization", DOOR.authorization)
  req:set_body(p.body)
  local t = cqueues.monotime()
  local headers, stream = req:go(120)
  local raw = headers and stream:get_body_as_string(120)
  local ms = (cqueues.monotime() - t) * 1000
  local r = raw and json.decode(raw)
  total = total + 1
  if headers and headers:get(":status") == "200" and r and r.accepted == p.expected.accepted
     and math.abs(r.distance - p.expected.distance) < 1e-3 then
    correct = correct + 1
  else
    failures[#failures + 1] = p.name .. ": " .. tostring(headers and headers:get(":status")) .. " " .. tostring(raw or stream):sub(1, 200)
  end
  return ms
end

-- n verifies with `in_flight` clients; returns sorted latencies, wall ms,
-- and the people-list latencies measured meanwhile (when list = true).
local function phase(n, in_flight, list)
  local lat, people = {}, {}
  local next_i, running = 1, in_flight
  local cq = cqueues.new()
  local wall0 = cqueues.monotime()
  for _ = 1, in_flight do
    cq:wrap(function()
      while next_i <= n do
        local i = next_i
        next_i = next_i + 1
        lat[#lat + 1] = verify_once(pairs_[(i - 1) % #pairs_ + 1])
      end
      running = running - 1
    end)
  end
  if list then
    cq:wrap(function()
      cqueues.sleep(0.05)
      while running > 0 do
        local t = cqueues.monotime()
        local status = web.request("GET", srv.url .. "/api/people", nil, nil, 120, ADMIN)
        people[#people + 1] = (cqueues.monotime() - t) * 1000
        assert(status == 200, "GET /api/people: " .. tostring(status))
        cqueues.sleep(0.1)
      end
    end)
  end
  local ok, err = cq:loop()
  assert(ok, err)
  local wall = (cqueues.monotime() - wall0) * 1000
  table.sort(lat)
  table.sort(people)
  return lat, wall, people
end

local function pct(t, q) return t[math.max(1, math.ceil(q * #t))] end
local function r3(x) return math.floor(x * 1000 + 0.5) / 1000 end

phase(2 * IN_FLIGHT, IN_FLIGHT) -- warm-up: every worker has run once
local n1 = math.max(8, N // 4)
local lat1, wall1 = phase(n1, 1)
local lat4, wall4, people = phase(N, IN_FLIGHT, true)
local single = pct(lat1, 0.5)
local tput1, tput4 = n1 / wall1 * 1000, N / wall4 * 1000
local alive = srv.alive() and web.request("GET", srv.url .. "/api/people", nil, nil, 120, ADMIN) == 200
srv.stop()
for _, ext in ipairs{".tokens", ".audit", ".lock"} do os.remove(tmp .. ext) end
local ref_after = reference_ms()
local ref_ms = (ref_before + ref_after) / 2
os.remove(tmp)
for _, f in ipairs(failures) do io.stderr:write("bench_web: wrong answer: ", f, "\n") end

emit{name = "web_verify_1_in_flight", value = r3(tput1), unit = "req/s", p50_ms = r3(single),
     p99_ms = r3(pct(lat1, 0.99)), requests = n1, in_process_ms = r3(ref_ms),
     ratio = r3(single / ref_ms), ratio_name = "p50 / one in-process verify"}
emit{name = "web_verify_4_in_flight", value = r3(tput4), unit = "req/s", p50_ms = r3(pct(lat4, 0.5)),
     p99_ms = r3(pct(lat4, 0.99)), requests = N, baseline = r3(tput1),
     baseline_name = "req/s with 1 in flight", ratio = r3(tput4 / tput1), target = ">= 1.5"}
emit{name = "web_verify_p99_4_in_flight_ms", value = r3(pct(lat4, 0.99)), unit = "ms", baseline = r3(single),
     baseline_name = "p50 latency with 1 in flight", ratio = r3(pct(lat4, 0.99) / single), target = "<= 3"}
emit{name = "web_people_under_load_ms", value = r3(pct(people, 0.5)), unit = "ms", max_ms = r3(people[#people]),
     p99_ms = r3(pct(people, 0.99)), requests = #people, in_flight = IN_FLIGHT}
emit{name = "web_verify_in_process_ms", value = r3(ref_ms), unit = "ms", before = r3(ref_before), after = r3(ref_after)}
emit{name = "web_verify_correct", value = correct, unit = "requests", requests = total}
emit{name = "web_server_alive_after_load", value = alive and 1 or 0, unit = "bool"}
if correct ~= total or not alive then os.exit(1) end
