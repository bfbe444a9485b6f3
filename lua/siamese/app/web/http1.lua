--- siamese.app.web.http1: a strict HTTP/1.1 request reader and response writer
-- over a cqueues socket, with explicit limits (siamese.app.web.listener runs
-- the connections).
--
-- Why not lua-http's server: Debian 12's lua-http 0.4-1 owns the whole read
-- path of a server stream (request line, headers, body, and the drain in
-- stream:shutdown after the handler) and, there, a negative Content-Length
-- raises outside any pcall (the process exits), a body cut short by the
-- client makes stream:shutdown spin forever on read() = 0 (CVE-2023-4540,
-- fixed upstream in 0.4+ by returning EPIPE at end of stream while a
-- length-delimited body is still expected; not in Debian), and malformed
-- heads are answered with an empty 503/400 from inside the library. The
-- demo needs one thing of HTTP/1.1: a request with a complete body, then one
-- response; this module does exactly that on the socket, every limit and
-- refusal in one place.
--
--   local c = http1.connection(socket, limits)
--   local req, status, message = c:read_request()
--     -- req: {method, target, path, version, headers = {name = {values}},
--     --       body, keep_alive}; or nil, status, message (a refusal to
--     --       answer, then close); or nil (the client left: just close)
--   c:write_response(status, {{"content-type", "..."}}, body, head_only, close)
--
-- Refusals (answered with {"error": message} by the listener, connection
-- closed after): 400 malformed request line, header, chunk or framing
-- (Transfer-Encoding with Content-Length, several Content-Length or Host,
-- a transfer coding other than chunked, NUL or control bytes, bare LF,
-- obs-fold, a body cut short); 408 head or body not received in time;
-- 411 a POST/PUT/PATCH without Content-Length or chunked body; 413 body
-- over limits.max_body; 414 request line over limits.max_request_line;
-- 431 more than limits.max_headers headers or limits.max_header_bytes.
local cqueues = require "cqueues"
local ce = require "cqueues.errno"

local monotime = cqueues.monotime

local http1 = {}

