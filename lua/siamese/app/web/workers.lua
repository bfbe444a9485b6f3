--- siamese.app.web.workers: pre-forked worker processes for `siamese serve`.
--
--   local pool = workers.new{count = 2, threads = 1, make_app = function() return server.new{...} end}
--   assert(pool:start())                        -- forks, waits until each is ready
--   -- inside the cqueues loop of siamese.app.web.listener:
--   local status, body, ctype, allow = pool:request(req)
--   pool:shutdown()                             -- TERM, reap (KILL after a grace)
--
-- The front (the process that listens) forks the workers before it loads
-- any model or runs any kernel: the OpenMP and OpenBLAS thread pools do not
-- survive fork, so the front never starts them (it only reads gallery files
-- and image headers). Each worker sets its thread count, builds its app
-- (make_app: the models and the gallery), answers "ready" and then loops,
-- blocking: read a request frame from its end of a UNIX socketpair,
-- app:handle it, write the reply frame. A frame is a 4-byte big-endian
-- length and the bytes (siamese.core.process.read_frame/write_frame on the
-- worker side; cqueues on the front's side, so the front never blocks).
--
-- The front gives a request to a free worker; while all are busy it waits
-- in a FIFO queue (at most max_queue requests, beyond that a 503 JSON). A
-- worker that dies (or sends garbage) is reaped and replaced by the
-- monitor (pool:monitor(), a coroutine of the loop, every 0.2 s); the
-- request it was computing gets a 503 JSON.
local core = require "siamese.core"
local P = core.process

local workers = {}

workers.DEFAULT_MAX_QUEUE = 64
workers.MAX_WORKERS = 16
workers.REPLY_TIMEOUT = 300 -- seconds a worker may take over one request
local RESTART_DELAY = 1     -- seconds between restarts of a worker that failed to start

-- ---- frames ---------------------------------------------------------------

--- The request frame: method, path, content type, body and headers
-- ({name = {values}}, as siamese.app.web.http1 gives them).
function workers.encode_request(req)
  local out = {string.pack(">s4s4s4s4", req.method or "", req.path or "", req.content_type or "", req.body or "")}
  local names = {}
  for name, values in pairs(req.headers or {}) do
    if type(name) == "string" then names[#names + 1] = name end
    if type(values) == "string" then req.headers[name] = {values} end
  end
  table.sort(names)
  out[#out + 1] = string.pack(">I4", #names)
  for _, name in ipairs(names) do
    local values = req.headers[name]
    out[#out + 1] = string.pack(">s4I4", name, #values)
    for _, v in ipairs(values) do out[#out + 1] = string.pack(">s4", tostring(v)) end
  end
  return table.concat(out)
end

function workers.decode_request(frame)
  local method, path, ctype, body, n, pos = string.unpack(">s4s4s4s4I4", frame)
  local headers = {}
  for _ = 1, n do
    local name, k
    name, k, pos = string.unpack(">s4I4", frame, pos)
    local values = {}
    for j = 1, k do values[j], pos = string.unpack(">s4", frame, pos) end
    headers[name] = values
  end
  return {method = method, path = path, content_type = ctype ~= "" and ctype or nil, body = body, headers = headers}
end

--- The reply frame: status, body, content type, allowed methods and the
-- audit events (siamese.app.web.server's App:handle), the events as JSON.
function workers.encode_reply(status, body, ctype, allow, events)
  local json = require "siamese.json"
  local ev = json.encode(json.array(events or {}))
  return string.pack(">I4s4s4s4s4", status, body or "", ctype or "", allow or "", ev)
end

function workers.decode_reply(frame)
  local status, body, ctype, allow, ev = string.unpack(">I4s4s4s4s4", frame)
  local events = require("siamese.json").decode(ev)
  assert(type(events) == "table", "bad events in a reply frame")
  for _, e in ipairs(events) do
    assert(type(e) == "table", "bad event in a reply frame")
    for k, v in pairs(e) do if v == require("siamese.json").null then e[k] = nil end end
  end
  return status, body, ctype, allow ~= "" and allow or nil, events
end

local function json_error(status, message)
  return status, require("siamese.json").encode{error = message}, "application/json"
end
workers.json_error = json_error

-- ---- the worker side ------------------------------------------------------

-- Runs in the child: never returns.
local function worker_main(fd, make_app, threads, log)
  local ok, err = pcall(function()
    local siamese = require "siamese"
    siamese.set_num_threads(threads)
    local aok, app, aerr = pcall(make_app)
    if not aok or not app then
      P.write_frame(fd, "E" .. tostring(aok and aerr or app))
      P.exit_now(1)
    end
    app.log = log
    assert(P.write_frame(fd, "R" .. P.getpid()))
    while true do
      local frame = P.read_frame(fd)
      if not frame then break end -- the front closed its end (or died)
      local dok, req = pcall(workers.decode_request, frame)
      local reply
      if not dok then
        reply = workers.encode_reply(json_error(500, "internal error: bad request frame"))
      else
        local hok, status, body, ctype, allow, events = pcall(app.handle, app, req)
        if not hok then status, body, ctype = json_error(500, "internal error: " .. tostring(status)) end
        reply = workers.encode_reply(status, body, ctype, allow, hok and events or nil)
      end
      if not P.write_frame(fd, reply) then break end
    end
  end)
  if not ok then pcall(log, "worker " .. P.getpid() .. ": " .. tostring(err)) end
  P.exit_now(ok and 0 or 1)
end

-- ---- the front side -------------------------------------------------------

--- A stand-in recognizer for the front's app (GET / and /api/people): the
-- model id, descriptor size and metric siamese.face.load would give for
-- opts.pipeline ("faceapi" | "mobilefacenet", default
-- siamese.face.DEFAULT_MODEL; the weights' SHA-256 and the alignment, read
-- without loading any network) and methods that raise. opts: models_dir,
-- align (faceapi), flip (mobilefacenet, default true). Returns it, or nil
-- and a message.
function workers.front_recognizer(opts)
  opts = opts or {}
  local dir = opts.models_dir or require("siamese.models").dir()
  local pipeline = opts.pipeline or require("siamese.face").DEFAULT_MODEL
  local fr
  if pipeline == "mobilefacenet" then
    local mfn = require "siamese.face.mobilefacenet"
    local flip = opts.flip
    if flip == nil then flip = mfn.DEFAULT_FLIP end
    local id, err = mfn.model_id(dir, flip)
    if not id then return nil, err end
    fr = {model_id = id, dim = mfn.DIM, metric = "cosine"}
  elseif pipeline == "faceapi" then
    local digest, err = require("siamese.hash").file_sha256(dir .. "/faceapi_recognition.safetensors")
    if not digest then return nil, err end
    fr = {model_id = "faceapi_recognition:" .. digest:sub(1, 16) .. "/" .. (opts.align or "dlib"), dim = 128,
          metric = "euclidean"}
  else
    error("front_recognizer: pipeline must be 'faceapi' or 'mobilefacenet', got " .. tostring(pipeline), 2)
  end
  return setmetatable(fr, {__index = function(_, k)
    return function() error("the front process computes no faces (" .. tostring(k) .. ")", 2) end
  end})
end

local Pool = {}
Pool.__index = Pool

--- opts: count (workers, >= 1), threads (per worker, >= 1), make_app
-- (function() -> app | nil, message; run in each worker), max_queue
-- (default 64), log (function(line)), reply_timeout (seconds, default 300).
function workers.new(opts)
  assert(type(opts.make_app) == "function", "workers.new: make_app must be a function")
  local count = math.tointeger(opts.count)
  assert(count and count >= 1 and count <= workers.MAX_WORKERS, "workers.new: count must be 1..16")
  return setmetatable({
    count = count, threads = math.max(1, math.tointeger(opts.threads) or 1), make_app = opts.make_app,
    max_queue = opts.max_queue or workers.DEFAULT_MAX_QUEUE, log = opts.log or function() end,
    reply_timeout = opts.reply_timeout or workers.REPLY_TIMEOUT,
    slots = {}, free = {}, queue = {}, stopped = false,
  }, Pool)
end

-- Forks one worker; returns {pid, fd} or nil, message.
function Pool:fork()
  local a, b = P.socketpair()
  if not a then return nil, b end
  io.stdout:flush()
  io.stderr:flush()
  local pid, err = P.fork(b)
  if not pid then
    P.close(a)
    P.close(b)
    return nil, err
  end
  if pid == 0 then worker_main(b, self.make_app, self.threads, self.log) end
  P.close(b)
  return {pid = pid, fd = a}
end

--- Forks the workers and waits (blocking: call before the loop runs) until
-- each has built its app. Returns true, or nil and the first worker's
-- error (the workers are then stopped).
function Pool:start()
  for i = 1, self.count do
    local w, err = self:fork()
    if not w then self:shutdown() return nil, "cannot start a worker: " .. tostring(err) end
    self.slots[i] = w
  end
  for _, w in ipairs(self.slots) do
    local hello, err = P.read_frame(w.fd, 65536)
    if not hello or hello:sub(1, 1) ~= "R" then
      local msg = hello and hello:sub(2) or ("worker " .. w.pid .. " exited while starting (" .. tostring(err) .. ")")
      self:shutdown()
      return nil, msg
    end
  end
  for _, w in ipairs(self.slots) do
    self:attach(w)
    self:release(w)
  end
  return true
end

function Pool:attach(w)
  local socket = require "cqueues.socket"
  w.sock = socket.fdopen(w.fd) -- owns the descriptor from now on
  w.sock:setmode("b", "b")
  w.sock:onerror(function(_, _, why) return why end)
end

--- The workers' pids (a list).
function Pool:pids()
  local t = {}
  for _, w in ipairs(self.slots) do if not w.dead then t[#t + 1] = w.pid end end
  return t
end

-- A worker for a request: a free one, else a turn in the queue (nil when
-- the queue is full).
function Pool:acquire()
  local w = table.remove(self.free, 1)
  if w then return w end
  if #self.queue >= self.max_queue then return nil end
  local condition = require "cqueues.condition"
  local turn = {cond = condition.new()}
  self.queue[#self.queue + 1] = turn
  while not turn.worker and not self.stopped do turn.cond:wait() end
  return turn.worker
end

function Pool:release(w)
  if w.dead or self.stopped then return end
  local turn = table.remove(self.queue, 1)
  if turn then
    turn.worker = w
    turn.cond:signal()
  else
    self.free[#self.free + 1] = w
  end
end

-- A worker that failed: closed and killed; the monitor reaps and replaces it.
function Pool:retire(w, why)
  if w.dead then return end
  w.dead = true
  for i, f in ipairs(self.free) do if f == w then table.remove(self.free, i) break end end
  if w.sock then pcall(w.sock.close, w.sock) elseif w.fd then pcall(P.close, w.fd) end
  P.kill(w.pid, "KILL")
  self.log(("worker %d retired: %s"):format(w.pid, why))
end

local function read_frame(sock, timeout)
  local head, err = sock:xread(4, "b", timeout)
  if not head or #head < 4 then return nil, err or "end of file" end
  local len = string.unpack(">I4", head)
  if len == 0 then return "" end
  local body, berr = sock:xread(len, "b", timeout)
  if not body or #body < len then return nil, berr or "truncated frame" end
  return body
end

--- Computes a request on a worker (call from a cqueues coroutine): status,
-- body, content type, allow, audit events. 503 JSON when the queue is full
-- or the worker died meanwhile.
function Pool:request(req)
  local w = self:acquire()
  if not w then
    return json_error(503, ("server busy: %d requests are waiting; retry later"):format(#self.queue))
  end
  local frame = workers.encode_request(req)
  local ok, err = w.sock:xwrite(string.pack(">I4", #frame) .. frame, "n", self.reply_timeout)
  local reply
  if ok then reply, err = read_frame(w.sock, self.reply_timeout) end
  if not reply then
    self:retire(w, "no reply (" .. tostring(err) .. ")")
    return json_error(503, "the worker computing this request stopped; retry")
  end
  local dok, status, body, ctype, allow, events = pcall(workers.decode_reply, reply)
  if not dok then
    self:retire(w, "bad reply frame")
    return json_error(503, "the worker computing this request failed; retry")
  end
  self:release(w)
  return status, body, ctype, allow, events
end

-- Reaps exited workers and forks replacements (one pass).
function Pool:check()
  for i, w in ipairs(self.slots) do
    local exited, code, how = P.waitpid(w.pid, true)
    if exited == nil then exited = true end -- not our child any more (ECHILD)
    if exited then
      if not w.dead then
        self:retire(w, ("exited (%s %s)"):format(tostring(how), tostring(code)))
      end
      if not self.stopped and (w.next_try or 0) <= os.time() then
        local nw, err = self:fork()
        if nw then
          nw.starting = true
          self.slots[i] = nw
          self.log(("worker %d replaces worker %d"):format(nw.pid, w.pid))
          self:attach(nw)
          self.on_start(nw)
        else
          self.log("cannot start a worker: " .. tostring(err))
          w.next_try = os.time() + RESTART_DELAY
        end
      end
    end
  end
end

--- The monitor: reaps and replaces dead workers every 0.2 s until
-- shutdown. spawn(fn) runs fn as a coroutine of the same loop (cq:wrap).
function Pool:monitor(spawn)
  local cqueues = require "cqueues"
  -- a replacement is ready when it says so (it loads the models meanwhile)
  self.on_start = function(w)
    spawn(function()
      local hello = read_frame(w.sock, self.reply_timeout)
      w.starting = nil
      if hello and hello:sub(1, 1) == "R" then
        self:release(w)
      else
        local why = hello and hello:sub(2) or "exited while starting"
        w.next_try = os.time() + RESTART_DELAY
        self:retire(w, why)
      end
    end)
  end
  spawn(function()
    while not self.stopped do
      self:check()
      cqueues.sleep(0.2)
    end
  end)
end

--- Stops every worker: SIGTERM, up to `grace` seconds (default 2) for them
-- to exit, then SIGKILL; all reaped. Idempotent.
function Pool:shutdown(grace)
  self.stopped = true
  for _, turn in ipairs(self.queue) do turn.cond:signal() end
  self.queue, self.free = {}, {}
  local live = {}
  for _, w in ipairs(self.slots) do
    if w.sock then pcall(w.sock.close, w.sock) elseif w.fd then pcall(P.close, w.fd) end
    w.sock, w.fd, w.dead = nil, nil, true
    if not w.reaped then
      P.kill(w.pid, "TERM")
      live[#live + 1] = w
    end
  end
  local core_clock = core.clock
  local deadline = core_clock() + (grace or 2)
  while #live > 0 do
    for i = #live, 1, -1 do
      local exited = P.waitpid(live[i].pid, true)
      if exited ~= false then live[i].reaped = true table.remove(live, i) end
    end
    if #live == 0 then break end
    if core_clock() >= deadline then
      for _, w in ipairs(live) do
        P.kill(w.pid, "KILL")
        P.waitpid(w.pid)
        w.reaped = true
      end
      break
    end
    require("cqueues").sleep(0.02) -- blocks the thread when not in a coroutine
  end
end

return workers
