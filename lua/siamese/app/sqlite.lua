--- siamese.app.sqlite: what the SQLite-backed modules (siamese.app.attendance,
-- siamese.app.web.audit) share over Debian's lua-sql-sqlite3: loading the
-- driver, connecting with a busy timeout, running a statement and
-- closing. Each module quotes its own values (luasql has no prepared
-- statements).
local sqlite = {}

--- The luasql driver, or nil and a message naming who needs it.
function sqlite.driver(who)
  local ok, driver = pcall(require, "luasql.sqlite3")
  if not ok then
    return nil, who .. " needs Debian's lua-sql-sqlite3 (apt-get install lua-sql-sqlite3): " .. tostring(driver)
  end
  return driver
end

--- A driver message without luasql's "LuaSQL: " prefix.
function sqlite.clean(msg)
  return (tostring(msg):gsub("^LuaSQL: ", ""))
end

--- Runs a statement: rows (tables keyed by column) for a SELECT, or the
-- number of changed rows; or nil, message.
function sqlite.query(conn, sql)
  local cur, err = conn:execute(sql)
  if not cur then return nil, sqlite.clean(err) end
  if type(cur) == "number" then return math.tointeger(cur) or cur end
  local rows = {}
  local row = cur:fetch({}, "a")
  while row do
    rows[#rows + 1] = row
    row = cur:fetch({}, "a")
  end
  cur:close()
  return rows
end

--- Connects to path with a busy timeout (ms) and runs prepare(conn, path)
-- (the module's schema check). Returns conn, env; or nil, message (the
-- connection closed).
function sqlite.connect(who, path, busy_timeout, prepare)
  local driver, derr = sqlite.driver(who)
  if not driver then return nil, derr end
  local env = driver.sqlite3()
  local conn, err = env:connect(path)
  if not conn then
    env:close()
    return nil, path .. ": " .. sqlite.clean(err)
  end
  sqlite.query(conn, string.format("PRAGMA busy_timeout = %d", busy_timeout))
  local ok, perr = prepare(conn, path)
  if not ok then
    conn:close()
    env:close()
    return nil, perr
  end
  return conn, env
end

--- Closes obj.conn and obj.env (idempotent): the modules' close, __close
-- and __gc.
function sqlite.close(obj)
  if obj.conn then
    obj.conn:close()
    obj.env:close()
    obj.conn, obj.env = nil, nil
  end
end

return sqlite
