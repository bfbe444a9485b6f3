--- siamese enroll: add people to a gallery from their photos, with the
-- intent explicit (a new name, --add or --replace) and every face checked
-- against the gallery before it is added (siamese.door). What is enrolled,
-- and what is refused, is recorded in the gallery's audit log
-- (siamese.app.cli.audit).
local args = require "siamese.app.cli.args"
local json = require "siamese.json"
local encoders = require "siamese.app.cli.encoders"
local galleries = require "siamese.app.cli.galleries"
local inputs = require "siamese.app.cli.inputs"
local output = require "siamese.app.cli.output"
local photo_options = require "siamese.app.cli.photo_options"
local audit_cli = require "siamese.app.cli.audit"

local enroll = {
  summary = "enroll people in a gallery from their photos",
  usage = [[
usage: siamese enroll --gallery FILE [options] NAME PHOTO...
       siamese enroll --gallery FILE [options] --from-folder DIR]],
  description = [[
Adds one template per photo: the main face of the photo (the detection
nearest the centre), when it passes the quality gate (detected at score
0.5, at least 40 pixels, landmarks in a plausible geometry). --from-folder DIR enrolls
every sub-folder of DIR as a person named after it. A gallery file that
does not exist is created for the encoder (its model id and dimension, the
metric and a threshold); an existing one made with another encoder is
refused. The gallery is saved atomically once, at the end, under its lock
(FILE.lock): the photos are embedded first, then the gallery is read
again and the faces are checked and added against the file as it is
then, so enrolments running at the same time all land.

Each enrolment is recorded in FILE.audit (siamese audit shows it), one
event per person: enrolled (accepted), or refused with the reasons (a
name already enrolled, a look-alike, a photo without a usable face). The
log is opened before anything is changed: when it cannot be (damaged,
permissions too open, lua-sql-sqlite3 missing), nothing is enrolled.

A NAME not yet enrolled is enrolled; an enrolled one needs --add (another
photo of the same person) or --replace (its templates are replaced). Names
are trimmed; control, invisible and bidirectional characters are refused,
and so is a name that differs from an enrolled one only by case. A face is
refused, unless --force, when it is within the threshold of another
person, or (--add, and the second and later photos of a new person) farther
than the threshold from the person's own templates. A photo already
enrolled is always refused.

The threshold is the largest distance still accepted as the same person:
for a new gallery of the default pipeline (mobilefacenet, cosine
distances) 0.549 (0.07 % of LFW's impostor pairs accepted, 1.8 % of its
genuine pairs refused; 1.0479 with --metric euclidean); for --pipeline
faceapi (euclidean distances) 0.6 (0.7 % and 3.1 %), 0.087 with --metric
cosine. Run siamese calibrate on photos from your own
camera and people to measure one.]],
  epilog = [[
exit status: 0 enrolled; 1 nothing enrolled because every face was refused
(gate, duplicates, look-alikes); 2 error (bad name, unreadable photo, bad
gallery, an audit log that cannot be opened, or enrolled but not recorded
in the audit log: the message says so, and --json adds "audit_error").]],
}

local SPEC = {
  gallery = {kind = "string",
             arg = "FILE|URL", help = "the gallery (created when absent): a file, or a postgresql:// "
               .. "database (no password in the URL: PGPASSWORD or ~/.pgpass)"},
  from_folder = {kind = "string", arg = "DIR", help = "one sub-folder per person"},
  add = {kind = "flag", default = false, help = "add photos to an enrolled person"},
  replace = {kind = "flag", default = false, help = "replace an enrolled person's templates"},
  force = {kind = "flag", default = false,
           help = "enrol even a face close to another person, or far from the person's own templates"},
  model = {kind = "string",
           arg = "face|NAME|PATH", help = "encoder: face (default, the pretrained face pipeline) or a "
             .. "trained encoder (siamese.encoder.load, e.g. att) that embeds the whole photo"},
  models = photo_options.MODELS,
  fallback = photo_options.fallback("when no face is detected (default none; the quality "
    .. "gate still applies)"),
  threshold = {kind = "number",
               arg = "T", help = "a new gallery's threshold, in (0, 2) (default: the model's for the "
                 .. "metric)"},
  metric = {kind = "string", choices = {"euclidean", "cosine"},
            arg = "euclidean|cosine", help = "a new gallery's distance (default the encoder's: euclidean "
              .. "for faceapi, cosine for mobilefacenet)"},
  json = {kind = "flag", default = false,
          help = 'print {"gallery", "created", "model", "threshold", "enrolled": [{"name", "photo", "box", '
            .. '"score", "quality"}], "skipped": [{"name", "photo", "reason", "quality"}], "identities", '
            .. '"templates"}'},
}
photo_options.merge(SPEC)
enroll.spec = SPEC

