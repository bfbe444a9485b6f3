-- Enroll people in a gallery file with the pretrained face pipeline: the
-- main face of each photo becomes one template of the person.
--
-- usage: lua5.4 examples/enroll.lua [GALLERY NAME PHOTO...]
-- Without arguments it enrolls the first photo of each person of
-- examples/data/faces into build/faces.gallery.
local siamese = require "siamese"

local here = arg[0]:match("^(.*)/") or "."
local gallery_path = arg[1] or "build/faces.gallery"
local jobs = {} -- {name, photo}
if #arg >= 3 then
  for i = 3, #arg do jobs[#jobs + 1] = {arg[2], arg[i]} end
elseif #arg == 0 then
  for _, name in ipairs{"Colin_Powell", "Gloria_Macapagal_Arroyo", "Junichiro_Koizumi", "Serena_Williams", "Tony_Blair"} do
    jobs[#jobs + 1] = {name, string.format("%s/data/faces/%s/%s_0001.jpg", here, name, name)}
  end
else
  io.stderr:write("usage: lua5.4 examples/enroll.lua [GALLERY NAME PHOTO...]\n")
  os.exit(2)
end

local fr = assert(siamese.face.load())
-- An existing gallery must come from the same model; a new one starts
-- with the face model's usual threshold (siamese calibrate measures one).
local g, err = siamese.gallery.load(gallery_path)
if not g then
  if io.open(gallery_path) then error(err) end
  g = siamese.gallery.new{dim = fr.dim, metric = "euclidean", threshold = 0.6, model = fr.model_id}
end

for _, job in ipairs(jobs) do
  local name, photo = job[1], job[2]
  local img = assert(siamese.image.load(photo))
  local face = fr:main_face(img, {fallback = "threshold"})
  if face then
    local descriptor = fr:embed(fr:align(img, face))
    local n = g:add(name, descriptor, fr.model_id)
    print(string.format("%s: %s now has %d template%s", photo, name, n, n == 1 and "" or "s"))
  else
    print(photo .. ": no face found, not enrolled")
  end
end
os.execute("mkdir -p \"$(dirname '" .. gallery_path .. "')\"")
assert(g:save(gallery_path))
print(string.format("%s: %d people, %d templates", gallery_path, g:count(), g:size()))
