-- The office door: a visitor claims a name and shows their face; the door
-- opens when the face is close enough to that person's templates.
--
-- usage: lua5.4 examples/door.lua [GALLERY NAME PHOTO]
-- (default: build/faces.gallery from examples/enroll.lua, Tony Blair's
-- second photo claiming to be Tony_Blair). Exit status 0 open, 1 closed.
local siamese = require "siamese"

local here = arg[0]:match("^(.*)/") or "."
local gallery_path = arg[1] or "build/faces.gallery"
local claim = arg[2] or "Tony_Blair"
local photo = arg[3] or here .. "/data/faces/Tony_Blair/Tony_Blair_0002.jpg"

local g = assert(siamese.gallery.load(gallery_path))
local fr = assert(siamese.face.load())
local img = assert(siamese.image.load(photo))

local face = fr:main_face(img, {fallback = "threshold"})
if not face then
  print("go away: I cannot see your face")
  os.exit(1)
end
local accepted, distance, threshold = g:verify(claim, fr:embed(fr:align(img, face)), fr.model_id)
if accepted == nil then
  print("go away: " .. distance) -- unknown identity
  os.exit(1)
end
if accepted then
  print(string.format("welcome, %s (distance %.3f <= %.3f)", claim, distance, threshold))
else
  print(string.format("go away, you are not %s (distance %.3f > %.3f)", claim, distance, threshold))
end
os.exit(accepted and 0 or 1)
