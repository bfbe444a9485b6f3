--- siamese compare: are the main faces of two photos the same person? No
-- gallery: each photo's main face goes through the encoder (siamese.door,
-- with its quality gate) and the two descriptors are compared.
local args = require "siamese.app.cli.args"
local json = require "siamese.json"
local encoders = require "siamese.app.cli.encoders"
local output = require "siamese.app.cli.output"
local photo_options = require "siamese.app.cli.photo_options"

local compare = {
  summary = "are two photos the same person? (exit 0 same, 1 different)",
  usage = [[
usage: siamese compare [options] PHOTO1 PHOTO2]],
  description = [[
Compares the main face of PHOTO1 with the main face of PHOTO2 (in each,
the detection nearest the centre): "same person" when their distance is at
most the threshold. Prints "same person (cosine distance 0.296 <=
threshold 0.549)" or "different people (cosine distance 0.913 > threshold
0.549)"; the euclidean metric is not named ("distance 0.412").

Both faces must be real faces (the quality gate of verify: detected at
score 0.5, at least 40 pixels, landmarks in a plausible geometry);
otherwise nothing is decided and the reason is printed, naming the photo
("PHOTO2: no face at score >= 0.5").]],
  epilog = [[
exit status: 0 same person, 1 different people or no decision (a photo
without a face that passes the gate), 2 error (usage, unreadable photo).]],
}

local SPEC = {
  model = {kind = "string",
           arg = "NAME|PATH", help = "the encoder: face (default, the pretrained face pipeline) or a "
             .. "trained encoder (a name such as att, or a .safetensors path) that embeds the whole photo"},
  models = photo_options.MODELS,
  metric = {kind = "string", choices = {"euclidean", "cosine"},
            arg = "euclidean|cosine", help = "the distance (default the encoder's: euclidean for faceapi, "
              .. "cosine for mobilefacenet)"},
  threshold = {kind = "number",
               arg = "T", help = "the largest distance still the same person (in (0, 2); default: the "
                 .. "model's for the metric: cosine 0.549 and euclidean 1.0479 for mobilefacenet, "
                 .. "euclidean 0.6 and cosine 0.087 for faceapi)"},
  fallback = photo_options.fallback("when no face is detected (default none: refuse; the "
    .. "quality gate still applies)"),
  json = {kind = "flag", default = false,
          help = 'print {"accepted", "distance", "threshold", "metric", "photos": [{"photo", "box", '
            .. '"score", "quality"}], "reason"}'},
}
photo_options.merge(SPEC)
compare.spec = SPEC

-- The refusal reason of a photo's main face (nil: it passed the gate).
local function refusal(f)
  if not f then
    local quality = require "siamese.face.quality"
    return string.format("no face at score >= %g", quality.DEFAULTS.min_score)
  end
  if not f.quality.ok then return f.quality.reason end
  if not f.descriptor then return "no descriptor" end
  return nil
end

function compare.run(argv)
  local cli = require "siamese.app.cli"
  local door = require "siamese.door"
  local opts, pos = args.parse(argv, SPEC)
  if not opts then return cli.fail(pos, compare.usage) end
  if #pos ~= 2 then return cli.fail("expected two photos, got " .. #pos, compare.usage) end
  local pok, perr = photo_options.apply(opts)
  if not pok then return cli.fail(perr, compare.usage) end
  if opts.threshold ~= nil then
    local ok, terr = door.check_threshold(opts.threshold, opts.metric or "euclidean", "--threshold")
    if not ok then return cli.fail(terr, compare.usage) end
  end
  local image = require "siamese.image"
  local imgs = {}
  for i, path in ipairs(pos) do
    local img, err = image.load(path)
    if not img then return cli.fail(err) end
    imgs[i] = img
  end
  local enc, eerr = encoders.encoder(opts)
  if not enc then return cli.fail((opts.model and "--model " .. opts.model .. ": " or "") .. tostring(eerr)) end
  opts.metric = opts.metric or enc.metric or "euclidean"
  local threshold = opts.threshold or door.default_threshold(enc.model_id, opts.metric, enc.threshold)

  local faces, reasons = {}, {}
  for i, img in ipairs(imgs) do
    faces[i] = enc.main(img)
    local why = refusal(faces[i])
    if why then reasons[#reasons + 1] = pos[i] .. ": " .. why end
  end
  local r = {accepted = false, threshold = threshold, metric = opts.metric}
  if #reasons > 0 then
    r.reason = table.concat(reasons, "; ")
  else
    r.distance = door.distance(faces[1].descriptor, faces[2].descriptor, opts.metric)
    r.accepted = r.distance <= threshold
    r.reason = r.accepted and "match" or "distance above threshold"
  end

  if opts.json then
    local photos = {}
    for i, path in ipairs(pos) do
      local f = faces[i]
      photos[i] = {photo = path, box = f and output.box(f.box) or json.null,
                   score = f and output.number(f.score) or json.null,
                   quality = f and output.quality_json(f.quality) or json.null}
    end
    print(json.encode{accepted = r.accepted, distance = output.number(r.distance),
                      threshold = output.number(r.threshold), metric = r.metric, photos = json.array(photos),
                      reason = r.reason, model = enc.model_id})
  elseif r.distance == nil then
    print("no decision: " .. r.reason)
  else
    -- the metric is named when it is not euclidean: "(cosine distance 0.312 <= threshold 0.400)"
    local what = opts.metric == "euclidean" and "distance" or opts.metric .. " distance"
    if r.accepted then
      print(string.format("same person (%s %.3f <= threshold %.3f)", what, r.distance, threshold))
    else
      print(string.format("different people (%s %.3f > threshold %.3f)", what, r.distance, threshold))
    end
  end
  return r.accepted and 0 or 1
end

return compare
