-- `siamese serve` with its worker processes (siamese.app.web.workers): the
-- face routes run side by side in pre-forked workers while the front
-- answers GET /api/people itself, refuses oversized images before
-- dispatch, replaces a killed worker, and leaves no worker behind on
-- SIGTERM. Started as a subprocess with --workers 2 --threads 1.
local web = dofile("spec/web_support.lua")
local cqueues = require "cqueues"
local image = require "siamese.image"
local multipart = require "siamese.app.web.multipart"
local http_request = require "http.request"
local json = require "siamese.json"

local TONY, COLIN = "Tony_Blair", "Colin_Powell"

-- Runs the functions as coroutines of one cqueues loop; re-raises the
-- first error.
local function together(fns)
  local cq = cqueues.new()
  local err
  for _, fn in ipairs(fns) do
    cq:wrap(function()
      local ok, e = pcall(fn)
      if not ok and not err then err = e end
    end)
  end
  local ok, lerr = cq:loop()
  if err then error(err, 0) end
  assert(ok, lerr)
end

-- One request from inside a cqueues coroutine: status, decoded JSON.
local function post(url, body, ct, timeout)
  local req = http_request.new_from_uri(url)
  req.headers:upsert(":method", body and "POST" or "GET")
  if body then
    req.headers:upsert("content-type", ct)
    req:set_body(body)
  end
  local headers, stream = req:go(timeout or 120)
  assert(headers, "request failed: " .. tostring(stream))
  local raw = assert(stream:get_body_as_string(timeout or 120))
  return tonumber(headers:get(":status")), json.decode(raw)
end

