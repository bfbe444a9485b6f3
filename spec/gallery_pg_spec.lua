-- siamese.gallery_pg and siamese.gallery's postgresql:// URLs, against a
-- throw-away PostgreSQL cluster started here (spec/pg_cluster.lua).
local siamese = require "siamese"
local core = require "siamese.core"
local gallery = require "siamese.gallery"
local gallery_pg = require "siamese.gallery_pg"
local pg = require "siamese.pg"
local support = dofile("spec/support.lua")
local pg_cluster = dofile("spec/pg_cluster.lua")

local T, P = siamese.tensor, core.process
local DIM = 4
local NEW = {dim = DIM, metric = "euclidean", threshold = 0.6, model = "spec-model"}

-- A distinct embedding per (seed, row): rows of [n, DIM].
local function emb(seed, n)
  local t = T.zeros{n or 1, DIM}
  for i = 1, n or 1 do
    for j = 1, DIM do t:set(i, j, math.sin(seed * 7.31 + i * 1.7 + j * 0.37)) end
  end
  return t
end

local function enroll(url, name, seed, n)
  return gallery.update(url, function(g)
    g:add(name, emb(seed, n))
    return true
  end, {new = NEW})
end

local function bytes_of(g, name) return core.tensor_to_bytes(g:templates(name)) end

-- Syncs a replica that is reconnecting until it is up again (it never
-- waits for the network: each call advances the connection), 10 s at most.
local function sync_until_up(r)
  for _ = 1, 500 do
    local n = r:sync(0, {retry_now = true})
    if n then return n end
    support.sleep(0.02)
  end
  error("the replica did not reconnect: " .. r.status)
end

