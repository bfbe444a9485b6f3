--- siamese embed: faces and descriptors of photos (192-D with the default
-- mobilefacenet pipeline, 128-D with faceapi).
local args = require "siamese.app.cli.args"
local json = require "siamese.json"
local photo_options = require "siamese.app.cli.photo_options"

local embed = {
  summary = "detect, align and embed the faces of photos",
  usage = [[
usage: siamese embed [--pipeline mobilefacenet|faceapi]
                     [--align dlib|similarity|faceapi] [--detector tiny|ssd]
                     [--landmarks tiny|full] [--score-threshold S]
                     [--min-face N] [--threads N] [--max-pixels N] [--json]
                     PHOTO...]],
  description = [[
Detects the faces in each photo with MTCNN (--min-face N pixels, default
20) and their five points (eyes, nose, mouth corners), aligns them to
ArcFace's 112x112 chip and computes MobileFaceNet's unit-length 192-D
descriptors (compare with cosine distance). --json prints
  {"images": [{"path", "width", "height", "faces": [{"box": {"x","y","width","height"},
   "score", "points5": [[x, y], ...5], "descriptor": [...]}]}]}
With --pipeline faceapi: face-api's tiny detector (or with --detector ssd
its SSD MobileNet v1, slower and more sensitive), 68 landmarks ("landmarks"
instead of "points5" in JSON) and 128-D descriptors (compare with euclidean
distance); --align, --landmarks, --score-threshold and --detector are its
options.
A photo that cannot be read is reported (with "error" in JSON) and the exit
code is 2; the other photos are still processed.]],
}

local SPEC = {
  json = {kind = "flag", default = false, help = "print the JSON document above"},
  align = {kind = "string", choices = {"dlib", "similarity", "faceapi"},
           arg = "dlib|similarity|faceapi", help = "faceapi: the chip the descriptor is computed on "
             .. "(default dlib)"},
  landmarks = {kind = "string", choices = {"tiny", "full"},
               arg = "tiny|full", help = "faceapi: the landmark net (default tiny)"},
  score_threshold = {kind = "number",
                     arg = "S", help = "faceapi: the detector's score threshold (0 < S < 1, default 0.5)"},
  models = photo_options.MODELS,
}
photo_options.merge(SPEC)
embed.spec = SPEC

-- A list of {x, y} points as JSON.
local function points_json(points)
  local pts = {}
  for i, p in ipairs(points) do pts[i] = json.array{p[1], p[2]} end
  return json.array(pts)
end

-- A face as JSON: its 68 landmarks (faceapi) or its five points (mobilefacenet).
local function face_json(f)
  return {
    box = {x = f.box.x, y = f.box.y, width = f.box.width, height = f.box.height},
    score = f.score,
    landmarks = f.landmarks and points_json(f.landmarks) or nil,
    points5 = not f.landmarks and f.points5 and points_json(f.points5) or nil,
    descriptor = json.array(f.descriptor:totable()),
  }
end

function embed.run(argv)
  local cli = require "siamese.app.cli"
  local opts, photos = args.parse(argv, SPEC)
  if not opts then return cli.fail(photos, embed.usage) end
  if #photos == 0 then return cli.fail("no photo given", embed.usage) end
  if opts.score_threshold ~= nil and not (opts.score_threshold > 0 and opts.score_threshold < 1) then
    return cli.fail("--score-threshold must be between 0 and 1, got " .. tostring(opts.score_threshold), embed.usage)
  end
  local pok, perr = photo_options.apply(opts)
  if not pok then return cli.fail(perr, embed.usage) end
  local siamese = require "siamese"
  local fr, ferr
  if opts.pipeline == "mobilefacenet" then
    for _, k in ipairs{"align", "landmarks", "score_threshold"} do
      if opts[k] ~= nil then
        return cli.fail("--" .. k:gsub("_", "-") .. " is for --pipeline faceapi", embed.usage)
      end
    end
    fr, ferr = siamese.face.load{model = "mobilefacenet", min_face = opts.min_face, models_dir = opts.models}
  else
    fr, ferr = siamese.face.load{model = "faceapi", align = opts.align or "dlib", detector = opts.detector,
                                 landmarks = opts.landmarks or "tiny", score_threshold = opts.score_threshold or 0.5,
                                 models_dir = opts.models}
  end
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
          -- the faceapi line is unchanged; mobilefacenet's names the size and lists the five points
          local size = f.landmarks and "" or string.format("%d-D ", d:size(1))
          print(string.format(
            "  face %d: box %.1f,%.1f %.1fx%.1f score %.3f descriptor %s|d| %.3f [%.4f %.4f %.4f ...]", i,
            f.box.x, f.box.y, f.box.width, f.box.height, f.score, size, d:norm(), d:get(1), d:get(2), d:get(3)))
          if not f.landmarks and f.points5 then
            local pts = {}
            for k, p in ipairs(f.points5) do pts[k] = string.format("%.1f,%.1f", p[1], p[2]) end
            print("    points5 " .. table.concat(pts, " ") .. " (eyes, nose, mouth corners)")
          end
        end
      end
    end
    images[#images + 1] = entry
  end
  if opts.json then print(json.encode{images = json.array(images)}) end
  return failed and 2 or 0
end

return embed
