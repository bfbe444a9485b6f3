-- `siamese serve` with access tokens: roles, cross-site refusals, Host,
-- security headers, remove and rename, the audit log of every decision and
-- change, and the refusal to listen beyond loopback without tokens or TLS.
-- Started as a subprocess (spec/web_support.lua) with one worker.
local web = dofile("spec/web_support.lua")
local audit = require "siamese.app.web.audit"
local support = dofile("spec/support.lua")
local q = support.q

local TONY, COLIN = "Tony_Blair", "Colin_Powell"

describe("siamese serve with access tokens", function()
  local dir, gpath, srv, admin, door

  setup(function()
    dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -m 700 " .. q(dir)))
    gpath = dir .. "/people.gallery"
    admin = web.add_token(gpath, "admin")
    door = web.add_token(gpath, "door")
    srv = web.start("--quiet --workers 1 --threads 1 --gallery " .. q(gpath))
  end)

  teardown(function()
    if srv then srv.stop() end
    os.execute("rm -rf " .. q(dir))
  end)

  local function call(method, route, token, fields, headers)
    local h = token and web.bearer(token) or {}
    for k, v in pairs(headers or {}) do h[k] = v end
    return web.request(method, srv.url .. route, fields, nil, 120, h)
  end

  local function events(opts)
    local log = assert(audit.open(gpath .. ".audit"))
    local ev = assert(log:events(opts))
    log:close()
    return ev
  end

  it("needs a token of the right role for each API route; the page needs none", function()
    local s, r, _, h = call("GET", "/api/people")
    assert.are.equal(401, s)
    assert.matches("access token is required", r.error, 1, true)
    assert.matches("^Bearer", h:get("www-authenticate"))
    s, r = call("GET", "/api/people", door)
    assert.are.equal(403, s)
    assert.are.equal("a door token may not list the people", r.error)
    s, r = call("GET", "/api/people", admin)
    assert.are.equal(200, s)
    assert.are.equal(0, r.count)
    s = call("GET", "/api/people", support.wrong_secret(admin))
    assert.are.equal(401, s)
    s = call("GET", "/")
    assert.are.equal(200, s)
    -- enrol: admin only
    local photo = web.file(web.photo(TONY, 1))
    s, r = call("POST", "/api/enroll", door, {name = "Tony", image = photo})
    assert.are.equal(403, s)
    s, r = call("POST", "/api/enroll", nil, {name = "Tony", image = photo})
    assert.are.equal(401, s)
    s, r = call("POST", "/api/enroll", admin, {name = "Tony", image = photo})
    assert.are.equal(200, s, r and r.error)
    assert.are.equal("Tony", r.name)
    -- verify and identify: door only
    local pair = {image1 = web.file(web.photo(TONY, 2)), image2 = web.file(web.photo(TONY, 3))}
    s = call("POST", "/api/verify", admin, pair)
    assert.are.equal(403, s)
    s, r = call("POST", "/api/verify", door, pair)
    assert.are.equal(200, s, r and r.error)
    assert.is_true(r.accepted)
    s, r = call("POST", "/api/identify", door, {image = web.file(web.photo(TONY, 5))})
    assert.are.equal(200, s, r and r.error)
    assert.are.equal("Tony", r.faces[1].name)
  end)

  it("refuses cross-site requests and foreign Host names, even with a valid token", function()
    local photo = web.file(web.photo(COLIN, 3))
    local s, r = call("POST", "/api/enroll", admin, {name = "Colin", image = photo}, {origin = "http://evil.example"})
    assert.are.equal(403, s)
    assert.matches("cross-origin request refused", r.error, 1, true)
    s = call("POST", "/api/enroll", admin, {name = "Colin", image = photo}, {["sec-fetch-site"] = "cross-site"})
    assert.are.equal(403, s)
    s, r = call("GET", "/api/people", admin, nil, {[":authority"] = "evil.example:" .. srv.url:match(":(%d+)$")})
    assert.are.equal(421, s)
    s, r = call("GET", "/api/people", admin)
    assert.are.equal(1, r.count) -- Colin was not enrolled
    -- the page's own origin is fine
    s, r = call("POST", "/api/enroll", admin, {name = "Colin", image = photo},
                {origin = srv.url, ["sec-fetch-site"] = "same-origin"})
    assert.are.equal(200, s, r and r.error)
  end)

  it("sends security headers and no CORS headers", function()
    local s, _, _, h = call("GET", "/")
    assert.are.equal(200, s)
    local csp = h:get("content-security-policy")
    assert.matches("default-src 'none'", csp, 1, true)
    assert.matches("frame-ancestors 'none'", csp, 1, true)
    assert.are.equal("DENY", h:get("x-frame-options"))
    assert.are.equal("no-referrer", h:get("referrer-policy"))
    assert.are.equal("nosniff", h:get("x-content-type-options"))
    local _, _, _, h2 = call("GET", "/api/people", nil, nil, {origin = "http://evil.example"})
    for _, hh in ipairs{h, h2} do
      for name in hh:each() do assert.is_nil(name:match("^access%-control"), name) end
    end
    assert.are.equal("default-src 'none'; frame-ancestors 'none'", h2:get("content-security-policy"))
  end)

  it("renames and removes people (admin only)", function()
    local s, r = call("POST", "/api/rename", door, {name = "Colin", new_name = "Colin Powell"})
    assert.are.equal(403, s)
    s, r = call("POST", "/api/rename", admin, {name = "Colin", new_name = "Colin Powell"})
    assert.are.equal(200, s, r and r.error)
    assert.are.equal("Colin Powell", r.name)
    s, r = call("POST", "/api/rename", admin, {name = "Colin", new_name = "X"})
    assert.are.equal(404, s)
    s, r = call("POST", "/api/rename", admin, {name = "Tony", new_name = "colin powell"})
    assert.are.equal(409, s)
    assert.matches("only by case", r.error, 1, true)
    s, r = call("POST", "/api/rename", admin, {name = "Tony", new_name = "bad\1name"})
    assert.are.equal(400, s)
    s, r = call("POST", "/api/remove", admin, {name = "Nobody"})
    assert.are.equal(404, s)
    s, r = call("POST", "/api/remove", admin, {name = "Colin Powell"})
    assert.are.equal(200, s, r and r.error)
    assert.are.equal(1, r.count)
    s, r = call("GET", "/api/people", admin)
    assert.are.equal(1, r.count)
    assert.are.equal("Tony", r.people[1].name)
  end)

  it("records every decision and change with role, token id and address in the append-only audit log", function()
    local admin_id, door_id = admin:match("^sm_(%x+)_"), door:match("^sm_(%x+)_")
    local all = events()
    local function find(pred)
      for _, e in ipairs(all) do if pred(e) then return e end end
    end
    local enrolled = find(function(e) return e.action == "enroll" and e.accepted and e.name == "Tony" end)
    assert.is_table(enrolled)
    assert.are.equal("admin", enrolled.role)
    assert.are.equal(admin_id, enrolled.token_id)
    assert.matches("^127%.0%.0%.1", enrolled.client)
    local verified = find(function(e) return e.action == "verify" and e.accepted ~= false end)
    assert.are.equal("door", verified.role)
    assert.are.equal(door_id, verified.token_id)
    assert.is_true(verified.accepted)
    assert.is_number(verified.distance)
    assert.is_true(verified.distance <= verified.threshold)
    local identified = find(function(e) return e.action == "identify" end)
    assert.are.equal("Tony", identified.name)
    assert.is_true(identified.accepted)
    -- a valid token refused for its role is recorded; a request without a valid token is not
    local forbidden = find(function(e) return e.action == "enroll" and e.accepted == false and e.role == "door" end)
    assert.matches("^403", forbidden.detail)
    assert.is_nil(find(function(e) return e.role == nil end))
    -- rename, remove, a refused rename (409)
    assert.is_table(find(function(e) return e.action == "rename" and e.accepted and e.detail == "renamed to Colin Powell" end))
    assert.is_table(find(function(e) return e.action == "remove" and e.accepted and e.name == "Colin Powell" end))
    assert.is_table(find(function(e) return e.action == "rename" and e.accepted == false and e.detail:match("^409") end))
    -- append-only
    local sqlite = require "siamese.app.sqlite"
    local conn, env = assert(sqlite.connect("test", gpath .. ".audit", 1000, function() return true end))
    local ok, err = sqlite.query(conn, "DELETE FROM events")
    assert.is_nil(ok)
    assert.matches("append%-only", err)
    sqlite.close({conn = conn, env = env})
    -- 0600
    local lfs = require "lfs"
    assert.are.equal("rw-------", lfs.attributes(gpath .. ".audit", "permissions"))
  end)

  it("refuses a revoked token from its next request on", function()
    local extra = web.add_token(gpath, "door")
    local pair = {image1 = web.file(web.photo(TONY, 2)), image2 = web.file(web.photo(TONY, 3))}
    local s = call("POST", "/api/verify", extra, pair)
    assert.are.equal(200, s)
    assert(os.execute("bin/siamese token revoke --gallery " .. q(gpath) .. " " .. extra:match("^sm_(%x+)_") .. " >/dev/null"))
    s = call("POST", "/api/verify", extra, pair)
    assert.are.equal(401, s)
  end)
end)

