-- End-to-end check of examples/nginx: nginx terminating TLS in front of
-- `siamese serve`. Run from the checkout's top folder after `make`:
--
--   lua5.4 spec/e2e/nginx.lua          (SIAMESE_BUILD=DIR: another build dir)
--
-- Prints "e2e nginx: skipped (nginx not installed)" and exits 0 when
-- /usr/sbin/nginx (or $NGINX) is missing. Otherwise, in build/e2e-nginx/:
-- a self-signed certificate (siamese.app.web.tls.self_signed), an admin and a
-- door token, `siamese serve` on 127.0.0.1 (a free port), and nginx (no root needed,
-- `daemon off`, its pid, logs and temporary files in that folder) with the
-- directives of examples/nginx/siamese.conf, only its ports, names and
-- paths substituted. Then, through nginx over HTTPS (lua-http, trusting
-- that certificate only): GET / is the page; GET /api/people is a JSON
-- answer of siamese (200 with "people", or 401 with "error" when the
-- server requires a token), and 200 with the admin token (Authorization
-- goes through); a POST as the page's browser would send it (Origin,
-- Sec-Fetch-Site, a door token) reaches the server's handler, one from
-- another site gets the server's 403; a body over client_max_body_size
-- gets nginx's 413; plain HTTP is redirected to HTTPS. Both processes are
-- stopped at the end.
-- Exits non-zero on any failure.
local BUILD = os.getenv("SIAMESE_BUILD") or "build"
-- what `make`'s RUN_LUA gives a script (LUA_PATH_5_4, LUA_CPATH_5_4)
package.path = "./lua/?.lua;./lua/?/init.lua;" .. package.path
package.cpath = "./" .. BUILD .. "/?.so;" .. package.cpath

local NGINX = os.getenv("NGINX") or "/usr/sbin/nginx"
local OUT_DIR = "build/e2e-nginx"
local EXAMPLE = "examples/nginx/siamese.conf"

local function step(fmt, ...) io.stdout:write("e2e nginx: ", fmt:format(...), "\n"); io.stdout:flush() end

do
  local f = io.open(NGINX, "rb")
  if not f then
    step("skipped (nginx not installed)")
    os.exit(0)
  end
  f:close()
end

assert(require("siamese.app.web.deps").setup())
local core = require "siamese.core"
local P = core.process
local cqueues = require "cqueues"
local socket = require "cqueues.socket"
local ce = require "cqueues.errno"
local lfs = require "lfs"
local json = require "siamese.json"
local tls = require "siamese.app.web.tls"
local tokens = require "siamese.app.web.tokens"
local multipart = require "siamese.app.web.multipart"
local http_request = require "http.request"
local context = require "openssl.ssl.context"
local x509 = require "openssl.x509"
local x509_store = require "openssl.x509.store"

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

local function write_file(path, s)
  local f = assert(io.open(path, "wb"))
  assert(f:write(s))
  assert(f:close())
end

-- ---- processes (posix_spawn, no shell) ---------------------------------------

-- Starts argv with stdout and stderr into a socket pair read here: {pid,
-- name, out = the text so far}.
local function spawn(name, argv)
  local ours, theirs = assert(socket.pair())
  ours:setmode("b", "b")
  ours:onerror(function(_, _, why) return why end)
  local fd = theirs:pollfd()
  local pid, err = P.spawn(argv, {stdout = fd, stderr = fd})
  theirs:close()
  if not pid then ours:close() error(("cannot start %s: %s"):format(name, tostring(err)), 2) end
  return {pid = pid, name = name, sock = ours, out = ""}
end

-- Reads what the process wrote, for at most `wait` seconds (0: what is
-- there now); returns the text so far.
local function drain(proc, wait)
  local deadline = cqueues.monotime() + (wait or 0)
  while proc.sock do
    local left = math.max(0, deadline - cqueues.monotime())
    local chunk, err = proc.sock:xread(-65536, left)
    if chunk and #chunk > 0 then
      proc.out = proc.out .. chunk
    elseif err == ce.ETIMEDOUT then
      proc.sock:clearerr("r")
      break
    else -- end of file: the process (and its children) closed it
      proc.sock:close()
      proc.sock = nil
    end
  end
  return proc.out
