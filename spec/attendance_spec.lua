-- Specs of siamese.app.attendance: the attendance register, on SQLite and on
-- PostgreSQL (a throw-away cluster started here: spec/pg_cluster.lua).
local attendance = require "siamese.app.attendance"
local support = dofile("spec/support.lua")

local has_sqlite = pcall(require, "luasql.sqlite3")

-- 2026-11-22 at hh:mm:ss local time, in seconds since the epoch.
local function at(hh, mm, ss, day)
  return os.time{year = 2026, month = 11, day = day or 22, hour = hh, min = mm, sec = ss or 0}
end

-- What a register does, the same on SQLite and on PostgreSQL: target()
-- names the current test's fresh register (a file or a database URL).
local function behaviour(target)
  it("creates a register with a schema version and reopens it", function()
    local db = assert(attendance.open(target()))
    assert.is_number(db:record{name = "alice", time = at(9, 0)})
    db:close()
    db:close() -- idempotent
    local again = assert(attendance.open(target(), {create = false}))
    assert.are.equal(1, #again:events())
    again:close()
  end)

  it("reports the first arrival per person per day, in arrival order", function()
    local db = assert(attendance.open(target()))
    db:record{name = "alice", time = at(9, 6), distance = 0.30, photo = "cam/2.jpg"}
    db:record{name = "bob", time = at(9, 5), distance = 0.20}
    db:record{name = "alice", time = at(10, 5), distance = 0.25}
    db:record{name = "alice", time = at(8, 0, 0, 23)}
    db:record{time = at(9, 7), distance = 0.9} -- unknown: not in the report
    local r = assert(db:report("2026-11-22"))
    assert.are.equal(2, #r)
    assert.are.same({day = "2026-11-22", name = "bob", first = "09:05:00", last = "09:05:00", count = 1}, r[1])
    assert.are.same({day = "2026-11-22", name = "alice", first = "09:06:00", last = "10:05:00", count = 2}, r[2])
    local all = assert(db:first_arrivals())
    assert.are.equal(3, #all)
    assert.are.equal("2026-11-23", all[3].day)
    assert.are.equal("08:00:00", all[3].first)
    assert.are.same({}, db:report("2026-11-24"))
    local days = db:days()
    assert.are.same({day = "2026-11-23", people = 1, unknown = 0}, days[1])
    assert.are.same({day = "2026-11-22", people = 2, unknown = 1}, days[2])
    db:close()
  end)

  it("keeps unknown faces with their descriptor, box and photo for review", function()
    local db = assert(attendance.open(target()))
    local d = {0.5, -1.25, 3, 0}
    local id = db:record{time = at(9, 7), distance = 0.93, threshold = 0.6, photo = "cam/1.jpg",
                         box = {x = 10, y = 20.5, width = 30, height = 40}, descriptor = d,
                         crop = "review/1.png", model = "m:1"}
    db:record{name = "bob", time = at(9, 8), descriptor = d} -- known: descriptor not kept
    local u = db:unknowns("2026-11-22")
    assert.are.equal(1, #u)
    assert.are.equal(id, u[1].id)
    assert.are.same(d, u[1].descriptor)
    assert.are.same({x = 10, y = 20.5, width = 30, height = 40}, u[1].box)
    assert.are.equal("2026-11-22 09:07:00", u[1].at)
    assert.are.equal("cam/1.jpg", u[1].photo)
    assert.are.equal("review/1.png", u[1].crop)
    assert.are.equal(0.6, u[1].threshold)
    assert.is_nil(db:events{name = "bob"}[1].descriptor)
    -- reviewed: named, then it counts as an arrival and leaves the queue
    assert.is_true(db:resolve(id, "carol"))
    assert.are.same({}, db:unknowns())
    assert.are.equal("carol", db:report("2026-11-22")[1].name)
    local ok, err = db:resolve(id, "dave")
    assert.is_nil(ok)
    assert.matches("no unknown face with id", err)
    db:close()
  end)

  it("stores hostile strings literally (quotes, SQL) and refuses NUL bytes", function()
    local db = assert(attendance.open(target()))
    local evil = "o'neil'); DROP TABLE events; --"
    db:record{name = evil, time = at(9, 0), photo = "it's \"quoted\".jpg"}
    local e = db:events{name = evil}
    assert.are.equal(1, #e)
    assert.are.equal(evil, e[1].name)
    assert.are.equal("it's \"quoted\".jpg", e[1].photo)
    support.assert_error(function() db:record{name = "a\0b"} end, "NUL")
    support.assert_error(function() db:record{name = ""} end, "record", "name")
    support.assert_error(function() db:record{time = 1.5} end, "record", "time")
    support.assert_error(function() db:report("22/11/2026") end, "report", "YYYY-MM-DD")
    support.assert_error(function() db:resolve("1", "x") end, "resolve", "id")
    db:close()
    support.assert_error(function() db:events() end, "closed")
  end)

  it("records a batch in one transaction", function()
    local db = assert(attendance.open(target()))
    local ids = assert(db:record_all{{name = "a", time = at(9, 0)}, {time = at(9, 1), descriptor = {1, 2}}})
    assert.are.same({1, 2}, ids)
    assert.are.equal(2, #db:events{day = "2026-11-22"})
    db:close()
  end)

end

describe("siamese.app.attendance", function()
  if not has_sqlite then
    pending("lua-sql-sqlite3 is not installed (apt-get install lua-sql-sqlite3)")
    return
  end

  local dir, path
  before_each(function()
    dir = support.temp_dir("attendance")
    path = dir .. "/office.db"
  end)
  after_each(function() support.remove_dir(dir) end)

  behaviour(function() return path end)

  it("returns nil, message for a missing, corrupt, foreign or newer database, and keeps the file", function()
    local ok, err = attendance.open(dir .. "/none.db", {create = false})
    assert.is_nil(ok)
    assert.matches("no such attendance database", err)
    local garbage = string.rep("not a database ", 100)
    support.write_file(path, garbage)
    ok, err = attendance.open(path)
    assert.is_nil(ok)
    assert.matches("not a database", err)
    assert.are.equal(garbage, support.read_file(path))
    ok, err = attendance.open(dir .. "/no/such/dir/x.db")
    assert.is_nil(ok)
    assert.matches("unable to open", err)
    -- a SQLite file of something else, and a newer version of ours
    local driver = require "luasql.sqlite3"
    local env = driver.sqlite3()
    local conn = env:connect(dir .. "/other.db")
    conn:execute("CREATE TABLE t (x)")
    conn:close()
    ok, err = attendance.open(dir .. "/other.db")
    assert.is_nil(ok)
    assert.matches("not a siamese attendance database", err)
    local db = assert(attendance.open(path .. "2"))
    db:close()
    conn = env:connect(path .. "2")
    conn:execute("UPDATE schema_version SET version = 99")
    conn:close()
    env:close()
    ok, err = attendance.open(path .. "2")
    assert.is_nil(ok)
    assert.matches("schema version 99", err)
  end)

  it("returns nil, message when another process holds the lock, then works again", function()
    local db = assert(attendance.open(path, {busy_timeout = 50}))
    local driver = require "luasql.sqlite3"
    local env = driver.sqlite3()
    local other = env:connect(path)
    assert(other:execute("BEGIN EXCLUSIVE"))
    local ok, err = db:record{name = "alice", time = at(9, 0)}
    assert.is_nil(ok)
    assert.matches("locked", err)
    assert(other:execute("COMMIT"))
    other:close()
    env:close()
    assert.is_number(db:record{name = "alice", time = at(9, 0)})
    db:close()
  end)

  it("closes with a to-be-closed variable", function()
    do
      local db <close> = assert(attendance.open(path))
      db:record{name = "x", time = at(9, 0)}
    end
    local db = assert(attendance.open(path))
    assert.are.equal(1, #db:events())
    db:close()
  end)

  it("raises on misuse of open", function()
    support.assert_error(function() attendance.open(nil) end, "attendance.open", "#1")
    support.assert_error(function() attendance.open(path, {busy_timeout = -1}) end, "busy_timeout")
  end)
end)

describe("siamese.app.attendance on PostgreSQL", function()
  local pg_cluster = dofile("spec/pg_cluster.lua")
  local cluster, url, counter = nil, nil, 0

  setup(function() cluster = pg_cluster.start() end)
  teardown(function() if cluster then cluster:destroy() end end)
  before_each(function()
    counter = counter + 1
    url = cluster:new_database("a" .. counter)
  end)

  behaviour(function() return url end)

  it("refuses a database without a register when create is false, and an unreachable one", function()
    local none, err = attendance.open(url, {create = false})
    assert.is_nil(none)
    assert.matches("no attendance register in this database", err)
    none, err = attendance.open((url:gsub("port=%d+", "port=1")))
    assert.is_nil(none)
    assert.matches("PGSQL%.1", err)
  end)

  it("takes the events of three processes into one register", function()
    local script = support.temp_dir("att_pg") .. "/door.lua"
    support.write_file(script, [[
local attendance = require "siamese.app.attendance"
local db = assert(attendance.open(arg[1]))
for i = 1, 20 do assert(db:record{name = arg[2], time = 1795000000 + i}) end
db:close()
]])
    local P = require("siamese.core").process
    local build = os.getenv("SIAMESE_BUILD") or "build"
    local env = {LUA_PATH_5_4 = "./lua/?.lua;./lua/?/init.lua;;", LUA_CPATH_5_4 = "./" .. build .. "/?.so;;"}
    local pids = {}
    for i, door in ipairs{"front", "back", "garage"} do
      pids[i] = assert(P.spawn({"lua5.4", script, url, door}, {env = env}))
    end
    for i = 1, 3 do
      local _, code = P.waitpid(pids[i])
      assert.are.equal(0, code)
    end
    local db <close> = assert(attendance.open(url))
    local counts = {}
    for _, e in ipairs(db:events()) do counts[e.name] = (counts[e.name] or 0) + 1 end
    assert.are.same({front = 20, back = 20, garage = 20}, counts)
    support.remove_dir(script:match("^(.*)/"))
  end)
end)
