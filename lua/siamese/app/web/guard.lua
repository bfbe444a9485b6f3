--- siamese.app.web.guard: who may ask the web server what, decided before a
-- request reaches a handler (siamese.app.web.listener calls it for every
-- request).
--
--   local g = assert(guard.new{tokens = store, host = "127.0.0.1", port = 8080})
--   local who, status, message, headers = g:check(req, peer)
--   if not who then answer(status, {error = message}, headers) end
--   -- who = {role, id, label} of the token; {} when the API is open
--
-- Three checks, in this order:
--  1. Host. The request's Host header must name this server: with a
--     loopback listening address, localhost / 127.0.0.1 / [::1] or the
--     listening address; with a specific address, that address; on a
--     wildcard (0.0.0.0, ::) any name, unless allowed_hosts are given. Names
--     given in allowed_hosts ("door.example.org", any port; or
--     "door.example.org:8443") are accepted too. This is what stops DNS
--     rebinding: a page of evil.example whose name an attacker points at
--     127.0.0.1 still sends "Host: evil.example". Else 421.
--  2. Origin (CSRF). A browser sends Origin with every POST and
--     Sec-Fetch-Site with every request. An API request is refused (403)
--     when Sec-Fetch-Site is neither "same-origin" nor "none" (typed in
--     the address bar), or when Origin is present and is not this
--     server's origin: scheme://Host, where the scheme is https when this
--     server speaks TLS, or what X-Forwarded-Proto says when the request
--     comes from a reverse proxy on a loopback address. Clients that are
--     not browsers (curl, door controllers) send neither header.
--  3. Token. Each API route needs an action (guard.ACTIONS) that the
--     token's role allows (siamese.app.web.tokens: admin enrols, removes,
--     renames and lists; door verifies and identifies). 401 with
--     "WWW-Authenticate: Bearer" when the token is missing, malformed,
--     unknown or revoked; 403 when its role may not do that; 500 when the
--     token store has become unusable (fail closed). The API is open (no
--     token needed, who = {}) only when opts.open is true and no token has
--     ever been configured, and then not to requests a proxy forwarded
--     (X-Forwarded-For, Forwarded, X-Real-IP: 401): they may come from
--     anywhere. Once the store holds a token, tokens are required until
--     the server stops, even if the file is emptied.
--
-- The page (GET /) needs no token: it asks for one.
local tokens = require "siamese.app.web.tokens"

local guard = {}

--- The action of each API route ("METHOD path"), as siamese.app.web.tokens
-- names them.
guard.ACTIONS = {
  ["GET /api/people"] = "people",
  ["POST /api/enroll"] = "enroll",
  ["POST /api/remove"] = "remove",
  ["POST /api/rename"] = "rename",
  ["POST /api/verify"] = "verify",
  ["POST /api/identify"] = "identify",
}

-- What each action is, for messages ("a door token may not enrol people").
local WORDS = {people = "list the people", enroll = "enrol people", remove = "remove people",
               rename = "rename people", verify = "verify faces", identify = "identify faces"}

--- The action of a request (HEAD counts as GET), or nil (the page, an
-- unknown path or method: no token needed; the server answers 404/405).
function guard.action_of(method, path)
  if method == "HEAD" then method = "GET" end
  path = (path or "/"):match("^[^?#]*")
  return guard.ACTIONS[tostring(method) .. " " .. path]
end

