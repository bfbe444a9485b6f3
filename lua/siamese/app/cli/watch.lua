--- siamese watch: doors and attendance from a video (a file, a camera, a
-- stream). Frames come from siamese.video, faces and descriptors from the
-- gallery's encoder with the quality gate (siamese.door), tracks and one
-- decision per visit from siamese.face.track; what a visit does is
-- siamese.app.cli.watch_visits, the --on-open program siamese.app.cli.watch_hooks,
-- --every and the lines on stderr siamese.app.cli.watch_stats; --out writes
-- the annotated frames through siamese.video.writer (viz.annotate_faces).
local args = require "siamese.app.cli.args"
local encoders = require "siamese.app.cli.encoders"
local galleries = require "siamese.app.cli.galleries"
local inputs = require "siamese.app.cli.inputs"
local photo_options = require "siamese.app.cli.photo_options"

local watch = {
  summary = "doors and attendance from a video file, camera or stream (one decision per visit)",
  usage = [=[
usage: siamese watch --gallery FILE|URL --source SRC [--door] [--db FILE|URL] [options]
       siamese watch ... --door --on-open PROGRAM [-- ARG...]
       siamese watch ... --out FILE [--overwrite]]=],
  description = [[
Follows the faces of a video (a file, an rtsp://, http:// or https://
stream, or a camera /dev/videoN; decoded by ffmpeg) and takes one decision
per visit: a face is tracked from frame to frame while it stays in view,
and its name is accepted when --min-votes of its last --votes faces that
passed the quality gate name the same enrolled person (a blurred or turned
frame never votes). A visit that ends without a name (no name had the
votes, or too few faces passed the gate to decide) but with at least one
face past the gate is an unknown visitor. A live source runs until Ctrl-C
or until the stream breaks.

  --door     prints "open for NAME" once per visit, when the name is
             accepted, and "unknown visitor (track N)" when such a visit
             ends; with --on-open PROGRAM runs PROGRAM once per opening
  --db FILE  records each visit in the attendance register (as siamese
             attendance does: the name, or an unknown face with its
             descriptor, and with --review DIR a PNG of its best face);
             siamese attendance --report gives the first arrivals
Both may be given. Without either every tracker event is printed (a track
started, named, ended).]],
  epilog = [[
On stderr: for a file a progress line (frames, rate, position in the
video and, when the file tells its length, the total and an ETA); for a
live source every 10 s the frames per second in and processed, the
frames dropped and the latency from a frame to its decision. Times in the lines are the video's (m:ss.s).

exit status: 0 done (the end of a file), 2 error (missing or damaged
gallery, unreadable source, the stream broken mid-way: the visits before
it are kept), 130 interrupted (Ctrl-C: the visits decided so far are
recorded, the tracks still open are dropped). The ffmpeg child is stopped
and reaped in every case.]],
}

