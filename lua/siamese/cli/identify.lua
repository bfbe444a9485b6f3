--- siamese identify: who is in these photos?
local args = require "siamese.cli.args"
local json = require "siamese.json"
local common = require "siamese.cli.common"

local identify = {
  summary = "name every face in photos (or unknown), with distances",
  usage = [[
usage: siamese identify --gallery FILE [options] PHOTO|DIR...

For every face found in each photo (a DIR stands for its image files),
the nearest enrolled identity and its distance; a face farther than the
threshold from everyone is "unknown".

options:
  --gallery FILE       the gallery (siamese enroll creates it)
  --k N                candidates listed per face (default 3)
  --threshold T        override the gallery's threshold
  --model NAME|PATH    the encoder, when not the one the gallery names
  --fallback none|threshold|centre  when no face is detected in a photo
                       (default none: report no faces)
  --json               print {"gallery", "threshold", "photos": [{"path",
                       "faces": [{"box", "name" (null: unknown), "distance",
                       "candidates": [{"name", "distance"}]}], "error"}]}

exit status: 0 done (whether or not anyone was recognised), 2 error (an
unreadable photo is reported and the others still processed; missing or
damaged gallery).]],
}

local SPEC = {
  gallery = {kind = "string"},
  k = {kind = "number", default = 3},
  threshold = {kind = "number"},
  model = {kind = "string"},
  models = {kind = "string"},
  fallback = {kind = "string", default = "none", choices = {"none", "threshold", "centre"}},
  json = {kind = "flag", default = false},
}

--- The faces of one image identified: list of {box, name, distance,
-- candidates, face}. Shared with siamese attendance.
function identify.faces(g, enc, img, opts)
  local out = {}
  for _, f in ipairs(enc.faces(img)) do
    local name, distance, candidates = g:identify(f.descriptor, {k = opts.k, threshold = opts.threshold}, enc.model_id)
    out[#out + 1] = {box = common.box(f.box), name = name, distance = distance, candidates = candidates, face = f}
  end
  return out
end

function identify.run(argv)
  local cli = require "siamese.cli"
  local opts, pos = args.parse(argv, SPEC)
  if not opts then return cli.fail(pos, identify.usage) end
  if not opts.gallery then return cli.fail("--gallery FILE is required", identify.usage) end
  if #pos == 0 then return cli.fail("no photo given", identify.usage) end
  if opts.k < 1 or math.type(opts.k) ~= "integer" then return cli.fail("--k must be a positive integer", identify.usage) end
  local photos, perr = common.photos(pos)
  if not photos then return cli.fail(perr) end
  local g, err = common.load_gallery(opts.gallery)
  if not g then return cli.fail(err) end
  local enc, eerr = common.encoder_for(g, opts)
  if not enc then return cli.fail(eerr) end
  local image = require "siamese.image"
  local threshold = opts.threshold or g:threshold()

  local results, failed = {}, false
  for _, path in ipairs(photos) do
    local entry = {path = path}
    local img, lerr = image.load(path)
    if not img then
      failed = true
      entry.error = lerr
      if not opts.json then io.stderr:write("siamese: ", lerr, "\n") end
    else
      local faces = identify.faces(g, enc, img, {k = opts.k, threshold = threshold})
      local list = {}
      for i, r in ipairs(faces) do
        local cands = {}
        for k, c in ipairs(r.candidates or {}) do cands[k] = {name = c.name, distance = c.distance} end
        list[i] = {box = r.box, name = r.name or json.null, distance = r.distance or json.null,
                   candidates = json.array(cands)}
        if not opts.json then
          local where = string.format("%s face %d at %.0f,%.0f %.0fx%.0f", path, i, r.box.x, r.box.y, r.box.width, r.box.height)
          if r.name then
            print(string.format("%s: %s (distance %.3f)", where, r.name, r.distance))
          elseif r.distance then
            print(string.format("%s: unknown (nearest %s at %.3f > %.3f)", where, r.candidates[1].name, r.distance, threshold))
          else
            print(string.format("%s: unknown (empty gallery)", where))
          end
        end
      end
      if not opts.json and #faces == 0 then print(path .. ": no faces") end
      entry.faces = json.array(list)
    end
    results[#results + 1] = entry
  end
  if opts.json then
    print(json.encode{gallery = opts.gallery, threshold = threshold, photos = json.array(results)})
  end
  return failed and 2 or 0
end

return identify
