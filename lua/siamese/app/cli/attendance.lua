--- siamese attendance: record who is in the photos of a camera in an
-- attendance register (an SQLite file, or PostgreSQL), and report who
-- came when.
local args = require "siamese.app.cli.args"
local json = require "siamese.json"
local encoders = require "siamese.app.cli.encoders"
local galleries = require "siamese.app.cli.galleries"
local inputs = require "siamese.app.cli.inputs"
local output = require "siamese.app.cli.output"
local photo_options = require "siamese.app.cli.photo_options"

local attendance_cmd = {
  summary = "record faces in an SQLite attendance register; --report: who came when",
  usage = [=[
usage: siamese attendance --gallery FILE --db FILE|URL [options] PHOTO|DIR...
       siamese attendance --db FILE|URL --report [--date YYYY-MM-DD] [--json]
       siamese attendance --db FILE|URL --unknowns [--date YYYY-MM-DD] [--json]]=],
  description = [[
Identifies every face in the photos (a DIR stands for its image files)
and records one timestamped event per face in the register (an SQLite
file, or a postgresql:// database: created when absent): the name and distance of a recognised face; for an unknown
face its descriptor (and with --review DIR a PNG of the face) to be
reviewed later. Faces the quality gate refuses (too small, low detection
score, landmarks that do not fit) are reported and not recorded. All events of a run are written in one transaction.
--report prints each person's first arrival (and last sighting) on a day,
default today; --unknowns lists the unknown faces waiting for review.]],
  epilog = [[
exit status: 0 done, 2 error (missing gallery, locked or damaged database,
unreadable photo: reported, the other photos still recorded).]],
}

local SPEC = {
  gallery = {kind = "string", arg = "FILE", help = "the gallery (siamese enroll creates it)"},
  db = {kind = "string",
        arg = "FILE|URL", help = "the attendance register: an SQLite file, or a postgresql:// URL (no "
          .. "password in it: PGPASSWORD or ~/.pgpass)"},
  time = {kind = "string",
          arg = '"YYYY-MM-DD HH:MM[:SS]"', help = "when the photos were taken (default now)"},
  review = {kind = "string", arg = "DIR", help = "save unknown faces as PNG there"},
  threshold = {kind = "number", arg = "T", help = "override the gallery's threshold"},
  model = photo_options.GALLERY_MODEL,
  models = photo_options.MODELS,
  fallback = photo_options.fallback("when no face is detected (default none)"),
  report = {kind = "flag", default = false, help = "list first arrivals of --date"},
  unknowns = {kind = "flag", default = false, help = "list unknown faces of --date (all days without it)"},
  date = {kind = "string", arg = "YYYY-MM-DD", help = "the day (default today for --report)"},
  json = {kind = "flag", default = false,
          help = 'record: {"events": [{"id", "photo", "name", "accepted", "distance", "threshold", "box", '
            .. '"crop"}], "recognised", "unknown", "refused": [{"photo", "box", "score", "quality", '
            .. '"reason"}]}; report: {"date", "people": [{"name", "first", "last", "count"}]}; unknowns: '
            .. '{"unknown": [{"id", "at", "photo", "distance", "box", "crop"}]}'},
}
photo_options.merge(SPEC)
attendance_cmd.spec = SPEC

local parse_time = inputs.parse_time

local function report(db, opts)
  local cli = require "siamese.app.cli"
  local date = opts.date or os.date("%Y-%m-%d")
  local rows, err = db:report(date)
  if not rows then return cli.fail(err) end
  if opts.json then
    local people = {}
    for i, r in ipairs(rows) do people[i] = {name = r.name, first = r.first, last = r.last, count = r.count} end
    print(json.encode{date = date, people = json.array(people)})
  else
    print(string.format("%s: %d %s", date, #rows, #rows == 1 and "person" or "people"))
    for _, r in ipairs(rows) do
      print(string.format("  %s  %-24s last seen %s, %d sighting%s", r.first, r.name, r.last, r.count, r.count == 1 and "" or "s"))
    end
  end
  return 0
end

local function unknowns(db, opts)
  local cli = require "siamese.app.cli"
  local rows, err = db:unknowns(opts.date)
  if not rows then return cli.fail(err) end
  if opts.json then
    local list = {}
    for i, e in ipairs(rows) do
      list[i] = {id = e.id, at = e.at, photo = e.photo or json.null, distance = e.distance or json.null,
                 box = e.box or json.null, crop = e.crop or json.null}
    end
    print(json.encode{unknown = json.array(list)})
  else
    print(string.format("%d unknown face%s to review", #rows, #rows == 1 and "" or "s"))
    for _, e in ipairs(rows) do
      print(string.format("  #%d %s %s%s%s", e.id, e.at, e.photo or "?",
        e.distance and string.format(" (nearest at %.3f)", e.distance) or "", e.crop and " -> " .. e.crop or ""))
    end
  end
  return 0
end

local function record(opts, pos)
  local cli = require "siamese.app.cli"
  local identify = require "siamese.app.cli.identify"
  if not opts.gallery then return cli.fail("--gallery FILE is required to record photos", attendance_cmd.usage) end
  if #pos == 0 then return cli.fail("no photo given", attendance_cmd.usage) end
  local when = os.time()
  if opts.time then
    when = parse_time(opts.time)
    if not when then return cli.fail("--time must be 'YYYY-MM-DD HH:MM[:SS]', got '" .. opts.time .. "'") end
  end
  local photos, perr = inputs.photos(pos)
  if not photos then return cli.fail(perr) end
  local pok, perr2 = photo_options.apply(opts)
  if not pok then return cli.fail(perr2, attendance_cmd.usage) end
  local door = require "siamese.door"
  local g, err = galleries.load_gallery(opts.gallery)
  if not g then return cli.fail(err) end
  if opts.threshold then
    local ok, terr = door.check_threshold(opts.threshold, g:metric(), "--threshold")
    if not ok then return cli.fail(terr, attendance_cmd.usage) end
  end
  local enc, eerr = encoders.encoder_for(g, opts)
  if not enc then return cli.fail(eerr) end
  local d, derr0 = door.new{gallery = g, encoder = enc, threshold = opts.threshold, k = 1}
  if not d then return cli.fail(derr0) end
  local threshold = d.threshold
  local image = require "siamese.image"

  local events, shown, refused, failed = {}, {}, {}, false
  local stamp = os.date("%Y%m%d-%H%M%S", when)
  for _, path in ipairs(photos) do
    local img, lerr = image.load(path)
    if not img then
      failed = true
      io.stderr:write("siamese: ", lerr, "\n")
    else
      for _, r in ipairs(identify.faces(d, img, {k = 1})) do
        if not r.quality.ok then
          -- no decision on this face: not recorded, reported
          refused[#refused + 1] = {photo = path, box = output.box(r.box), score = output.number(r.score),
                                   quality = output.quality_json(r.quality), reason = r.reason}
        else
          local ev = {time = when, name = r.name, distance = r.distance, threshold = threshold, photo = path,
                      box = r.box, model = enc.model_id}
          if not r.name then
            ev.descriptor = r.face.descriptor
            ev.crop = output.save_chip(opts.review, string.format("%s-%d", stamp, #events + 1), r.face)
          end
          events[#events + 1] = ev
        end
      end
    end
  end
  local db <close>, derr = require("siamese.app.attendance").open(opts.db)
  if not db then return cli.fail(derr) end
  local ids, rerr = db:record_all(events)
  if not ids then return cli.fail(rerr) end
  local recognised = 0
  for i, ev in ipairs(events) do
    if ev.name then recognised = recognised + 1 end
    shown[i] = {id = ids[i], photo = ev.photo, name = ev.name or json.null, accepted = ev.name ~= nil,
                distance = output.number(ev.distance), threshold = output.number(threshold),
                box = output.box(ev.box), crop = ev.crop or json.null}
  end
  if opts.json then
    print(json.encode{events = json.array(shown), recognised = recognised, unknown = #events - recognised,
                      refused = json.array(refused), at = os.date("%Y-%m-%d %H:%M:%S", when)})
  else
    for _, ev in ipairs(events) do
      if ev.name then
        print(string.format("%s %s: %s (distance %.3f)", os.date("%H:%M:%S", when), ev.photo, ev.name, ev.distance))
      else
        print(string.format("%s %s: unknown face kept for review%s", os.date("%H:%M:%S", when), ev.photo,
          ev.crop and " (" .. ev.crop .. ")" or ""))
      end
    end
    for _, r in ipairs(refused) do
      io.stderr:write(string.format("siamese: %s: face at %.0f,%.0f not recorded: %s\n", r.photo, r.box.x, r.box.y,
        r.reason))
    end
    print(string.format("%d recognised, %d unknown, recorded in %s%s", recognised, #events - recognised, opts.db,
      #refused > 0 and string.format("; %d %s refused by the quality gate", #refused,
        #refused == 1 and "face" or "faces") or ""))
  end
  return failed and 2 or 0
end

function attendance_cmd.run(argv)
  local cli = require "siamese.app.cli"
  local opts, pos = args.parse(argv, SPEC)
  if not opts then return cli.fail(pos, attendance_cmd.usage) end
  if not opts.db then return cli.fail("--db FILE|URL is required", attendance_cmd.usage) end
  local nopw, pwerr = galleries.no_password(opts.db)
  if not nopw then return cli.fail(pwerr) end
  if opts.date and not opts.date:match("^%d%d%d%d%-%d%d%-%d%d$") then
    return cli.fail("--date must be YYYY-MM-DD, got '" .. opts.date .. "'")
  end
  if opts.report and opts.unknowns then return cli.fail("give --report or --unknowns, not both") end
  local listing = opts.report or opts.unknowns
  if listing and #pos > 0 then return cli.fail("--report and --unknowns take no photos") end
  if not listing then return record(opts, pos) end
  -- Listing never creates a database.
  local db <close>, err = require("siamese.app.attendance").open(opts.db, {create = false})
  if not db then return cli.fail(err) end
  if opts.report then return report(db, opts) end
  return unknowns(db, opts)
end

return attendance_cmd
