--- siamese enroll: add people to a gallery from their photos.
local args = require "siamese.cli.args"
local json = require "siamese.json"
local common = require "siamese.cli.common"

local enroll = {
  summary = "enroll people in a gallery from their photos",
  usage = [[
usage: siamese enroll --gallery FILE [options] NAME PHOTO...
       siamese enroll --gallery FILE [options] --from-folder DIR

Adds one template per photo: the main face of the photo (the detection
nearest the centre). --from-folder DIR enrolls every sub-folder of DIR as
a person named after it (one or more photos each). Photos where no face is
found are reported and not enrolled. A gallery file that does not exist is
created for the encoder (its model id and dimension, the metric and a
threshold); an existing one made with another encoder is refused. The
gallery is saved atomically once, at the end.

options:
  --gallery FILE       the gallery (created when absent)
  --from-folder DIR    one sub-folder per person
  --model face|NAME|PATH  encoder: face (default, the pretrained face
                       pipeline) or a trained encoder (siamese.encoder.load,
                       e.g. att) that embeds the whole photo
  --fallback none|threshold|centre  when no face is detected: give up,
                       retry at a low detection score (default), or also use
                       the centred region of a portrait
  --threshold T        a new gallery's threshold (default 0.6 for the face
                       model; run siamese calibrate for a measured one)
  --metric euclidean|cosine  a new gallery's distance (default euclidean)
  --json               print {"gallery", "created", "model", "enrolled":
                       [{"name", "photo", "box", "how"}], "skipped": [{"photo",
                       "reason"}], "identities", "templates"}

exit status: 0 enrolled; 2 error (no template enrolled, unreadable photo,
bad gallery); photos without a face alone do not make it fail.]],
}

local SPEC = {
  gallery = {kind = "string"},
  from_folder = {kind = "string"},
  model = {kind = "string"},
  models = {kind = "string"},
  fallback = {kind = "string", default = "threshold", choices = {"none", "threshold", "centre"}},
  threshold = {kind = "number"},
  metric = {kind = "string", choices = {"euclidean", "cosine"}},
  json = {kind = "flag", default = false},
}

-- The jobs: list of {name, photo}.
local function jobs_of(opts, pos)
  local jobs = {}
  if opts.from_folder then
    if #pos > 0 then return nil, "give either NAME PHOTO... or --from-folder DIR, not both" end
    local people, err = common.people(opts.from_folder)
    if not people then return nil, err end
    for _, p in ipairs(people) do
      for _, photo in ipairs(p.photos) do jobs[#jobs + 1] = {name = p.name, photo = photo} end
    end
    return jobs
  end
  if #pos < 2 then return nil, "expected NAME PHOTO... (or --from-folder DIR)" end
  local name = pos[1]
  if name:match("^%s*$") then return nil, "the name must not be empty" end
  local photos, err = common.photos({table.unpack(pos, 2)})
  if not photos then return nil, err end
  for _, photo in ipairs(photos) do jobs[#jobs + 1] = {name = name, photo = photo} end
  if #jobs == 0 then return nil, "no photo given" end
  return jobs
end

function enroll.run(argv)
  local cli = require "siamese.cli"
  local opts, pos = args.parse(argv, SPEC)
  if not opts then return cli.fail(pos, enroll.usage) end
  if not opts.gallery then return cli.fail("--gallery FILE is required", enroll.usage) end
  local jobs, jerr = jobs_of(opts, pos)
  if not jobs then return cli.fail(jerr, enroll.usage) end
  local image = require "siamese.image"

  -- An existing gallery names its encoder; a new one takes --model's.
  local g, created, enc, err
  if common.exists(opts.gallery) then
    g, err = common.load_gallery(opts.gallery)
    if not g then return cli.fail(err) end
    enc, err = common.encoder_for(g, opts)
    if not enc then return cli.fail(err) end
    created = false
    if opts.threshold or opts.metric then
      io.stderr:write("siamese: --threshold and --metric only apply to a new gallery (siamese calibrate sets the threshold)\n")
    end
  else
    enc, err = common.encoder(opts)
    if not enc then return cli.fail(err) end
    g, created = common.open_or_create_gallery(opts.gallery, enc, opts)
  end

  local enrolled, skipped, unreadable = {}, {}, false
  local progress = #jobs > 20 and common.progress("enroll", "photos") or nil
  for i, job in ipairs(jobs) do
    local img, lerr = image.load(job.photo)
    if not img then
      unreadable = true
      skipped[#skipped + 1] = {photo = job.photo, reason = lerr}
    else
      local f = enc.main(img)
      if not f then
        skipped[#skipped + 1] = {photo = job.photo, reason = "no face found"}
      else
        g:add(job.name, f.descriptor, enc.model_id)
        enrolled[#enrolled + 1] = {name = job.name, photo = job.photo, box = common.box(f.box), how = f.how}
      end
    end
    if progress then progress(i, #jobs) end
  end

  if #enrolled > 0 then
    local ok, serr = g:save(opts.gallery)
    if not ok then return cli.fail(serr) end
  end
  if opts.json then
    print(json.encode{gallery = opts.gallery, created = created and #enrolled > 0, model = enc.model_id,
                      enrolled = json.array(enrolled), skipped = json.array(skipped),
                      identities = g:count(), templates = g:size()})
  else
    for _, e in ipairs(enrolled) do
      print(string.format("enrolled %s from %s (%s)", e.name, e.photo, e.how))
    end
    for _, s in ipairs(skipped) do io.stderr:write("siamese: not enrolled: ", s.photo, ": ", s.reason, "\n") end
    print(string.format("%s: %d identities, %d templates (%s, threshold %.3f, model %s)%s", opts.gallery,
      g:count(), g:size(), g:metric(), g:threshold(), g:model(), created and #enrolled > 0 and ", created" or ""))
  end
  if #enrolled == 0 then
    if not opts.json then io.stderr:write("siamese: nothing enrolled\n") end
    return 2
  end
  return unreadable and 2 or 0
end

return enroll