--- True for a loopback address or name (127.0.0.0/8, ::1, localhost).
function guard.is_loopback(host)
  if type(host) ~= "string" then return false end
  host = host:lower():gsub("^%[(.*)%]$", "%1")
  if host == "localhost" or host == "::1" or host == "0:0:0:0:0:0:0:1" then return true end
  local a, b, c, d = host:match("^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
  if not a then return false end
  for _, v in ipairs{a, b, c, d} do
    if tonumber(v) > 255 then return false end
  end
  return tonumber(a) == 127
end

local function is_wildcard(host)
  return host == "0.0.0.0" or host == "::" or host == "[::]" or host == "*" or host == ""
end

--- Splits a Host header value ("name", "name:port", "[v6]:port") into the
-- lower-case name (IPv6 in brackets) and port (nil when absent); nil for
-- anything else (a user part, a path, spaces, a bad port).
function guard.parse_host(value)
  if type(value) ~= "string" or #value == 0 or #value > 255 then return nil end
  value = value:lower()
  local name, port = value:match("^(%[[%x:%.]+%])(.*)$")
  if not name then name, port = value:match("^([%w%.%-_]+)(.*)$") end
  if not name then return nil end
  if port == "" then return name, nil end
  local digits = port:match("^:(%d%d?%d?%d?%d?)$")
  local n = tonumber(digits)
  if not n or n < 1 or n > 65535 then return nil end
  return name, n
end

local function bracket(host)
  if host:find(":", 1, true) and not host:find("^%[") then return "[" .. host .. "]" end
  return host
end

--- Creates a guard. opts: host, port (where the server listens), tokens
-- (a siamese.app.web.tokens store; may be left out only with open: the API is
-- then open for good), open (true: no token needed while the store is
-- empty), allowed_hosts (list of "name" or
-- "name:port"), tls (true when this server speaks TLS itself). Returns
-- the guard, or nil and a message (a bad allowed host).
function guard.new(opts)
  if type(opts) ~= "table" or (type(opts.tokens) ~= "table" and not (opts.tokens == nil and opts.open == true)) then
    error("bad argument #1 to 'guard.new' (a table with a 'tokens' store expected)", 2)
  end
  local port = math.tointeger(opts.port)
  if not port then error("bad argument #1 to 'guard.new' (port must be an integer)", 2) end
  local listen = (opts.host or "127.0.0.1"):lower()
  local names = {}   -- name -> true (any port) or {port = true}
  local function allow(name, p)
    if p == nil then names[name] = true
    elseif names[name] ~= true then
      names[name] = names[name] or {}
      names[name][p] = true
    end
  end
  local any_host = is_wildcard(listen)
  -- (any port: the port in Host is not what tells a rebound name apart)
  if guard.is_loopback(listen) then
    for _, n in ipairs{"localhost", "127.0.0.1", "[::1]", bracket(listen)} do allow(n) end
  elseif not any_host then
    allow(bracket(listen))
  end
  for _, h in ipairs(opts.allowed_hosts or {}) do
    local name, p = guard.parse_host(h)
    if not name then return nil, ("bad allowed host '%s' (expected NAME or NAME:PORT)"):format(tostring(h)) end
    allow(name, p)
  end
  if #(opts.allowed_hosts or {}) > 0 then any_host = false end
  return setmetatable({
    store = opts.tokens, open = opts.open == true, names = names, any_host = any_host,
    scheme = opts.tls and "https" or "http", required = false,
  }, {__index = guard.Guard})
end

guard.Guard = {}
local Guard = guard.Guard

-- The single value of a header (http1 keeps each as a list), or nil and
-- "several" when it was sent more than once.
local function single(headers, name)
  local v = headers and headers[name]
  if type(v) == "table" then
    if #v > 1 then return nil, "several" end
    v = v[1]
  end
  return v
end

--- Whether a Host header value names this server: true, or nil and a
-- message.
function Guard:host_ok(value)
  local name, port = guard.parse_host(value)
  if not name then return nil, "a Host header naming this server is required" end
  if self.any_host then return true end
  local p = self.names[name]
  if p == true or (type(p) == "table" and port and p[port]) then return true end
  return nil, ("this server does not answer to Host '%s' (add it with --allowed-host)"):format(value)
end

-- The origin a browser on this server's page sends: scheme://host.
function Guard:expected_origin(headers, host_value, peer)
  local scheme = self.scheme
  local fwd = single(headers, "x-forwarded-proto")
  if fwd and peer and guard.is_loopback(peer) and (fwd == "https" or fwd == "http") then scheme = fwd end
  return scheme .. "://" .. host_value:lower()
end

--- Origin checks for a request: true, or nil and a message.
function Guard:origin_ok(req, host_value, peer)
  local h = req.headers or {}
  local site, several = single(h, "sec-fetch-site")
  if several then return nil, "several Sec-Fetch-Site headers" end
  if site and site ~= "same-origin" and site ~= "none" then
    return nil, ("cross-site request refused (Sec-Fetch-Site: %s)"):format(tostring(site):sub(1, 40))
  end
  local origin
  origin, several = single(h, "origin")
  if several then return nil, "several Origin headers" end
  if origin then
    if host_value == "" then return nil, "cross-origin request refused (Origin without Host)" end
    local want = self:expected_origin(h, host_value, peer)
    -- an origin is scheme://host[:port]; a default port may be elided by
    -- either side
    local function norm(o)
      o = o:lower()
      return (o:gsub("^(https?://.-):(%d+)$", function(base, p)
        if (base:sub(1, 5) == "http:" and p == "80") or (base:sub(1, 6) == "https:" and p == "443") then return base end
        return base .. ":" .. p
      end))
    end
    if norm(origin) ~= norm(want) then
      return nil, ("cross-origin request refused (Origin %s is not %s)"):format(origin:sub(1, 100), want)
    end
  end
  return true
end

--- True when requests need a token: the API is not open, or the store
-- holds (or has held) a token. Also refreshes the store.
function Guard:tokens_required()
  if self.required then return true end
  if not self.open then self.required = true return true end
  if not self.store then return false end
  local ok = self.store:refresh()
  if not ok or #self.store.entries > 0 then self.required = true end
  return self.required
end

local CHALLENGE = {{"www-authenticate", 'Bearer realm="siamese"'}}

--- Checks one request ({method, path, headers}; peer: the client's
-- address). Returns who ({role, id, label}, or {} on an open API) and the
-- action (nil for the page); or nil, status, message, extra headers, and
-- who when a valid token was refused for its role (403).
function Guard:check(req, peer)
  local headers = req.headers or {}
  local host, several = single(headers, "host")
  if several then return nil, 400, "several Host headers" end
  if host == nil and req.version == "1.0" then
    -- HTTP/1.0 needs no Host: not a browser (they all send it), so no
    -- rebinding to stop; an Origin then cannot match (refused below)
    host = ""
  else
    local hok, herr = self:host_ok(host)
    if not hok then return nil, host and 421 or 400, herr end
  end
  local action = guard.action_of(req.method, req.path)
  if not action then
    -- the page and unknown routes; state-changing methods still need the origin check
    if req.method ~= "GET" and req.method ~= "HEAD" then
      local ook, oerr = self:origin_ok(req, host, peer)
      if not ook then return nil, 403, oerr end
    end
    return {}, nil
  end
  local ook, oerr = self:origin_ok(req, host, peer)
  if not ook then return nil, 403, oerr end
  if not self:tokens_required() then
    -- open only to this machine: a request a proxy forwarded may come from
    -- anywhere (a proxy in front of an open server would open it to all)
    if headers["x-forwarded-for"] or headers["forwarded"] or headers["x-real-ip"] then
      return nil, 401, "this server has no access tokens, so it takes no requests through a proxy "
        .. "(add tokens: siamese token add)", CHALLENGE
    end
    return {}, action
  end
  -- (store:authorize's two steps, keeping the entry of a token refused for its role)
  local who, reason = self.store:check(single(headers, "authorization") or headers.authorization)
  if who and not tokens.allows(who.role, action) then
    return nil, 403, ("a %s token may not %s"):format(who.role, WORDS[action] or action), nil, who
  end
  if who then return who, action end
  local status = tokens.status(reason)
  if status == 401 then
    local msg = reason == "missing" and "an access token is required (Authorization: Bearer TOKEN)"
      or ("the access token is %s"):format(reason)
    return nil, 401, msg, CHALLENGE
  end
  return nil, 500, "the token store is unavailable: " .. tostring(reason)
end

--- A bounded, printable copy of a client-supplied value for logs.
function guard.printable(s, max)
  s = tostring(s or "")
  if #s > (max or 100) then s = s:sub(1, max or 100) .. "..." end
  return (s:gsub("[%c\128-\255]", "?"))
end

return guard