local SPEC = {
  gallery = {kind = "string",
             arg = "FILE|URL", help = "the gallery (siamese enroll creates it); a postgresql:// gallery is "
               .. "kept in memory and updated while watching as the database pushes enrolments, removals "
               .. "and renames; while the database is unreachable the watch goes on with the gallery in "
               .. "memory (said on stderr) and catches up after"},
  source = {kind = "string", arg = "SRC", help = "a video file, rtsp/http/https URL or /dev/videoN"},
  door = {kind = "flag", default = false, help = "door mode (above)"},
  on_open = {kind = "string",
             arg = "PROGRAM", help = "with --door: run PROGRAM (a path, or a name looked up in PATH; no "
               .. 'shell) at each opening, with the arguments after "--" and the name in its environment '
               .. "as SIAMESE_NAME (not an argument). Not waited for: reaped when it ends, and at the end "
               .. "of the watch given 5 s before it is stopped; a failure is reported on stderr, the watch "
               .. "goes on"},
  db = {kind = "string",
        arg = "FILE|URL", help = "attendance mode (above): an SQLite file or a postgresql:// register"},
  start = {kind = "string",
           arg = '"YYYY-MM-DD HH:MM[:SS]"', help = "the time of the video's first frame, for the register "
             .. "(default now); an event's time is it plus the frame's time in the video"},
  review = {kind = "string", arg = "DIR", help = "save the best face of each unknown visitor as PNG"},
  threshold = {kind = "number", arg = "T", help = "override the gallery's threshold"},
  model = photo_options.GALLERY_MODEL,
  models = photo_options.MODELS,
  every = {kind = "string", default = "auto",
           arg = "K|auto", help = "run the detector on every K-th frame of the source (1..1000) and only "
             .. "carry the tracks on in between. auto (default): every frame of a file; for a live source "
             .. "K = the detection time over the frame interval, rounded (1..8), following the machine's "
             .. "pace (frames made meanwhile are dropped, not waited for)"},
  min_votes = {kind = "number", arg = "M", help = "votes a name needs (default 3; at most --votes)"},
  votes = {kind = "number",
           arg = "N", help = "faces that vote: a track's last N past the gate (1..100, default 5)"},
  max_missed = {kind = "number",
                arg = "N", help = "detection frames without its face that end a visit (1..10000, default "
                  .. "5): with --every K about K x N frames of the source"},
  live = {kind = "flag", default = false,
          help = "treat a file as a live source, read at its own frame rate (for tests of a door with a "
            .. "recording): frames are dropped when processing is slower"},
  json = {kind = "flag", default = false,
          help = 'one JSON object per line and event: {"event": "decided", "track", "name", "distance", '
            .. '"votes", "faces", "frame", "time", "latency" (live), "door": "open" (--door), "id", "at" '
            .. '(--db)}; {"event": "unknown", "track", "state" ("unknown" or "undecided": too few faces), '
            .. '"reason", "distance" (to the nearest enrolled person), "candidate", "faces", "frame", '
            .. '"time", "crop", "id", "at"}; without --door and --db also {"event": "start" | "end", '
            .. '"track", "frame", "time"} ("end" with "reason", "state", "name"); last {"event": "done", '
            .. '"frames", "detected", "dropped", "named", "unknown"}'},
  out = {kind = "string",
         arg = "FILE", help = "write the video annotated: every frame processed (the source's size and "
           .. "rate), each live track's box (the detection on detected frames, the predicted box in "
           .. 'between), "#id" and its name (green, accepted) or state (red unknown, gray undecided). The '
           .. "container follows the extension; .mkv is lossless ffv1, others libx264. Finished at the "
           .. "end, on an error and on Ctrl-C (the frames so far; ffmpeg runs in its own process group)"},
  overwrite = {kind = "flag", default = false, help = "let --out replace an existing file"},
}
photo_options.merge(SPEC)
watch.spec = SPEC

local parse_time = inputs.parse_time

-- An integer option in [lo, hi], or nil and a message naming the flag.
local function int_option(opts, key, lo, hi)
  local v = opts[key]
  if v == nil then return true end
  local n = math.tointeger(v)
  if not n or n < lo or n > hi then
    return nil, string.format("--%s must be an integer from %d to %d, got %s", key:gsub("_", "-"), lo, hi, tostring(v))
  end
  opts[key] = n
  return true
end

