--- siamese identify: who is in these photos?
local args = require "siamese.app.cli.args"
local json = require "siamese.json"
local encoders = require "siamese.app.cli.encoders"
local galleries = require "siamese.app.cli.galleries"
local inputs = require "siamese.app.cli.inputs"
local output = require "siamese.app.cli.output"
local photo_options = require "siamese.app.cli.photo_options"

local identify = {
  summary = "name every face in photos (or unknown), with distances",
  usage = [[
usage: siamese identify --gallery FILE [options] PHOTO|DIR...]],
  description = [[
For every face found in each photo (a DIR stands for its image files),
the nearest enrolled identity and its distance; a face farther than the
threshold from everyone is "unknown". Only faces that pass the quality gate
(detected at score 0.5, at least 40 pixels, plausible landmarks) are named;
the others are listed with the reason they were not decided on.]],
  epilog = [[
exit status: 0 done (whether or not anyone was recognised), 2 error (an
unreadable photo is reported and the others still processed; missing or
damaged gallery).]],
}

local SPEC = {
  gallery = {kind = "string", arg = "FILE", help = "the gallery (siamese enroll creates it)"},
  k = {kind = "number", default = 3, arg = "N", help = "candidates listed per face (default 3)"},
  threshold = {kind = "number", arg = "T", help = "override the gallery's threshold"},
  model = photo_options.GALLERY_MODEL,
  models = photo_options.MODELS,
  fallback = photo_options.fallback("when no face is detected in a photo (default none: "
    .. "report no faces)"),
  json = {kind = "flag", default = false,
          help = 'print {"gallery", "threshold", "photos": [{"path", "faces": [{"accepted", "name" (null: '
            .. 'unknown or not decided), "distance", "threshold", "box", "score", "quality", "reason", '
            .. '"candidates": [{"name", "distance"}]}], "error"}]}'},
}
photo_options.merge(SPEC)
identify.spec = SPEC

--- The faces of one image identified through the door (siamese.door):
-- list of {accepted, name, distance, threshold, box, score, quality,
-- candidates, reason, face}. Shared with siamese attendance.
function identify.faces(d, img, opts)
  return d:identify(img, {k = opts and opts.k})
end

function identify.run(argv)
  local cli = require "siamese.app.cli"
  local opts, pos = args.parse(argv, SPEC)
  if not opts then return cli.fail(pos, identify.usage) end
  if not opts.gallery then return cli.fail("--gallery FILE is required", identify.usage) end
  if #pos == 0 then return cli.fail("no photo given", identify.usage) end
  if opts.k < 1 or math.type(opts.k) ~= "integer" then return cli.fail("--k must be a positive integer", identify.usage) end
  local photos, perr = inputs.photos(pos)
  if not photos then return cli.fail(perr) end
  local pok, perr = photo_options.apply(opts)
  if not pok then return cli.fail(perr, identify.usage) end
  local door = require "siamese.door"
  local g, err = galleries.load_gallery(opts.gallery)
  if not g then return cli.fail(err) end
  if opts.threshold then
    local ok, terr = door.check_threshold(opts.threshold, g:metric(), "--threshold")
    if not ok then return cli.fail(terr, identify.usage) end
  end
  local enc, eerr = encoders.encoder_for(g, opts)
  if not enc then return cli.fail(eerr) end
  local d, derr = door.new{gallery = g, encoder = enc, threshold = opts.threshold, k = opts.k}
  if not d then return cli.fail(derr) end
  local image = require "siamese.image"

  local results, failed = {}, false
  for _, path in ipairs(photos) do
    local entry = {path = path}
    local img, lerr = image.load(path)
    if not img then
      failed = true
      entry.error = lerr
      if not opts.json then io.stderr:write("siamese: ", lerr, "\n") end
    else
      local faces = identify.faces(d, img, {k = opts.k})
      local list = {}
      for i, r in ipairs(faces) do
        list[i] = output.decision_json(r)
        if not opts.json then
          local b = r.box
          local where = string.format("%s face %d at %.0f,%.0f %.0fx%.0f", path, i, b.x, b.y, b.width, b.height)
          if r.accepted then
            print(string.format("%s: %s (distance %.3f <= threshold %.3f)", where, r.name, r.distance, r.threshold))
          elseif r.distance then
            print(string.format("%s: unknown (nearest %s at %.3f > threshold %.3f)", where, r.candidates[1].name,
              r.distance, r.threshold))
          else
            print(string.format("%s: not decided: %s", where, r.reason))
          end
        end
      end
      if not opts.json and #faces == 0 then print(path .. ": no faces") end
      entry.faces = json.array(list)
    end
    results[#results + 1] = entry
  end
  if opts.json then
    print(json.encode{gallery = opts.gallery, threshold = output.number(d.threshold), photos = json.array(results)})
  end
  return failed and 2 or 0
end

return identify
