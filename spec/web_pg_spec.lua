-- `siamese serve --gallery postgresql://...`: tokens, gallery and audit log
-- in one database (a throw-away cluster: spec/pg_cluster.lua). Two servers
-- on the same database see each other's enrolments and a revocation; an
-- enrolment by the command line reaches a running server; while the
-- database is away the API fails closed, and works again when it is back.
local web = dofile("spec/web_support.lua")
local support = dofile("spec/support.lua")
local pg_cluster = dofile("spec/pg_cluster.lua")
local audit = require "siamese.app.web.audit"
local q = support.q

describe("siamese serve on a PostgreSQL gallery", function()
  local cluster, url, a, b, admin, door

  setup(function()
    cluster = pg_cluster.start()
    url = cluster.url
    admin = web.add_token(url, "admin")
    door = web.add_token(url, "door")
    a = web.start("--quiet --workers 1 --threads 1 --gallery " .. q(url))
    b = web.start("--quiet --workers 1 --threads 1 --gallery " .. q(url))
  end)

  teardown(function()
    if a then a.stop() end
    if b then b.stop() end
    if cluster then cluster:destroy() end
  end)

  local function call(srv, method, route, token, fields)
    return web.request(method, srv.url .. route, fields, nil, 120, token and web.bearer(token) or {})
  end

  it("an enrolment on one server is identified by the other, and by the command line", function()
    local s, r = call(a, "POST", "/api/enroll", admin, {name = "Tony_Blair", image = web.file(web.photo("Tony_Blair", 1))})
    assert.are.equal(200, s, r and r.error)
    s, r = call(b, "POST", "/api/identify", door, {image = web.file(web.photo("Tony_Blair", 2))})
    assert.are.equal(200, s, r and r.error)
    assert.are.equal("Tony_Blair", r.faces[1].name)
    local out, err, code = support.siamese("identify --gallery " .. q(url) .. " " .. web.photo("Tony_Blair", 2))
    assert.are.equal(0, code, err)
    assert.matches("Tony_Blair %(distance", out)
    -- and the other way: the command line enrols, both servers know at their next request
    out, err, code = support.siamese("enroll --gallery " .. q(url) .. " Colin_Powell " .. web.photo("Colin_Powell", 1))
    assert.are.equal(0, code, err)
    for _, srv in ipairs{a, b} do
      s, r = call(srv, "GET", "/api/people", admin)
      assert.are.equal(200, s)
      assert.are.equal(2, r.count)
    end
    -- every decision and change in the database's audit log
    local log <close> = assert(audit.open(url))
    local seen = {}
    for _, e in ipairs(assert(log:events())) do seen[e.action] = (seen[e.action] or 0) + 1 end
    assert.is_true(seen.enroll >= 2 and seen.identify >= 1 and seen.people >= 2, require("siamese.json").encode(seen))
  end)

  it("a token revoked by the command line is refused by both servers at their next request", function()
    local extra = web.add_token(url, "door")
    local s = call(a, "POST", "/api/identify", extra, {image = web.file(web.photo("Tony_Blair", 2))})
    assert.are.equal(200, s)
    local id = extra:match("^sm_(%x+)_")
    local _, err, code = support.siamese("token revoke --gallery " .. q(url) .. " " .. id)
    assert.are.equal(0, code, err)
    for _, srv in ipairs{a, b} do
      s = call(srv, "POST", "/api/identify", extra, {image = web.file(web.photo("Tony_Blair", 2))})
      assert.are.equal(401, s)
    end
  end)

  it("while the database is away API calls fail closed (tokens cannot be checked); then all is back", function()
    cluster:stop()
    local s, r0 = call(a, "POST", "/api/identify", door, {image = web.file(web.photo("Tony_Blair", 2))})
    assert.are.equal(500, s) -- never let through unchecked
    assert.matches("unavailable", r0.error)
    s = call(a, "GET", "/") -- the page needs no token

    assert.are.equal(200, s)
    cluster:start()
    local r
    s, r = call(a, "POST", "/api/identify", door, {image = web.file(web.photo("Tony_Blair", 2))})
    assert.are.equal(200, s, r and r.error)
    _, r = call(b, "GET", "/api/people", admin)
    assert.are.equal(2, r.count)
  end)
end)
