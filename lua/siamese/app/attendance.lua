--- siamese.app.attendance: an attendance register in a SQLite database
-- (Debian's lua-sql-sqlite3, `require "luasql.sqlite3"`), or, opened with a
-- postgresql:// URL, in PostgreSQL (siamese.app.attendance_pg: the same
-- methods and results, one register for many doors).
--
--   local attendance = require "siamese.app.attendance"
--   local db = assert(attendance.open("office.db"))          -- created when absent
--   db:record{name = "alice", distance = 0.31, photo = "cam/0001.jpg", box = f.box}
--   db:record{distance = 0.93, photo = "cam/0001.jpg", descriptor = d}  -- unknown face
--   for _, r in ipairs(db:report("2026-11-22")) do print(r.name, r.first, r.count) end
--   db:close()
--
-- Every recognised or unknown face is one row of `events` (timestamp,
-- day, name or NULL, distance, photo, face box, and for unknown faces the
-- descriptor as float32 little-endian bytes and an optional crop path, so
-- they can be reviewed and named later with db:resolve). The first arrival
-- of a person on a day is the earliest event with their name that day.
-- Days and clock times are local time. The table `schema_version` holds
-- the layout version; a newer or foreign database is refused.
--
-- luasql has no prepared statements: every value goes through one
-- quoting function (strings escaped with conn:escape, numbers formatted,
-- blobs as X'hex'), and strings holding a NUL byte are refused.
-- Expected failures (missing file with create = false, a locked database
-- after the busy timeout, a file that is not a database) return nil,
-- message; misuse (wrong types) raises.
local attendance = {}

attendance.SCHEMA_VERSION = 1

local SCHEMA = {
  "CREATE TABLE schema_version (version INTEGER NOT NULL)",
  "INSERT INTO schema_version (version) VALUES (1)",
  [[CREATE TABLE events (
      id INTEGER PRIMARY KEY,
      time INTEGER NOT NULL,          -- seconds since the epoch
      day TEXT NOT NULL,              -- local date YYYY-MM-DD
      at TEXT NOT NULL,               -- local date and time YYYY-MM-DD HH:MM:SS
      name TEXT,                      -- NULL: unknown face, kept for review
      distance REAL,                  -- to the nearest enrolled identity
      threshold REAL,
      photo TEXT,
      box_x REAL, box_y REAL, box_width REAL, box_height REAL,
      descriptor BLOB,                -- float32 little-endian (unknown faces)
      crop TEXT,                      -- path of a saved face crop (unknown faces)
      model TEXT,                     -- the encoder's model id
      reviewed INTEGER NOT NULL DEFAULT 0)]],
  "CREATE INDEX events_day_name ON events (day, name, time)",
}

local sqlite = require "siamese.app.sqlite"
local events = require "siamese.app.attendance_events"
local check_event, check_day, check_resolve = events.check_event, events.check_day, events.check_resolve
local descriptor_bytes, descriptor_list = events.descriptor_bytes, events.descriptor_list

local Register = {}
Register.__index = Register


-- SQL literal of a Lua value. kind "blob" turns a string into X'..'.
local function quote(conn, v, kind)
  local t = type(v)
  if v == nil then return "NULL" end
  if kind == "blob" then
    return "X'" .. v:gsub(".", function(c) return string.format("%02X", c:byte()) end) .. "'"
  end
  if t == "number" then
    if math.type(v) == "integer" then return string.format("%d", v) end
    if v ~= v or v == math.huge or v == -math.huge then return "NULL" end
    return string.format("%.17g", v)
  end
  if t == "boolean" then return v and "1" or "0" end
  if t == "string" then
    if v:find("\0", 1, true) then error("attendance: strings must not contain NUL bytes", 3) end
    return "'" .. conn:escape(v) .. "'"
  end
  error("attendance: cannot store a " .. t, 3)
end

-- Replaces each ? in sql by the next value (already known to be safe:
-- every value passes through quote). values may hold nils: n is the count.
local function bind(conn, sql, values, kinds)
  local i = 0
  return (sql:gsub("%?", function()
    i = i + 1
    return quote(conn, values[i], kinds and kinds[i])
  end))
end

-- Runs a statement with its values bound (sqlite.query).
local function exec(conn, sql, values, kinds)
  return sqlite.query(conn, values and bind(conn, sql, values, kinds) or sql)
end

local function file_exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

