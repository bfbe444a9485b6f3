--- siamese.pg: what the PostgreSQL-backed stores share over siamese.pq
-- (src/l_pq.c, libpq): telling a database URL from a file path,
-- connecting, transactions, and versioned schemas.
--
--   local pg = require "siamese.pg"
--   if pg.is_url(s) then local conn = assert(pg.connect(s)) end
--   pg.migrate(conn, "gallery", {step1_sql_list, step2_sql_list})
--
-- A URL is postgresql://... or postgres://... (libpq's own syntax); what it
-- leaves out (host, user, password, database) comes from libpq's
-- environment: PGHOST, PGUSER, PGPASSWORD, PGSERVICE, ~/.pgpass, so no
-- password needs to sit on a command line. Schemas are versioned per
-- component in the table siamese_schema (component, version): migrate
-- runs the missing steps in one transaction under an advisory lock, so
-- processes starting together create the schema once.
local pg = {}

--- Whether s names a PostgreSQL database (rather than a file).
function pg.is_url(s)
  return type(s) == "string" and (s:match("^postgresql://") or s:match("^postgres://")) ~= nil
end

--- A URL with any password in it replaced by "***" (for messages and logs).
function pg.redact(url)
  local s = url:gsub("^(postgres[a-z]*://[^:/@?]*):[^@/?]*@", "%1:***@")
  s = s:gsub("([?&]password=)[^&]*", "%1***")
  return s
end

--- Whether the URL carries a password (user:password@ or password=).
function pg.has_password(url)
  return url:match("^postgres[a-z]*://[^:/@?]*:[^@/?]*@") ~= nil or url:match("[?&]password=") ~= nil
end

--- s as PostgreSQL text can hold it: each byte that is not part of valid
-- UTF-8, and each zero byte, replaced by U+FFFD (text columns refuse the
-- first and libpq cuts at the second). Valid text comes back unchanged.
function pg.text(s)
  if not s:find("\0", 1, true) and utf8.len(s) then return s end
  local out, i = {}, 1
  while i <= #s do
    local ok, bad = utf8.len(s, i)
    if ok then
      out[#out + 1] = s:sub(i)
      break
    end
    out[#out + 1] = s:sub(i, bad - 1) .. "\u{FFFD}"
    i = bad + 1
  end
  return (table.concat(out):gsub("%z", "\u{FFFD}"))
end

--- The libpq binding, or nil and a message naming what to install.
function pg.driver()
  local ok, pq = pcall(require, "siamese.pq")
  if not ok then
    return nil, "PostgreSQL support needs siamese.pq (built with libpq: apt-get install libpq-dev, then make): "
      .. tostring(pq)
  end
  return pq
end

-- Seconds a connection attempt may take when the URL does not say
-- (libpq's default is to wait as long as the system does: minutes, for a
-- host that is down).
pg.CONNECT_TIMEOUT = 5

--- Starts connecting to url without waiting: a connection to advance
-- with conn:connect_poll() ("ok", "pending", or nil, message), or nil and
-- a message (the password redacted). The caller bounds the time it lets
-- an attempt take (libpq's connect_timeout does not apply here).
function pg.connect_start(url)
  if not pg.is_url(url) then
    error("siamese.pg.connect_start: bad argument #1 (a postgresql:// URL expected, got " .. tostring(url) .. ")", 2)
  end
  local pq, err = pg.driver()
  if not pq then return nil, err end
  local conn, cerr = pq.connect_start(url)
  if not conn then return nil, pg.redact(url) .. ": " .. cerr end
  return conn
end

--- A connection to url, or nil and a message (the password redacted).
-- A URL without connect_timeout gets pg.CONNECT_TIMEOUT.
function pg.connect(url)
  if not pg.is_url(url) then
    error("siamese.pg.connect: bad argument #1 (a postgresql:// URL expected, got " .. tostring(url) .. ")", 2)
  end
  local pq, err = pg.driver()
  if not pq then return nil, err end
  local target = url
  if not url:find("[?&]connect_timeout=") then
    target = url .. (url:find("?", 1, true) and "&" or "?") .. "connect_timeout=" .. pg.CONNECT_TIMEOUT
  end
  local conn, cerr = pq.connect(target)
  if not conn then return nil, pg.redact(url) .. ": " .. cerr end
  return conn
end

--- Runs fn(conn) inside a transaction: COMMIT when it returns a true
-- first value, ROLLBACK otherwise (and when it raises: the error is raised
-- again). Returns fn's results, or nil and the message of a failed
-- BEGIN/COMMIT.
function pg.transaction(conn, fn)
  local ok, err = conn:exec("begin")
  if not ok then return nil, err end
  local res = table.pack(pcall(fn, conn))
  if not res[1] then
    conn:exec("rollback")
    error(res[2], 0)
  end
  if res[2] then
    local cok, cerr = conn:exec("commit")
    if not cok then
      conn:exec("rollback")
      return nil, cerr
    end
  else
    conn:exec("rollback")
  end
  return table.unpack(res, 2, res.n)
end

-- One advisory-lock key per purpose (pg_advisory_xact_lock's bigint).
pg.LOCK_SCHEMA = 0x5349414d0001  -- "SIAM" .. 1
pg.LOCK_GALLERY = 0x5349414d0002

--- Brings component's schema to #steps (each step a list of SQL
-- statements, run in order; step k takes version k - 1 to k). Returns the
-- version, or nil and a message (a database newer than this code is
-- refused: its schema version is above #steps).
function pg.migrate(conn, component, steps)
  local done, version = pg.transaction(conn, function(c)
    local function run(sql, ...)
      local r, err = c:exec(sql, ...)
      if not r then error({pg_error = err}) end
      return r
    end
    local ok, res, err = pcall(function()
      run("select pg_advisory_xact_lock($1)", pg.LOCK_SCHEMA)
      run("create table if not exists siamese_schema (component text primary key, version int not null)")
      local r = run("select version from siamese_schema where component = $1", component)
      local have = r.rows[1] and math.tointeger(tonumber(r.rows[1][1])) or 0
      if have > #steps then
        return nil, string.format("the database's %s schema is version %d, newer than this siamese (%d)",
          component, have, #steps)
      end
      for v = have + 1, #steps do
        for _, sql in ipairs(steps[v]) do run(sql) end
      end
      run("insert into siamese_schema (component, version) values ($1, $2) "
        .. "on conflict (component) do update set version = excluded.version", component, #steps)
      return #steps
    end)
    if not ok then
      if type(res) == "table" and res.pg_error then return false, "schema " .. component .. ": " .. res.pg_error end
      error(res, 0)
    end
    if not res then return false, err end
    return true, res
  end)
  if done then return version end
  return nil, version
end

--- Connects to url and brings component's schema up to date (migrate):
-- the connection, or nil and a message naming the URL (password
-- redacted).
function pg.open(url, component, steps)
  local conn, err = pg.connect(url)
  if not conn then return nil, err end
  local v, merr = pg.migrate(conn, component, steps)
  if not v then
    conn:close()
    return nil, pg.redact(url) .. ": " .. merr
  end
  return conn
end

--- Runs a statement on conn, reconnecting once when the connection was
-- lost (the database restarted since it was made): the result, or nil
-- and the message after where (the redacted URL).
function pg.exec(conn, where, sql, ...)
  local r, err = conn:exec(sql, ...)
  if not r and not conn:ok() and conn:reset() then r, err = conn:exec(sql, ...) end
  if not r then return nil, where .. ": " .. err end
  return r
end

return pg
