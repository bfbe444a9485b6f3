--- siamese verify: the office door. Is the person in the photo who they
-- claim to be?
local args = require "siamese.cli.args"
local json = require "siamese.json"
local common = require "siamese.cli.common"

local verify = {
  summary = "check a claimed identity against a photo (exit 0 welcome, 1 go away)",
  usage = [[
usage: siamese verify --gallery FILE --claim NAME [options] PHOTO

Compares the main face of PHOTO (the detection nearest the centre) with
the templates of NAME in the gallery, using the gallery's encoder, and
accepts when the distance is at most the threshold (the gallery's, or
--threshold). Prints "welcome, NAME" or "go away" with the distance and
the threshold.

options:
  --gallery FILE       the gallery (siamese enroll creates it)
  --claim NAME         who the person says they are
  --threshold T        override the gallery's threshold
  --model NAME|PATH    the encoder, when not the one the gallery names
  --fallback none|threshold|centre  when no face is detected (default
                       threshold: retry at a low detection score)
  --json               print {"claim", "accepted", "distance", "threshold",
                       "photo", "box", "reason"}

exit status: 0 accepted, 1 rejected (also when no face is found), 2 error
(unknown NAME, missing gallery, unreadable photo).]],
}

local SPEC = {
  gallery = {kind = "string"},
  claim = {kind = "string"},
  threshold = {kind = "number"},
  model = {kind = "string"},
  models = {kind = "string"},
  fallback = {kind = "string", default = "threshold", choices = {"none", "threshold", "centre"}},
  json = {kind = "flag", default = false},
}

function verify.run(argv)
  local cli = require "siamese.cli"
  local opts, pos = args.parse(argv, SPEC)
  if not opts then return cli.fail(pos, verify.usage) end
  if not opts.gallery then return cli.fail("--gallery FILE is required", verify.usage) end
  if not opts.claim then return cli.fail("--claim NAME is required", verify.usage) end
  if #pos ~= 1 then return cli.fail("expected exactly one PHOTO, got " .. #pos, verify.usage) end
  local photo = pos[1]
  local g, err = common.load_gallery(opts.gallery)
  if not g then return cli.fail(err) end
  if not g:has(opts.claim) then
    return cli.fail(string.format("unknown identity '%s' in %s (enrolled: %d people)", opts.claim, opts.gallery, g:count()))
  end
  local img, lerr = require("siamese.image").load(photo)
  if not img then return cli.fail(lerr) end
  local enc, eerr = common.encoder_for(g, opts)
  if not enc then return cli.fail(eerr) end

  local threshold = opts.threshold or g:threshold()
  local result = {claim = opts.claim, photo = photo, threshold = threshold, accepted = false}
  local f = enc.main(img)
  if not f then
    result.reason = "no face found"
    result.distance = json.null
  else
    local _, distance = g:verify(opts.claim, f.descriptor, enc.model_id)
    result.distance = distance
    result.accepted = distance <= threshold
    result.box = common.box(f.box)
    result.reason = result.accepted and "match" or "distance above threshold"
  end
  if opts.json then
    print(json.encode(result))
  elseif not f then
    print(string.format("go away: no face found in %s", photo))
  elseif result.accepted then
    print(string.format("welcome, %s (distance %.3f <= threshold %.3f)", opts.claim, result.distance, threshold))
  else
    print(string.format("go away: you are not %s (distance %.3f > threshold %.3f)", opts.claim, result.distance, threshold))
  end
  return result.accepted and 0 or 1
end

return verify
