-- siamese.pq (src/l_pq.c), the libpq binding, against a throw-away
-- PostgreSQL cluster started here (spec/pg_cluster.lua).
local pq = require "siamese.pq"
local support = dofile("spec/support.lua")
local pg_cluster = dofile("spec/pg_cluster.lua")

describe("siamese.pq", function()
  local cluster

  setup(function()
    cluster = pg_cluster.start()
  end)

  teardown(function()
    if cluster then cluster:destroy() end
  end)

  it("connects by key=value text and by URL; a bad target gives nil and libpq's message", function()
    local a = assert(pq.connect(cluster.conninfo))
    local b = assert(pq.connect(cluster.url))
    assert.is_true(a:ok() and b:ok())
    assert.is_true(a:backend_pid() > 0 and a:backend_pid() ~= b:backend_pid())
    assert.matches("siamese.pq connection %(up, database postgres%)", tostring(a))
    a:close()
    a:close() -- idempotent
    assert.is_false(a:ok())
    assert.matches("closed", tostring(a))
    support.assert_error(function() a:exec("select 1") end, "calling 'exec' on bad self", "the connection is closed")
    b:close()
    local none, err = pq.connect(("host=%s port=%d user=siamese dbname=nosuchdb"):format(cluster.dir, cluster.port))
    assert.is_nil(none)
    assert.matches('database "nosuchdb" does not exist', err)
    none, err = pq.connect("host=/nonexistent/dir user=siamese dbname=postgres")
    assert.is_nil(none)
    assert.matches("nonexistent", err)
  end)

  it("connect_start/connect_poll: a connection made without waiting; a refused one fails", function()
    local c = assert(pq.connect_start(cluster.conninfo))
    assert.is_false(c:ok())
    support.assert_error(function() c:exec("select 1") end, "not made yet")
    local st
    for _ = 1, 500 do
      st = assert(c:connect_poll())
      if st == "ok" then break end
      assert.are.equal("pending", st)
      support.sleep(0.01)
    end
    assert.are.equal("ok", st)
    assert.is_true(c:ok())
    assert.are.equal("1", assert(c:exec("select 1")).rows[1][1])
    assert.are.equal("ok", c:connect_poll()) -- made: stays ok
    c:close()
    -- no server on that socket: refused at once, by connect_start or by the first poll
    local bad, err = pq.connect_start(("host=%s port=1 user=siamese dbname=postgres"):format(cluster.dir))
    if bad then
      local none
      none, err = bad:connect_poll()
      assert.is_nil(none)
      bad:close()
    end
    assert.matches("PGSQL%.1", err)
  end)

  it("exec: parameters of every kind, rows as strings, NULL as pq.null, rows affected", function()
    local c <close> = assert(pq.connect(cluster.conninfo))
    local r = assert(c:exec("select $1::text, $2::int8, $3::float8, $4::bool, $5::text, $6::bytea, $7::int8",
      "it's", 42, 0.1, true, pq.null, pq.bytes("\0\1\255"), math.mininteger))
    assert.are.same({"text", "int8", "float8", "bool", "text", "bytea", "int8"}, r.fields)
    -- 0.1 travels as 17 significant digits (exactly the double); the
    -- server prints the shortest text that reads back as the same double
    assert.are.same({{"it's", "42", "0.1", "t", pq.null, "\\x0001ff", tostring(math.mininteger)}}, r.rows)
    assert.are.equal(1, r.affected)
    assert(c:exec("create temporary table t (id int8 primary key, v bytea not null)"))
    for i = 1, 3 do assert(c:exec("insert into t values ($1, $2)", i, pq.bytes(string.rep(string.char(i), i)))) end
    r = assert(c:exec("update t set v = v || '\\x00'::bytea where id >= $1", 2))
    assert.are.equal(2, r.affected)
    assert.are.same({}, assert(c:exec("select * from t where id > 10")).rows)
  end)

  it("exec_binary: values in PostgreSQL's binary form (bytea raw, int8 big-endian)", function()
    local c <close> = assert(pq.connect(cluster.conninfo))
    local floats = string.pack("<fff", 1.5, -2, 0.25)
    local r = assert(c:exec_binary("select $1::bytea, 7::int8, $2::int4", pq.bytes(floats), -3))
    assert.are.equal(floats, r.rows[1][1])
    assert.are.equal(7, string.unpack(">i8", r.rows[1][2]))
    assert.are.equal(-3, string.unpack(">i4", r.rows[1][3]))
  end)

  it("copy_in: a COPY FROM STDIN stream (text and binary); bad data and misuse leave the connection usable", function()
    local c <close> = assert(pq.connect(cluster.conninfo))
    assert(c:exec("create temporary table cp (n int8, s text, b bytea)"))
    assert.are.equal(2, assert(c:copy_in("copy cp from stdin", "1\tone\t\\\\x00ff\n2\ttwo\t\\\\x\n")))
    local bin = "PGCOPY\n\255\r\n\0" .. string.pack(">i4i4", 0, 0)
      .. string.pack(">i2 i4i8 s4 s4", 3, 8, 3, "three", "\1\2\3") .. string.pack(">i2", -1)
    assert.are.equal(1, assert(c:copy_in("copy cp from stdin (format binary)", bin)))
    local r = assert(c:exec_binary("select n, s, b from cp order by n"))
    assert.are.same({"one", "\0\255"}, {r.rows[1][2], r.rows[1][3]})
    assert.are.same({"three", "\1\2\3"}, {r.rows[3][2], r.rows[3][3]})
    local none, err, state = c:copy_in("copy cp from stdin", "x\ty\tz\n")
    assert.is_nil(none)
    assert.are.equal("22P02", state, err) -- invalid_text_representation
    support.assert_error(function() c:copy_in("copy (select 1) to stdout", "") end, "bad argument #1 to 'copy_in'",
      "not a COPY ... FROM STDIN")
    support.assert_error(function() c:copy_in("select 1", "") end, "not a COPY ... FROM STDIN")
    assert.are.equal("3", assert(c:exec("select count(*) from cp")).rows[1][1]) -- still usable, nothing half-done
  end)

  it("server errors: nil, the message and the SQLSTATE; the connection stays usable", function()
    local c <close> = assert(pq.connect(cluster.conninfo))
    local none, err, state = c:exec("select * from no_such_table")
    assert.is_nil(none)
    assert.matches('relation "no_such_table" does not exist', err)
    assert.are.equal("42P01", state)
    assert(c:exec("create temporary table u (name text unique)"))
    assert(c:exec("insert into u values ($1)", "Ada"))
    none, err, state = c:exec("insert into u values ($1)", "Ada")
    assert.is_nil(none)
    assert.are.equal("23505", state) -- unique_violation
    -- parameters travel apart from the statement: no injection
    assert(c:exec("insert into u values ($1)", "x'); drop table u; --"))
    assert.are.equal("2", assert(c:exec("select count(*) from u")).rows[1][1])
  end)

  it("refuses misuse naming the function and the argument (method calls count from after self)", function()
    local c <close> = assert(pq.connect(cluster.conninfo))
    support.assert_error(function() c:exec("select $1", {}) end, "bad argument #2 to 'exec'", "got table")
    support.assert_error(function() c:exec("select $1, $2", 1, print) end, "bad argument #3 to 'exec'", "got function")
    support.assert_error(function() c:exec_binary("select $1", 0 / 0) end, "bad argument #2 to 'exec_binary'",
      "finite number")
    support.assert_error(function() c:exec(42 > 1) end, "bad argument #1 to 'exec'")
    support.assert_error(function() c:exec("select $1::text", "a\0b") end, "bad argument #2 to 'exec'", "zero byte")
    support.assert_error(function() c:notifies(-1) end, "bad argument #1 to 'notifies'")
    support.assert_error(function() c.exec(42, "select 1") end, "bad argument #1 to 'exec'", "siamese.pq.Conn expected")
    support.assert_error(function() pq.connect() end, "bad argument #1 to 'connect'")
    support.assert_error(function() pq.bytes(nil) end, "bad argument #1 to 'bytes'")
  end)

  it("LISTEN/NOTIFY: a notification reaches another connection; waiting ends at the timeout", function()
    local listener <close> = assert(pq.connect(cluster.conninfo))
    local sender <close> = assert(pq.connect(cluster.conninfo))
    assert(listener:exec("listen gallery_changes"))
    assert.are.same({}, assert(listener:notifies())) -- nothing yet, no wait
    assert.are.same({}, assert(listener:notifies(0.2)))
    assert(sender:exec("select pg_notify('gallery_changes', $1)", "generation 7"))
    local got = assert(listener:notifies(10))
    assert.are.equal(1, #got)
    assert.are.same({"gallery_changes", "generation 7", sender:backend_pid()},
      {got[1].channel, got[1].payload, got[1].pid})
    -- several in one transaction arrive together, in order
    assert(sender:exec("begin"))
    for i = 1, 3 do assert(sender:exec("select pg_notify('gallery_changes', $1)", tostring(i))) end
    assert(sender:exec("commit"))
    local all = {}
    while #all < 3 do
      for _, n in ipairs(assert(listener:notifies(10))) do all[#all + 1] = n.payload end
    end
    assert.are.same({"1", "2", "3"}, all)
  end)

  it("a server that goes away: nil and a message, reset reconnects once it is back", function()
    local c <close> = assert(pq.connect(cluster.conninfo))
    assert(c:exec("listen x"))
    cluster:stop()
    local none, err = c:exec("select 1")
    assert.is_nil(none)
    assert.is_string(err)
    assert.is_false(c:ok())
    none, err = c:reset()
    assert.is_nil(none)
    assert.is_string(err)
    cluster:start()
    assert.is_true(c:reset())
    assert.is_true(c:ok())
    assert.are.equal("1", assert(c:exec("select 1")).rows[1][1])
  end)
end)