-- Creates the tables in one transaction, or checks the version of an
-- existing register.
local function prepare(conn, path)
  local tables, err = exec(conn, "SELECT name FROM sqlite_master WHERE type = 'table'")
  if not tables then return nil, path .. ": " .. err end
  if #tables == 0 then
    local ok, e = exec(conn, "BEGIN IMMEDIATE")
    if not ok then return nil, path .. ": " .. e end
    for _, stmt in ipairs(SCHEMA) do
      ok, e = exec(conn, stmt)
      if not ok then
        exec(conn, "ROLLBACK")
        return nil, path .. ": " .. e
      end
    end
    ok, e = exec(conn, "COMMIT")
    if not ok then
      exec(conn, "ROLLBACK")
      return nil, path .. ": " .. e
    end
    return true
  end
  local rows = exec(conn, "SELECT version FROM schema_version")
  if not rows or #rows ~= 1 then return nil, path .. ": not a siamese attendance database" end
  local v = math.tointeger(rows[1].version)
  if v == nil or v > attendance.SCHEMA_VERSION then
    return nil, string.format("%s: attendance schema version %s, this siamese reads version %d",
      path, tostring(rows[1].version), attendance.SCHEMA_VERSION)
  end
  return true
end

--- Opens (and by default creates) a register: a file, or a postgresql://
-- URL (siamese.app.attendance_pg). opts.create = false refuses a missing file
-- (a database without the register's table); opts.busy_timeout (ms, default 2000) is how long a write
-- waits for another process's lock. Returns the register, or nil, message.
function attendance.open(path, opts)
  if type(path) ~= "string" or path == "" then
    error("bad argument #1 to 'attendance.open' (file name expected, got " .. type(path) .. ")", 2)
  end
  opts = opts or {}
  if type(opts) ~= "table" then error("bad argument #2 to 'attendance.open' (table expected, got " .. type(opts) .. ")", 2) end
  if require("siamese.pg").is_url(path) then return require("siamese.app.attendance_pg").open(path, opts) end
  if opts.create == false and not file_exists(path) then
    return nil, path .. ": no such attendance database"
  end
  local timeout = math.tointeger(opts.busy_timeout or 2000)
  if not timeout or timeout < 0 then
    error("bad argument #2 to 'attendance.open' (busy_timeout must be a non-negative integer)", 2)
  end
  local conn, env = sqlite.connect("attendance", path, timeout, prepare)
  if not conn then return nil, env end
  return setmetatable({conn = conn, env = env, path = path}, Register)
end

--- Closes the database (idempotent; also __close and __gc).
Register.close = sqlite.close
Register.__close = Register.close
Register.__gc = Register.close

local function live(self, fname)
  if not self.conn then error("attendance: " .. fname .. " on a closed database", 3) end
  return self.conn
end

--- Records one face: ev = {name (nil: unknown), time (seconds since the
-- epoch, default now), distance, threshold, photo, box = {x, y, width,
-- height}, descriptor (Tensor or list; kept for unknown faces), crop,
-- model}. Returns the event id, or nil, message (e.g. database locked).
function Register:record(ev)
  local conn = live(self, "record")
  check_event(ev)
  local t = ev.time or os.time()
  local box = ev.box or {}
  local blob = ev.name == nil and descriptor_bytes(ev.descriptor) or nil
  local values = {t, os.date("%Y-%m-%d", t), os.date("%Y-%m-%d %H:%M:%S", t), ev.name, ev.distance, ev.threshold,
                  ev.photo, box.x, box.y, box.width, box.height, blob, ev.crop, ev.model}
  local kinds = {[12] = "blob"}
  local ok, err = exec(conn, [[INSERT INTO events (time, day, at, name, distance, threshold, photo,
      box_x, box_y, box_width, box_height, descriptor, crop, model)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)]], values, kinds)
  if not ok then return nil, self.path .. ": " .. err end
  return math.tointeger(conn:getlastautoid())
end

--- Records many events in one transaction (all or none). Returns the list
-- of ids, or nil, message.
function Register:record_all(events)
  local conn = live(self, "record_all")
  if type(events) ~= "table" then error("bad argument #1 to 'record_all' (list of events expected)", 2) end
  for _, ev in ipairs(events) do check_event(ev) end
  local ok, err = exec(conn, "BEGIN IMMEDIATE")
  if not ok then return nil, self.path .. ": " .. err end
  local ids = {}
  for i, ev in ipairs(events) do
    local id, rerr = self:record(ev)
    if not id then
      exec(conn, "ROLLBACK")
      return nil, rerr
    end
    ids[i] = id
  end
  ok, err = exec(conn, "COMMIT")
  if not ok then
    exec(conn, "ROLLBACK")
    return nil, self.path .. ": " .. err
  end
  return ids
