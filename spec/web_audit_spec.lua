-- Specs of siamese.app.web.audit: the append-only SQLite audit log of a
-- gallery (record/events, triggers that refuse UPDATE and DELETE, mode
-- 0600, values stored exactly; path_for, local_actor).
local audit = require "siamese.app.web.audit"
local lfs = require "lfs"
local support = dofile("spec/support.lua")

local q = support.q
local has_sqlite = pcall(require, "luasql.sqlite3")

describe("siamese.app.web.audit", function()
  if not has_sqlite then
    pending("lua-sql-sqlite3 is not installed (apt-get install lua-sql-sqlite3)")
    return
  end

  local dir, path
  before_each(function()
    dir = support.temp_dir("web_audit")
    path = dir .. "/office.gallery.audit"
  end)
  after_each(function() os.execute("rm -rf " .. q(dir)) end)

  -- A raw connection, as a bug elsewhere (or a person with sqlite3) would have.
  local function raw(p)
    local env = require("luasql.sqlite3").sqlite3()
    local conn = assert(env:connect(p))
    return conn, env
  end

  it("records events and lists them, filtered, oldest first", function()
    local log = assert(audit.open(path))
    local t0 = os.date("!%Y-%m-%dT%H:%M:%SZ")
    local id1 = assert(log:record{role = "door", token_id = "1a2b3c4d", client = "192.0.2.7", action = "verify",
                                  name = "alice", distance = 0.41, threshold = 0.6, accepted = true})
    local id2 = assert(log:record{role = "door", token_id = "1a2b3c4d", client = "192.0.2.7", action = "identify",
                                  distance = 0.93, threshold = 0.6, accepted = false, detail = "nobody within"})
    local id3 = assert(log:record{role = "admin", token_id = "99aa88bb", client = "::1", action = "rename",
                                  name = "alice", detail = "now Alice"})
    local id4 = assert(log:record{client = "198.51.100.1", action = "enroll", accepted = false, detail = "401 missing"})
    assert.are.same({1, 2, 3, 4}, {id1, id2, id3, id4})
    assert.is_true(math.type(id1) == "integer")

    local all = log:events()
    assert.are.equal(4, #all)
    local e = all[1]
    assert.are.equal(1, e.id)
    assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%dZ$", e.at)
    assert.is_true(e.at >= t0)
    assert.are.same({"door", "1a2b3c4d", "192.0.2.7", "verify", "alice", 0.41, 0.6, true},
      {e.role, e.token_id, e.client, e.action, e.name, e.distance, e.threshold, e.accepted})
    assert.is_nil(e.detail)
    assert.is_false(all[2].accepted)
    assert.is_nil(all[2].name)
    assert.is_nil(all[3].accepted)         -- not a decision
    assert.is_nil(all[4].role)
    assert.is_nil(all[4].token_id)

    local function ids(list)
      local out = {}
      for i, ev in ipairs(list) do out[i] = ev.id end
      return out
    end
    assert.are.same({1, 3}, ids(log:events{name = "alice"}))
    assert.are.same({2}, ids(log:events{action = "identify"}))
    assert.are.same({3}, ids(log:events{action = "rename", name = "alice"}))
    assert.are.same({3}, ids(log:events{token_id = "99aa88bb"}))
    assert.are.same({3, 4}, ids(log:events{limit = 2}))     -- the latest, oldest first
    assert.are.same({}, ids(log:events{limit = 0}))
    assert.are.same({1, 3}, ids(log:events{name = "alice", limit = 5}))
    assert.are.same({1, 2, 3, 4}, ids(log:events{since = t0}))
    assert.are.same({1, 2, 3, 4}, ids(log:events{since = os.time() - 60}))
    assert.are.same({}, ids(log:events{since = "2999-01-01"}))
    assert.are.same({}, ids(log:events{name = "bob"}))
    log:close()
    log:close() -- idempotent

    -- reopened: the same events, and new ones follow
    local again = assert(audit.open(path))
    assert.are.equal(4, #again:events())
    assert.are.equal(5, again:record{action = "people", role = "admin"})
    again:close()
  end)

  it("the triggers refuse UPDATE and DELETE, even through a raw connection", function()
    local log = assert(audit.open(path))
    assert(log:record{action = "verify", name = "alice", accepted = false, distance = 0.9})
    assert(log:record{action = "verify", name = "bob", accepted = true, distance = 0.2})
    log:close()
    local conn, env = raw(path)
    for _, sql in ipairs{
      "UPDATE events SET accepted = 1 WHERE name = 'alice'",
      "UPDATE events SET name = 'mallory'",
      "DELETE FROM events WHERE name = 'bob'",
      "DELETE FROM events",
      "UPDATE schema_version SET version = 0",
      "DELETE FROM schema_version",
    } do
      local n, err = conn:execute(sql)
      assert.is_nil(n, sql)
      assert.matches("append%-only", err, nil, false)
    end
    -- INSERT still works (append)
    assert.are.equal(1, conn:execute("INSERT INTO events (at, action) VALUES ('2026-01-01T00:00:00Z', 'raw')"))
    conn:close(); env:close()
    local again = assert(audit.open(path))
    local all = again:events()
    assert.are.equal(3, #all)
    assert.are.same({"alice", false, 0.9}, {all[1].name, all[1].accepted, all[1].distance})
    assert.are.same({"bob", true}, {all[2].name, all[2].accepted})
    again:close()
    -- a log whose triggers were dropped is refused as tampered
    conn, env = raw(path)
    assert(conn:execute("DROP TRIGGER events_no_delete"))
    conn:close(); env:close()
    local tampered, msg = audit.open(path)
    assert.is_nil(tampered)
    assert.matches("events_no_delete is missing", msg, 1, true)
    -- ... or rewritten under its name
    conn, env = raw(path)
    assert(conn:execute("CREATE TRIGGER events_no_delete BEFORE DELETE ON events BEGIN SELECT 1; END"))
    conn:close(); env:close()
    tampered, msg = audit.open(path)
    assert.is_nil(tampered)
    assert.matches("events_no_delete was changed", msg, 1, true)
    -- ... or joined by one that silences the log
    conn, env = raw(path)
    assert(conn:execute("DROP TRIGGER events_no_delete"))
    assert(conn:execute([[CREATE TRIGGER events_no_delete BEFORE DELETE ON events
      BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END]]))
    assert(conn:execute("CREATE TRIGGER drop_inserts BEFORE INSERT ON events BEGIN SELECT RAISE(IGNORE); END"))
    conn:close(); env:close()
    tampered, msg = audit.open(path)
    assert.is_nil(tampered)
    assert.matches("unexpected trigger drop_inserts", msg, 1, true)
  end)

  it("offers no way to change or delete events", function()
    local log = assert(audit.open(path))
    for name, v in pairs(getmetatable(log).__index) do
      if type(v) == "function" then
        assert.truthy(({record = true, events = true, close = true, __close = true, __gc = true})[name], name)
      end
    end
    log:close()
  end)

  it("creates the file with mode 0600 and refuses one group or others may use", function()
    local log = assert(audit.open(path))
    assert(log:record{action = "verify"})
    assert.are.equal("rw-------", lfs.attributes(path, "permissions"))
    log:close()
    -- nothing else left next to it (no temporary, no lock file)
    assert.are.same({"office.gallery.audit"}, support.list_dir(dir))
    assert(os.execute("chmod 644 " .. q(path)))
    local l2, msg = audit.open(path)
    assert.is_nil(l2)
    assert.matches("permissions 0644 are too open", msg, 1, true)
    assert(os.execute("chmod 600 " .. q(path)))
    l2 = assert(audit.open(path))
    assert.are.equal(1, #l2:events())
    l2:close()
  end)

  it("stores names with quotes, NUL bytes and Unicode exactly", function()
    local log = assert(audit.open(path))
    local names = {
      "O'Brien", "'; DROP TABLE events; --", 'say "cheese"', "nul\0inside", "\0", "Zoë Ångström", "東京 🙂",
      "back\\slash", "CAST(X'00' AS TEXT)", "?", "??", "trailing\n", "\xff\xfe not utf-8", "",
    }
    for i, name in ipairs(names) do
      assert.are.equal(i, log:record{action = "enroll", name = name, detail = name, client = name})
    end
    local all = log:events()
    assert.are.equal(#names, #all)
    for i, name in ipairs(names) do
      assert.are.equal(name, all[i].name, i)
      assert.are.equal(name, all[i].detail, i)
      assert.are.equal(name, all[i].client, i)
    end
    -- filters match them exactly too
    for i, name in ipairs(names) do
      local got = log:events{name = name}
      assert.are.equal(1, #got, i)
      assert.are.equal(i, got[1].id)
    end
    assert.are.equal(#names, #log:events()) -- the injection attempt dropped nothing
    -- numbers: NaN and infinities become NULL; integers stay exact
    assert(log:record{action = "verify", distance = 0 / 0, threshold = math.huge})
    assert(log:record{action = "verify", distance = 3, threshold = 0.1 + 0.2})
    local last = log:events{limit = 2}
    assert.is_nil(last[1].distance)
    assert.is_nil(last[1].threshold)
    assert.are.equal(3, last[2].distance)
    assert.are.equal(0.1 + 0.2, last[2].threshold)
    log:close()
  end)

  it("path_for names the log next to a gallery", function()
    assert.are.equal("office.gallery.audit", audit.path_for("office.gallery"))
    assert.are.equal("/srv/a b/g.audit", audit.path_for("/srv/a b/g"))
    support.assert_error(function() audit.path_for(nil) end, "bad argument #1 to 'audit.path_for'")
    support.assert_error(function() audit.path_for("") end, "gallery file name expected")
  end)

  it("local_actor: role local, client cli:<the user of the real uid>", function()
    local p = assert(io.popen("id -un"))
    local user = p:read("l")
    p:close()
    if not user or user == "" then
      pending("this uid has no user name (id -un): the fallbacks are $USER, then 'uid N'")
      return
    end
    local who = audit.local_actor()
    assert.are.same({role = "local", client = "cli:" .. user}, who)
    -- the real uid's name, not $USER (which anyone may set)
    local code = [[local w = require("siamese.app.web.audit").local_actor() io.write(w.role, " ", w.client)]]
    local cmd = string.format("USER=mallory LUA_PATH_5_4=%s LUA_CPATH_5_4=%s lua5.4 -e %s", q(package.path),
      q(package.cpath), q(code))
    p = assert(io.popen(cmd))
    assert.are.equal("local cli:" .. user, p:read("a"))
    p:close()
    -- recorded as any other actor
    local log = assert(audit.open(path))
    assert(log:record{role = who.role, client = who.client, action = "remove", name = "bob", accepted = true})
    assert.are.same({"local", "cli:" .. user}, {log:events()[1].role, log:events()[1].client})
    log:close()
  end)

  it("open creates no file when lua-sql-sqlite3 cannot be loaded", function()
    local saved = package.loaded["luasql.sqlite3"]
    package.loaded["luasql.sqlite3"] = nil
    package.preload["luasql.sqlite3"] = function() error("module 'luasql.sqlite3' not found (simulated)") end
    local ok, log, msg = pcall(audit.open, path)
    package.preload["luasql.sqlite3"] = nil
    package.loaded["luasql.sqlite3"] = saved
    assert(ok, log)
    assert.is_nil(log)
    assert.matches("the audit log needs Debian's lua-sql-sqlite3", msg, 1, true)
    assert.are.same({}, support.list_dir(dir))
  end)

  it("refuses misuse and files that are not audit logs", function()
    local log = assert(audit.open(path))
    support.assert_error(function() log:record{} end, "action is required")
    support.assert_error(function() log:record{action = "x", name = 5} end, "name must be a string")
    support.assert_error(function() log:record{action = "x", accepted = 1} end, "accepted must be a boolean")
    support.assert_error(function() log:record{action = "x", distance = "0.5"} end, "distance must be a number")
    support.assert_error(function() log:events{since = "yesterday"} end, "since must be")
    support.assert_error(function() log:events{limit = -1} end, "limit")
    log:close()
    support.assert_error(function() log:record{action = "x"} end, "closed")
    support.assert_error(function() audit.open("") end, "file name expected")

    local other = dir .. "/other.db"
    local conn, env = raw(other)
    assert(conn:execute("CREATE TABLE t (x)"))
    conn:close(); env:close()
    assert(os.execute("chmod 600 " .. q(other)))
    local l, msg = audit.open(other)
    assert.is_nil(l)
    assert.matches("not a siamese audit log", msg, 1, true)

    local junk = dir .. "/junk"
    support.write_file(junk, string.rep("this is not a database\n", 100))
    assert(os.execute("chmod 600 " .. q(junk)))
    l, msg = audit.open(junk)
    assert.is_nil(l)
    assert.matches(junk, msg, 1, true)
    assert.are.equal(string.rep("this is not a database\n", 100), support.read_file(junk))

    l, msg = audit.open(dir .. "/no/such/dir/log")
    assert.is_nil(l)
    assert.is_string(msg)
  end)
end)
