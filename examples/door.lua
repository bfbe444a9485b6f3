-- The office door: a visitor claims a name and shows their face; the door
-- opens when the face passes the quality gate (a real face, detected at
-- the normal score, large enough, landmarks that fit) and is close enough
-- to that person's templates. When in doubt it stays shut and says why.
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
local img = assert(siamese.image.load(photo))
local door = assert(siamese.door.new{gallery = g, encoder = assert(siamese.door.encoder{})})

local r, err = door:verify(claim, img)
if not r then
  print("go away: " .. err) -- unknown identity
  os.exit(1)
end
if r.accepted then
  print(string.format("welcome, %s (distance %.3f <= %.3f)", claim, r.distance, r.threshold))
elseif r.distance then
  print(string.format("go away, you are not %s (distance %.3f > %.3f)", claim, r.distance, r.threshold))
else
  print("go away: " .. r.reason) -- no face that passes the quality gate
end
os.exit(r.accepted and 0 or 1)
