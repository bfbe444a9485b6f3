--- siamese.app.cli.inputs: what the commands read besides their options:
-- photo lists (files as given, folders replaced by their images), folder
-- datasets (one sub-folder per person) and times given on the command line.
local inputs = {}

-- Sorted entries of a directory: names, is_dir (or nil, message).
local list_dir = require("siamese.fs").list_dir

local IMAGE_EXT = {jpg = true, jpeg = true, png = true, pgm = true, ppm = true, pnm = true}

--- True when a file can be opened for reading.
function inputs.exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

local function is_image(name)
  local ext = name:match("%.(%w+)$")
  return ext ~= nil and IMAGE_EXT[ext:lower()] == true and name:sub(1, 1) ~= "."
end

--- Photos of the arguments: files as given, directories replaced by their
-- image files (name order, not recursive). Returns the list, or nil,
-- message (a directory that cannot be read).
function inputs.photos(args_)
  local out = {}
  for _, a in ipairs(args_) do
    local names, is_dir = list_dir(a)
    if names then
      for i, name in ipairs(names) do
        if not is_dir[i] and is_image(name) then out[#out + 1] = a .. "/" .. name end
      end
    else
      out[#out + 1] = a
    end
  end
  return out
end

--- A folder dataset: one sub-folder per person with one or more photos.
-- Returns a list of {name, photos = {paths}} in name order, or nil, message.
function inputs.people(dir)
  local names, is_dir = list_dir(dir)
  if not names then return nil, tostring(is_dir) end
  local people = {}
  for i, name in ipairs(names) do
    if is_dir[i] and name:sub(1, 1) ~= "." then
      local files, fdir = list_dir(dir .. "/" .. name)
      if not files then return nil, tostring(fdir) end
      local photos = {}
      for k, f in ipairs(files) do
        if not fdir[k] and is_image(f) then photos[#photos + 1] = dir .. "/" .. name .. "/" .. f end
      end
      if #photos > 0 then people[#people + 1] = {name = name, photos = photos} end
    end
  end
  if #people == 0 then return nil, dir .. ": no sub-folders with photos (expected one folder per person)" end
  return people
end

-- Days in a month of a year (Gregorian).
local function month_days(y, m)
  if m == 2 then return (y % 4 == 0 and (y % 100 ~= 0 or y % 400 == 0)) and 29 or 28 end
  return (m == 4 or m == 6 or m == 9 or m == 11) and 30 or 31
end

--- Seconds since the epoch of "YYYY-MM-DD HH:MM" or "YYYY-MM-DD HH:MM:SS"
-- (a "T" may stand for the space; local time), or nil when the text is not
-- such a time or names none (2026-02-30, 24:00, 08:60). Command-line
-- values (attendance --time, watch --start) go through it.
function inputs.parse_time(s)
  if type(s) ~= "string" then return nil end
  local y, mo, d, h, mi, rest = s:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)[T ](%d%d):(%d%d)(.*)$")
  if not y then return nil end
  local sec = "0"
  if rest ~= "" then
    sec = rest:match("^:(%d%d)$")
    if not sec then return nil end
  end
  local t = {year = tonumber(y), month = tonumber(mo), day = tonumber(d), hour = tonumber(h),
             min = tonumber(mi), sec = tonumber(sec)}
  if t.month < 1 or t.month > 12 or t.day < 1 or t.day > month_days(t.year, t.month) or t.hour > 23
     or t.min > 59 or t.sec > 59 then
    return nil
  end
  return os.time(t)
end

return inputs
