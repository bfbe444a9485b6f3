-- Enroll people in a gallery file with the pretrained face pipeline: the
-- main face of each photo becomes one template of the person, when it
-- passes the door's quality gate and the door's enrolment checks (not the
-- same photo twice, not a look-alike of someone else: siamese.door).
--
-- usage: lua5.4 examples/enroll.lua [GALLERY NAME PHOTO...]
-- Without arguments it enrolls one photo of each person of
-- examples/data/faces into build/faces.gallery.
local siamese = require "siamese"

local here = arg[0]:match("^(.*)/") or "."
local gallery_path = arg[1] or "build/faces.gallery"
local jobs = {} -- {name, photo}
if #arg >= 3 then
  for i = 3, #arg do jobs[#jobs + 1] = {arg[2], arg[i]} end
elseif #arg == 0 then
  -- the first photo of each person in which the detector finds the face at its normal score
  for _, job in ipairs{{"Colin_Powell", 3}, {"Gloria_Macapagal_Arroyo", 1}, {"Junichiro_Koizumi", 1},
                       {"Serena_Williams", 1}, {"Tony_Blair", 1}} do
    jobs[#jobs + 1] = {job[1], string.format("%s/data/faces/%s/%s_%04d.jpg", here, job[1], job[1], job[2])}
  end
else
  io.stderr:write("usage: lua5.4 examples/enroll.lua [GALLERY NAME PHOTO...]\n")
  os.exit(2)
end

local enc = assert(siamese.door.encoder{})
-- An existing gallery must come from the same model; a new one starts
-- with the face model's default threshold (siamese calibrate measures one).
local g, err = siamese.gallery.load(gallery_path)
if not g then
  if io.open(gallery_path) then error(err) end
  g = siamese.gallery.new{dim = enc.dim, metric = "euclidean", model = enc.model_id,
                          threshold = siamese.door.default_threshold(enc.model_id, "euclidean")}
end
local door = assert(siamese.door.new{gallery = g, encoder = enc})

for _, job in ipairs(jobs) do
  local name, photo = job[1], job[2]
  local img = assert(siamese.image.load(photo))
  local face = enc.main(img)
  if not face or not face.quality.ok then
    print(photo .. ": not enrolled: " .. (face and face.quality.reason or enc.no_face))
  else
    local ok, why = door:check_enrolment(name, face.descriptor, g:has(name) and "add" or "new")
    if ok then
      local n = g:add(name, face.descriptor, enc.model_id)
      print(string.format("%s: %s now has %d template%s", photo, name, n, n == 1 and "" or "s"))
    else
      print(photo .. ": not enrolled: " .. why)
    end
  end
end
local dir = gallery_path:match("^(.*)/[^/]*$")
if dir then assert(require("siamese.fs").mkdir_p(dir)) end
assert(g:save(gallery_path))
print(string.format("%s: %d people, %d templates", gallery_path, g:count(), g:size()))
