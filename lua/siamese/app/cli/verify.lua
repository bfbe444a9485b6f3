--- siamese verify: the office door. Is the person in the photo who they
-- claim to be? Decided by siamese.door: only on a face that passes the
-- quality gate.
local args = require "siamese.app.cli.args"
local json = require "siamese.json"
local encoders = require "siamese.app.cli.encoders"
local galleries = require "siamese.app.cli.galleries"
local output = require "siamese.app.cli.output"
local photo_options = require "siamese.app.cli.photo_options"

local verify = {
  summary = "check a claimed identity against a photo (exit 0 welcome, 1 go away)",
  usage = [[
usage: siamese verify --gallery FILE --claim NAME [options] PHOTO]],
  description = [[
Compares the main face of PHOTO (the detection nearest the centre) with
the templates of NAME in the gallery, using the gallery's encoder, and
accepts when the distance is at most the threshold (the gallery's, or
--threshold). Prints "welcome, NAME" or "go away" with the distance and
the threshold, or with the reason no decision was taken.

A decision needs a real face: detected at the detector's normal score
(0.5), at least 40 pixels, with landmarks in a plausible geometry.
Anything else is refused with the reason ("face too small: 31 px (at
least 40)", "no face at score >= 0.5").

The threshold is the largest distance still accepted as the same person.
For the default pipeline (mobilefacenet) the default (cosine 0.549)
accepts 0.07 % of LFW's impostor pairs and refuses 1.8 % of its genuine
pairs (faceapi's, euclidean 0.6: 0.7 % and 3.1 %); run siamese calibrate
on photos from your own camera and people for a measured one.]],
  epilog = [[
exit status: 0 accepted, 1 refused (also when no face passes the gate), 2
error (unknown NAME, missing gallery, unreadable photo).]],
}

local SPEC = {
  gallery = {kind = "string", arg = "FILE", help = "the gallery (siamese enroll creates it)"},
  claim = {kind = "string", arg = "NAME", help = "who the person says they are"},
  threshold = {kind = "number", arg = "T", help = "override the gallery's threshold (in (0, 2))"},
  model = photo_options.GALLERY_MODEL,
  models = photo_options.MODELS,
  fallback = photo_options.fallback("when no face is detected (default none: refuse; "
    .. "threshold: retry at score 0.1, centre: also the centred region; the quality gate still "
    .. "applies)"),
  json = {kind = "flag", default = false,
          help = 'print {"claim", "accepted", "distance", "threshold", "photo", "box", "score", "quality", '
            .. '"reason"}'},
}
photo_options.merge(SPEC)
verify.spec = SPEC

function verify.run(argv)
  local cli = require "siamese.app.cli"
  local door = require "siamese.door"
  local opts, pos = args.parse(argv, SPEC)
  if not opts then return cli.fail(pos, verify.usage) end
  if not opts.gallery then return cli.fail("--gallery FILE is required", verify.usage) end
  if not opts.claim then return cli.fail("--claim NAME is required", verify.usage) end
  if #pos ~= 1 then return cli.fail("expected exactly one PHOTO, got " .. #pos, verify.usage) end
  local pok, perr = photo_options.apply(opts)
  if not pok then return cli.fail(perr, verify.usage) end
  local photo = pos[1]
  local g, err = galleries.load_gallery(opts.gallery)
  if not g then return cli.fail(err) end
  if opts.threshold then
    local ok, terr = door.check_threshold(opts.threshold, g:metric(), "--threshold")
    if not ok then return cli.fail(terr, verify.usage) end
  end
  if not g:has(opts.claim) then
    return cli.fail(string.format("unknown identity '%s' in %s (enrolled: %s)", opts.claim, opts.gallery,
      output.plural(g:count(), "identity", "identities")))
  end
  local img, lerr = require("siamese.image").load(photo)
  if not img then return cli.fail(lerr) end
  local enc, eerr = encoders.encoder_for(g, opts)
  if not enc then return cli.fail(eerr) end
  local d, derr = door.new{gallery = g, encoder = enc, threshold = opts.threshold}
  if not d then return cli.fail(derr) end

  local r = assert(d:verify(opts.claim, img))
  if opts.json then
    print(json.encode(output.decision_json(r, {claim = opts.claim, photo = photo})))
  elseif r.distance == nil then
    print(string.format("go away: %s: %s", photo, r.reason))
  elseif r.accepted then
    print(string.format("welcome, %s (distance %.3f <= threshold %.3f)", opts.claim, r.distance, r.threshold))
  else
    print(string.format("go away: you are not %s (distance %.3f > threshold %.3f)", opts.claim, r.distance, r.threshold))
  end
  return r.accepted and 0 or 1
end

return verify