-- The jobs: list of {name, photo}; names checked (siamese.names).
local function jobs_of(opts, pos)
  local names = require "siamese.names"
  local jobs = {}
  if opts.from_folder then
    if #pos > 0 then return nil, "give either NAME PHOTO... or --from-folder DIR, not both" end
    local people, err = inputs.people(opts.from_folder)
    if not people then return nil, err end
    for _, p in ipairs(people) do
      local name, nerr = names.check(p.name, "folder name '" .. p.name .. "'")
      if not name then return nil, nerr end
      for _, photo in ipairs(p.photos) do jobs[#jobs + 1] = {name = name, photo = photo} end
    end
    return jobs
  end
  if #pos < 2 then return nil, "expected NAME PHOTO... (or --from-folder DIR)" end
  local name, nerr = names.check(pos[1], "NAME")
  if not name then return nil, nerr end
  local photos, err = inputs.photos({table.unpack(pos, 2)})
  if not photos then return nil, err end
  for _, photo in ipairs(photos) do jobs[#jobs + 1] = {name = name, photo = photo} end
  if #jobs == 0 then return nil, "no photo given" end
  return jobs
end

-- The gallery and its encoder: an existing file names its encoder, a new
-- one takes --model's. Returns g, enc, created; or nil, message.
local function gallery_and_encoder(opts)
  local door = require "siamese.door"
  local exists, xerr = galleries.gallery_exists(opts.gallery)
  if exists == nil then return nil, xerr end
  if exists then
    local g, err = galleries.load_gallery(opts.gallery)
    if not g then return nil, err end
    local enc, eerr = encoders.encoder_for(g, opts)
    if not enc then return nil, eerr end
    if opts.threshold or opts.metric then
      io.stderr:write("siamese: --threshold and --metric only apply to a new gallery (siamese calibrate sets the threshold)\n")
    end
    return g, enc, false
  end
  if opts.threshold then
    -- checked before any model is loaded (the metric the encoder will have)
    local face = opts.model == nil or opts.model == "face"
    local metric = opts.metric or (face and opts.pipeline == "mobilefacenet" and "cosine") or "euclidean"
    local ok, terr = door.check_threshold(opts.threshold, metric, "--threshold")
    if not ok then return nil, terr end
  end
  local enc, err = encoders.encoder(opts)
  if not enc then return nil, (opts.model and "--model " .. opts.model .. ": " or "") .. tostring(err) end
  local g, gerr = galleries.open_or_create_gallery(opts.gallery, enc, opts)
  if not g then return nil, gerr end
  return g, enc, true
end

-- The usage errors of the jobs against a gallery: a name that differs
-- from an enrolled one only by case, an enrolled name without --add or
-- --replace, --add of a name not enrolled. Returns the mode per name
-- ("new", "add" or "replace"), or nil, message, the name refused.
local function modes_of(g, jobs, opts)
  local names = require "siamese.names"
  for _, job in ipairs(jobs) do
    local twin = names.same_as(job.name, g:names())
    if twin then
      return nil, string.format("'%s' differs from the enrolled '%s' only by case (use the same spelling)",
        job.name, twin), job.name
    end
  end
  local mode = {}
  for _, job in ipairs(jobs) do
    if not mode[job.name] then
      local exists = g:has(job.name)
      if exists and not (opts.add or opts.replace) then
        return nil, string.format("'%s' is already enrolled (%s): use --add for another photo of the same "
          .. "person, or --replace", job.name, output.plural(g:templates(job.name):size(1), "template", "templates")),
          job.name
      end
      if not exists and opts.add then
        return nil, string.format("'%s' is not enrolled: --add needs an enrolled name", job.name), job.name
      end
      mode[job.name] = exists and (opts.replace and "replace" or "add") or "new"
    end
  end
  return mode
end

-- The main face of each job's photo (outside the gallery's lock: this is
-- the slow part): per job {face = f} or {skip = {name, photo, reason,
-- quality}, unreadable = bool}.
local function embed_jobs(jobs, enc)
  local image = require "siamese.image"
  local out = {}
  local progress = #jobs > 20 and output.progress("enroll", "photos") or nil
  for i, job in ipairs(jobs) do
    local img, lerr = image.load(job.photo)
    if not img then
      -- the loader's message starts with the path, which the report gives already
      local reason = lerr:sub(1, #job.photo + 2) == job.photo .. ": " and lerr:sub(#job.photo + 3) or lerr
      out[i] = {unreadable = true, skip = {name = job.name, photo = job.photo, reason = reason}}
    else
      local f = enc.main(img)
      if not f or not f.quality.ok then
        out[i] = {skip = {name = job.name, photo = job.photo, reason = f and f.quality.reason or enc.no_face or "no face found",
                          quality = f and output.quality_json(f.quality) or nil}}
      else
        out[i] = {face = f}
      end
    end
    if progress then progress(i, #jobs) end
  end
  return out
end

-- Under the gallery's lock, on the file as it is now: the checks again
-- (another process may have enrolled meanwhile), then each face through
-- the door and into g. Returns save?, {enrolled, skipped, unreadable, mode}
-- or false, {error = message, name = the name refused (a usage error)}.
local function enrol_locked(g, ctx, jobs, faces, enc, opts)
  local door = require "siamese.door"
  if not ctx.created then
    local ok, merr = encoders.check_model(g, enc, opts.gallery .. " (changed by another process)")
    if not ok then return false, {error = merr} end
  end
  local mode, merr, mname = modes_of(g, jobs, opts)
  if not mode then return false, {error = merr, name = mname} end
  local d, derr = door.new{gallery = g, encoder = enc}
  if not d then return false, {error = derr} end
  local r = {enrolled = {}, skipped = {}, unreadable = false, mode = mode}
  local replaced = {} -- name -> the templates it had
  for i, job in ipairs(jobs) do
    local x = faces[i]
    if x.skip then
      r.unreadable = r.unreadable or x.unreadable
      r.skipped[#r.skipped + 1] = x.skip
    else
      local f = x.face
      -- replaced identities are removed before their first new template
      -- (nothing is saved if none is added)
      if mode[job.name] == "replace" and not replaced[job.name] then
        replaced[job.name] = g:templates(job.name)
        g:remove(job.name)
      end
      -- the first photo of a new (or replaced) person starts it; the others are "add"s to it
      local m = g:has(job.name) and "add" or "new"
      local ok, why = d:check_enrolment(job.name, f.descriptor, m, opts.force)
      if not ok then
        r.skipped[#r.skipped + 1] = {name = job.name, photo = job.photo, reason = why}
      else
        g:add(job.name, f.descriptor, enc.model_id)
        r.enrolled[#r.enrolled + 1] = {name = job.name, photo = job.photo, box = output.box(f.box),
                                       score = output.number(f.score), quality = output.quality_json(f.quality)}
      end
    end
  end
  -- a person to replace whose every new photo was refused keeps the old
  -- templates (another person's enrolment may still save the file)
  for _, job in ipairs(jobs) do
    local old = replaced[job.name]
    if old and not g:has(job.name) then g:add(job.name, old, enc.model_id) end
  end
  return #r.enrolled > 0, r
end

-- The audit events of an enrolment: one per name, in the order of the
-- jobs. Enrolled (accepted): detail "mode new, 2 photos" (", forced" with
-- --force; "; not enrolled: PHOTO: REASON" for its refused photos).
-- Nothing enrolled (refused): "mode new, not enrolled: PHOTO: REASON; ...".
local function audit_events(jobs, r, opts)
  local order, per = {}, {}
  for _, job in ipairs(jobs) do
    if not per[job.name] then
      per[job.name] = {enrolled = 0, refused = {}}
      order[#order + 1] = job.name
    end
  end
  for _, e in ipairs(r.enrolled) do per[e.name].enrolled = per[e.name].enrolled + 1 end
  for _, s in ipairs(r.skipped) do
    local t = per[s.name].refused
    t[#t + 1] = s.photo .. ": " .. s.reason
  end
  local events = {}
  for _, name in ipairs(order) do
    local p = per[name]
    local head = "mode " .. (r.mode[name] or "?") .. (opts.force and ", forced" or "")
    local detail
    if p.enrolled > 0 then
      detail = head .. ", " .. output.plural(p.enrolled, "photo", "photos")
      if #p.refused > 0 then detail = detail .. "; not enrolled: " .. table.concat(p.refused, "; ") end
    else
      detail = head .. ", not enrolled: " .. table.concat(p.refused, "; ")
    end
    events[#events + 1] = {action = "enroll", name = name, accepted = p.enrolled > 0, detail = detail}
  end
  return events
end

-- A refused enrolment (a name already enrolled, a case twin, --add of a
-- name not enrolled): recorded, then reported; exit status 2.
local function refused(log, name, msg)
  local cli = require "siamese.app.cli"
  local rok, rerr = audit_cli.record(log, {{action = "enroll", name = name, accepted = false, detail = msg}})
  local code = cli.fail(msg)
  if not rok then audit_cli.unrecorded("the refusal", rerr) end
  return code
end

function enroll.run(argv)
  local cli = require "siamese.app.cli"
  local gallery = require "siamese.gallery"
  local opts, pos = args.parse(argv, SPEC)
  if not opts then return cli.fail(pos, enroll.usage) end
  if not opts.gallery then return cli.fail("--gallery FILE is required", enroll.usage) end
  if opts.add and opts.replace then return cli.fail("give --add or --replace, not both", enroll.usage) end
  local jobs, jerr = jobs_of(opts, pos)
  if not jobs then return cli.fail(jerr, enroll.usage) end
  local pok, perr = photo_options.apply(opts)
  if not pok then return cli.fail(perr, enroll.usage) end
  -- A first look at the gallery picks the encoder and refuses usage errors
  -- before any photo is embedded; the enrolment itself happens under the
  -- gallery's lock against the file as it is then (gallery.update).
  local g0, enc = gallery_and_encoder(opts)
  if not g0 then return cli.fail(enc) end
  -- the audit log is opened before anything is decided: no unrecorded change
  local log <close>, lcode = audit_cli.open_for_change(opts.gallery)
  if not log then
    g0:close()
    return lcode
  end
  local mode, merr, mname = modes_of(g0, jobs, opts)
  if not mode then
    g0:close()
    return refused(log, mname, merr)
  end
  local params = {dim = g0:dim(), metric = g0:metric(), threshold = g0:threshold(), model = g0:model(),
                  score = g0:score_mode()}
  g0:close()
  local faces = embed_jobs(jobs, enc)

  local g, r, created
  local uok, uerr = gallery.update(opts.gallery, function(lg, ctx)
    local save, res = enrol_locked(lg, ctx, jobs, faces, enc, opts)
    g, r, created = lg, res, ctx.created
    return save
  end, {new = params})
  if uok == nil and uerr then return cli.fail(uerr) end -- not saved: nothing changed, nothing to record
  if r.error then
    if r.name then return refused(log, r.name, r.error) end
    return cli.fail(r.error)
  end
  local enrolled, skipped, unreadable = r.enrolled, r.skipped, r.unreadable
  local rok, rerr = audit_cli.record(log, audit_events(jobs, r, opts))
  if opts.json then
    for _, s in ipairs(skipped) do s.quality = s.quality or json.null end
    print(json.encode{gallery = opts.gallery, created = created and #enrolled > 0, model = enc.model_id,
                      threshold = output.number(g:threshold()), enrolled = json.array(enrolled),
                      skipped = json.array(skipped), identities = g:count(), templates = g:size(),
                      audit_error = not rok and rerr or nil})
  else
    for _, e in ipairs(enrolled) do print(string.format("enrolled %s from %s", e.name, e.photo)) end
    for _, s in ipairs(skipped) do io.stderr:write("siamese: not enrolled: ", s.photo, ": ", s.reason, "\n") end
    if #enrolled > 0 then
      print(string.format("%s: %s, %s (%s, threshold %.3f, model %s)%s", opts.gallery,
        output.plural(g:count(), "identity", "identities"), output.plural(g:size(), "template", "templates"),
        g:metric(), g:threshold(), g:model(), created and ", created" or ""))
    end
  end
  if not rok then
    return audit_cli.unrecorded(#enrolled > 0 and "enrolled " .. output.plural(#enrolled, "photo", "photos")
      .. " in " .. opts.gallery or "the refused enrolment", rerr)
  end
  if unreadable then return 2 end
  if #enrolled == 0 then
    if not opts.json then io.stderr:write("siamese: nothing enrolled\n") end
    return 1
  end
  return 0
end

return enroll
