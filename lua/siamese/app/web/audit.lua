--- siamese.app.web.audit: an append-only audit log of the decisions and
-- changes made to a gallery and its tokens, by the web server and by the
-- command line, in SQLite (Debian's lua-sql-sqlite3, module
-- "luasql.sqlite3", as siamese.app.attendance).
--
--   local audit = require "siamese.app.web.audit"
--   local log = assert(audit.open(audit.path_for("office.gallery")))  -- "office.gallery.audit", created 0600
--   -- after each API call (who from siamese.app.web.tokens' store:authorize)
--   log:record{role = who.role, token_id = who.id, client = req.peer, action = "verify",
--              name = "alice", distance = 0.41, threshold = 0.6, accepted = true}
--   log:record{role = "admin", token_id = who.id, client = req.peer, action = "rename",
--              name = "alice", detail = "renamed to Alice"}
--   -- refused requests too: {client = ..., action = "enroll", accepted = false, detail = "401 missing"}
--   -- a change made on the machine itself (siamese enroll, gallery, token):
--   local who = audit.local_actor()   -- {role = "local", client = "cli:alice"}
--   log:record{role = who.role, client = who.client, action = "remove", name = "bob", accepted = true,
--              detail = "2 templates"}
--   for _, ev in ipairs(log:events{since = "2026-11-22T00:00:00Z", action = "verify", limit = 100}) do
--     print(ev.id, ev.at, ev.role, ev.token_id, ev.name, ev.accepted)
--   end
--   log:close()
--
-- The log of a gallery is "<gallery>.audit" (audit.path_for). Who made a
-- change: role is the token's role ("admin", "door") for the web API, or
-- "local" for a command run on the machine by someone with access to the
-- files, who needs no token (audit.local_actor: client "cli:<user>", the
-- user name of the real uid from /etc/passwd, else $USER, else "uid N" or
-- "unknown"; token_id is then NULL). "local" names an account, not a
-- proven person: whoever may write the files may write the log too.
-- Actions the command line records (siamese.app.cli.audit lists the details):
-- enroll (accepted false: refused, detail the reason), remove, rename,
-- token-add, token-revoke.
--
-- One table, events(id INTEGER PRIMARY KEY, at TEXT (UTC ISO-8601
-- "2026-11-22T08:00:00Z"), role, token_id, client, action, name, distance
-- REAL, threshold REAL, accepted INTEGER (1, 0 or NULL), detail), and
-- schema_version(version). Append-only: this module has no update or
-- delete, and triggers ABORT every UPDATE or DELETE on events (and on
-- schema_version), so a bug elsewhere, or a hand with the sqlite3 shell
-- who does not drop the triggers first, cannot rewrite history. open
-- refuses a database whose triggers are gone or changed, or that has
-- others (one that drops inserts would silence the log).
--
-- The file is created with mode 0600 (it names people and says when they
-- came: personal data); an existing one readable or writable by group or
-- others is refused (like ssh with a private key). SQLite gives its
-- journal files the database's mode.
--
-- luasql has no prepared statements: every value goes through one quoting
-- function (quote below). Strings go in as CAST(X'<hex>' AS TEXT), so
-- quotes, NUL bytes, any Unicode (or bytes that are not UTF-8) are
-- stored exactly, with no escaping to get wrong. Expected failures (a
-- locked database after the busy timeout, a file that is not an audit
-- log) return nil, message; misuse (wrong types) raises.
local tokens = require "siamese.app.web.tokens"
local pg = require "siamese.pg"

local audit = {}

audit.SCHEMA_VERSION = 1

local SCHEMA = {
  "CREATE TABLE schema_version (version INTEGER NOT NULL)",
  "INSERT INTO schema_version (version) VALUES (1)",
  [[CREATE TABLE events (
      id INTEGER PRIMARY KEY,
      at TEXT NOT NULL,        -- UTC, ISO-8601: 2026-11-22T08:00:00Z
      role TEXT,               -- the token's role (admin, door), NULL: none presented
      token_id TEXT,           -- the token's public id
      client TEXT,             -- the peer address
      action TEXT NOT NULL,    -- verify, identify, enroll, remove, rename, people, ...
      name TEXT,               -- the person concerned
      distance REAL,
      threshold REAL,
      accepted INTEGER,        -- 1 accepted/done, 0 refused, NULL not a decision
      detail TEXT)]],
  "CREATE INDEX events_at ON events (at)",
  [[CREATE TRIGGER events_no_update BEFORE UPDATE ON events
      BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END]],
  [[CREATE TRIGGER events_no_delete BEFORE DELETE ON events
      BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END]],
  [[CREATE TRIGGER schema_version_no_update BEFORE UPDATE ON schema_version
      BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END]],
  [[CREATE TRIGGER schema_version_no_delete BEFORE DELETE ON schema_version
      BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END]],
}

local TRIGGERS = {"events_no_update", "events_no_delete", "schema_version_no_update", "schema_version_no_delete"}

local sqlite = require "siamese.app.sqlite"

local Log = {}
Log.__index = Log


--- The SQL literal of a Lua value: the one way values enter a statement.
-- nil -> NULL; integers and finite floats as numbers (NaN, inf -> NULL);
-- booleans 1/0; strings as CAST(X'hex' AS TEXT) (exact bytes, NULs
-- included).
function audit.quote(v)
  local t = type(v)
  if v == nil then return "NULL" end
  if t == "number" then
    if math.type(v) == "integer" then return string.format("%d", v) end
    if v ~= v or v == math.huge or v == -math.huge then return "NULL" end
    return string.format("%.17g", v)
  end
  if t == "boolean" then return v and "1" or "0" end
  if t == "string" then
    return "CAST(X'" .. v:gsub(".", function(c) return string.format("%02X", c:byte()) end) .. "' AS TEXT)"
  end
  error("audit: cannot store a " .. t, 3)
end

-- Replaces each ? in sql by the quoted next value (values may hold nils:
-- n is their count).
local function bind(sql, values, n)
  local i = 0
  local out = sql:gsub("%?", function()
    i = i + 1
    return audit.quote(values[i])
  end)
  assert(i == n, "audit: placeholder count")
  return out
end

-- Runs a statement with its values bound (sqlite.query).
local function exec(conn, sql, values, n)
  return sqlite.query(conn, values and bind(sql, values, n or #values) or sql)
end

-- Creates the schema in one transaction when the database is empty, or
-- checks an existing one (version, append-only triggers).
local function prepare(conn, path)
  local ok, e = exec(conn, "BEGIN IMMEDIATE")
  if not ok then return nil, path .. ": " .. e end
  local function fail(msg)
    exec(conn, "ROLLBACK")
    return nil, path .. ": " .. msg
  end
  local tables, terr = exec(conn, "SELECT name FROM sqlite_master WHERE type = 'table'")
  if not tables then return fail(terr) end
  if #tables == 0 then
    for _, stmt in ipairs(SCHEMA) do
      ok, e = exec(conn, stmt)
      if not ok then return fail(e) end
    end
    ok, e = exec(conn, "COMMIT")
    if not ok then return fail(e) end
    return true
  end
  local rows = exec(conn, "SELECT version FROM schema_version")
  local names = {}
  for _, t in ipairs(tables) do names[t.name] = true end
  if not rows or #rows ~= 1 or not names.events then return fail("not a siamese audit log") end
  local v = math.tointeger(rows[1].version)
  if v == nil or v > audit.SCHEMA_VERSION then
    return fail(string.format("audit log schema version %s, this siamese reads version %d", tostring(rows[1].version),
      audit.SCHEMA_VERSION))
  end
  -- exactly the triggers of SCHEMA, with their text: no other trigger (one
  -- that drops inserts would silence the log) and none rewritten
  local want = {}
  for _, stmt in ipairs(SCHEMA) do
    local name = stmt:match("^CREATE TRIGGER (%S+)")
    if name then want[name] = stmt end
  end
  local trig = exec(conn, "SELECT name, sql FROM sqlite_master WHERE type = 'trigger'") or {}
  local have = {}
  for _, t in ipairs(trig) do
    if want[t.name] == nil then return fail("unexpected trigger " .. tostring(t.name) .. " (tampered log?)") end
    if t.sql ~= want[t.name] then return fail("the append-only trigger " .. t.name .. " was changed (tampered log?)") end
    have[t.name] = true
  end
  for _, name in ipairs(TRIGGERS) do
    if not have[name] then return fail("the append-only trigger " .. name .. " is missing (tampered log?)") end
  end
  exec(conn, "COMMIT")
  return true
end

--- The audit log next to a gallery file: gallery_path .. ".audit"; a
-- gallery in PostgreSQL (a postgresql:// URL) keeps its log in the same
-- database: the URL itself.
function audit.path_for(gallery_path)
  if type(gallery_path) ~= "string" or gallery_path == "" then
    error("bad argument #1 to 'audit.path_for' (gallery file name expected, got " .. type(gallery_path) .. ")", 2)
  end
  if pg.is_url(gallery_path) then return gallery_path end
  return gallery_path .. ".audit"
end

-- The text of a small system file, or nil.
local function read_text(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local text = f:read("a")
  f:close()
  return text
end

-- The real uid of this process (Linux: /proc/self/status), or nil.
local function real_uid()
  local status = read_text("/proc/self/status")
  local uid = status and status:match("\nUid:%s+(%d+)")
  return uid and math.tointeger(tonumber(uid)) or nil
end

-- The user name of uid in /etc/passwd (local accounts only), or nil.
local function passwd_name(uid)
  local passwd = read_text("/etc/passwd")
  if not passwd then return nil end
  for line in passwd:gmatch("[^\n]+") do
    local name, id = line:match("^([^:]+):[^:]*:(%d+):")
    if name and tonumber(id) == uid then return name end
  end
  return nil
end

--- Who makes a change from the command line: {role = "local", client =
-- "cli:<user>"}, user the name of the real uid (/proc/self/status and
-- /etc/passwd), else $USER, else "uid <n>", else "unknown". Control
-- characters in the name are replaced by "?".
function audit.local_actor()
  local uid = real_uid()
  local user = uid and passwd_name(uid)
  if not user or user == "" then user = os.getenv("USER") end
  if not user or user == "" then user = uid and ("uid " .. uid) or "unknown" end
  return {role = "local", client = "cli:" .. user:gsub("%c", "?")}
end

--- Opens (creating when absent, mode 0600) the audit log at path.
-- opts.busy_timeout (ms, default 2000): how long a write waits for
-- another process's lock. A postgresql:// URL opens the log in that
-- database (siamese.app.web.audit_pg; opts unused). Returns the log, or nil,
-- message.
function audit.open(path, opts)
  if type(path) ~= "string" or path == "" or path:find("\0", 1, true) then
    error("bad argument #1 to 'audit.open' (file name expected, got " .. type(path) .. ")", 2)
  end
  if pg.is_url(path) then
    local backend, err = require("siamese.app.web.audit_pg").open(path)
    if not backend then return nil, err end
    return setmetatable({pg = backend, path = path}, Log)
  end
  opts = opts or {}
  if type(opts) ~= "table" then error("bad argument #2 to 'audit.open' (table expected, got " .. type(opts) .. ")", 2) end
  local timeout = math.tointeger(opts.busy_timeout or 2000)
  if not timeout or timeout < 0 then
    error("bad argument #2 to 'audit.open' (busy_timeout must be a non-negative integer)", 2)
  end
  local lfs = require "lfs"
  local driver, derr = sqlite.driver("the audit log")
  if not driver then return nil, derr end -- before any file is made
  if lfs.symlinkattributes(path, "mode") == nil then
    -- an empty 0600 file: SQLite takes it as a new database and keeps its mode
    local ok, cerr, tag = tokens.create_private(path, "")
    if not ok and tag ~= "exists" then return nil, cerr end
  end
  local ok, perr = tokens.check_private(path, "the audit log")
  if not ok then return nil, perr end
  local conn, env = sqlite.connect("the audit log", path, timeout, prepare)
  if not conn then return nil, env end
  return setmetatable({conn = conn, env = env, path = path}, Log)
end

--- Closes the database (idempotent; also __close and __gc).
function Log:close()
  if self.pg then
    self.pg:close()
    self.pg, self.closed = nil, true
  end
  sqlite.close(self)
end
Log.__close = Log.close
Log.__gc = Log.close

local function live(self, fname)
  if not self.conn and not self.pg then error("audit: " .. fname .. " on a closed log", 3) end
  return self.conn
end

local TEXT_FIELDS = {"role", "token_id", "client", "action", "name", "detail"}

--- Appends one event: ev = {action (required), role, token_id, client,
-- name, distance, threshold, accepted (boolean), detail}. at is the
-- current UTC time. Returns the event id, or nil, message.
function Log:record(ev)
  local conn = live(self, "record")
  if type(ev) ~= "table" then error("bad argument #1 to 'record' (event table expected, got " .. type(ev) .. ")", 2) end
  for _, k in ipairs(TEXT_FIELDS) do
    if ev[k] ~= nil and type(ev[k]) ~= "string" then
      error("bad argument #1 to 'record' (" .. k .. " must be a string, got " .. type(ev[k]) .. ")", 2)
    end
  end
  if ev.action == nil or ev.action == "" then error("bad argument #1 to 'record' (action is required)", 2) end
  for _, k in ipairs{"distance", "threshold"} do
    if ev[k] ~= nil and type(ev[k]) ~= "number" then
      error("bad argument #1 to 'record' (" .. k .. " must be a number, got " .. type(ev[k]) .. ")", 2)
    end
  end
  if ev.accepted ~= nil and type(ev.accepted) ~= "boolean" then
    error("bad argument #1 to 'record' (accepted must be a boolean, got " .. type(ev.accepted) .. ")", 2)
  end
  if self.pg then return self.pg:_record(ev) end
  local values = {os.date("!%Y-%m-%dT%H:%M:%SZ"), ev.role, ev.token_id, ev.client, ev.action, ev.name, ev.distance,
                  ev.threshold, ev.accepted, ev.detail}
  local ok, err = exec(conn, [[INSERT INTO events (at, role, token_id, client, action, name, distance, threshold,
      accepted, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)]], values, 10)
  if not ok then return nil, self.path .. ": " .. err end
  return math.tointeger(conn:getlastautoid())
end

local function event_of(row)
  local accepted = row.accepted
  if accepted ~= nil then accepted = accepted ~= 0 end
  return {id = math.tointeger(row.id), at = row.at, role = row.role, token_id = row.token_id, client = row.client,
          action = row.action, name = row.name, distance = row.distance, threshold = row.threshold,
          accepted = accepted, detail = row.detail}
end

local function utc_text(since)
  if math.type(since) == "integer" then return os.date("!%Y-%m-%dT%H:%M:%SZ", since) end
  if type(since) == "string" and since:match("^%d%d%d%d%-%d%d%-%d%d") then return since end
  error("bad argument #1 to 'events' (since must be a UTC time 'YYYY-MM-DD[THH:MM:SSZ]' or epoch seconds, got "
    .. tostring(since) .. ")", 3)
end

--- Events in the order they were recorded. opts: since (UTC text
-- "2026-11-22" or "2026-11-22T08:00:00Z", or integer seconds since the
-- epoch: events at or after it), action, name, token_id (exact matches),
-- limit (the most recent limit events, still oldest first). Each event:
-- {id, at, role, token_id, client, action, name, distance, threshold,
-- accepted (true, false or nil), detail}. Returns the list, or nil, message.
function Log:events(opts)
  local conn = live(self, "events")
  opts = opts or {}
  if type(opts) ~= "table" then error("bad argument #1 to 'events' (table expected, got " .. type(opts) .. ")", 2) end
  local where, values = {}, {}
  if opts.since ~= nil then
    where[#where + 1] = "at >= ?"; values[#values + 1] = utc_text(opts.since)
  end
  for _, k in ipairs{"action", "name", "token_id"} do
    if opts[k] ~= nil then
      if type(opts[k]) ~= "string" then error("bad argument #1 to 'events' (" .. k .. " must be a string)", 2) end
      where[#where + 1] = k .. " = ?"; values[#values + 1] = opts[k]
    end
  end
  local limit = opts.limit
  if limit ~= nil and (math.type(limit) ~= "integer" or limit < 0) then
    error("bad argument #1 to 'events' (limit must be a non-negative integer)", 2)
  end
  if self.pg then
    return self.pg:_events{since = opts.since ~= nil and values[1] or nil, action = opts.action, name = opts.name,
                           token_id = opts.token_id, limit = limit}
  end
  local sql = "SELECT * FROM events" .. (#where > 0 and " WHERE " .. table.concat(where, " AND ") or "")
  if limit then
    sql = sql .. " ORDER BY id DESC LIMIT ?"
    values[#values + 1] = limit
  else
    sql = sql .. " ORDER BY id"
  end
  local rows, err = exec(conn, sql, values)
  if not rows then return nil, self.path .. ": " .. err end
  local out = {}
  for i, r in ipairs(rows) do out[i] = event_of(r) end
  if limit then
    local n = #out
    for i = 1, n // 2 do out[i], out[n + 1 - i] = out[n + 1 - i], out[i] end
  end
  return out
end

return audit
