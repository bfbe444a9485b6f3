--- siamese.app.attendance_events: what the two attendance registers share
-- (siamese.app.attendance on SQLite, siamese.app.attendance_pg on PostgreSQL): the
-- checks of their methods' arguments, which raise as the method would
-- (blaming the method's caller), and the byte form of an unknown face's
-- descriptor.
local events = {}

--- The descriptor as float32 little-endian bytes (from a Tensor or a list).
function events.descriptor_bytes(d)
  if d == nil then return nil end
  local list = type(d) == "table" and d or d:totable()
  local parts = {}
  for i, v in ipairs(list) do parts[i] = string.pack("<f", v) end
  return table.concat(parts)
end

--- The descriptor from its bytes: a list of numbers, or nil for no bytes
-- or a length that is not a multiple of 4.
function events.descriptor_list(bytes)
  if type(bytes) ~= "string" or #bytes == 0 or #bytes % 4 ~= 0 then return nil end
  local out = {}
  for i = 1, #bytes, 4 do out[#out + 1] = string.unpack("<f", bytes, i) end
  return out
end

--- Raises as record would unless ev is an event table.
function events.check_event(ev)
  if type(ev) ~= "table" then error("bad argument #1 to 'record' (event table expected, got " .. type(ev) .. ")", 3) end
  if ev.name ~= nil and (type(ev.name) ~= "string" or ev.name == "") then
    error("bad argument #1 to 'record' (name must be a non-empty string or nil)", 3)
  end
  if ev.time ~= nil and math.type(ev.time) ~= "integer" then
    error("bad argument #1 to 'record' (time must be integer seconds since the epoch, got " .. tostring(ev.time) .. ")", 3)
  end
  for _, k in ipairs{"distance", "threshold"} do
    if ev[k] ~= nil and type(ev[k]) ~= "number" then
      error("bad argument #1 to 'record' (" .. k .. " must be a number)", 3)
    end
  end
  if ev.box ~= nil and type(ev.box) ~= "table" then
    error("bad argument #1 to 'record' (box must be a table {x, y, width, height})", 3)
  end
end

--- Raises as the method fname would unless day is nil or YYYY-MM-DD.
function events.check_day(fname, day)
  if day ~= nil and (type(day) ~= "string" or not day:match("^%d%d%d%d%-%d%d%-%d%d$")) then
    error("bad argument #1 to '" .. fname .. "' (day must be 'YYYY-MM-DD', got " .. tostring(day) .. ")", 3)
  end
end

--- Raises (naming resolve's argument) unless id is an integer and name a
-- non-empty string or nil.
function events.check_resolve(id, name)
  if math.type(id) ~= "integer" then error("bad argument #1 to 'resolve' (integer event id expected)", 3) end
  if name ~= nil and (type(name) ~= "string" or name == "") then
    error("bad argument #2 to 'resolve' (name must be a non-empty string or nil)", 3)
  end
end

return events
