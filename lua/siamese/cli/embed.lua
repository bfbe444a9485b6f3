--- siamese embed: faces and 128-D descriptors of photos.
local args = require "siamese.cli.args"
local json = require "siamese.json"
local photo_options = require "siamese.cli.photo_options"

local embed = {
  summary = "detect, align and embed the faces of photos",
  usage = [[
usage: siamese embed [--align dlib|similarity|faceapi] [--detector tiny|ssd]
                     [--landmarks tiny|full] [--score-threshold S]
                     [--threads N] [--max-pixels N] [--json] PHOTO...

Detects the faces in each photo (face-api's tiny detector, or with
--detector ssd its SSD MobileNet v1, slower and more sensitive), finds their 68
landmarks, aligns them and computes 128-D descriptors (compare with
euclidean distance). --json prints
  {"images": [{"path", "width", "height", "faces": [{"box": {"x","y","width","height"},
   "score", "landmarks": [[x, y], ...], "descriptor": [...]}]}]}
A photo that cannot be read is reported (with "error" in JSON) and the exit
code is 2; the other photos are still processed.

options:
  --align dlib|similarity|faceapi  the chip the descriptor is computed on
                       (default dlib)
  --landmarks tiny|full  the landmark net (default tiny)
  --score-threshold S  the detector's score threshold (0 < S < 1, default 0.5)
]] .. photo_options.USAGE .. [[

  --json               print the JSON document above]],
}

local SPEC = {
  json = {kind = "flag", default = false},
  align = {kind = "string", default = "dlib", choices = {"dlib", "similarity", "faceapi"}},
  landmarks = {kind = "string", default = "tiny", choices = {"tiny", "full"}},
  score_threshold = {kind = "number", default = 0.5},
  models = {kind = "string"},
}
photo_options.merge(SPEC)

local function face_json(f)
  local pts = {}
  for i, p in ipairs(f.landmarks) do pts[i] = json.array{p[1], p[2]} end
  return {
    box = {x = f.box.x, y = f.box.y, width = f.box.width, height = f.box.height},
    score = f.score,
    landmarks = json.array(pts),
    descriptor = json.array(f.descriptor:totable()),
  }
end

function embed.run(argv)
  local cli = require "siamese.cli"
  local opts, photos = args.parse(argv, SPEC)
  if not opts then return cli.fail(photos, embed.usage) end
  if #photos == 0 then return cli.fail("no photo given", embed.usage) end
  if not (opts.score_threshold > 0 and opts.score_threshold < 1) then
    return cli.fail("--score-threshold must be between 0 and 1, got " .. tostring(opts.score_threshold), embed.usage)
  end
  local pok, perr = photo_options.apply(opts)
  if not pok then return cli.fail(perr, embed.usage) end
  local siamese = require "siamese"
  local fr, ferr = siamese.face.load{align = opts.align, detector = opts.detector, landmarks = opts.landmarks,
                                     score_threshold = opts.score_threshold, models_dir = opts.models}
  if not fr then return cli.fail(ferr) end
  local images, failed = {}, false
  for _, path in ipairs(photos) do
    local img, err = siamese.image.load(path)
    local entry = {path = path}
    if not img then
      failed = true
      entry.error = err
      if not opts.json then io.stderr:write("siamese: ", err, "\n") end
    else
      entry.width, entry.height = img.width, img.height
      local faces = fr:embed_all(img)
      local list = {}
      for i, f in ipairs(faces) do list[i] = face_json(f) end
      entry.faces = json.array(list)
      if not opts.json then
        print(string.format("%s: %dx%d, %d face%s", path, img.width, img.height, #faces, #faces == 1 and "" or "s"))
        for i, f in ipairs(faces) do
          local d = f.descriptor
          print(string.format("  face %d: box %.1f,%.1f %.1fx%.1f score %.3f descriptor |d| %.3f [%.4f %.4f %.4f ...]",
            i, f.box.x, f.box.y, f.box.width, f.box.height, f.score, d:norm(), d:get(1), d:get(2), d:get(3)))
        end
      end
    end
    images[#images + 1] = entry
  end
  if opts.json then print(json.encode{images = json.array(images)}) end
  return failed and 2 or 0
end

return embed
