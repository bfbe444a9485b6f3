--- siamese.web.listener: serves a siamese.web.server app over HTTP/1.1
-- with lua-http (cqueues event loop; see siamese.web.deps for how it is
-- found under lua5.4).
--
--   local l = assert(listener.start(app, {host = "127.0.0.1", port = 8080}))
--   print(l.host, l.port); l:loop()   -- until l:close()
--
-- Uploads are read concurrently (cqueues coroutines) and limited to
-- app.max_upload bytes (413, from Content-Length before reading, or while
-- reading; a body left unread is answered with "connection: close", so
-- lua-http ends the connection after the response instead of keeping it
-- for a next request while the client may still be sending); the handlers then run one at a time behind a lock, so a
-- handler never interleaves with another (face inference does not yield
-- anyway; the lock keeps the gallery's load-modify-save safe should a
-- handler ever yield).
local deps = require "siamese.web.deps"
local server = require "siamese.web.server"

local listener = {}

local IO_TIMEOUT = 30 -- seconds for reading a request or writing a response

--- Binds and returns the listener {host, port, loop, close}, or nil and a
-- message. opts: host (default 127.0.0.1), port (default 8080; 0 picks a
-- free one), log (function(line), called once per request and on errors).
function listener.start(app, opts)
  opts = opts or {}
  local ok, err = deps.setup()
  if not ok then return nil, err end
  local http_server = require "http.server"
  local http_headers = require "http.headers"
  local condition = require "cqueues.condition"
  local monotime = require("cqueues").monotime
  local log = opts.log or function() end
  app.log = app.log or log

  local busy, turn = false, condition.new()
  local function run_locked(req)
    while busy do turn:wait() end
    busy = true
    local ok2, status, body, ctype, allow = pcall(app.handle, app, req)
    busy = false
    turn:signal(1)
    if not ok2 then return server.error_response(500, "internal error: " .. tostring(status)) end
    return status, body, ctype, allow
  end

  local function read_body(stream, headers)
    local declared = tonumber(headers:get("content-length") or "")
    if declared and declared > app.max_upload then
      return nil, 413, ("upload of %d bytes exceeds the limit of %d bytes"):format(declared, app.max_upload)
    end
    if (headers:get("expect") or ""):lower() == "100-continue" then stream:write_continue(IO_TIMEOUT) end
    local parts, n = {}, 0
    while true do
      local chunk, cerr = stream:get_next_chunk(IO_TIMEOUT)
      if chunk == nil then
        if cerr then return nil, 400, "cannot read the request body: " .. tostring(cerr) end
        return table.concat(parts)
      end
      n = n + #chunk
      if n > app.max_upload then
        return nil, 413, ("upload exceeds the limit of %d bytes"):format(app.max_upload)
      end
      parts[#parts + 1] = chunk
    end
  end

  local function respond(stream, method, status, body, ctype, allow, close)
    local h = http_headers.new()
    h:append(":status", tostring(status))
    h:append("content-type", ctype)
    h:append("content-length", tostring(#body))
    h:append("cache-control", "no-store")
    h:append("x-content-type-options", "nosniff")
    if allow then h:append("allow", allow) end
    if close then h:append("connection", "close") end
    if method == "HEAD" then
      stream:write_headers(h, true, IO_TIMEOUT)
    else
      stream:write_headers(h, false, IO_TIMEOUT)
      stream:write_chunk(body, true, IO_TIMEOUT)
    end
  end

  local function onstream(_, stream)
    local t0 = monotime()
    local headers = stream:get_headers(IO_TIMEOUT)
    if not headers then return end
    local method, path = headers:get(":method"), headers:get(":path") or "/"
    local status, body, ctype, allow
    local data, code, msg = read_body(stream, headers)
    local unread = not data and code == 413
    if not data then
      status, body, ctype = server.error_response(code, msg)
    else
      status, body, ctype, allow = run_locked{method = method == "HEAD" and "GET" or method, path = path,
                                              content_type = headers:get("content-type"), body = data}
    end
    respond(stream, method, status, body, ctype, allow, unread)
    log(("%s %s %d %d bytes %.0f ms"):format(method, path, status, #body, (monotime() - t0) * 1000))
  end

  local made, srv, serr = pcall(http_server.listen, {
    host = opts.host or "127.0.0.1", port = opts.port or 8080, tls = false,
    onstream = onstream,
    onerror = function(_, _, op, e) log(("http error: %s %s"):format(tostring(op), tostring(e))) end,
  })
  if not made then srv, serr = nil, srv end
  if not srv then return nil, tostring(serr) end
  local lok, lerr = srv:listen()
  if not lok then return nil, ("cannot listen on %s:%s: %s"):format(opts.host or "127.0.0.1", opts.port or 8080, tostring(lerr)) end
  local _, host, port = srv:localname()
  local l = {host = host, port = port, server = srv}
  --- Serves until closed; returns true, or nil and the loop's error.
  function l.loop()
    return srv:loop()
  end
  function l.close()
    srv:close()
  end
  return l
end

return listener
