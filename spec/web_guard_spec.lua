-- siamese.app.web.guard in-process: Host, Origin and token checks, and the
-- route actions, with a real token store in a temporary directory.
local guard = require "siamese.app.web.guard"
local tokens = require "siamese.app.web.tokens"
local support = dofile("spec/support.lua")
local q = support.q

local function req(method, path, headers)
  local h = {}
  for k, v in pairs(headers or {}) do h[k] = {v} end
  return {method = method, path = path, headers = h}
end

describe("siamese.app.web.guard", function()
  local dir, store

  before_each(function()
    dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -m 700 " .. q(dir)))
    store = assert(tokens.open(dir .. "/g.gallery.tokens"))
  end)
  after_each(function() os.execute("rm -rf " .. q(dir)) end)

  it("names each API route's action; the page and unknown routes need none", function()
    assert.are.equal("people", guard.action_of("GET", "/api/people"))
    assert.are.equal("people", guard.action_of("HEAD", "/api/people?x=1"))
    assert.are.equal("enroll", guard.action_of("POST", "/api/enroll"))
    assert.are.equal("remove", guard.action_of("POST", "/api/remove"))
    assert.are.equal("rename", guard.action_of("POST", "/api/rename"))
    assert.are.equal("verify", guard.action_of("POST", "/api/verify"))
    assert.are.equal("identify", guard.action_of("POST", "/api/identify#x"))
    assert.is_nil(guard.action_of("GET", "/"))
    assert.is_nil(guard.action_of("GET", "/api/verify"))
    assert.is_nil(guard.action_of("DELETE", "/api/people"))
    -- every action is one a role allows, and no role allows all
    for _, action in pairs(guard.ACTIONS) do
      assert.is_true(tokens.allows("admin", action) or tokens.allows("door", action))
      assert.is_false(tokens.allows("admin", action) and tokens.allows("door", action))
    end
  end)

  it("tells loopback addresses and parses Host values", function()
    for _, h in ipairs{"127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost", "LOCALHOST"} do
      assert.is_true(guard.is_loopback(h), h)
    end
    for _, h in ipairs{"0.0.0.0", "10.0.0.1", "128.0.0.1", "127.0.0.256", "localhost.evil.example", "::", "", 5} do
      assert.is_false(guard.is_loopback(h), tostring(h))
    end
    assert.are.same({"door.example.org", 8443}, {guard.parse_host("Door.Example.org:8443")})
    assert.are.same({"[::1]", 80}, {guard.parse_host("[::1]:80")})
    assert.are.same({"localhost"}, {guard.parse_host("localhost")})
    for _, bad in ipairs{"", "a b", "user@host", "host/path", "host:0", "host:65536", "host:", "host:12x", ("a"):rep(300)} do
      assert.is_nil(guard.parse_host(bad), bad)
    end
  end)

  it("answers only to its own names in Host (DNS rebinding)", function()
    local g = assert(guard.new{tokens = store, open = true, host = "127.0.0.1", port = 8080})
    for _, h in ipairs{"127.0.0.1:8080", "localhost:8080", "localhost", "[::1]:8080"} do
      assert.is_true(g:host_ok(h), h)
    end
    local ok, err = g:host_ok("evil.example:8080")
    assert.is_nil(ok)
    assert.matches("does not answer to Host 'evil.example:8080'", err, 1, true)
    assert.is_nil(g:host_ok(nil))
    local _, status = g:check(req("GET", "/api/people", {host = "evil.example"}))
    assert.are.equal(421, status)
    _, status = g:check(req("GET", "/", {}))
    assert.are.equal(400, status)
    _, status = g:check({method = "GET", path = "/", headers = {host = {"localhost", "evil.example"}}})
    assert.are.equal(400, status)
    -- HTTP/1.0 may leave Host out (no browser does); then no Origin can match
    assert.is_table((g:check({method = "GET", path = "/api/people", version = "1.0", headers = {}})))
    _, status = g:check({method = "POST", path = "/api/enroll", version = "1.0", headers = {origin = {"http://localhost"}}})
    assert.are.equal(403, status)
    -- allowed hosts: any port for a bare name, one port for NAME:PORT
    g = assert(guard.new{tokens = store, open = true, host = "127.0.0.1", port = 8080,
                         allowed_hosts = {"door.example.org", "alt.example.org:8443"}})
    assert.is_true(g:host_ok("door.example.org"))
    assert.is_true(g:host_ok("door.example.org:443"))
    assert.is_true(g:host_ok("alt.example.org:8443"))
    assert.is_nil(g:host_ok("alt.example.org"))
    assert.is_nil(g:host_ok("alt.example.org:443"))
    -- a wildcard address answers to any name unless names are given
    g = assert(guard.new{tokens = store, host = "0.0.0.0", port = 8080})
    assert.is_true(g:host_ok("anything.example"))
    g = assert(guard.new{tokens = store, host = "0.0.0.0", port = 8080, allowed_hosts = {"door.example.org"}})
    assert.is_nil(g:host_ok("anything.example"))
    assert.is_true(g:host_ok("door.example.org"))
    -- a specific address answers to itself
    g = assert(guard.new{tokens = store, host = "192.0.2.7", port = 8080})
    assert.is_true(g:host_ok("192.0.2.7:8080"))
    assert.is_nil(g:host_ok("localhost:8080"))
    local none, gerr = guard.new{tokens = store, host = "127.0.0.1", port = 1, allowed_hosts = {"a b"}}
    assert.is_nil(none)
    assert.matches("bad allowed host 'a b'", gerr, 1, true)
  end)

  it("refuses cross-site and cross-origin API requests (CSRF), accepts its own page's", function()
    local g = assert(guard.new{tokens = store, open = true, host = "127.0.0.1", port = 8080})
    local host = "127.0.0.1:8080"
    local function status_of(method, path, h)
      h.host = h.host or host
      local who, status, msg = g:check(req(method, path, h), "127.0.0.1")
      return who and 200 or status, msg
    end
    assert.are.equal(200, status_of("POST", "/api/enroll", {origin = "http://127.0.0.1:8080", ["sec-fetch-site"] = "same-origin"}))
    assert.are.equal(200, status_of("POST", "/api/enroll", {})) -- not a browser: no Origin
    assert.are.equal(200, status_of("GET", "/api/people", {["sec-fetch-site"] = "none"}))
    local s, msg = status_of("POST", "/api/enroll", {origin = "http://evil.example"})
    assert.are.equal(403, s)
    assert.matches("Origin http://evil.example is not http://127.0.0.1:8080", msg, 1, true)
    s, msg = status_of("POST", "/api/enroll", {["sec-fetch-site"] = "cross-site"})
    assert.are.equal(403, s)
    assert.matches("Sec-Fetch-Site: cross-site", msg, 1, true)
    assert.are.equal(403, status_of("POST", "/api/verify", {["sec-fetch-site"] = "same-site"}))
    assert.are.equal(403, status_of("POST", "/api/enroll", {origin = "null"}))
    assert.are.equal(403, status_of("POST", "/api/enroll", {origin = "https://127.0.0.1:8080"})) -- another scheme
    assert.are.equal(403, status_of("POST", "/api/enroll", {origin = "http://127.0.0.1:8081"})) -- another port
    assert.are.equal(403, status_of("GET", "/api/people", {["sec-fetch-site"] = "cross-site"}))
    -- POST to a route that does not exist is checked too; the page is not
    assert.are.equal(403, status_of("POST", "/nowhere", {origin = "http://evil.example"}))
    assert.are.equal(200, status_of("GET", "/", {["sec-fetch-site"] = "cross-site"}))
    -- default ports may be elided on either side
    g = assert(guard.new{tokens = store, open = true, host = "127.0.0.1", port = 80, allowed_hosts = {"door.example.org"}})
    assert.are.equal(200, status_of("POST", "/api/enroll", {host = "door.example.org", origin = "http://door.example.org:80"}))
    -- a reverse proxy on loopback says the scheme (X-Forwarded-Proto); from elsewhere it is ignored
    local h = {host = "door.example.org", origin = "https://door.example.org", ["x-forwarded-proto"] = "https"}
    assert.is_table((g:check(req("POST", "/api/enroll", h), "127.0.0.1")))
    assert.is_nil((g:check(req("POST", "/api/enroll", h), "192.0.2.9")))
    -- a server speaking TLS expects https
    g = assert(guard.new{tokens = store, open = true, host = "127.0.0.1", port = 8443, tls = true})
    assert.is_table((g:check(req("POST", "/api/enroll", {host = "localhost:8443", origin = "https://localhost:8443"}))))
    assert.is_nil((g:check(req("POST", "/api/enroll", {host = "localhost:8443", origin = "http://localhost:8443"}))))
  end)

  it("checks tokens and roles; the API is open only until a token exists", function()
    local g = assert(guard.new{tokens = store, open = true, host = "127.0.0.1", port = 8080})
    local function check(method, path, token)
      return g:check(req(method, path, {host = "localhost", authorization = token and "Bearer " .. token}))
    end
    -- open: anyone, no who
    local who, action = check("POST", "/api/enroll")
    assert.are.same({}, who)
    assert.are.equal("enroll", action)
    -- but not through a proxy: that is how an open server gets opened to all
    for _, hname in ipairs{"x-forwarded-for", "forwarded", "x-real-ip"} do
      local none, st, m = g:check(req("GET", "/api/people", {host = "localhost", [hname] = "203.0.113.5"}), "127.0.0.1")
      assert.is_nil(none)
      assert.are.equal(401, st)
      assert.matches("no access tokens, so it takes no requests through a proxy", m, 1, true)
    end
    local admin = assert(store:add("admin", "desk"))
    local door = assert(store:add("door", "front"))
    -- from now on, tokens are required
    local none, status, msg, headers = check("POST", "/api/enroll")
    assert.is_nil(none)
    assert.are.equal(401, status)
    assert.matches("access token is required", msg, 1, true)
    assert.are.same({{"www-authenticate", 'Bearer realm="siamese"'}}, headers)
    who, action = check("POST", "/api/enroll", admin)
    assert.are.equal("admin", who.role)
    assert.are.equal("enroll", action)
    assert.is_nil(who.sha256)
    who = check("GET", "/api/people", admin)
    assert.are.equal("admin", who.role)
    who = check("POST", "/api/verify", door)
    assert.are.equal("door", who.role)
    local refused, refused_who
    refused, status, msg, headers, refused_who = check("POST", "/api/enroll", door)
    assert.is_nil(refused)
    assert.are.equal(403, status)
    assert.are.equal("a door token may not enrol people", msg)
    assert.are.equal("door", refused_who.role)
    _, status = check("GET", "/api/people", door)
    assert.are.equal(403, status)
    _, status = check("POST", "/api/identify", admin)
    assert.are.equal(403, status)
    _, status, msg = check("POST", "/api/verify", support.wrong_secret(door))
    assert.are.equal(401, status)
    assert.matches("unknown or revoked", msg, 1, true)
    _, status = check("POST", "/api/verify", "not-a-token")
    assert.are.equal(401, status)
    -- the page needs no token
    assert.are.same({}, (check("GET", "/")))
    -- revoking every token does not reopen the API
    for _, t in ipairs(assert(store:list())) do assert(store:revoke(t.id)) end
    _, status = check("POST", "/api/enroll")
    assert.are.equal(401, status)
    _, status = check("POST", "/api/verify", door)
    assert.are.equal(401, status)
  end)

  it("requires tokens from the start when not open, and fails closed on a damaged store", function()
    local g = assert(guard.new{tokens = store, host = "127.0.0.1", port = 8080})
    local _, status = g:check(req("POST", "/api/verify", {host = "localhost"}))
    assert.are.equal(401, status)
    local admin = assert(store:add("admin"))
    local f = assert(io.open(store.path, "wb"))
    f:write("{not json")
    f:close()
    local msg
    _, status, msg = g:check(req("GET", "/api/people", {host = "localhost", authorization = "Bearer " .. admin}))
    assert.are.equal(500, status)
    assert.matches("token store is unavailable", msg, 1, true)
    -- an open guard whose store is damaged is not open
    local g2 = assert(guard.new{tokens = store, open = true, host = "127.0.0.1", port = 8080})
    _, status = g2:check(req("POST", "/api/enroll", {host = "localhost"}))
    assert.are.equal(401, status)
  end)

  it("refuses misuse and keeps log lines printable", function()
    assert.has_error(function() guard.new() end)
    assert.has_error(function() guard.new{host = "127.0.0.1", port = 1} end) -- no store and not open
    assert.has_error(function() guard.new{tokens = store, host = "127.0.0.1"} end) -- no port
    assert.is_table(guard.new{open = true, host = "127.0.0.1", port = 1})
    assert.are.equal("a?b", guard.printable("a\nb"))
    assert.are.equal("aa...", guard.printable("aaaa", 2))
  end)
end)
