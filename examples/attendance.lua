-- The attendance system: every face the camera sees is identified against
-- the gallery and recorded in an SQLite register (siamese.attendance);
-- then the day's first arrivals are listed.
--
-- usage: lua5.4 examples/attendance.lua [GALLERY DB PHOTO...]
-- (default: build/faces.gallery from examples/enroll.lua, build/attendance.db,
-- the third photo of each person of examples/data/faces and a group photo).
local siamese = require "siamese"
local attendance = require "siamese.attendance"

local here = arg[0]:match("^(.*)/") or "."
local gallery_path, db_path = arg[1] or "build/faces.gallery", arg[2] or "build/attendance.db"
local photos = {table.unpack(arg, 3)}
if #photos == 0 then
  for _, name in ipairs{"Tony_Blair", "Serena_Williams", "Colin_Powell"} do
    photos[#photos + 1] = string.format("%s/data/faces/%s/%s_0003.jpg", here, name, name)
  end
end

local g = assert(siamese.gallery.load(gallery_path))
local fr = assert(siamese.face.load())
local db <close> = assert(attendance.open(db_path))

for _, photo in ipairs(photos) do
  local img = assert(siamese.image.load(photo))
  for _, face in ipairs(fr:embed_all(img)) do
    -- name is nil for a face farther than the threshold from everybody
    local name, distance = g:identify(face.descriptor, {k = 1}, fr.model_id)
    assert(db:record{name = name, distance = distance, threshold = g:threshold(), photo = photo,
                     box = face.box, descriptor = face.descriptor, model = fr.model_id})
    print(string.format("%s: %s (%.3f)", photo, name or "unknown, kept for review", distance or 0 / 0))
  end
end

local today = os.date("%Y-%m-%d")
print("first arrivals on " .. today .. ":")
for _, r in ipairs(assert(db:report(today))) do
  print(string.format("  %s %s (%d sighting%s)", r.first, r.name, r.count, r.count == 1 and "" or "s"))
end
print(#assert(db:unknowns(today)) .. " unknown face(s) to review")