end

-- true while the process runs (reaps it otherwise; proc.exit says how it ended)
local function alive(proc)
  if proc.exit then return false end
  local exited, code, how = P.waitpid(proc.pid, true)
  if exited == false then return true end
  proc.exit = exited and (how .. " " .. tostring(code)) or "gone"
  return false
end

-- SIGTERM, then SIGKILL after `grace` seconds; returns how it ended.
local function stop(proc, grace)
  if not proc or proc.stopped then return proc and proc.exit end
  proc.stopped = true
  if alive(proc) then
    P.kill(proc.pid, "TERM")
    local deadline = cqueues.monotime() + (grace or 10)
    while alive(proc) and cqueues.monotime() < deadline do cqueues.sleep(0.05) end
    if alive(proc) then
      P.kill(proc.pid, "KILL")
      P.waitpid(proc.pid)
      proc.exit = "killed"
    end
  end
  drain(proc, 0)
  if proc.sock then proc.sock:close() proc.sock = nil end
  return proc.exit
end

-- Runs argv to its end (at most `wait` seconds): exit description, output.
local function run(name, argv, wait)
  local proc = spawn(name, argv)
  local deadline = cqueues.monotime() + (wait or 60)
  while alive(proc) and cqueues.monotime() < deadline do drain(proc, 0.1) end
  stop(proc, 1)
  return proc.exit, proc.out
end

-- n distinct free ports (all held open until each is known)
local function free_ports(n)
  local held, ports = {}, {}
  for i = 1, n do
    held[i] = assert(socket.listen{host = "127.0.0.1", port = 0})
    assert(held[i]:listen())
    ports[i] = select(3, held[i]:localname())
  end
  for _, s in ipairs(held) do s:close() end
  return table.unpack(ports)
end

-- Waits until 127.0.0.1:port accepts connections (while proc runs).
local function wait_port(proc, port, wait)
  local deadline = cqueues.monotime() + wait
  while cqueues.monotime() < deadline do
    if not alive(proc) then return nil, proc.name .. " exited (" .. proc.exit .. ")" end
    local c = socket.connect{host = "127.0.0.1", port = port}
    c:onerror(function(_, _, why) return why end)
    local ok = c:connect(0.5)
    c:close()
    if ok then return true end
    drain(proc, 0.1)
  end
  return nil, ("nothing listens on port %d after %d s"):format(port, wait)
end

-- ---- the nginx configuration -------------------------------------------------

-- examples/nginx/siamese.conf with ports, names and paths substituted;
-- each substitution must apply exactly `n` times (so that a change of
-- the example shows here).
local function site_config(subs)
  local text = assert(read_file(EXAMPLE), "cannot read " .. EXAMPLE)
  for _, s in ipairs(subs) do
    local from, to, want = s[1], s[2], s[3] or 1
    local n = select(2, text:gsub(from:gsub("%p", "%%%0"), ""))
    if n ~= want then
      error(("%s: expected %d occurrence(s) of '%s', found %d (update spec/e2e/nginx.lua)"):format(EXAMPLE, want, from, n))
    end
    text = text:gsub(from:gsub("%p", "%%%0"), (to:gsub("%%", "%%%%")))
  end
  return text
end

local function nginx_config(dir, site)
  return table.concat({
    "# written by spec/e2e/nginx.lua: " .. EXAMPLE .. " in a minimal main context",
    "daemon off;",
    "worker_processes 1;",
    "pid " .. dir .. "/nginx.pid;",
    "error_log " .. dir .. "/error.log info;",
    "events { worker_connections 64; }",
    "http {",
    "    access_log " .. dir .. "/access.log;",
    "    client_body_temp_path " .. dir .. "/tmp/body;",
    "    proxy_temp_path " .. dir .. "/tmp/proxy;",
    "    fastcgi_temp_path " .. dir .. "/tmp/fastcgi;",
    "    uwsgi_temp_path " .. dir .. "/tmp/uwsgi;",
    "    scgi_temp_path " .. dir .. "/tmp/scgi;",
    "    default_type application/octet-stream;",
    site,
    "}",
    "",
  }, "\n")