-- Checks the options that need no file; fills opts.every (an integer or
-- "auto"), opts.start_time, opts.hook (the argument vector). Returns true,
-- or nil and a message naming the flag.
local function check(opts, pos, hook_args)
  if #pos > 0 then return nil, "unexpected argument '" .. pos[1] .. "' (the video is given with --source)" end
  if not opts.gallery then return nil, "--gallery FILE is required" end
  if not opts.source or opts.source == "" then return nil, "--source SRC is required (a file, URL or /dev/videoN)" end
  if opts.source:find("\0", 1, true) then return nil, "--source must not contain a zero byte" end
  local scheme = opts.source:match("^(%a[%w+.-]*)://")
  if scheme and not ({rtsp = true, http = true, https = true})[scheme:lower()] then
    return nil, "--source: unsupported URL scheme '" .. scheme .. "' (rtsp, http, https, a file or /dev/videoN)"
  end
  if opts.every ~= "auto" then
    local k = tonumber(opts.every)
    k = k and math.tointeger(k)
    if not k or k < 1 or k > 1000 then
      return nil, "--every must be auto or an integer from 1 to 1000, got '" .. opts.every .. "'"
    end
    opts.every = k
  end
  for _, o in ipairs{{"votes", 1, 100}, {"max_missed", 1, 10000}, {"min_votes", 1, 100}} do
    local ok, err = int_option(opts, o[1], o[2], o[3])
    if not ok then return nil, err end
  end
  local track = require "siamese.face.track"
  local n = opts.votes or track.DEFAULTS.n
  if opts.min_votes and opts.min_votes > n then
    return nil, string.format("--min-votes must be at most --votes (%d), got %d", n, opts.min_votes)
  end
  opts.start_time = os.time()
  if opts.start then
    opts.start_time = parse_time(opts.start)
    if not opts.start_time then return nil, "--start must be 'YYYY-MM-DD HH:MM[:SS]', got '" .. opts.start .. "'" end
  end
  if opts.on_open and not opts.door then return nil, "--on-open needs --door (it runs at each door opening)" end
  if hook_args and not opts.on_open then
    return nil, "arguments after -- are for the --on-open program: give --on-open PROGRAM"
  end
  if opts.on_open then
    if opts.on_open == "" or opts.on_open:find("\0", 1, true) then
      return nil, "--on-open must name a program"
    end
    if opts.on_open:find("/", 1, true) and not inputs.exists(opts.on_open) then
      return nil, "--on-open " .. opts.on_open .. ": no such program"
    end
    opts.hook = {opts.on_open}
    for _, a in ipairs(hook_args or {}) do
      if a:find("\0", 1, true) then return nil, "--on-open: an argument holds a zero byte" end
      opts.hook[#opts.hook + 1] = a
    end
  end
  if opts.out then
    if opts.out == "" or opts.out:find("\0", 1, true) then return nil, "--out must name a file" end
    if not opts.out:match("[^/]%.%w+$") then
      return nil, "--out " .. opts.out .. ": no extension to choose the container (.mkv, .mp4, ...)"
    end
    if not opts.overwrite and inputs.exists(opts.out) then
      return nil, "--out " .. opts.out .. " exists (give --overwrite to replace it)"
    end
  elseif opts.overwrite then
    return nil, "--overwrite is for --out FILE"
  end
  if opts.db == "" then return nil, "--db must name a file or a postgresql:// URL" end
  if opts.db then
    local nopw, pwerr = galleries.no_password(opts.db)
    if not nopw then return nil, pwerr end
  end
  if opts.review == "" then return nil, "--review must name a directory" end
  return true
end

-- The command line split at "--": the options, then the hook's arguments
-- (nil when there is no "--").
local function split(argv)
  local before, after = {}, nil
  for _, a in ipairs(argv) do
    if after then
      after[#after + 1] = a
    elseif a == "--" then
      after = {}
    else
      before[#before + 1] = a
    end
  end
  return before, after
end

-- The live tracks of tracker on frame index as annotate_faces takes them:
-- the detection on a frame where the track was seen, else its predicted
-- box; its id; its name (accepted) or its latest state.
local function annotations(tracker, index)
  local faces = {}
  for _, t in ipairs(tracker:tracks()) do
    local box = t.last_frame == index and t.box or t:predict(index)
    local state = t.decision and "accepted" or (t.last_decision and t.last_decision.state == "unknown" and "unknown")
      or "undecided"
    faces[#faces + 1] = {box = box, id = t.id, state = state, name = t.decision and t.decision.name}
  end
  return faces
end

-- Seconds between two syncs of a PostgreSQL gallery's replica.
local SYNC_EVERY = 0.2

-- Applies the changes pushed to a replica (at most every SYNC_EVERY s) and
-- says on stderr when the database goes away and comes back: the door
-- goes on deciding from the gallery in memory meanwhile.
local function sync_replica(replica, s, state)
  local siamese = require "siamese"
  local now = siamese.clock()
  if now < (state.next or 0) then return end
  state.next = now + SYNC_EVERY
  replica:sync_telling(function(text)
    s:break_line()
    io.stderr:write("watch: ", text, "\n")
  end, "deciding from")
end

-- The frames loop: returns the exit status. v, tracker, vs (visits), s
-- (stats), out (the annotated video's writer, or nil), replica (a
-- PostgreSQL gallery's, synced between frames, or nil).
local function loop(v, enc, tracker, vs, s, hooks, out, replica)
  local siamese = require "siamese"
  local cli = require "siamese.app.cli"
  local last
  local sync_state = {}
  for frame, info in v:frames() do
    if replica then sync_replica(replica, s, sync_state) end
    s:frame(info)
    local events
    if s:detect_now() then
      local t0 = siamese.clock()
      events = tracker:update(enc.faces(frame), info.index, info.time)
      s:after_detection(siamese.clock() - t0)
    else
      events = tracker:coast(info.index, info.time)
    end
    vs:handle(events, info)
    if vs.failed then return cli.fail(vs.failed) end
    if out then
      local ok, werr = out:write(require("siamese.viz").annotate_faces(frame, annotations(tracker, info.index)))
      if not ok then return cli.fail("--out: " .. werr) end
    end
    if hooks then hooks:poll() end
    s:tick()
    last = info
  end
  -- the end of the video (or the stream broke): the open visits end
  vs:handle(tracker:finish(), last or {index = 0, time = 0})
  s:finish()
  if vs.failed then return cli.fail(vs.failed) end
  if v.error then return cli.fail(v.error) end
  return 0
end

function watch.run(argv)
  local cli = require "siamese.app.cli"
  local door = require "siamese.door"
  local json = require "siamese.json"
  local before, hook_args = split(argv)
  local opts, pos = args.parse(before, SPEC)
  if not opts then return cli.fail(pos, watch.usage) end
  local ok, err = check(opts, pos, hook_args)
  if not ok then return cli.fail(err, watch.usage) end
  ok, err = photo_options.apply(opts)
  if not ok then return cli.fail(err, watch.usage) end

  -- A gallery in PostgreSQL is kept as a replica, updated between frames
  -- (enrolments, removals, renames pushed by the database).
  local replica, g, gerr
  if require("siamese.pg").is_url(opts.gallery) then
    local nopw, pwerr = galleries.no_password(opts.gallery)
    if not nopw then return cli.fail(pwerr) end
    replica, gerr = require("siamese.gallery_pg").replica(opts.gallery)
    if not replica then return cli.fail(gerr) end
    g = replica.gallery
  else
    g, gerr = galleries.load_gallery(opts.gallery)
    if not g then return cli.fail(gerr) end
  end
  local replica_guard <close> = replica
  if opts.threshold then
    local tok, terr = door.check_threshold(opts.threshold, g:metric(), "--threshold")
    if not tok then return cli.fail(terr, watch.usage) end
  end
  if g:count() == 0 then return cli.fail(opts.gallery .. ": no one is enrolled (siamese enroll adds people)") end
  local threshold = opts.threshold or g:threshold()
  if opts.review and not require("siamese.fs").mkdir_p(opts.review) then
    return cli.fail("--review " .. opts.review .. ": cannot create the directory")
  end
  local enc, eerr = encoders.encoder_for(g, opts)
  if not enc then return cli.fail(eerr) end
  local register, derr
  if opts.db then
    register, derr = require("siamese.app.attendance").open(opts.db)
    if not register then return cli.fail(derr) end
  end
  local db <close> = register
  local tracker = require("siamese.face.track").new{gallery = g, model = enc.model_id, threshold = threshold,
    m = opts.min_votes, n = opts.votes, max_missed = opts.max_missed}

  -- declared before the video, so closed after it: on an error or Ctrl-C
  -- ffmpeg is stopped first, then the hooks get their grace time
  local hooks <close> = opts.hook and require("siamese.app.cli.watch_hooks").new(opts.hook) or nil
  local v <close>, verr = require("siamese.video").open(opts.source, opts.live and {live = true, realtime = true}
    or nil)
  if not v then return cli.fail(verr) end
  local s = require("siamese.app.cli.watch_stats").new{live = v.live, fps = v.fps, every = opts.every,
    total = v.frame_count}
  local vs = require("siamese.app.cli.watch_visits").new{door = opts.door, db = db, review = opts.review,
    json = opts.json, hooks = hooks, gallery = g, model = enc.model_id, threshold = threshold,
    source = opts.source, start = opts.start_time, stats = s}

  -- declared after the video, so closed before it: on an error or Ctrl-C
  -- the frames so far are finished into the file (ffmpeg is in its own
  -- process group: a terminal's Ctrl-C does not reach it)
  local writer, oerr
  if opts.out then
    local ext = opts.out:match("%.(%w+)$"):lower()
    writer, oerr = require("siamese.video").writer(opts.out, {width = v.width, height = v.height, fps = v.fps,
      overwrite = opts.overwrite, codec = ext == "mkv" and "ffv1" or nil})
    if not writer then return cli.fail("--out: " .. oerr) end
  end
  local out <close> = writer

  local code = loop(v, enc, tracker, vs, s, hooks, out, replica)
  if out then
    local closed, cerr = out:close()
    if not closed and code == 0 then return cli.fail("--out: " .. cerr) end
  end
  if code ~= 0 then return code end
  if opts.json then
    io.stdout:write(json.encode{event = "done", frames = s.frames, detected = s.detected, dropped = s.dropped,
                                named = vs.named, unknown = vs.unknown}, "\n")
  else
    print(string.format("%d frames (%d detected%s): %d named %s, %d unknown%s", s.frames, s.detected,
      s.dropped > 0 and string.format(", %d dropped", s.dropped) or "", vs.named,
      vs.named == 1 and "visit" or "visits", vs.unknown, opts.db and ", recorded in " .. opts.db or ""))
  end
  return 0
end

return watch