http1.DEFAULTS = {
  max_request_line = 8192,   -- bytes of "METHOD target HTTP/1.1"
  max_header_bytes = 16384,  -- bytes of the header lines (after the request line)
  max_headers = 100,         -- header lines
  max_body = 10 * 1024 * 1024, -- bytes of body (the app's max_upload)
  max_chunks = 65536,        -- chunks of a chunked body
  idle_timeout = 10,         -- seconds of silence while reading; also the head's deadline and keep-alive wait
  request_timeout = 60,      -- seconds for a whole request (head and body), and for writing a response
}

http1.REASONS = {
  [100] = "Continue", [200] = "OK", [400] = "Bad Request", [404] = "Not Found",
  [405] = "Method Not Allowed", [408] = "Request Timeout", [409] = "Conflict",
  [411] = "Length Required", [413] = "Content Too Large", [414] = "URI Too Long",
  [415] = "Unsupported Media Type", [422] = "Unprocessable Content",
  [431] = "Request Header Fields Too Large", [500] = "Internal Server Error",
  [503] = "Service Unavailable",
}

local READ_SIZE = 65536
local TOKEN = "^[%w!#$%%&'*+%-.^_`|~]+$"

-- cqueues sockets keep an error until cleared: a read timeout must not
-- stick, or every later read would report it again.
local function onerror(sock, op, why)
  if why == ce.ETIMEDOUT then
    if op == "fill" or op == "read" then sock:clearerr("r")
    elseif op == "flush" then sock:clearerr("w") end
  end
  return why
end

--- Prepares an accepted socket (binary, errors returned instead of raised).
function http1.prepare(sock)
  sock:setmode("b", "b")
  sock:onerror(onerror)
  return sock
end

local Conn = {}
Conn.__index = Conn

--- A connection over an accepted cqueues socket. limits: fields of
-- http1.DEFAULTS (missing ones take the default).
function http1.connection(sock, limits)
  local lim = {}
  for k, v in pairs(http1.DEFAULTS) do lim[k] = v end
  for k, v in pairs(limits or {}) do lim[k] = v end
  return setmetatable({sock = http1.prepare(sock), lim = lim, buf = "", pos = 1}, Conn)
end

-- A refusal carried through error() to read_request's boundary.
local Refusal = {}
local function refuse(status, fmt, ...)
  error(setmetatable({status = status, message = fmt:format(...)}, Refusal), 0)
end

local function available(c) return #c.buf - c.pos + 1 end

-- Reads more bytes into the buffer within `deadline` (and the idle
-- timeout). Returns true, or nil and "eof" | "timeout" | an error.
function Conn:fill(deadline)
  local t = math.min(self.lim.idle_timeout, deadline - monotime())
  if t <= 0 then return nil, "timeout" end
  local data, err = self.sock:xread(-READ_SIZE, t)
  if data and #data > 0 then
    if self.pos > 1 then self.buf, self.pos = self.buf:sub(self.pos), 1 end
    self.buf = self.buf .. data
    return true
  end
  if err == nil then return nil, "eof" end
  if err == ce.ETIMEDOUT then return nil, "timeout" end
  return nil, ce.strerror(err)
end

-- fill() or a refusal (what: the part being read, for the message).
function Conn:must_fill(deadline, what, timeout_status)
  local ok, why = self:fill(deadline)
  if ok then return end
  if why == "timeout" then
    refuse(timeout_status or 408, "%s not received in time (limits: %g s idle, %g s per request)", what,
           self.lim.idle_timeout, self.lim.request_timeout)
  end
  self.gone = true
  refuse(400, "connection closed in the middle of the %s (%s)", what, why)
end

-- One line ending in CRLF (returned without it) of at most `max` bytes,
-- else a refusal with `over_status` (saying `shown` bytes: the limit it
-- comes from, when max is what is left of it); a bare LF is refused.
function Conn:read_line(max, deadline, what, over_status, shown)
  local done = 0 -- bytes after pos already searched
  while true do
    local i = self.buf:find("\n", self.pos + done, true)
    if i then
      if i == self.pos or self.buf:byte(i - 1) ~= 13 then refuse(400, "bare LF in the %s (lines end with CRLF)", what) end
      if i - 1 - self.pos > max then refuse(over_status or 400, "%s over %d bytes", what, shown or max) end
      local line = self.buf:sub(self.pos, i - 2)
      self.pos = i + 1
      return line
    end
    done = available(self)
    if done > max + 1 then refuse(over_status or 400, "%s over %d bytes", what, shown or max) end
    self:must_fill(deadline, what)
  end
end

-- The request head as a list of lines (request line first), or nil when
-- the connection ended or stayed idle before the request's first byte.
function Conn:read_head()
  local lim = self.lim
  if available(self) == 0 then
    -- between requests: wait for the first byte, else close quietly
    if not self:fill(monotime() + lim.idle_timeout) then return nil end
  end
  self.started = monotime() -- the request's clock starts with its first byte
  local deadline = self.started + math.min(lim.idle_timeout, lim.request_timeout)
  local line = self:read_line(lim.max_request_line, deadline, "request line", 414)
  local empty = 0
  while line == "" do -- RFC 9112 2.2: empty lines before a request line may be ignored
    empty = empty + 1
    if empty > 8 then refuse(400, "empty lines instead of a request line") end
    line = self:read_line(lim.max_request_line, deadline, "request line", 414)
  end
  local lines, bytes = {line}, 0
  while true do
    local room = lim.max_header_bytes - bytes
    local hl = self:read_line(math.max(room, 0), deadline, "request header section", 431, lim.max_header_bytes)
    if hl == "" then return lines end
    bytes = bytes + #hl + 2
    if bytes > lim.max_header_bytes then refuse(431, "request header section over %d bytes", lim.max_header_bytes) end
    if #lines > lim.max_headers then refuse(431, "more than %d request headers", lim.max_headers) end
    lines[#lines + 1] = hl
  end
end

local function trim(s) return (s:gsub("^[ \t]+", ""):gsub("[ \t]+$", "")) end

-- origin-form "/p?q", absolute-form "http://host/p?q", or "*".
local function path_of(target)
  if target:sub(1, 1) == "/" then return target end
  local scheme, rest = target:match("^(%a[%w+.-]*)://[^/?#]*(.*)$")
  if scheme and (scheme:lower() == "http" or scheme:lower() == "https") then
    if rest == "" or rest:sub(1, 1) == "?" then rest = "/" .. rest end
    return rest
  end
  if target == "*" then return "*" end
  return nil
end

function Conn:parse_head(lines)
  local line = lines[1]
  if line:find("[%z\1-\31\127]") then refuse(400, "control character in the request line") end
  local method, target, version = line:match("^(%S+) (%S+) HTTP/(%d%.%d)$")
  if not method then refuse(400, "malformed request line (expected METHOD TARGET HTTP/1.1)") end
  if not method:match(TOKEN) then refuse(400, "invalid method") end
  if version ~= "1.1" and version ~= "1.0" then refuse(400, "unsupported HTTP version %s", version) end
  if target:find("[\128-\255]") then refuse(400, "non-ASCII byte in the request target") end
  local path = path_of(target)
  if not path then refuse(400, "invalid request target (expected /path or http://host/path)") end
  local headers = {}
  for count = 2, #lines do
    local hl = lines[count]
    if hl:find("^[ \t]") then refuse(400, "obsolete line folding in the request headers") end
    local name, value = hl:match("^([^:]*):(.*)$")
    if not name or not name:match(TOKEN) then refuse(400, "malformed header line %d", count - 1) end
    value = trim(value)
    if value:find("[%z\1-\8\10-\31\127]") then
      refuse(400, "NUL or control character in header '%s'", name:sub(1, 64))
    end
    name = name:lower()
    local list = headers[name]
    if not list then list = {}; headers[name] = list end
    list[#list + 1] = value
  end
  return {method = method, target = target, path = path, version = version, headers = headers}
end

-- Body framing (RFC 9112 6): "length", n | "chunked" | "none".
function Conn:framing(req)
  local h = req.headers
  local te, cl = h["transfer-encoding"], h["content-length"]
  if te and cl then
    refuse(400, "both Transfer-Encoding and Content-Length (refused: request smuggling)")
  end
  if te then
    if req.version == "1.0" then refuse(400, "Transfer-Encoding in an HTTP/1.0 request") end
    local codings = table.concat(te, ","):lower()
    if trim(codings) ~= "chunked" then
      refuse(400, "unsupported transfer coding '%s' (only chunked)", codings:sub(1, 64))
    end
    return "chunked"
  end
  if cl then
    if #cl > 1 then refuse(400, "more than one Content-Length") end
    local digits = cl[1]
    if not digits:match("^%d+$") then refuse(400, "invalid Content-Length '%s'", digits:sub(1, 32)) end
    digits = digits:gsub("^0+(%d)", "%1")
    local n = #digits <= 15 and tonumber(digits)
    if not n or n > self.lim.max_body then
      refuse(413, "upload of %s bytes exceeds the limit of %d bytes", #digits <= 32 and digits or "too many",
             self.lim.max_body)
    end
    return "length", n
  end
  if req.method == "POST" or req.method == "PUT" or req.method == "PATCH" then
    refuse(411, "Content-Length required (or Transfer-Encoding: chunked)")
  end
  return "none"
end

-- Exactly n bytes (n may be 0), appended to parts.
function Conn:read_exact(n, deadline, parts, what)
  local have = available(self)
  if have > 0 then
    local take = math.min(have, n)
    parts[#parts + 1] = self.buf:sub(self.pos, self.pos + take - 1)
    self.pos = self.pos + take
    n = n - take
  end
  while n > 0 do
    local t = math.min(self.lim.idle_timeout, deadline - monotime())
    if t <= 0 then refuse(408, "%s not received in time (limit %g s per request)", what, self.lim.request_timeout) end
    local data, err = self.sock:xread(-math.min(n, READ_SIZE), t)
    if data and #data > 0 then
      parts[#parts + 1] = data
      n = n - #data
    elseif err == ce.ETIMEDOUT then
      refuse(408, "%s not received in time (no data for %g s)", what, math.min(t, self.lim.idle_timeout))
    else
      self.gone = true
      refuse(400, "connection closed in the middle of the %s", what)
    end
  end
end

function Conn:read_chunked(deadline)
  local lim = self.lim
  local parts, total, chunks = {}, 0, 0
  while true do
    local line = self:read_line(1024, deadline, "chunk size line")
    local hex, ext = line:match("^(%x+)[ \t]*(.*)$")
    if not hex or (ext ~= "" and ext:sub(1, 1) ~= ";") then refuse(400, "bad chunk size line") end
    if #hex > 8 then refuse(400, "chunk size %s too large", hex:sub(1, 16)) end
    if ext:find("[%z\1-\8\10-\31\127]") then refuse(400, "control character in a chunk extension") end
    local size = tonumber(hex, 16)
    if size == 0 then break end
    chunks = chunks + 1
    if chunks > lim.max_chunks then refuse(400, "more than %d chunks", lim.max_chunks) end
    total = total + size
    if total > lim.max_body then refuse(413, "upload exceeds the limit of %d bytes", lim.max_body) end
    self:read_exact(size, deadline, parts, "request body")
    local crlf = {}
    self:read_exact(2, deadline, crlf, "request body")
    if crlf[1] .. (crlf[2] or "") ~= "\r\n" then refuse(400, "chunk data not followed by CRLF") end
  end
  -- trailers: read and ignored, within the header limits
  local count, bytes = 0, 0
  while true do
    local line = self:read_line(lim.max_header_bytes, deadline, "trailer section", 431)
    if line == "" then break end
    count, bytes = count + 1, bytes + #line + 2
    if count > lim.max_headers or bytes > lim.max_header_bytes then refuse(431, "trailer section too large") end
    if line:find("[%z\1-\8\10-\31\127]") or not line:match("^[%w!#$%%&'*+%-.^_`|~]+:") then
      refuse(400, "malformed trailer line")
    end
  end
  return table.concat(parts)
end

local function has_token(list, token)
  for _, v in ipairs(list or {}) do
    for t in v:gmatch("[^,]+") do
      if trim(t):lower() == token then return true end
    end
  end
  return false
end

--- Reads one request. Returns the request; or nil, status, message (refuse
-- with this status, then close); or nil (the client left or stayed silent:
-- close without an answer).
function Conn:read_request()
  self.started = monotime()
  self.gone = nil
  local ok, req = pcall(function()
    local head = self:read_head()
    if not head then return nil end
    local r = self:parse_head(head)
    local h = r.headers
    if r.version == "1.1" and not h.host then refuse(400, "missing Host header (required in HTTP/1.1)") end
    if h.host and #h.host > 1 then refuse(400, "more than one Host header") end
    local kind, n = self:framing(r)
    local deadline = self.started + self.lim.request_timeout
    if kind ~= "none" and r.version == "1.1" and has_token(h.expect, "100-continue") then
      self.sock:xwrite("HTTP/1.1 100 Continue\r\n\r\n", "n", self.lim.idle_timeout)
    end
    if kind == "length" then
      local parts = {}
      self:read_exact(n, deadline, parts, "request body")
      r.body = table.concat(parts)
    elseif kind == "chunked" then
      r.body = self:read_chunked(deadline)
    else
      r.body = ""
    end
    if r.version == "1.0" then
      r.keep_alive = false -- simpler: HTTP/1.0 connections close after one answer
    else
      r.keep_alive = not has_token(h.connection, "close")
    end
    r.content_type = h["content-type"] and h["content-type"][1]
    return r
  end)
  if ok then return req end
  if getmetatable(req) == Refusal then return nil, req.status, req.message end
  error(req, 0)
end

--- Writes a response. headers: a list of {name, value}; content-length
-- and connection are added. Returns true, or nil and a message.
function Conn:write_response(status, headers, body, head_only, close)
  local out = {("HTTP/1.1 %d %s\r\n"):format(status, http1.REASONS[status] or "Status")}
  for _, h in ipairs(headers) do out[#out + 1] = h[1] .. ": " .. h[2] .. "\r\n" end
  out[#out + 1] = "content-length: " .. #body .. "\r\n"
  if close then out[#out + 1] = "connection: close\r\n" end
  out[#out + 1] = "\r\n"
  if not head_only then out[#out + 1] = body end
  local ok, err = self.sock:xwrite(table.concat(out), "n", self.lim.request_timeout)
  if not ok then return nil, err and ce.strerror(err) or "closed" end
  return true
end

--- Closes after an error answer without resetting it away: stops writing,
-- reads and drops what the client is still sending (up to the body limit
-- plus 1 MB, within `seconds`), then closes.
function Conn:linger_close(seconds)
  local sock = self.sock
  sock:shutdown("w")
  if not self.gone then
    local deadline, budget = monotime() + (seconds or 2), self.lim.max_body + 1024 * 1024
    while budget > 0 do
      local t = deadline - monotime()
      if t <= 0 then break end
      local data = sock:xread(-READ_SIZE, t)
      if not data or #data == 0 then break end
      budget = budget - #data
    end
  end
  sock:close()
end

function Conn:close()
  self.sock:close()
end

return http1