describe("siamese serve without tokens", function()
  local dir

  before_each(function()
    dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -m 700 " .. q(dir)))
  end)
  after_each(function() os.execute("rm -rf " .. q(dir)) end)

  it("is open on loopback until a token is added, then requires tokens", function()
    local gpath = dir .. "/g.gallery"
    local srv = web.start("--quiet --workers 1 --threads 1 --gallery " .. q(gpath))
    local ok, err = pcall(function()
      assert.matches("open: no access tokens", web.read_file(srv.out), 1, true)
      assert.matches("no access tokens", web.read_file(srv.err), 1, true)
      local s = web.request("GET", srv.url .. "/api/people")
      assert.are.equal(200, s)
      -- the browser attack on an open server: still refused
      s = web.request("POST", srv.url .. "/api/enroll", {name = "Tony", image = web.file(web.photo(TONY, 1))}, nil, 120,
                      {origin = "http://evil.example"})
      assert.are.equal(403, s)
      local admin = web.add_token(gpath, "admin")
      s = web.request("GET", srv.url .. "/api/people")
      assert.are.equal(401, s)
      s = web.request("GET", srv.url .. "/api/people", nil, nil, 120, web.bearer(admin))
      assert.are.equal(200, s)
      -- open-API calls are audited too, without a role
      local log = assert(audit.open(gpath .. ".audit"))
      local ev = assert(log:events{action = "people"})
      log:close()
      assert.is_true(#ev >= 2)
      assert.is_nil(ev[1].role)
      assert.are.equal("admin", ev[#ev].role)
    end)
    srv.stop()
    assert(ok, err)
  end)

  it("refuses to listen beyond loopback without tokens, or without TLS", function()
    local gpath = dir .. "/g.gallery"
    local code, err = web.run_failing("--port 0 --host 0.0.0.0 --gallery " .. q(gpath))
    assert.are.equal(2, code)
    assert.matches("refusing to listen on 0.0.0.0 without access tokens", err, 1, true)
    web.add_token(gpath, "admin")
    code, err = web.run_failing("--port 0 --host 0.0.0.0 --gallery " .. q(gpath))
    assert.are.equal(2, code)
    assert.matches("refusing to serve plain HTTP on 0.0.0.0", err, 1, true)
    code, err = web.run_failing("--port 0 --tls-cert x.pem --gallery " .. q(gpath))
    assert.are.equal(2, code)
    assert.matches("--tls-cert and --tls-key go together", err, 1, true)
    code, err = web.run_failing("--port 0 --allowed-host 'a b' --gallery " .. q(gpath))
    assert.are.equal(2, code)
    assert.matches("--allowed-host: 'a b' is not a host name", err, 1, true)
    local srv = web.start("--quiet --workers 1 --threads 1 --host 0.0.0.0 --insecure-http --gallery " .. q(gpath))
    local ok, perr = pcall(function()
      assert.matches("access tokens required", web.read_file(srv.out), 1, true)
      local port = srv.url:match(":(%d+)$")
      local s = web.request("GET", "http://127.0.0.1:" .. port .. "/api/people")
      assert.are.equal(401, s)
    end)
    srv.stop()
    assert(ok, perr)
  end)

  it("serves HTTPS with --tls-cert/--tls-key and sends HSTS", function()
    local tls = require "siamese.app.web.tls"
    local tokens = require "siamese.app.web.tokens"
    local cert, key = tls.self_signed{hosts = {"127.0.0.1", "localhost"}, days = 1}
    local cert_path, key_path = dir .. "/cert.pem", dir .. "/key.pem"
    local f = assert(io.open(cert_path, "wb"))
    f:write(cert)
    f:close()
    assert(tokens.create_private(key_path, key))
    local gpath = dir .. "/g.gallery"
    local door = web.add_token(gpath, "door")
    local srv = web.start(("--workers 1 --threads 1 --host 0.0.0.0 --tls-cert %s --tls-key %s --gallery %s")
      :format(q(cert_path), q(key_path), q(gpath)))
    local ok, err = pcall(function()
      assert.matches("^https://", srv.url)
      local port = srv.url:match(":(%d+)$")
      local context = require "openssl.ssl.context"
      local store = require("openssl.x509.store").new()
      store:add(require("openssl.x509").new(cert))
      local ctx = context.new("TLS", false)
      ctx:setStore(store)
      ctx:setVerify(context.VERIFY_PEER)
      web.client_tls = ctx
      local s, _, _, h = web.request("GET", "https://127.0.0.1:" .. port .. "/api/people", nil, nil, 60)
      assert.are.equal(401, s)
      assert.matches("max%-age=", h:get("strict-transport-security"))
      s = web.request("POST", "https://127.0.0.1:" .. port .. "/api/verify",
        {image1 = web.file(web.photo(TONY, 2)), image2 = web.file(web.photo(TONY, 3))}, nil, 120, web.bearer(door))
      assert.are.equal(200, s)
      -- plain HTTP to the HTTPS port: refused, logged, and the server carries on
      local raw = web.exchange("http://127.0.0.1:" .. port, "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
      assert.is_nil(raw:match("^HTTP/1%.1 200"))
      assert.are.equal(401, (web.request("GET", "https://127.0.0.1:" .. port .. "/api/people", nil, nil, 60)))
      assert.matches("TLS handshake failed", web.read_file(srv.err), 1, true)
    end)
    web.client_tls = nil
    srv.stop()
    assert(ok, err)
    -- a key others may read is refused at start-up
    assert(os.execute("chmod 644 " .. q(key_path)))
    local code, serr = web.run_failing(("--port 0 --tls-cert %s --tls-key %s --gallery %s"):format(
      q(cert_path), q(key_path), q(gpath)))
    assert.are.equal(2, code)
    assert.matches("too open", serr, 1, true)
  end)
end)