describe("gallery in PostgreSQL", function()
  local cluster, url

  setup(function()
    cluster = pg_cluster.start()
  end)

  teardown(function()
    if cluster then cluster:destroy() end
  end)

  -- Each test gets a database of its own (some tests stop the server: a
  -- new connection each time).
  local counter = 0
  before_each(function()
    counter = counter + 1
    url = cluster:new_database("g" .. counter)
  end)

  it("update creates the gallery and the schema; load gives it back exactly, in enrolment order", function()
    local none, err = gallery.load(url)
    assert.is_nil(none)
    assert.matches("no gallery in this database", err)
    assert.is_true(pg.is_url(url))
    assert(enroll(url, "Zoe", 1, 2))
    assert(enroll(url, "Ada", 2, 3))
    assert(enroll(url, "Émile", 3, 1))
    local g, gen = assert(gallery.load(url))
    assert.are.same({"Zoe", "Ada", "Émile"}, g:names())
    assert.are.same({6, DIM, "euclidean", "spec-model", 0.6}, {g:size(), g:dim(), g:metric(), g:model(), g:threshold()})
    for seed, name in ipairs{"Zoe", "Ada", "Émile"} do
      assert.are.equal(core.tensor_to_bytes(emb(seed, ({2, 3, 1})[seed])), bytes_of(g, name)) -- bit for bit
    end
    assert.are.equal("pg:3", gen)
    assert.are.equal("pg:3", gallery.generation(url))
    local conn <close> = assert(pg.connect(url))
    local r = assert(conn:exec("select component, version from siamese_schema"))
    assert.are.same({{"gallery", "1"}}, r.rows)
  end)

  it("fn's false or error writes nothing; remove, rename and threshold are changes of their own", function()
    assert(enroll(url, "Ada", 1))
    assert(enroll(url, "Bob", 2))
    local res, extra = gallery.update(url, function(g) g:remove("Ada") return false, "changed my mind" end)
    assert.is_false(res)
    assert.are.equal("changed my mind", extra)
    support.assert_error(function()
      gallery.update(url, function(g) g:remove("Ada") error("boom") end)
    end, "boom")
    assert.are.same({"Ada", "Bob"}, assert(gallery.load(url)):names())
    assert(gallery.update(url, function(g, ctx)
      assert.are.equal("pg:2", ctx.generation)
      assert.is_true(g:rename("Bob", "Robert"))
      g:remove("Ada")
      g:set_threshold(0.5)
      return true
    end))
    local g, gen = assert(gallery.load(url))
    assert.are.same({"Robert"}, g:names())
    assert.are.equal(0.5, g:threshold())
    assert.are.equal(core.tensor_to_bytes(emb(2)), bytes_of(g, "Robert"))
    assert.are.equal("pg:5", gen)
    local conn = assert(pg.connect(url))
    local ops = assert(conn:exec("select generation, op, name from siamese_change order by generation")).rows
    assert.are.same({{"1", "add", "Ada"}, {"2", "add", "Bob"}, {"3", "remove", "Ada"}, {"4", "rename", "Robert"},
                     {"5", "threshold", require("siamese.pq").null}}, ops)
    conn:close()
  end)

  it("the database enforces the name rules itself (constraints), not only the Lua code", function()
    assert(enroll(url, "Ada", 1))
    local conn = assert(pg.connect(url))
    local function insert(name, key)
      return conn:exec("insert into siamese_identity (name, name_key) values ($1, $2)", name, key)
    end
    local ok, err, state = insert("Al\u{200B}ice", "al\u{200B}ice") -- zero-width space
    assert.is_nil(ok)
    assert.are.equal("23514", state, err) -- check_violation
    assert.are.equal("23514", select(3, insert(" Ada2", " ada2")))      -- not trimmed
    assert.are.equal("23514", select(3, insert(string.rep("x", 65), string.rep("x", 65)))) -- over 64 bytes
    assert.are.equal("23514", select(3, insert("Bidi\u{202E}x", "bidi\u{202E}x")))
    assert.are.equal("23505", select(3, insert("ADA", "ada")))       -- the same name but for case
    assert.is_truthy(insert("Ada Lovelace", "ada lovelace"))
    conn:close()
  end)

  it("a template of the wrong length in the database: load refuses the gallery as not trusted", function()
    assert(enroll(url, "Ada", 1))
    local conn = assert(pg.connect(url))
    assert(conn:exec("update siamese_template set embedding = $1", require("siamese.pq").bytes("12345678")))
    conn:close()
    local none, err = gallery.load(url)
    assert.is_nil(none)
    assert.matches("a template of 'Ada' has 8 bytes, not 16 %(dimension 4%): not trusted", err)
  end)

  it("ten processes enrolling at once: nothing lost", function()
    assert(enroll(url, "First", 0))
    local script = support.temp_dir("pg_enroll") .. "/enroll.lua"
    support.write_file(script, [[
local gallery = require "siamese.gallery"
local T = require("siamese").tensor
local url, name, seed = arg[1], arg[2], tonumber(arg[3])
local e = T.zeros{1, 4}
for j = 1, 4 do e:set(1, j, math.sin(seed * 7.31 + 1.7 + j * 0.37)) end
local ok, err = gallery.update(url, function(g) g:add(name, e) return true end)
if not ok then io.stderr:write(tostring(err), "\n") os.exit(1) end
]])
    local build = os.getenv("SIAMESE_BUILD") or "build"
    local env = {LUA_PATH_5_4 = "./lua/?.lua;./lua/?/init.lua;;", LUA_CPATH_5_4 = "./" .. build .. "/?.so;;"}
    local pids = {}
    for i = 1, 10 do
      pids[i] = assert(P.spawn({"lua5.4", script, url, "Person " .. i, tostring(i)}, {env = env}))
    end
    for i = 1, 10 do
      local _, code = P.waitpid(pids[i])
      assert.are.equal(0, code, "enroller " .. i)
    end
    local g, gen = assert(gallery.load(url))
    assert.are.equal(11, g:count())
    assert.are.equal("pg:11", gen)
    for i = 1, 10 do
      assert.are.equal(core.tensor_to_bytes(emb(i)), bytes_of(g, "Person " .. i))
    end
    support.remove_dir(script:match("^(.*)/"))
  end)

  it("a replica sees another process's enrolment, removal and rename within 1 s (NOTIFY)", function()
    assert(enroll(url, "Ada", 1))
    assert(enroll(url, "Bob", 2))
    local r <close> = assert(gallery_pg.replica(url))
    assert.are.same({"Ada", "Bob"}, r.gallery:names())
    assert.are.equal(0, r:sync()) -- nothing new
    assert(enroll(url, "Cy", 3, 2))
    assert.is_true(r:sync(1) >= 1)
    assert.are.equal(core.tensor_to_bytes(emb(3, 2)), bytes_of(r.gallery, "Cy"))
    assert(gallery.update(url, function(g) g:remove("Ada") return true end))
    assert(gallery.update(url, function(g) return true, g:rename("Bob", "Robert") end))
    local n = 0
    while n < 2 do n = n + assert(r:sync(1)) end
    assert.are.same({"Robert", "Cy"}, r.gallery:names())
    assert.are.equal(core.tensor_to_bytes(emb(2)), bytes_of(r.gallery, "Robert"))
    assert.are.equal(5, r.generation)
    assert.is_nil(r.reloads) -- applied change by change
    -- a replaced identity (Cy's templates changed) arrives whole
    assert(gallery.update(url, function(g) g:remove("Cy") g:add("Cy", emb(9)) return true end))
    assert.is_true(r:sync(1) >= 1)
    assert.are.equal(core.tensor_to_bytes(emb(9)), bytes_of(r.gallery, "Cy"))
  end)

  it("a replica keeps deciding while the database is down, then catches up (also after a crash)", function()
    assert(enroll(url, "Ada", 1))
    local r <close> = assert(gallery_pg.replica(url))
    cluster:stop()
    local n, err = r:sync(0.1)
    assert.is_nil(n)
    assert.is_string(err)
    assert.matches("^offline: ", r.status)
    local name, d = r.gallery:identify(emb(1)) -- still deciding from its replica
    assert.are.equal("Ada", name)
    assert.is_true(d < 1e-6)
    cluster:start()
    assert(enroll(url, "Bob", 2))
    -- while offline it retries every RETRY_EVERY seconds; retry_now at once
    assert.matches("^offline", r.status)
    assert.is_nil(r:sync(0))
    assert.is_true(sync_until_up(r) >= 1) -- reconnects and catches up without a notification
    assert.are.equal("up", r.status)
    assert.are.same({"Ada", "Bob"}, r.gallery:names())
    -- a crash of the server: the same
    cluster:kill()
    assert.is_nil(r:sync(0.1))
    cluster:start()
    assert(enroll(url, "Cy", 3))
    assert.is_true(sync_until_up(r) >= 1)
    assert.are.same({"Ada", "Bob", "Cy"}, r.gallery:names())
  end)

  it("sync_telling says once that the database went away and once that it is back", function()
    assert(enroll(url, "Ada", 1))
    local r <close> = assert(gallery_pg.replica(url))
    local told = {}
    local function tell(text) told[#told + 1] = text end
    assert.are.equal(0, r:sync_telling(tell, "deciding from"))
    cluster:stop()
    local away = false -- a door syncs again and again: the closed socket shows within a few
    for _ = 1, 250 do
      if r:sync_telling(tell, "deciding from") == nil then
        away = true
        break
      end
      support.sleep(0.02)
    end
    local again = r:sync_telling(tell, "deciding from") -- still away: said once
    cluster:start()
    assert.is_true(away)
    assert.is_nil(again)
    local n
    for _ = 1, 500 do
      r.retry_at = nil -- as retry_now: do not wait RETRY_EVERY in a spec
      n = r:sync_telling(tell, "deciding from")
      if n then break end
      support.sleep(0.02)
    end
    assert.is_number(n)
    assert.are.equal(2, #told)
    assert.matches("^the gallery's database is unreachable, deciding from the gallery in memory: ", told[1])
    assert.matches("^the gallery's database is back %(%d+ changes applied%)$", told[2])
  end)

  it("a replica whose changes were pruned loads the gallery again", function()
    assert(enroll(url, "Ada", 1))
    local r <close> = assert(gallery_pg.replica(url))
    local same = r.gallery
    assert(enroll(url, "Bob", 2))
    assert(enroll(url, "Cy", 3))
    local conn = assert(pg.connect(url))
    assert(conn:exec("delete from siamese_change where generation <= 2")) -- history pruned
    conn:close()
    assert.is_true(r:sync(1) >= 1)
    assert.are.equal(1, r.reloads)
    assert.are.equal(same, r.gallery) -- reloaded in place: whoever holds it sees the new contents
    assert.are.same({"Ada", "Bob", "Cy"}, r.gallery:names())
    assert.are.equal(3, r.generation)
  end)

  it("import: a gallery file into an empty database by one COPY; replicas reload; a non-empty one refused", function()
    local src = gallery.new(NEW)
    src:add("Zoe", emb(1, 3))
    src:add("Ada O'Neil", emb(2, 1))
    src:add("Émile", emb(3, 2))
    src:set_threshold(0.45)
    assert(enroll(url, "Temp", 9)) -- a gallery that is emptied: its settings are replaced
    assert(gallery.update(url, function(g) g:remove("Temp") return true end))
    local r <close> = assert(gallery_pg.replica(url))
    assert.are.equal(6, assert(gallery_pg.import(url, src)))
    local g = assert(gallery.load(url))
    assert.are.same({"Zoe", "Ada O'Neil", "Émile"}, g:names())
    assert.are.equal(0.45, g:threshold())
    for _, n in ipairs(src:names()) do assert.are.equal(bytes_of(src, n), bytes_of(g, n)) end
    assert.is_true(r:sync(1) >= 1)
    assert.are.equal(1, r.reloads)
    assert.are.same(src:names(), r.gallery:names())
    local none, err = gallery_pg.import(url, src)
    assert.is_nil(none)
    assert.matches("not empty %(3 identities%): import into an empty one", err)
  end)

  it("gallery.open: one interface for a door, a replica for a URL, a follower for a file", function()
    assert(enroll(url, "Ada", 1))
    local r <close> = assert(gallery.open(url))
    assert.are.same({"Ada"}, r.gallery:names())
    assert(enroll(url, "Bob", 2))
    assert.is_true(r:sync(1) >= 1)
    assert.are.same({"Ada", "Bob"}, r.gallery:names())
    -- a file: reloaded (in place) when another process replaces it
    local dir = support.temp_dir("gallery_open")
    local file = dir .. "/door.gallery"
    assert(enroll(file, "Cy", 3))
    local f <close> = assert(gallery.open(file))
    local same = f.gallery
    assert.are.equal(0, f:sync())
    assert(enroll(file, "Dee", 4))
    assert.are.equal(1, f:sync())
    assert.are.equal(same, f.gallery)
    assert.are.same({"Cy", "Dee"}, f.gallery:names())
    os.rename(file, file .. ".moved") -- unreadable: kept, offline
    local none, err = f:sync()
    assert.is_nil(none)
    assert.matches("^offline", f.status)
    assert.is_string(err)
    assert.are.same({"Cy", "Dee"}, f.gallery:names())
    os.rename(file .. ".moved", file)
    assert.is_number(f:sync()) -- back (a reload or not: the generation may count the rename)
    assert.are.equal("up", f.status)
    support.assert_error(function() gallery.open(42) end, "gallery.open", "bad argument #1")
    local nothing, why = gallery.open(dir .. "/none.gallery")
    assert.is_nil(nothing)
    assert.is_string(why)
    os.execute("rm -rf " .. support.q(dir))
  end)

  it("siamese.pg: URLs, passwords, storable text, transactions, a statement re-run after a restart", function()
    assert.is_true(pg.is_url("postgres://h/db") and pg.is_url("postgresql:///db"))
    assert.is_false(pg.is_url("people.gallery") or pg.is_url("./postgresql://x") or pg.is_url(nil))
    assert.is_true(pg.has_password("postgresql://me:pw@h/db") and pg.has_password("postgresql:///db?password=x"))
    assert.is_false(pg.has_password("postgresql://me@h/db?host=/tmp&port=5432"))
    assert.are.equal("ok Zoë", pg.text("ok Zoë"))
    assert.are.equal("a\u{FFFD}b\u{FFFD}c", pg.text("a\0b\255c"))
    local conn = assert(pg.open(url, "spec", {{"create table spec_t (n int)"}, {"alter table spec_t add m int"}}))
    assert.are.equal(2, assert(pg.migrate(conn, "spec", {{"create table spec_t (n int)"}, {"alter table spec_t add m int"}})))
    -- transaction: committed on true, rolled back on false and on an error
    assert.is_true(pg.transaction(conn, function(c) return assert(c:exec("insert into spec_t values (1, 1)")) and true end))
    assert.is_false(pg.transaction(conn, function(c) c:exec("insert into spec_t values (2, 2)") return false end))
    support.assert_error(function()
      pg.transaction(conn, function(c) c:exec("insert into spec_t values (3, 3)") error("boom") end)
    end, "boom")
    assert.are.equal("1", assert(conn:exec("select count(*) from spec_t")).rows[1][1])
    cluster:stop()
    cluster:start()
    local r = assert(pg.exec(conn, "where", "select count(*) from spec_t")) -- reconnected once
    assert.are.equal("1", r.rows[1][1])
    cluster:stop()
    local none, err = pg.exec(conn, "where", "select 1")
    assert.is_nil(none)
    assert.matches("^where: ", err)
    cluster:start()
    conn:close()
  end)

  it("redacts passwords in messages and refuses a schema newer than this code", function()
    assert.are.equal("postgresql://me:***@host/db", pg.redact("postgresql://me:secret@host/db"))
    assert.are.equal("postgresql://h/db?user=me&password=***&x=1",
      pg.redact("postgresql://h/db?user=me&password=secret&x=1"))
    local bad = url:gsub("postgresql://siamese@", "postgresql://siamese:hunter2@"):gsub("port=%d+", "port=1")
    local none, err = gallery.load(bad)
    assert.is_nil(none)
    assert.is_nil(err:find("hunter2", 1, true), err)
    assert(enroll(url, "Ada", 1))
    local conn = assert(pg.connect(url))
    assert(conn:exec("update siamese_schema set version = 99 where component = 'gallery'"))
    conn:close()
    none, err = gallery.load(url)
    assert.is_nil(none)
    assert.matches("gallery schema is version 99, newer than this siamese %(1%)", err)
    support.assert_error(function() pg.connect("people.gallery") end, "bad argument #1", "postgresql:// URL")
  end)
end)
