--- siamese.app.attendance_pg: the attendance register in PostgreSQL, one
-- register fed by every door (siamese.app.attendance.open sends postgresql://
-- URLs here). The same methods, arguments and results as the SQLite
-- register: record, record_all, first_arrivals, report, days, events,
-- unknowns, resolve, close.
--
-- Schema component "attendance" (siamese.pg.migrate), version 1: the table
-- siamese_attendance, the columns of the SQLite register's events (time in
-- seconds since the epoch; day and at in the recording machine's local
-- time, as text, so that a door's first arrival is its own clock's; the
-- descriptor of an unknown face as float32 little-endian bytea). Values
-- travel as statement parameters; a string with a zero byte is refused as
-- in the SQLite register, other text PostgreSQL cannot hold (invalid
-- UTF-8, e.g. a photo's file name) is stored with U+FFFD in its place.
local pg = require "siamese.pg"

local attendance_pg = {}

local shared = require "siamese.app.attendance_events"

local SCHEMA = {
  { -- version 1
    "create table siamese_attendance (id int8 generated always as identity primary key,"
      .. " time int8 not null, day text not null check (day ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}$'),"
      .. " at text not null, name text check (name is null or name <> ''),"
      .. " distance float8, threshold float8, photo text,"
      .. " box_x float8, box_y float8, box_width float8, box_height float8,"
      .. " descriptor bytea check (descriptor is null or octet_length(descriptor) % 4 = 0),"
      .. " crop text, model text, reviewed boolean not null default false)",
    "create index siamese_attendance_day_name on siamese_attendance (day, name, time)",
  },
}

local Register = {}
Register.__index = Register

--- Opens the register in the database at url (its table created on first
-- use, unless opts.create is false). Returns it, or nil, message.
function attendance_pg.open(url, opts)
  opts = opts or {}
  local where = pg.redact(url)
  if opts.create == false then -- asked first: opening creates the table
    local probe, perr = pg.connect(url)
    if not probe then return nil, perr end
    local r, e = probe:exec("select to_regclass('siamese_attendance') is not null")
    probe:close()
    if not r or r.rows[1][1] ~= "t" then return nil, where .. ": " .. (e or "no attendance register in this database") end
  end
  local conn, err = pg.open(url, "attendance", SCHEMA)
  if not conn then return nil, err end
  return setmetatable({conn = conn, path = url, where = where}, Register)
end

--- Closes the connection (idempotent; also __close and __gc).
function Register:close()
  if self.conn then self.conn:close() end
  self.conn = nil
end
Register.__close = Register.close
Register.__gc = Register.close

local function live(self, fname)
  if not self.conn then error("attendance: " .. fname .. " on a closed database", 3) end
  return self.conn
end

-- A value as a statement parameter (nil: NULL; NaN and infinities: NULL,
-- as the SQLite register stores them).
local function param(v, level)
  if v == nil then return require("siamese.pq").null end
  if type(v) == "number" and math.type(v) == "float" and (v ~= v or v == math.huge or v == -math.huge) then
    return require("siamese.pq").null
  end
  if type(v) == "string" then
    if v:find("\0", 1, true) then error("attendance: strings must not contain NUL bytes", level + 1) end
    return pg.text(v)
  end
  return v
end

local function exec(self, sql, ...) return pg.exec(self.conn, self.where, sql, ...) end

--- Records one face (see siamese.app.attendance: Register:record). Returns
-- the event id, or nil, message.
function Register:record(ev)
  live(self, "record")
  shared.check_event(ev)
  local t = ev.time or os.time()
  local box = ev.box or {}
  local blob = ev.name == nil and shared.descriptor_bytes(ev.descriptor) or nil
  local pq = require "siamese.pq"
  local r, err = exec(self, "insert into siamese_attendance (time, day, at, name, distance, threshold, photo,"
    .. " box_x, box_y, box_width, box_height, descriptor, crop, model)"
    .. " values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) returning id",
    t, os.date("%Y-%m-%d", t), os.date("%Y-%m-%d %H:%M:%S", t), param(ev.name, 2), param(ev.distance, 2),
    param(ev.threshold, 2), param(ev.photo, 2), param(box.x, 2), param(box.y, 2), param(box.width, 2),
    param(box.height, 2), blob and pq.bytes(blob) or pq.null, param(ev.crop, 2), param(ev.model, 2))
  if not r then return nil, err end
  return math.tointeger(tonumber(r.rows[1][1]))
end

--- Records many events in one transaction (all or none): the ids, or nil,
-- message.
function Register:record_all(events)
  local conn = live(self, "record_all")
  if type(events) ~= "table" then error("bad argument #1 to 'record_all' (list of events expected)", 2) end
  for _, ev in ipairs(events) do shared.check_event(ev) end
  local ids, failure = {}, nil
  local ok, err = pg.transaction(conn, function()
    for i, ev in ipairs(events) do
      local id, rerr = self:record(ev)
      if not id then
        failure = rerr
        return false
      end
      ids[i] = id
    end
    return true
  end)
  if failure then return nil, failure end
  if not ok then return nil, self.where .. ": " .. tostring(err) end
  return ids
end

local function num(v, null) return v ~= null and tonumber(v) or nil end

-- A bytea in text form ("\\x" and hex digits) as its bytes.
local function unhex(s)
  if not s then return nil end
  return (s:sub(3):gsub("%x%x", function(h) return string.char(tonumber(h, 16)) end))
end

local function event_of(row, null)
  local function v(i) return row[i] ~= null and row[i] or nil end
  local ev = {id = math.tointeger(tonumber(row[1])), time = math.tointeger(tonumber(row[2])), day = v(3), at = v(4),
              name = v(5), distance = num(row[6], null), threshold = num(row[7], null), photo = v(8),
              crop = v(14), model = v(15), reviewed = row[16] == "t"}
  if v(9) then
    ev.box = {x = num(row[9], null), y = num(row[10], null), width = num(row[11], null), height = num(row[12], null)}
  end
  ev.descriptor = shared.descriptor_list(unhex(v(13)))
  return ev
end

local COLUMNS = "id, time, day, at, name, distance, threshold, photo, box_x, box_y, box_width, box_height,"
  .. " descriptor, crop, model, reviewed"

--- First arrival per person per day (see siamese.app.attendance).
function Register:first_arrivals(day)
  live(self, "first_arrivals")
  shared.check_day("first_arrivals", day)
  -- `at` is local YYYY-MM-DD HH:MM:SS text, so min/max order it in time
  local r, err = exec(self, "select day, name, min(at) as first_at, max(at) as last_at, count(*)"
    .. " from siamese_attendance where name is not null" .. (day and " and day = $1" or "")
    .. " group by day, name order by day, first_at, name", table.unpack(day and {day} or {}))
  if not r then return nil, err end
  local out = {}
  for i, row in ipairs(r.rows) do
    out[i] = {day = row[1], name = row[2], first = row[3]:sub(12), last = row[4]:sub(12),
              count = math.tointeger(tonumber(row[5]))}
  end
  return out
end

--- Who came on a day (default today).
function Register:report(day)
  shared.check_day("report", day)
  return self:first_arrivals(day or os.date("%Y-%m-%d"))
end

--- Days with events, most recent first: {day, people, unknown}.
function Register:days()
  live(self, "days")
  local r, err = exec(self, "select day, count(distinct name), sum(case when name is null then 1 else 0 end)"
    .. " from siamese_attendance group by day order by day desc")
  if not r then return nil, err end
  local out = {}
  for i, row in ipairs(r.rows) do
    out[i] = {day = row[1], people = math.tointeger(tonumber(row[2])), unknown = math.tointeger(tonumber(row[3]))}
  end
  return out
end

--- Events, oldest first: opts.day, opts.name, opts.unknown (see
-- siamese.app.attendance).
function Register:events(opts)
  live(self, "events")
  opts = opts or {}
  shared.check_day("events", opts.day)
  local where, values = {}, {}
  if opts.day then
    values[#values + 1] = opts.day
    where[#where + 1] = "day = $" .. #values
  end
  if opts.name then
    values[#values + 1] = param(opts.name, 2)
    where[#where + 1] = "name = $" .. #values
  end
  if opts.unknown then where[#where + 1] = "name is null and not reviewed" end
  local r, err = exec(self, "select " .. COLUMNS .. " from siamese_attendance"
    .. (#where > 0 and " where " .. table.concat(where, " and ") or "") .. " order by time, id", table.unpack(values))
  if not r then return nil, err end
  local null, out = require("siamese.pq").null, {}
  for i, row in ipairs(r.rows) do out[i] = event_of(row, null) end
  return out
end

--- Unknown faces waiting for review (optionally of one day).
function Register:unknowns(day)
  return self:events{day = day, unknown = true}
end

--- Names an unknown face after review (name nil: dismissed). true, or
-- nil, message.
function Register:resolve(id, name)
  live(self, "resolve")
  shared.check_resolve(id, name)
  local r, err = exec(self, "update siamese_attendance set name = $1, reviewed = true where id = $2 and name is null",
    param(name, 2), id)
  if not r then return nil, err end
  if r.affected == 0 then return nil, string.format("no unknown face with id %d", id) end
  return true
end

return attendance_pg