end

local function event_of(row)
  local ev = {
    id = math.tointeger(row.id), time = math.tointeger(row.time), day = row.day, at = row.at,
    name = row.name, distance = row.distance, threshold = row.threshold, photo = row.photo,
    crop = row.crop, model = row.model, reviewed = row.reviewed == 1,
  }
  if row.box_x then
    ev.box = {x = row.box_x, y = row.box_y, width = row.box_width, height = row.box_height}
  end
  ev.descriptor = descriptor_list(row.descriptor)
  return ev
end

--- First arrival per person per day: list of {day, name, first (HH:MM:SS),
-- last, count (events)}, by day then first arrival. day (YYYY-MM-DD)
-- restricts it to one day. Returns the list, or nil, message.
function Register:first_arrivals(day)
  local conn = live(self, "first_arrivals")
  check_day("first_arrivals", day)
  -- `at` is local YYYY-MM-DD HH:MM:SS text, so MIN/MAX order it in time.
  local rows, err = exec(conn, [[SELECT day, name, MIN(at) AS first_at, MAX(at) AS last_at, COUNT(*) AS n
      FROM events WHERE name IS NOT NULL]] .. (day and " AND day = ?" or "") .. [[
      GROUP BY day, name ORDER BY day, first_at, name]], day and {day} or nil)
  if not rows then return nil, self.path .. ": " .. err end
  local out = {}
  for i, r in ipairs(rows) do
    out[i] = {day = r.day, name = r.name, first = r.first_at:sub(12), last = r.last_at:sub(12),
              count = math.tointeger(r.n)}
  end
  return out
end

--- Who came on a day (default today): first_arrivals of that day.
function Register:report(day)
  check_day("report", day)
  return self:first_arrivals(day or os.date("%Y-%m-%d"))
end

--- Days with events: list of {day, people (distinct names), unknown
-- (faces not recognised)}, most recent first.
function Register:days()
  local conn = live(self, "days")
  local rows, err = exec(conn, [[SELECT day, COUNT(DISTINCT name) AS people,
      SUM(CASE WHEN name IS NULL THEN 1 ELSE 0 END) AS unknown FROM events GROUP BY day ORDER BY day DESC]])
  if not rows then return nil, self.path .. ": " .. err end
  for _, r in ipairs(rows) do
    r.people, r.unknown = math.tointeger(r.people), math.tointeger(r.unknown)
  end
  return rows
end

--- Events, oldest first: opts.day, opts.name (a person's), opts.unknown
-- (true: only unknown faces not reviewed yet). Each event as recorded, with
-- descriptor as a list of numbers (unknown faces). Returns the list, or
-- nil, message.
function Register:events(opts)
  local conn = live(self, "events")
  opts = opts or {}
  check_day("events", opts.day)
  local where, values = {}, {}
  if opts.day then where[#where + 1] = "day = ?"; values[#values + 1] = opts.day end
  if opts.name then where[#where + 1] = "name = ?"; values[#values + 1] = opts.name end
  if opts.unknown then where[#where + 1] = "name IS NULL AND reviewed = 0" end
  local sql = "SELECT * FROM events" .. (#where > 0 and " WHERE " .. table.concat(where, " AND ") or "")
    .. " ORDER BY time, id"
  local rows, err = exec(conn, sql, values)
  if not rows then return nil, self.path .. ": " .. err end
  local out = {}
  for i, r in ipairs(rows) do out[i] = event_of(r) end
  return out
end

--- Unknown faces waiting for review (optionally of one day).
function Register:unknowns(day)
  return self:events{day = day, unknown = true}
end

--- Names an unknown face after review (name nil: dismissed as a
-- stranger). Returns true, or nil, message (no such unknown event).
function Register:resolve(id, name)
  local conn = live(self, "resolve")
  check_resolve(id, name)
  local n, err = exec(conn, "UPDATE events SET name = ?, reviewed = 1 WHERE id = ? AND name IS NULL", {name, id})
  if not n then return nil, self.path .. ": " .. err end
  if n == 0 then return nil, string.format("no unknown face with id %d", id) end
  return true
end

return attendance
