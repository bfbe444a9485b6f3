--- siamese.app.web.listener: serves a siamese.app.web.server app over HTTP/1.1 on
-- a cqueues event loop (siamese.app.web.http1 reads the requests, with limits).
--
--   local l = assert(listener.start(app, {host = "127.0.0.1", port = 8080}))
--   print(l.host, l.port); l:loop()   -- until l:close()
--
-- Each connection is a cqueues coroutine: requests are read concurrently
-- (a slow client blocks only itself), each completely, within the limits
-- (siamese.app.web.http1: header count and bytes, request line, body of at most
-- app.max_upload bytes, idle and per-request timeouts). With a worker pool
-- (opts.pool), the face routes go to the workers and the rest is answered
-- here at once (see listener.start). Without one, the handlers
-- run one at a time behind a lock, so a handler never interleaves with
-- another (face inference does not yield anyway; the lock keeps the
-- gallery's load-modify-save safe should a handler ever yield). A refused
-- request gets {"error": message} with its 4xx status and the connection
-- is closed (after draining what the client still sends, for a while, so
-- the answer is not lost to a reset). Beyond max_connections simultaneous
-- connections, a new one gets a 503 {"error"} and is closed.
local deps = require "siamese.app.web.deps"
local server = require "siamese.app.web.server"
local http1 = require "siamese.app.web.http1"

local listener = {}

listener.DEFAULT_MAX_CONNECTIONS = 64

-- Sent with every answer: nothing is cached, sniffed, framed or leaks the
-- page's address; JSON answers may load nothing. The page gets its own
-- Content-Security-Policy (siamese.app.web.page.csp: its inline script and
-- style by hash). No Access-Control-* header is ever sent: other origins'
-- pages cannot read the API's answers.
local BASE_HEADERS = {{"cache-control", "no-store"}, {"x-content-type-options", "nosniff"},
                      {"x-frame-options", "DENY"}, {"referrer-policy", "no-referrer"}}
local API_CSP = "default-src 'none'; frame-ancestors 'none'"

--- Binds and returns the listener {host, port, loop, close}, or nil and a
-- message. opts: host (default 127.0.0.1), port (default 8080; 0 picks a
-- free one), log (function(line), called once per request and on errors),
-- max_connections (default 64), limits (fields of siamese.app.web.http1.DEFAULTS:
-- idle_timeout, request_timeout, max_headers, max_header_bytes,
-- max_request_line, max_chunks; max_body is app.max_upload), pool (a
-- started siamese.app.web.workers pool: the POST routes (server.WORKER_ROUTES)
-- are computed there, side by side, after their images' sizes are checked
-- here; the other routes are answered by app in this process), auth
-- ({tokens, open, allowed_hosts}: the siamese.app.web.guard options that
-- decide, before any handler, who may do what; default {open = true}: no
-- token needed, Host and Origin still checked), audit (a siamese.app.web.audit log: every API call
-- that passed the token check, and every valid token refused for its
-- role, is recorded with the caller's role, token id and address; when a
-- record cannot be written the answer is withheld: 500), tls (an
-- openssl.ssl.context from siamese.app.web.tls: the connections speak TLS).
function listener.start(app, opts)
  opts = opts or {}
  local ok, err = deps.setup()
  if not ok then return nil, err end
  local cqueues = require "cqueues"
  local socket = require "cqueues.socket"
  local condition = require "cqueues.condition"
  local ce = require "cqueues.errno"
  local monotime = cqueues.monotime
  local log = opts.log or function() end
  app.log = app.log or log
  local limits = {}
  for k, v in pairs(opts.limits or {}) do limits[k] = v end
  limits.max_body = app.max_upload
  local max_conn = opts.max_connections or listener.DEFAULT_MAX_CONNECTIONS

  -- With a worker pool (opts.pool, siamese.app.web.workers), the face routes
  -- run in the workers, side by side; this process (the front) answers the
  -- cheap routes itself and refuses oversized images before dispatch.
  local pool = opts.pool
  local image = require "siamese.image"
  local multipart = require "siamese.app.web.multipart"
  local guard_mod = require "siamese.app.web.guard"
  local page = require "siamese.app.web.page"
  local HEAVY = server.WORKER_ROUTES
  local audit_log = opts.audit
  local tls_ctx = opts.tls

  -- A 413 for an uploaded image over app.max_pixels (its header is probed;
  -- anything else is left for the worker to judge), or nil.
  local function too_large(req)
    local boundary = multipart.boundary(req.content_type)
    if not boundary then return nil end
    local fields = multipart.parse(req.body or "", boundary)
    if not fields then return nil end
    local names = {}
    for name in pairs(fields) do names[#names + 1] = name end
    table.sort(names)
    local limit = app.max_pixels or image.get_max_pixels()
    for _, name in ipairs(names) do
      local data = fields[name].data
      if #data >= 16 then
        local info = image.probe(data)
        if info and info.width * info.height > limit then
          return server.error_response(413, ("%s: image too large (%s: image size %dx%d (%d pixels) exceeds the limit of %d pixels (max_pixels))")
            :format(name, info.format, info.width, info.height, info.width * info.height, limit))
        end
      end
    end
    return nil
  end

  local function run_front(req)
    local ok2, status, body, ctype, allow, events = pcall(app.handle, app, req)
    if not ok2 then return server.error_response(500, "internal error: " .. tostring(status)) end
    return status, body, ctype, allow, events
  end

  local function dispatch(req)
    local path = (req.path or "/"):match("^[^?#]*")
    if req.method ~= "POST" or not HEAVY[path] then return run_front(req) end
    local s, b, c = too_large(req)
    if s then return s, b, c end
    local ok2, status, body, ctype, allow, events = pcall(pool.request, pool, req)
    if not ok2 then return server.error_response(500, "internal error: " .. tostring(status)) end
    return status, body, ctype, allow, events
  end

  local busy, turn = false, condition.new()
  local function run_locked(req)
    while busy do turn:wait() end
    busy = true
    local ok2, status, body, ctype, allow, events = pcall(app.handle, app, req)
    busy = false
    turn:signal(1)
    if not ok2 then return server.error_response(500, "internal error: " .. tostring(status)) end
    return status, body, ctype, allow, events
  end

  local guard -- made below from opts.auth, once the port is known

  local function answer(c, status, body, ctype, allow, head_only, close, extra)
    local h = {{"content-type", ctype}}
    for _, b in ipairs(BASE_HEADERS) do h[#h + 1] = b end
    h[#h + 1] = {"content-security-policy", ctype:find("^text/html") and page.csp or API_CSP}
    if tls_ctx then h[#h + 1] = {"strict-transport-security", "max-age=31536000"} end
    if allow then h[#h + 1] = {"allow", allow} end
    for _, x in ipairs(extra or {}) do h[#h + 1] = x end
    return c:write_response(status, h, body, head_only, close)
  end

  local function peer_of(sock)
    local _, addr, port = sock:peername()
    return tostring(addr), tostring(addr) .. ":" .. tostring(port)
  end

  -- The client's address for the audit log: the peer, or what a reverse
  -- proxy on a loopback address says it forwarded (X-Forwarded-For's last
  -- entry: the one the proxy added) "via" the proxy.
  local function client_of(req, addr)
    local xff = req.headers and req.headers["x-forwarded-for"]
    if xff and guard_mod.is_loopback(addr) then
      local last = tostring(xff[#xff]):match("([^,%s]+)%s*$")
      if last then return guard_mod.printable(last, 64) .. " via " .. addr end
    end
    return addr
  end

  -- Records the request's events; true, or nil and a message.
  local function record(events, who, client, status, action)
    if not audit_log then return true end
    if #events == 0 and action and status ~= 200 then
      events = {{action = action, accepted = false, detail = tostring(status)}}
    end
    for _, ev in ipairs(events) do
      ev.role, ev.token_id, ev.client = who.role, who.id, client
      local ok2, rerr = audit_log:record(ev)
      if not ok2 then return nil, rerr end
    end
    return true
  end

  local function serve_connection(sock)
    local addr, peer = peer_of(sock)
    if tls_ctx then
      local tok, terr = require("siamese.app.web.tls").wrap(sock, tls_ctx, limits.idle_timeout or http1.DEFAULTS.idle_timeout)
      if not tok then
        log(("%s TLS handshake failed: %s"):format(peer, tostring(terr)))
        sock:close()
        return
      end
    end
    local c = http1.connection(sock, limits)
    while true do
      local req, status, msg = c:read_request()
      if not req then
        if status then
          local s, body, ctype = server.error_response(status, msg)
          answer(c, s, body, ctype, nil, false, true)
          log(("%s refused: %d %s"):format(peer, status, msg))
          c:linger_close()
        else
          c:close()
        end
        return
      end
      local t0 = monotime()
      local method = req.method
      local r = {method = method == "HEAD" and "GET" or method, path = req.path,
                 content_type = req.content_type, body = req.body, headers = req.headers}
      local s, body, ctype, allow, events, extra
      local client = client_of(req, addr)
      -- check returns who and the action, or nil, status, message, headers
      -- and the token refused for its role
      local who, action, gmsg, gheaders, refused_who = guard:check(req, addr)
      if not who then
        local gstatus = action
        s, body, ctype = server.error_response(gstatus, gmsg)
        extra = gheaders
        local act = guard_mod.action_of(method, req.path)
        if refused_who and act then -- a valid token beyond its role: audited
          local rok, rerr = record({{action = act, accepted = false, detail = ("%d %s"):format(gstatus, gmsg)}},
                                   refused_who, client)
          if not rok then log("audit log: " .. tostring(rerr)) end
        end
        log(("%s refused %s %s: %d %s"):format(peer, method, guard_mod.printable(req.path), gstatus, gmsg))
      else
        if pool then
          s, body, ctype, allow, events = dispatch(r)
        else
          s, body, ctype, allow, events = run_locked(r)
        end
        local rok, rerr = record(events or {}, who, client, s, action)
        if not rok then
          log("audit log: " .. tostring(rerr))
          s, body, ctype = server.error_response(500, ("the audit log cannot be written, so the answer is withheld "
            .. "(a change may have been made: check the gallery): %s"):format(tostring(rerr)))
          allow = nil
        end
      end
      local close = not req.keep_alive or s >= 500
      local wok = answer(c, s, body, ctype, allow, method == "HEAD", close, extra)
      log(("%s %s %s %d %d bytes %.0f ms"):format(peer, method, guard_mod.printable(req.path), s, #body,
                                                 (monotime() - t0) * 1000))
      if not wok or close then c:close() return end
    end
  end

  local cq = cqueues.new()
  local srv = socket.listen{host = opts.host or "127.0.0.1", port = opts.port or 8080}
  srv:onerror(function(_, _, why) return why end)
  local lok, lerr = srv:listen()
  if not lok then
    srv:close()
    return nil, ("cannot listen on %s:%s: %s"):format(opts.host or "127.0.0.1", opts.port or 8080,
                                                      ce.strerror(lerr) or tostring(lerr))
  end
  local _, host, port = srv:localname()
  if not guard then
    local auth = opts.auth or {open = true}
    local gerr
    guard, gerr = guard_mod.new{tokens = auth.tokens, open = auth.open, allowed_hosts = auth.allowed_hosts,
                                host = host, port = port, tls = tls_ctx ~= nil}
    if not guard then srv:close() return nil, gerr end
  end
  local n_conn, n_refusing = 0, 0
  local closed = false

  -- Over the cap: a 503 and close, in a short coroutine of its own (its
  -- number capped too; beyond, the connection is just closed).
  local function refuse_busy(sock)
    local c = http1.connection(sock, {idle_timeout = 1, request_timeout = 1, max_body = 0})
    local s, body, ctype = server.error_response(503, ("too many connections (the limit is %d); retry later"):format(max_conn))
    answer(c, s, body, ctype, nil, false, true)
    c:linger_close(1)
  end

  cq:wrap(function()
    while not closed do
      local sock, aerr = srv:accept({nodelay = true}, 0)
      if not sock and aerr == ce.ETIMEDOUT then
        cqueues.poll(srv, 1) -- until a client arrives (or a second, to notice close)
      elseif sock then
        if n_conn >= max_conn then
          if n_refusing >= max_conn then
            sock:close()
          else
            n_refusing = n_refusing + 1
            cq:wrap(function()
              local rok, rerr = pcall(refuse_busy, sock)
              n_refusing = n_refusing - 1
              if not rok then log("connection error: " .. tostring(rerr)) pcall(sock.close, sock) end
            end)
          end
        else
          n_conn = n_conn + 1
          cq:wrap(function()
            local cok, cerr = pcall(serve_connection, sock)
            n_conn = n_conn - 1
            if not cok then
              log("connection error: " .. tostring(cerr) .. "\n" .. debug.traceback())
              pcall(sock.close, sock)
            end
          end)
        end
      elseif not closed then
        -- e.g. EMFILE: wait for connections to finish rather than spin
        log("accept: " .. tostring(ce.strerror(aerr) or aerr))
        cqueues.sleep(0.1)
      end
    end
  end)

  if pool then pool:monitor(function(fn) cq:wrap(fn) end) end

  local l = {host = host, port = port, cq = cq}
  --- Serves until closed; returns true, or nil and the loop's error.
  function l.loop()
    local rok, rerr = cq:loop()
    if not rok then return nil, rerr end
    return true
  end
  function l.close()
    closed = true
    srv:close()
  end
  l.stats = function() return {connections = n_conn, refusing = n_refusing} end
  return l
end

return listener
