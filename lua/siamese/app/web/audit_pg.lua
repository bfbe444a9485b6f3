--- siamese.app.web.audit_pg: the audit log of a gallery kept in PostgreSQL, in
-- the gallery's own database (siamese.app.web.audit sends postgresql:// URLs
-- here; the same record and events, the same events' fields).
--
-- Schema component "audit" (siamese.pg.migrate), version 1: the table
-- siamese_audit (id, at timestamptz, role, token_id, client, action, name,
-- distance, threshold, accepted boolean, detail) and a statement trigger
-- that raises on every UPDATE, DELETE and TRUNCATE of it, so the log is
-- append-only for every client that does not first drop the trigger; open
-- refuses a log whose trigger is missing, disabled, or joined by others.
-- Every value travels as a parameter of the statement (no quoting); text
-- that PostgreSQL cannot hold (invalid UTF-8, zero bytes) is stored with
-- U+FFFD in their place.
local pg = require "siamese.pg"

local audit_pg = {}

local TRIGGER = "siamese_audit_append_only"

local SCHEMA = {
  { -- version 1
    "create table siamese_audit (id int8 generated always as identity primary key,"
      .. " at timestamptz not null default now(), role text, token_id text, client text,"
      .. " action text not null, name text, distance float8, threshold float8, accepted boolean, detail text)",
    "create index siamese_audit_at on siamese_audit (at)",
    "create function siamese_audit_refuse() returns trigger language plpgsql as"
      .. " $$ begin raise exception 'the audit log is append-only'; end $$",
    "create trigger " .. TRIGGER .. " before update or delete or truncate on siamese_audit"
      .. " for each statement execute function siamese_audit_refuse()",
  },
}

local Log = {}
Log.__index = Log

-- The log's triggers as the database has them: exactly ours, enabled.
local function check_triggers(conn)
  local r, err = conn:exec("select tgname, tgenabled from pg_trigger where tgrelid = 'siamese_audit'::regclass"
    .. " and not tgisinternal")
  if not r then return nil, err end
  local ours = false
  for _, row in ipairs(r.rows) do
    if row[1] ~= TRIGGER then return nil, "unexpected trigger " .. row[1] .. " on the audit log (tampered log?)" end
    if row[2] ~= "O" then return nil, "the append-only trigger is disabled (tampered log?)" end
    ours = true
  end
  if not ours then return nil, "the append-only trigger is missing (tampered log?)" end
  return true
end

--- Opens the audit log in the database at url (creating its table on
-- first use). Returns the log, or nil, message (the URL's password
-- redacted).
function audit_pg.open(url)
  local conn, err = pg.open(url, "audit", SCHEMA)
  if not conn then return nil, err end
  local where = pg.redact(url)
  local ok, terr = check_triggers(conn)
  if not ok then
    conn:close()
    return nil, where .. ": " .. terr
  end
  return setmetatable({conn = conn, path = url, where = where}, Log)
end

--- Closes the connection (idempotent; also __close and __gc).
function Log:close()
  if self.conn then self.conn:close() end
  self.conn = nil
end
Log.__close = Log.close
Log.__gc = Log.close

-- A value as a parameter: nil is NULL; text is made storable (pg.text:
-- invalid UTF-8 and zero bytes become U+FFFD, where the SQLite log keeps
-- the bytes).
function Log:_exec(sql, ...) return pg.exec(self.conn, self.where, sql, ...) end

local function opt(v)
  if v == nil then return require("siamese.pq").null end
  if type(v) == "string" then return pg.text(v) end
  return v
end

--- Appends one event (ev already checked by siamese.app.web.audit): the id,
-- or nil, message.
function Log:_record(ev)
  local r, err = self:_exec("insert into siamese_audit (role, token_id, client, action, name, distance, threshold,"
    .. " accepted, detail) values ($1, $2, $3, $4, $5, $6, $7, $8, $9) returning id",
    opt(ev.role), opt(ev.token_id), opt(ev.client), opt(ev.action), opt(ev.name), opt(ev.distance), opt(ev.threshold),
    opt(ev.accepted), opt(ev.detail))
  if not r then return nil, err end
  return math.tointeger(tonumber(r.rows[1][1]))
end

--- Events in the order recorded, for filters already checked by
-- siamese.app.web.audit: {since (UTC text), action, name, token_id, limit}.
function Log:_events(f)
  local null = require("siamese.pq").null
  local where, values = {}, {}
  local function add(cond, v)
    values[#values + 1] = v
    where[#where + 1] = cond:gsub("%$", "$" .. #values)
  end
  if f.since then add("at >= $::timestamptz", f.since) end
  for _, k in ipairs{"action", "name", "token_id"} do
    if f[k] then add(k .. " = $", f[k]) end
  end
  local sql = "select id, to_char(at at time zone 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), role, token_id, client,"
    .. " action, name, distance, threshold, accepted, detail from siamese_audit"
    .. (#where > 0 and " where " .. table.concat(where, " and ") or "")
  if f.limit then
    values[#values + 1] = f.limit
    sql = "select * from (" .. sql .. " order by id desc limit $" .. #values .. ") recent order by id"
  else
    sql = sql .. " order by id"
  end
  local r, err = self:_exec(sql, table.unpack(values))
  if not r then return nil, err end
  local out = {}
  for i, row in ipairs(r.rows) do
    local function v(j) return row[j] ~= null and row[j] or nil end
    local accepted = v(10)
    if accepted ~= nil then accepted = accepted == "t" end
    out[i] = {id = math.tointeger(tonumber(row[1])), at = v(2), role = v(3), token_id = v(4), client = v(5),
              action = v(6), name = v(7), distance = v(8) and tonumber(v(8)), threshold = v(9) and tonumber(v(9)),
              accepted = accepted, detail = v(11)}
  end
  return out
end

return audit_pg
