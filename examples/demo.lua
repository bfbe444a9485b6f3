-- make demo: one-shot face recognition on the bundled photos
-- (examples/data/faces: 5 people x 5 LFW photos) with the pretrained
-- pipeline: MTCNN finds each face and its five points, the points align
-- it onto ArcFace's 112x112 chip, MobileFaceNet gives a unit 192-D
-- descriptor, compared by cosine distance (PIPELINE=faceapi: face-api's
-- tiny detector, 68 landmarks, 128-D descriptor, euclidean distance).
--
-- Photo 1 of each person is enrolled; every other photo is identified
-- (nearest enrolled descriptor, "unknown" past the threshold) and every
-- pair of photos is verified. Prints a table and writes
-- build/demo/faces.png: each photo with its box, landmarks and the name
-- it was given (blue enrolled, green right, red wrong).
--
-- usage: lua5.4 examples/demo.lua [DATA_DIR] [OUT_DIR] [THRESHOLD]
--   (THRESHOLD: default the door's for the pipeline, siamese.door.DEFAULT_THRESHOLDS)
local siamese = require "siamese"
local eval, viz = siamese.eval, siamese.viz

local root = arg[1] or "examples/data/faces"
local out_dir = arg[2] or "build/demo"
local pipeline = os.getenv("PIPELINE") or siamese.face.DEFAULT_MODEL

-- The entries of a directory in name order (no shell: siamese.fs, lfs).
local function list(dir)
  local names = assert(require("siamese.fs").list_dir(dir))
  local visible = {}
  for _, n in ipairs(names) do if n:sub(1, 1) ~= "." then visible[#visible + 1] = n end end
  return visible
end

local fr = assert(siamese.face.load{model = pipeline})
local metric = fr.metric or "euclidean"
local threshold = tonumber(arg[3]) or siamese.door.default_threshold(fr.model_id, metric)
local start = siamese.clock()
local people, photos = list(root), {}
for k, name in ipairs(people) do
  for _, file in ipairs(list(root .. "/" .. name)) do
    local img = assert(siamese.image.load(root .. "/" .. name .. "/" .. file))
    -- the face nearest the centre, retrying at a low detection threshold
    local f = fr:main_face(img, {fallback = "threshold"})
    if f then f.descriptor = fr:embed(fr:align(img, f)) end
    photos[#photos + 1] = {person = k, file = file, image = img, face = f}
  end
end

-- Enroll the first photo of each person.
local gallery = {}
for _, p in ipairs(photos) do
  if not gallery[p.person] and p.face then gallery[p.person] = p.face.descriptor; p.enrolled = true end
end

local function distance(a, b) return siamese.door.distance(a, b, metric) end

print(string.format("siamese demo: %d people, %d photos, pretrained %s pipeline, %s distance, threshold %.3f",
  #people, #photos, pipeline, metric, threshold))
print("")
print(string.format("%-34s %-24s %-24s %s", "photo", "person", "identified as", "distance"))
local right, asked = 0, 0
for _, p in ipairs(photos) do
  if not p.enrolled then
    local name, best = "no face", nil
    if p.face then
      local who
      for k, d in pairs(gallery) do
        local dist = distance(p.face.descriptor, d)
        if not best or dist < best then best, who = dist, k end
      end
      name = best <= threshold and people[who] or "unknown"
    end
    p.given, p.distance = name, best
    p.ok = name == people[p.person]
    asked = asked + 1
    if p.ok then right = right + 1 end
    print(string.format("%-34s %-24s %-24s %s", p.file, people[p.person], name, best and string.format("%.3f", best) or "-"))
  end
end

-- Every pair of photos with a face: same person or not.
local d, same = {}, {}
for i = 1, #photos do
  for j = i + 1, #photos do
    if photos[i].face and photos[j].face then
      d[#d + 1] = distance(photos[i].face.descriptor, photos[j].face.descriptor)
      same[#same + 1] = photos[i].person == photos[j].person
    end
  end
end
local roc = eval.roc(d, same)
local eer = eval.eer(roc)
print("")
print(string.format("identification (1 enrolled photo each): %d / %d right (%.1f %%)", right, asked, 100 * right / asked))
print(string.format("verification over %d pairs: accuracy %.1f %% at %.3f, AUC %.4f, EER %.1f %%",
  #d, 100 * eval.accuracy(d, same, threshold), threshold, eval.auc(roc), 100 * eer))

-- Annotated photos.
local tiles = {}
for _, p in ipairs(photos) do
  local img = p.image:to_rgb()
  if p.face then
    local colour = p.enrolled and {60, 140, 255} or (p.ok and {40, 200, 60} or {230, 40, 40})
    viz.draw_box(img, p.face.box, colour, 2)
    viz.draw_points(img, p.face.landmarks or p.face.points5, {255, 220, 0}) -- 68 landmarks, or five points (mobilefacenet)
    local label = p.enrolled and people[p.person] or p.given
    viz.draw_text(img, 4, img.height - 12, label:gsub("_", " "):sub(1, 20), colour, 1)
  end
  tiles[#tiles + 1] = img
end
assert(require("siamese.fs").mkdir_p(out_dir))
local path = out_dir .. "/faces.png"
assert(viz.montage(tiles, {columns = 5, border = 2}):save(path))
print(string.format("wrote %s (blue: enrolled, green: right, red: wrong); %.1f s", path, siamese.clock() - start))