local function workers_of(srv)
  local line = web.read_file(srv.out) or ""
  local list = {}
  for pid in (line:match("workers ([%d ]+)[;)]") or ""):gmatch("%d+") do list[#list + 1] = tonumber(pid) end
  table.sort(list)
  return list
end

local function threads_of(pid)
  return tonumber((web.read_file("/proc/" .. pid .. "/status") or ""):match("Threads:%s*(%d+)"))
end

local function wait_until(cond, seconds)
  local deadline = cqueues.monotime() + seconds
  while cqueues.monotime() < deadline do
    if cond() then return true end
    os.execute("sleep 0.1")
  end
  return cond()
end

describe("siamese serve with worker processes", function()
  local srv, dir, verify_body, verify_ct, big_body, big_ct

  setup(function()
    local p = assert(io.popen("mktemp -d /tmp/siamese_workers.XXXXXX"))
    dir = p:read("l")
    p:close()
    -- 800x800 photos: the face work outweighs HTTP in the speed-up test
    local function scaled(i)
      local data = assert(assert(image.load(web.photo(TONY, i))):resize(800, 800):encode("jpeg"))
      return {data = data, filename = "t" .. i .. ".jpg", content_type = "image/jpeg"}
    end
    verify_body, verify_ct = multipart.encode{image1 = scaled(1), image2 = scaled(2)}
    -- a 2000x2000 photo (4 MP): its identify takes a while in a worker
    local img = assert(image.load(web.photo(TONY, 1)))
    local big = assert(img:resize(2000, 2000):encode("jpeg"))
    big_body, big_ct = multipart.encode{image = {data = big, filename = "big.jpg", content_type = "image/jpeg"}}
    srv = web.start(("--quiet --workers 2 --threads 1 --max-pixels 5000000 --gallery %s/g.gallery"):format(dir))
  end)

  teardown(function()
    if srv then srv.stop() end
    if dir then os.execute("rm -rf '" .. dir .. "'") end
  end)

  it("forks its workers and runs no thread pool in the front", function()
    local pids = workers_of(srv)
    assert.are.equal(2, #pids)
    assert.are.same(pids, web.children(srv.pid))
    assert.are.equal(200, (web.request("POST", srv.url .. "/api/verify",
      {image1 = web.file(web.photo(TONY, 1)), image2 = web.file(web.photo(TONY, 2))})))
    assert.are.equal(1, threads_of(srv.pid)) -- no OpenMP/OpenBLAS thread: it can fork again safely
  end)

  -- Not a timing test (speed is for make bench): while 4 verifies are in
  -- flight, /proc is sampled; a sample where both workers are running
  -- (state R, not asleep on their socket) shows they compute side by side,
  -- and each worker's CPU time grows (both get requests).
  it("computes concurrent requests side by side", function()
    local pids = workers_of(srv)
    local function state(pid) return (web.read_file("/proc/" .. pid .. "/stat") or ""):match("%) (%S)") end
    local cpu0 = {}
    for i, pid in ipairs(pids) do cpu0[i] = web.cpu_seconds(pid) end
    local n, next_i, running = 12, 1, 4
    local both, samples = 0, 0
    local fns = {}
    for _ = 1, 4 do
      fns[#fns + 1] = function()
        while next_i <= n do
          next_i = next_i + 1
          local s = post(srv.url .. "/api/verify", verify_body, verify_ct)
          assert.are.equal(200, s)
        end
        running = running - 1
      end
    end
    fns[#fns + 1] = function()
      while running > 0 do
        samples = samples + 1
        if state(pids[1]) == "R" and state(pids[2]) == "R" then both = both + 1 end
        cqueues.sleep(0.005)
      end
    end
    together(fns)
    assert.is_true(both > 0, ("both workers running in none of %d samples"):format(samples))
    for i, pid in ipairs(pids) do
      assert.is_true(web.cpu_seconds(pid) > cpu0[i], "worker " .. pid .. " computed nothing")
    end
  end)

  it("lists the people and refuses oversized images at once while the workers are busy", function()
    -- not timed (speed is for make bench): behind the queue, an answer
    -- would wait for at least two identifies to finish (the two queued
    -- ones each need a worker first); answered by the front, it waits for
    -- none (at most one may finish meanwhile)
    local done, done_at_people, done_at_big, statuses = 0, nil, nil, {}
    local huge = assert(image.load(web.photo(TONY, 1))):resize(2500, 2500):encode("jpeg") -- 6.25 MP > 5 MP
    local huge_body, huge_ct = multipart.encode{image = {data = huge, filename = "huge.jpg", content_type = "image/jpeg"}}
    local fns = {}
    for i = 1, 4 do
      fns[i] = function()
        statuses[i] = post(srv.url .. "/api/identify", big_body, big_ct)
        done = done + 1
      end
    end
    fns[5] = function()
      cqueues.sleep(0.3) -- the identifies are in flight (2 computing, 2 queued)
      local before = done
      local s, r = post(srv.url .. "/api/people", nil, nil, 5)
      done_at_people = done - before
      assert.are.equal(200, s)
      assert.is_number(r.count)
      before = done
      s, r = post(srv.url .. "/api/identify", huge_body, huge_ct, 5)
      done_at_big = done - before
      assert.are.equal(413, s)
      assert.matches("image: image too large", r.error, 1, true)
      assert.matches("2500x2500", r.error, 1, true)
    end
    together(fns)
    for i = 1, 4 do assert.is_true(statuses[i] == 200 or statuses[i] == 422, "identify " .. i .. ": " .. tostring(statuses[i])) end
    assert.is_true(done_at_people <= 1, done_at_people .. " identifies finished while GET /api/people waited")
    assert.is_true(done_at_big <= 1, done_at_big .. " identifies finished while the oversized image's 413 waited")
  end)

  it("shows an enrolment made through one worker to identifies served by the others", function()
    local s, r = web.request("POST", srv.url .. "/api/enroll", {name = "Colin", image = web.file(web.photo(COLIN, 3))})
    assert.are.equal(200, s, r and r.error)
    local body, ct = multipart.encode{image = web.file(web.photo(COLIN, 4))}
    local found = {}
    local fns = {}
    for i = 1, 6 do
      fns[i] = function()
        local st, res = post(srv.url .. "/api/identify", body, ct)
        assert.are.equal(200, st)
        found[i] = res.faces[1].name
      end
    end
    together(fns) -- 6 at once on 2 workers: both serve some
    for i = 1, 6 do assert.are.equal("Colin", found[i], "identify " .. i) end
    local _, people = web.request("GET", srv.url .. "/api/people")
    assert.are.equal(1, people.count)
  end)

  it("replaces a killed worker and keeps answering", function()
    local before = web.children(srv.pid)
    assert.are.equal(2, #before)
    local victim = before[1]
    os.execute("kill -9 " .. victim)
    assert.is_true(wait_until(function()
      local now = web.children(srv.pid, true)
      return #now == 2 and now[1] ~= victim and now[2] ~= victim
    end, 10), "a replacement worker, the dead one reaped")
    for _ = 1, 3 do
      local s = web.request("POST", srv.url .. "/api/verify",
        {image1 = web.file(web.photo(TONY, 1)), image2 = web.file(web.photo(TONY, 2))})
      assert.are.equal(200, s)
    end
    assert.is_false(web.exists(victim))
    assert.are.equal(2, #web.children(srv.pid))
  end)

  it("stops every worker on SIGTERM", function()
    local kids = web.children(srv.pid)
    assert.are.equal(2, #kids)
    os.execute("kill -TERM " .. srv.pid)
    assert.is_true(wait_until(function() return not web.exists(srv.pid) end, 10), "the front exits")
    for _, pid in ipairs(kids) do assert.is_false(web.exists(pid), "worker " .. pid .. " survived the front") end
    srv.stop()
    srv = nil
  end)
end)

describe("siamese serve --workers", function()
  it("refuses a bad worker count", function()
    for _, v in ipairs{"0", "17", "1.5", "x"} do
      local code, err = web.run_failing("--gallery /tmp/none.gallery --workers " .. v)
      assert.are_not.equal(0, code)
      assert.matches("--workers", err, 1, true)
    end
  end)

  it("gives the worker pids in its --json start line", function()
    local dir = os.tmpname()
    os.remove(dir)
    local out = os.tmpname()
    local p = assert(io.popen(("exec bin/siamese serve --port 0 --json --quiet --workers 1 --gallery %s.gallery >%s 2>/dev/null & echo $!")
      :format(dir, out)))
    local pid = tonumber(p:read("l"))
    p:close()
    local doc
    wait_until(function()
      local line = (web.read_file(out) or ""):match("^[^\n]*\n")
      doc = line and json.decode(line)
      return doc ~= nil
    end, 60)
    local kids = web.children(pid)
    os.execute("kill " .. pid)
    wait_until(function() return not web.exists(pid) end, 10)
    os.remove(out)
    assert.is_table(doc)
    assert.are.same(kids, doc.workers)
    for _, w in ipairs(kids) do assert.is_false(web.exists(w)) end
  end)
end)
