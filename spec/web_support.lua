-- Helpers for the web demo's specs, end-to-end test and load check: start
-- `bin/siamese serve` as a subprocess on a free port, talk to it with
-- lua-http's client. Load with `local web = dofile("spec/web_support.lua")`.
assert(require("siamese.app.web.deps").setup())
local http_request = require "http.request"
local json = require "siamese.json"
local multipart = require "siamese.app.web.multipart"

local web = {}

local function read_all(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end
web.read_file = read_all

local function sleep(s) os.execute("sleep " .. s) end

--- Starts the server: args is the extra command line (a string, already
-- quoted). Returns {url, pid, out, err, stop = function}; raises when it
-- has not printed its address within `wait` seconds (default 120).
function web.start(args, wait)
  local out, err = os.tmpname(), os.tmpname()
  local p = assert(io.popen(("exec bin/siamese serve --port 0 %s >%s 2>%s & echo $!"):format(args, out, err)))
  local pid = assert(tonumber(p:read("l")), "no pid")
  p:close()
  local s = {pid = pid, out = out, err = err}
  local deadline = os.time() + (wait or 120)
  while os.time() <= deadline do
    local text = read_all(out) or ""
    local url = text:match("listening on (https?://[^/%s]+/)")
    if url then s.url = url:sub(1, -2) break end
    if not os.execute("kill -0 " .. pid .. " 2>/dev/null") then break end
    sleep(0.1)
  end
  function s.stop()
    os.execute("kill " .. pid .. " 2>/dev/null")
    os.remove(out)
    os.remove(err)
  end
  function s.alive() return os.execute("kill -0 " .. pid .. " 2>/dev/null") == true end
  if not s.url then
    local msg = "server did not start: " .. (read_all(err) or "")
    s.stop()
    error(msg, 2)
  end
  return s
end

--- Runs `bin/siamese serve ARGS` expecting it to exit; returns the exit code and stderr.
function web.run_failing(args)
  local err = os.tmpname()
  local ok, _, code = os.execute(("bin/siamese serve %s >/dev/null 2>%s"):format(args, err))
  local text = read_all(err)
  os.remove(err)
  return ok and 0 or code, text
end

--- One request. body: nil, a string (with content_type), or a table of
-- multipart fields ({name = "text" | {data, filename, content_type}}).
-- headers: more request headers ({name = value}), e.g. authorization;
-- web.client_tls (an openssl.ssl.context) is used for https URLs.
-- Returns status (number), the decoded JSON (or nil), raw body, headers.
function web.request(method, url, body, content_type, timeout, headers)
  local req = http_request.new_from_uri(url)
  if url:match("^https:") then req.ctx = web.client_tls end
  req.headers:upsert(":method", method)
  for k, v in pairs(headers or {}) do req.headers:upsert(k, v) end
  if type(body) == "table" then
    local ct
    body, ct = multipart.encode(body)
    content_type = ct
  end
  if body then req:set_body(body) end
  if content_type then req.headers:upsert("content-type", content_type) end
  local headers, stream = req:go(timeout or 120)
  if not headers then error("request failed: " .. tostring(stream), 2) end
  local raw = assert(stream:get_body_as_string(timeout or 120))
  local decoded = nil
  if (headers:get("content-type") or ""):find("json", 1, true) then decoded = json.decode(raw) end
  return tonumber(headers:get(":status")), decoded, raw, headers
end

--- A multipart file field with the bytes of `path`.
function web.file(path, content_type)
  return {data = assert(read_all(path), "cannot read " .. path), filename = path:match("[^/]*$"),
          content_type = content_type or "image/jpeg"}
end

--- The Authorization header of a token, for web.request's headers.
function web.bearer(token)
  return {authorization = "Bearer " .. token}
end

--- Adds a token of role to the gallery's store (bin/siamese token add);
-- returns the token string.
function web.add_token(gallery, role)
  local p = assert(io.popen(("bin/siamese token add --json --gallery '%s' --role %s"):format(gallery, role)))
  local doc = json.decode(p:read("a"))
  p:close()
  assert(type(doc) == "table" and doc.token, "token add failed")
  return doc.token
end

--- Photo i (1..5) of a bundled person (examples/data/faces).
function web.photo(person, i)
  return ("examples/data/faces/%s/%s_%04d.jpg"):format(person, person, i)
end

--- Raw TCP helpers (spec/web_attack_spec.lua): a connection to the
-- server of `url` (cqueues socket, binary, errors returned, not raised).
function web.connect(url, timeout)
  local cs = require "cqueues.socket"
  local host, port = url:match("^http://%[?([^%]/]-)%]?:(%d+)")
  local s = cs.connect{host = host, port = tonumber(port)}
  s:setmode("b", "b")
  s:onerror(function(so, op, why)
    if why == 110 then so:clearerr(op == "flush" and "w" or "r") end -- a timeout must not stick (110: ETIMEDOUT)
    return why
  end)
  local ok, err = s:connect(timeout or 2)
  if not ok then s:close() error("cannot connect to " .. url .. ": " .. tostring(err), 2) end
  return s
end

--- Parses a raw HTTP/1.1 response: status (number), decoded JSON body
-- (or nil), body, head, and the index in `raw` after this response (where
-- a next, pipelined one starts); nil when `raw` holds no status line.
function web.parse_response(raw)
  local status = raw:match("^HTTP/1%.[01] (%d%d%d)")
  if not status then return nil end
  local e = raw:find("\r\n\r\n", 1, true)
  local head = raw:sub(1, e and e + 1 or #raw)
  local len = tonumber(head:lower():match("\ncontent%-length: *(%d+)") or "")
  local body = e and raw:sub(e + 4, len and e + 3 + len or #raw) or ""
  local decoded = head:lower():find("content%-type: application/json") and json.decode(body) or nil
  return tonumber(status), decoded, body, head, e and e + 4 + #body or #raw + 1
end

--- Sends `data` (a string, or a list of strings sent `gap` seconds apart)
-- on a new connection, optionally shuts down its sending side
-- (opts.half_close) or closes it without reading (opts.abort), then reads
-- until the server closes (at most opts.timeout seconds, default 3).
-- Returns everything received (a string, maybe empty) and whether the
-- server closed the connection (false: still open at the timeout).
function web.exchange(url, data, opts)
  opts = opts or {}
  local cqueues = require "cqueues"
  local s = web.connect(url)
  local pieces = type(data) == "table" and data or {data}
  for i, piece in ipairs(pieces) do
    if i > 1 and opts.gap then cqueues.sleep(opts.gap) end
    if not s:xwrite(piece, "n", opts.timeout or 3) then break end -- the server may close first
  end
  if opts.abort then s:close() return "", true end
  if opts.half_close then s:shutdown("w") end
  local got, deadline = {}, cqueues.monotime() + (opts.timeout or 3)
  local closed = false
  while true do
    local left = deadline - cqueues.monotime()
    if left <= 0 then break end
    local chunk, err = s:xread(-65536, left)
    if chunk and #chunk > 0 then got[#got + 1] = chunk
    elseif err == nil or err ~= 110 then closed = true break -- 110: ETIMEDOUT
    else break end
  end
  s:close()
  return table.concat(got), closed
end

--- The pids of the live (not zombie) child processes of `pid` (a sorted
-- list), from /proc/*/stat; with zombies = true, also the exited ones not
-- yet reaped.
function web.children(pid, zombies)
  local kids = {}
  local p = assert(io.popen("ls /proc"))
  for name in p:lines() do
    if name:match("^%d+$") then
      local stat = read_all("/proc/" .. name .. "/stat")
      local state, ppid
      if stat then state, ppid = stat:match("%) (%S) (%d+)") end
      if ppid and tonumber(ppid) == pid and (zombies or state ~= "Z") then kids[#kids + 1] = tonumber(name) end
    end
  end
  p:close()
  table.sort(kids)
  return kids
end

--- Whether process `pid` exists (a zombie counts).
function web.exists(pid)
  return read_all("/proc/" .. pid .. "/stat") ~= nil
end

--- CPU time (user + system, seconds) of process `pid` from /proc/<pid>/stat.
function web.cpu_seconds(pid)
  local stat = read_all("/proc/" .. pid .. "/stat")
  if not stat then return nil end
  -- fields after the parenthesised command name: state is field 3, utime 14, stime 15
  local rest = stat:match("%) (.*)$")
  local f = {}
  for w in rest:gmatch("%S+") do f[#f + 1] = w end
  local p = io.popen("getconf CLK_TCK")
  local hz = tonumber(p:read("l")) or 100
  p:close()
  return (tonumber(f[12]) + tonumber(f[13])) / hz
end

return web