end

-- ---- HTTP clients --------------------------------------------------------------

-- A client TLS context that trusts only cert_pem.
local function client_ctx(cert_pem)
  local ctx = context.new("TLS", false)
  local store = x509_store.new()
  store:add(x509.new(cert_pem, "PEM"))
  ctx:setStore(store)
  ctx:setVerify(context.VERIFY_PEER)
  return ctx
end

-- One request with lua-http: status, headers, body.
local function request(method, url, ctx, headers, body)
  local req = http_request.new_from_uri(url)
  req.ctx = ctx
  req.follow_redirects = false
  req.headers:upsert(":method", method)
  for k, v in pairs(headers or {}) do req.headers:upsert(k, v) end
  if body then req:set_body(body) end
  local h, stream = req:go(30)
  if not h then error(("%s %s: %s"):format(method, url, tostring(stream)), 2) end
  local answer = assert(stream:get_body_as_string(30))
  stream:shutdown()
  return tonumber(h:get(":status")), h, answer
end

-- A request head only, over a raw TLS connection: the raw answer.
local function raw_tls(port, ctx, head)
  local c = socket.connect{host = "127.0.0.1", port = port}
  c:setmode("b", "b")
  c:onerror(function(_, _, why) return why end)
  assert(c:connect(5))
  local ok, err = c:starttls(ctx, 5)
  if not ok then c:close() error("TLS connection failed: " .. tostring(err)) end
  assert(c:xwrite(head, "n", 5))
  local got = {}
  local deadline = cqueues.monotime() + 10
  while cqueues.monotime() < deadline do
    local chunk = c:xread(-65536, deadline - cqueues.monotime())
    if not chunk or #chunk == 0 then break end
    got[#got + 1] = chunk
    local all = table.concat(got)
    local e = all:find("\r\n\r\n", 1, true)
    local len = e and tonumber(all:sub(1, e):lower():match("\ncontent%-length: *(%d+)") or "")
    if len and #all >= e + 3 + len then break end
  end
  c:close()
  return table.concat(got)
end

local function check(cond, fmt, ...)
  if not cond then error(fmt:format(...), 2) end
end

-- ---- the run -----------------------------------------------------------------

local server, nginx

local function main()
  local cwd = assert(lfs.currentdir())
  local dir = cwd .. "/" .. OUT_DIR
  assert(os.execute("mkdir -p '" .. dir .. "/tmp'")) -- a fixed path, no user input
  for name in lfs.dir(dir) do -- the files of the last run (not tmp/)
    if lfs.attributes(dir .. "/" .. name, "mode") == "file" then os.remove(dir .. "/" .. name) end
  end

  -- the certificate and key (mode 0600: tokens.create_private)
  local cert_pem, key_pem = tls.self_signed{hosts = {"127.0.0.1", "localhost"}, days = 1}
  write_file(dir .. "/cert.pem", cert_pem)
  assert(tokens.create_private(dir .. "/key.pem", key_pem))
  assert(tls.context(dir .. "/cert.pem", dir .. "/key.pem")) -- what siamese serve --tls-cert would accept
  step("self-signed certificate in %s/cert.pem", OUT_DIR)

  -- an admin token, so the server requires tokens (once it checks them)
  local gallery = dir .. "/g.gallery"
  local how, out = run("siamese token add", {"bin/siamese", "token", "add", "--gallery", gallery, "--role", "admin",
                                            "--label", "e2e nginx", "--json"}, 60)
  local added = how == "exit 0" and json.decode(out:match("{.*}") or "") or nil
  check(type(added) == "table" and type(added.token) == "string", "siamese token add failed (%s): %s", tostring(how), out)
  local admin = added.token
  step("admin token %s", added.id)
  how, out = run("siamese token add", {"bin/siamese", "token", "add", "--gallery", gallery, "--role", "door",
                                      "--label", "e2e nginx door", "--json"}, 60)
  added = how == "exit 0" and json.decode(out:match("{.*}") or "") or nil
  check(type(added) == "table" and type(added.token) == "string", "siamese token add failed (%s): %s", tostring(how), out)
  local door = added.token
  step("door token %s", added.id)

  -- siamese serve on loopback, answering to the names nginx forwards
  server = spawn("siamese serve", {"bin/siamese", "serve", "--gallery", gallery, "--host", "127.0.0.1", "--port", "0",
                                   "--workers", "1", "--allowed-host", "127.0.0.1,localhost"})
  local upstream
  local deadline = cqueues.monotime() + 120
  while not upstream and cqueues.monotime() < deadline and alive(server) do
    upstream = drain(server, 0.2):match("http://127%.0%.0%.1:(%d+)")
  end
  check(upstream, "siamese serve did not start (%s):\n%s", tostring(server.exit or "still running"), server.out)
  step("siamese serve at http://127.0.0.1:%s", upstream)

  -- nginx with the example's directives
  local https_port, http_port = free_ports(2)
  local site = site_config{
    {"listen 80;", ("listen 127.0.0.1:%d;"):format(http_port)},
    {"listen 443 ssl;", ("listen 127.0.0.1:%d ssl;"):format(https_port)},
    {"server_name faces.example.org;", "server_name localhost 127.0.0.1;", 2},
    {"/etc/ssl/siamese/fullchain.pem", dir .. "/cert.pem"},
    {"/etc/ssl/siamese/privkey.pem", dir .. "/key.pem"},
    {"proxy_pass http://127.0.0.1:8080;", ("proxy_pass http://127.0.0.1:%s;"):format(upstream)},
  }
  local conf = dir .. "/nginx.conf"
  write_file(conf, nginx_config(dir, site))
  local thow, tout = run("nginx -t", {NGINX, "-t", "-p", dir .. "/", "-e", dir .. "/error.log", "-c", conf}, 30)
  check(thow == "exit 0", "nginx -t failed (%s):\n%s", tostring(thow), tout)
  step("nginx configuration %s/nginx.conf is valid", OUT_DIR)
  nginx = spawn("nginx", {NGINX, "-p", dir .. "/", "-e", dir .. "/error.log", "-c", conf})
  local ok, err = wait_port(nginx, https_port, 20)
  check(ok, "nginx did not start: %s\n%s\n%s", tostring(err), drain(nginx, 0), read_file(dir .. "/error.log") or "")
  step("nginx at https://127.0.0.1:%d/ (and http://127.0.0.1:%d/)", https_port, http_port)

  local ctx = client_ctx(cert_pem)
  local base = ("https://127.0.0.1:%d"):format(https_port)

  -- the page
  local status, h, body = request("GET", base .. "/", ctx)
  check(status == 200, "GET / -> %s: %s", tostring(status), body:sub(1, 300))
  check((h:get("content-type") or ""):find("text/html", 1, true), "GET /: content-type %s", tostring(h:get("content-type")))
  check(body:find("<html", 1, true) or body:find("<!DOCTYPE", 1, true), "GET /: not a page: %s", body:sub(1, 200))
  check(h:get("strict-transport-security"), "GET /: no Strict-Transport-Security header from nginx")
  check(h:get("x-content-type-options") == "nosniff", "GET /: no X-Content-Type-Options from siamese")
  step("GET / -> 200, the page (%d bytes)", #body)

  -- the API, without and with the token
  status, h, body = request("GET", base .. "/api/people", ctx)
  local decoded = json.decode(body)
  check((status == 200 and type(decoded) == "table" and decoded.people ~= nil)
        or (status == 401 and type(decoded) == "table" and decoded.error ~= nil),
        "GET /api/people -> %s (%s): %s", tostring(status), tostring(h:get("content-type")), body:sub(1, 300))
  check((h:get("content-type") or ""):find("json", 1, true), "GET /api/people: content-type %s", tostring(h:get("content-type")))
  step("GET /api/people without a token -> %d %s", status, body:sub(1, 120))
  status, h, body = request("GET", base .. "/api/people", ctx, {authorization = "Bearer " .. admin})
  decoded = json.decode(body)
  check(status == 200 and type(decoded) == "table" and decoded.people ~= nil,
        "GET /api/people with the admin token -> %s: %s", tostring(status), body:sub(1, 300))
  check(h:get("cache-control") == "no-store", "GET /api/people: Cache-Control %s (siamese sends no-store)",
        tostring(h:get("cache-control")))
  step("GET /api/people with the admin token -> 200 %s", body:sub(1, 120))

  -- a browser's POST from the page (Origin https://127.0.0.1:PORT) gets
  -- through: Host (port included), X-Forwarded-Proto, Origin,
  -- Sec-Fetch-Site, Authorization and the body reach the server; one from
  -- another site is refused by the server
  local form, form_type = multipart.encode{note = "no photo"}
  local function post_verify(headers)
    headers["content-type"] = form_type
    local st, _, answer = request("POST", base .. "/api/verify", ctx, headers, form)
    return st, answer, json.decode(answer)
  end
  local origin = base
  status, body, decoded = post_verify{authorization = "Bearer " .. door, origin = origin, ["sec-fetch-site"] = "same-origin"}
  check(status ~= 403 and status ~= 421 and status ~= 401 and status < 500 and type(decoded) == "table" and decoded.error,
        "POST /api/verify from the page (Origin %s) -> %s: %s", origin, tostring(status), body:sub(1, 300))
  step("POST /api/verify from the page, without photos -> %d %s", status, body:sub(1, 120))
  status, body, decoded = post_verify{authorization = "Bearer " .. door, origin = "https://evil.example"}
  check(status == 403 and type(decoded) == "table" and decoded.error,
        "POST /api/verify from another site -> %s: %s", tostring(status), body:sub(1, 300))
  step("POST /api/verify from another site -> 403 %s", body:sub(1, 120))

  -- a body over client_max_body_size: nginx's 413, before the server sees it
  local raw = raw_tls(https_port, ctx, table.concat({
    "POST /api/verify HTTP/1.1", "Host: 127.0.0.1", "Authorization: Bearer " .. admin,
    "Content-Type: multipart/form-data; boundary=xyz", ("Content-Length: %d"):format(10 * 1024 * 1024 + 1), "", ""}, "\r\n"))
  local rstatus = tonumber(raw:match("^HTTP/1%.[01] (%d%d%d)"))
  check(rstatus == 413, "POST of 10 MiB + 1 byte -> %s: %s", tostring(rstatus), raw:sub(1, 300))
  check(raw:lower():find("\r\nserver: nginx", 1, true) and raw:lower():find("content-type: text/html", 1, true),
        "the 413 is not nginx's: %s", raw:sub(1, 300))
  step("POST with Content-Length 10 MiB + 1 -> 413 from nginx")

  -- plain HTTP: a redirect to HTTPS
  status, h = request("GET", ("http://127.0.0.1:%d/api/people"):format(http_port))
  check(status == 301 and (h:get("location") or "") == "https://127.0.0.1/api/people",
        "GET http://.../api/people -> %s, location %s", tostring(status), tostring(h:get("location")))
  step("plain HTTP -> 301 to %s", h:get("location"))

  -- what nginx logged: the requests, through the proxy
  local access = read_file(dir .. "/access.log") or ""
  check(select(2, access:gsub("\n", "")) >= 4, "nginx logged %d requests", select(2, access:gsub("\n", "")))
end

local ok, err = xpcall(main, debug.traceback)
local nginx_end = stop(nginx, 10)
local server_end = stop(server, 15)
if nginx then step("nginx stopped (%s)", tostring(nginx_end)) end
if server then step("siamese serve stopped (%s)", tostring(server_end)) end
if not ok then
  step("FAILED: %s", tostring(err))
  if server then io.stderr:write("---- siamese serve output\n", server.out, "\n") end
  if nginx then
    io.stderr:write("---- nginx output\n", nginx.out, "\n")
    io.stderr:write("---- ", OUT_DIR, "/error.log\n", read_file(OUT_DIR .. "/error.log") or "", "\n")
  end
  os.exit(1)
end
step("ok")
os.exit(0)
