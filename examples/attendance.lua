-- The attendance system: every face the camera sees that passes the door's
-- quality gate is identified against the gallery (siamese.door) and
-- recorded in an SQLite register (siamese.app.attendance); then the day's
-- first arrivals are listed.
--
-- usage: lua5.4 examples/attendance.lua [GALLERY DB PHOTO...]
-- (default: build/faces.gallery from examples/enroll.lua, build/attendance.db,
-- a photo of three of the people of examples/data/faces, not the enrolled ones).
local siamese = require "siamese"
local attendance = require "siamese.app.attendance"

local here = arg[0]:match("^(.*)/") or "."
local gallery_path, db_path = arg[1] or "build/faces.gallery", arg[2] or "build/attendance.db"
local photos = {table.unpack(arg, 3)}
if #photos == 0 then
  for _, p in ipairs{{"Tony_Blair", 3}, {"Serena_Williams", 3}, {"Colin_Powell", 5}} do
    photos[#photos + 1] = string.format("%s/data/faces/%s/%s_%04d.jpg", here, p[1], p[1], p[2])
  end
end

local g = assert(siamese.gallery.load(gallery_path))
local door = assert(siamese.door.new{gallery = g, encoder = assert(siamese.door.encoder{}), k = 1})
local db <close> = assert(attendance.open(db_path))

for _, photo in ipairs(photos) do
  local img = assert(siamese.image.load(photo))
  for _, r in ipairs(door:identify(img)) do
    if not r.quality.ok then
      print(string.format("%s: face not recorded: %s", photo, r.reason))
    else
      -- name is nil for a face farther than the threshold from everybody
      assert(db:record{name = r.name, distance = r.distance, threshold = r.threshold, photo = photo,
                       box = r.box, descriptor = r.face.descriptor, model = g:model()})
      print(string.format("%s: %s (%.3f)", photo, r.name or "unknown, kept for review", r.distance))
    end
  end
end

local today = os.date("%Y-%m-%d")
print("first arrivals on " .. today .. ":")
for _, r in ipairs(assert(db:report(today))) do
  print(string.format("  %s %s (%d sighting%s)", r.first, r.name, r.count, r.count == 1 and "" or "s"))
end
print(#assert(db:unknowns(today)) .. " unknown face(s) to review")
