-- siamese.app.web.audit on a postgresql:// URL (siamese.app.web.audit_pg), against
-- a throw-away cluster started here (spec/pg_cluster.lua).
local audit = require "siamese.app.web.audit"
local pg = require "siamese.pg"
local pq = require "siamese.pq"
local support = dofile("spec/support.lua")
local pg_cluster = dofile("spec/pg_cluster.lua")

describe("audit log in PostgreSQL", function()
  local cluster, url

  setup(function()
    cluster = pg_cluster.start()
    url = cluster.url
  end)

  teardown(function()
    if cluster then cluster:destroy() end
  end)

  it("lives in the gallery's database; records and filters events as the SQLite log does", function()
    assert.are.equal(url, audit.path_for(url))
    local log <close> = assert(audit.open(url))
    local id1 = assert(log:record{role = "admin", token_id = "t1", client = "10.0.0.1", action = "verify",
      name = "Zoë", distance = 0.25, threshold = 0.549, accepted = true, detail = "quote ' and \0 byte"})
    local id2 = assert(log:record{action = "enroll", name = "Bob", accepted = false, detail = "refused"})
    local id3 = assert(log:record{action = "verify", name = "Bob"})
    local id4 = assert(log:record{action = "identify", client = "bad \xff\xfe utf-8"}) -- from a hostile request
    assert.are.equal("bad \u{FFFD}\u{FFFD} utf-8", log:events{action = "identify"}[1].client)
    assert.is_true(id3 < id4)
    assert.is_true(id1 < id2 and id2 < id3)
    local all = assert(log:events())
    assert.are.equal(4, #all)
    local e = all[1]
    -- the zero byte (which PostgreSQL text cannot hold) is stored as U+FFFD
    assert.are.same({id1, "admin", "t1", "10.0.0.1", "verify", "Zoë", 0.25, 0.549, true, "quote ' and \u{FFFD} byte"},
      {e.id, e.role, e.token_id, e.client, e.action, e.name, e.distance, e.threshold, e.accepted, e.detail})
    assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%dZ$", e.at)
    assert.are.same({false, nil}, {all[2].accepted, all[3].accepted})
    assert.are.same({id1, id3}, {log:events{action = "verify"}[1].id, log:events{action = "verify"}[2].id})
    assert.are.equal(2, #log:events{name = "Bob"})
    assert.are.same({id3, id4}, {log:events{limit = 2}[1].id, log:events{limit = 2}[2].id})
    assert.are.equal(4, #log:events{since = "2000-01-01"})
    assert.are.equal(0, #log:events{since = os.time() + 3600})
    support.assert_error(function() log:record{name = "x"} end, "action is required")
    support.assert_error(function() log:events{limit = -1} end, "limit must be")
    log:close()
    support.assert_error(function() log:record{action = "x"} end, "closed log")
  end)

  it("is append-only in the database itself, and refuses a log whose trigger was tampered with", function()
    local log = assert(audit.open(url))
    assert(log:record{action = "remove", name = "Eve"})
    log:close()
    local conn <close> = assert(pg.connect(url))
    for _, sql in ipairs{"update siamese_audit set name = 'Mallory'", "delete from siamese_audit",
                         "truncate siamese_audit"} do
      local ok, err = conn:exec(sql)
      assert.is_nil(ok, sql)
      assert.matches("append%-only", err)
    end
    assert(conn:exec("alter table siamese_audit disable trigger siamese_audit_append_only"))
    local none, err = audit.open(url)
    assert.is_nil(none)
    assert.matches("the append%-only trigger is disabled %(tampered log%?%)", err)
    assert(conn:exec("alter table siamese_audit enable trigger siamese_audit_append_only"))
    assert(conn:exec("create function nothing() returns trigger language plpgsql as $$ begin return null; end $$"))
    assert(conn:exec("create trigger drop_inserts before insert on siamese_audit for each row execute function nothing()"))
    none, err = audit.open(url)
    assert.is_nil(none)
    assert.matches("unexpected trigger drop_inserts", err)
    assert(conn:exec("drop trigger drop_inserts on siamese_audit"))
    assert(audit.open(url)):close()
    assert.are.equal(pq.null, pq.null)
  end)
end)
