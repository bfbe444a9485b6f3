-- Watching a video (`make bench` runs it): the loop `siamese watch --live`
-- runs, on four test videos made here with ffmpeg from the bundled photos
-- (examples/data/faces): one face, or a 2x2 tile of four people, scaled
-- and padded onto 640x480 and 1280x720, 5 s at 25 fps (H.264, a little
-- temporal noise so no two frames are the same), in BUILD/bench_watch/.
--
-- For each video, in the same run:
--   (b) the reference first: the still-photo pipeline, enc.faces(img), on
--       every frame of the file read as fast as we go (not live):
--       frames per second (row ..._still_fps). This also warms the networks
--       up before (a).
--   (a) the watch loop: siamese.video.open{live = true, realtime = true}
--       (ffmpeg -re: the file arrives at its own rate, as from a camera;
--       frames are dropped when we are slower), the door encoder
--       (siamese.door.encoder, watch's defaults: the default pipeline,
--       min_face 20, the quality gate) and siamese.face.track (watch's
--       defaults: m 3, n 5, max_missed 5) over a gallery of the five bundled
--       people, with detection on every K-th frame chosen by
--       siamese.app.cli.watch_stats as `--every auto` does (K = detection time
--       over the frame interval, rounded, 1..8). The loop is watch's
--       (app/cli/watch.lua's `loop`, which is not exported) without
--       watch_visits: events are counted, nothing is printed or recorded.
-- Rows (name prefix watch_WxH_Nface[s]):
--   _fps              frames processed per second (processed / wall time
--                     from the first frame's arrival to the end of the
--                     stream); baseline = the stream's frame rate, ratio =
--                     value / baseline (goal at 640x480, 1 face: >= 15 fps,
--                     i.e. ratio >= 0.6). Also frames, dropped, detected,
--                     every (the last K), decided (tracks named).
--   _latency_p50_ms   latency of a processed frame: the clock when its
--   _latency_p95_ms   detection/track update is done minus the frame's
--                     time in the stream, counted from the arrival of the
--                     first frame ((now - start) - frame.time); over every
--                     processed frame (goal: p95 <= 300 ms). max_ms and
--                     detect_p95_ms (frames the detector ran on) too.
--   _still_fps        the reference (b), frames per second.
--   _ratio_to_still   watch fps / still fps (above 1 when K > 1: the frames
--                     in between only carry the tracks on).
-- Without ffmpeg (or when a video cannot be made) the rows say `skipped`.
local siamese = require "siamese"
local core = require "siamese.core"
local bench = dofile("spec/bench/support.lua")
siamese.set_num_threads(bench.threads)
local emit, P = bench.emit, core.process

local FPS, SECONDS = 25, 5
local DIR = bench.build_dir() .. "/bench_watch"
local PEOPLE = {"Colin_Powell", "Tony_Blair", "Serena_Williams", "Junichiro_Koizumi", "Gloria_Macapagal_Arroyo"}
local function photo(person, i) return ("examples/data/faces/%s/%s_%04d.jpg"):format(person, person, i) end
local function note(s) io.stderr:write("bench_watch: ", s, "\n") end

local CASES = {}
for _, size in ipairs{{640, 480}, {1280, 720}} do
  for _, n in ipairs{1, 4} do
    CASES[#CASES + 1] = {w = size[1], h = size[2], faces = n,
                         name = ("watch_%dx%d_%dface%s"):format(size[1], size[2], n, n == 1 and "" or "s")}
  end
end

local function skip_all(why)
  for _, c in ipairs(CASES) do
    for _, suffix in ipairs{"_fps", "_latency_p50_ms", "_latency_p95_ms", "_still_fps", "_ratio_to_still"} do
      emit{name = c.name .. suffix, skipped = why}
    end
  end
end

-- Runs argv (no shell), its output to our stderr; true or nil, message.
local function run(argv)
  local pid, err = P.spawn(argv, {stdout = 2, stderr = 2})
  if not pid then return nil, tostring(err) end
  local exited, code, how = P.waitpid(pid)
  if exited and how == "exit" and code == 0 then return true end
  return nil, ("%s: %s %s"):format(argv[1], tostring(how), tostring(code))
end

-- The test video of case c (made once; kept in DIR for later runs).
local function make_video(c)
  local path = ("%s/%dx%d_%d.mp4"):format(DIR, c.w, c.h, c.faces)
  local f = io.open(path, "rb")
  if f then
    f:close()
    return path
  end
  local argv = {"ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y"}
  local inputs = c.faces == 1 and {photo(PEOPLE[1], 1)} or
    {photo(PEOPLE[1], 1), photo(PEOPLE[2], 1), photo(PEOPLE[3], 1), photo(PEOPLE[4], 1)}
  for _, p in ipairs(inputs) do
    for _, a in ipairs{"-loop", "1", "-framerate", tostring(FPS), "-t", tostring(SECONDS), "-i", p} do
      argv[#argv + 1] = a
    end
  end
  local fit = ("scale=%d:%d:force_original_aspect_ratio=decrease,pad=%d:%d:(ow-iw)/2:(oh-ih)/2,"
    .. "noise=alls=6:allf=t,format=yuv420p"):format(c.w, c.h, c.w, c.h)
  local graph = c.faces == 1 and ("[0:v]" .. fit .. "[v]")
    or ("[0:v][1:v][2:v][3:v]xstack=inputs=4:layout=0_0|w0_0|0_h0|w0_h0[t];[t]" .. fit .. "[v]")
  for _, a in ipairs{"-filter_complex", graph, "-map", "[v]", "-r", tostring(FPS), "-t", tostring(SECONDS),
                     "-c:v", "libx264", "-preset", "veryfast", "-crf", "20", path .. ".tmp.mp4"} do
    argv[#argv + 1] = a
  end
  local ok, err = run(argv)
  if not ok then
    os.remove(path .. ".tmp.mp4")
    return nil, err
  end
  assert(os.rename(path .. ".tmp.mp4", path))
  return path
end

local function percentile(t, p)
  if #t == 0 then return nil end
  local s = {}
  for i, v in ipairs(t) do s[i] = v end
  table.sort(s)
  local r = p * (#s - 1) + 1
  local lo = math.floor(r)
  local hi = math.min(lo + 1, #s)
  return s[lo] + (s[hi] - s[lo]) * (r - lo)
end

local function round(v, d)
  if v == nil then return nil end
  local m = 10 ^ (d or 2)
  return math.floor(v * m + 0.5) / m
end

-- ---- setup ---------------------------------------------------------------------------

local ok_ff = run{"ffmpeg", "-hide_banner", "-loglevel", "error", "-version"}
  and run{"ffprobe", "-hide_banner", "-loglevel", "error", "-version"}
if not ok_ff then
  skip_all("ffmpeg/ffprobe not available (Debian's ffmpeg package: make deps)")
  return
end
if not run{"mkdir", "-p", DIR} then
  skip_all("cannot create " .. DIR)
  return
end

local door = require "siamese.door"
local video = require "siamese.video"
local track = require "siamese.face.track"
local watch_stats = require "siamese.app.cli.watch_stats"

-- The door encoder as `siamese watch` makes it for a gallery of the
-- default pipeline (common.encoder: door.encoder with the default model,
-- min_face nil = 20, no fallback), and a gallery of the five people.
local enc = assert(door.encoder{model = "face", pipeline = siamese.face.DEFAULT_MODEL})
local g = siamese.gallery.new{dim = enc.dim, model = enc.model_id, metric = enc.metric, threshold = enc.threshold}
for _, person in ipairs(PEOPLE) do
  local f = enc.main(siamese.image.load(photo(person, 1)))
  if f and f.descriptor then g:add(person, f.descriptor, enc.model_id) end
end
local function loadavg()
  local f = io.open("/proc/loadavg")
  if not f then return "?" end
  local l = f:read("l")
  f:close()
  return l and l:match("^(%S+ %S+ %S+)") or "?"
end
note(("gallery: %d people, model %s; load average %s"):format(g:count(), enc.model_id, loadavg()))

-- (b) the still-photo pipeline on every frame of the file: frames per second.
local function still_fps(path)
  local v <close> = assert(video.open(path))
  local n, faces, t0 = 0, 0, nil
  for frame in v:frames() do
    if not t0 then t0 = siamese.clock() end -- decoding of the first frame (ffmpeg's start) left out
    faces = faces + #enc.faces(frame)
    n = n + 1
  end
  assert(not v.error, v.error)
  return n / math.max(siamese.clock() - t0, 1e-9), n, faces
end

-- (a) the watch loop on the video replayed live.
local function watch_run(path)
  local v <close> = assert(video.open(path, {live = true, realtime = true}))
  local tracker = track.new{gallery = g, model = enc.model_id, threshold = g:threshold()}
  local s = watch_stats.new{live = v.live, fps = v.fps, every = "auto", quiet = true}
  local lat, lat_detect, decided, start = {}, {}, 0, nil
  local last
  for frame, info in v:frames() do
    if not start then start = siamese.clock() - info.time end
    s:frame(info)
    local events, detected
    if s:detect_now() then
      local t0 = siamese.clock()
      events = tracker:update(enc.faces(frame), info.index, info.time)
      s:after_detection(siamese.clock() - t0)
      detected = true
    else
      events = tracker:coast(info.index, info.time)
    end
    for _, e in ipairs(events) do
      if e.kind == "decided" then decided = decided + 1 end
    end
    local l = (siamese.clock() - start) - info.time
    lat[#lat + 1] = l
    if detected then lat_detect[#lat_detect + 1] = l end
    last = info
  end
  local wall = siamese.clock() - start
  tracker:finish()
  assert(not v.error, v.error)
  return {fps = s.frames / wall, frames = s.frames, dropped = s.dropped, detected = s.detected, every = s:every(),
          decided = decided, source_frames = last and last.index or 0, fps_in = v.fps, wall = wall,
          p50 = percentile(lat, 0.5), p95 = percentile(lat, 0.95), max = percentile(lat, 1),
          detect_p95 = percentile(lat_detect, 0.95)}
end

-- ---- the runs --------------------------------------------------------------------------

for _, c in ipairs(CASES) do
  local path, err = make_video(c)
  if not path then
    note("cannot make the video of " .. c.name .. ": " .. tostring(err))
    for _, suffix in ipairs{"_fps", "_latency_p50_ms", "_latency_p95_ms", "_still_fps", "_ratio_to_still"} do
      emit{name = c.name .. suffix, skipped = "cannot make the test video: " .. tostring(err)}
    end
  else
    local sfps, sframes, sfaces = still_fps(path)
    local r = watch_run(path)
    emit{name = c.name .. "_fps", value = round(r.fps, 2), unit = "frames/s", baseline = round(r.fps_in, 2),
         baseline_name = "the stream's frame rate", ratio = round(r.fps / r.fps_in, 3), frames = r.frames,
         source_frames = r.source_frames, dropped = r.dropped, detected = r.detected, every = r.every,
         decided = r.decided, wall_s = round(r.wall, 2), goal = c.w == 640 and c.faces == 1 and ">= 15" or nil}
    emit{name = c.name .. "_latency_p50_ms", value = round(r.p50 * 1000, 1), unit = "ms"}
    emit{name = c.name .. "_latency_p95_ms", value = round(r.p95 * 1000, 1), unit = "ms",
         max_ms = round(r.max * 1000, 1), detect_p95_ms = r.detect_p95 and round(r.detect_p95 * 1000, 1),
         goal = c.w == 640 and c.faces == 1 and "<= 300" or nil}
    emit{name = c.name .. "_still_fps", value = round(sfps, 2), unit = "frames/s", frames = sframes,
         faces_per_frame = round(sfaces / math.max(sframes, 1), 2),
         baseline_name = "enc.faces on every frame of the file (not live)"}
    emit{name = c.name .. "_ratio_to_still", value = round(r.fps / sfps, 3), unit = "ratio", ours = round(r.fps, 2),
         baseline = round(sfps, 2), baseline_name = "still-photo pipeline on every frame, frames/s",
         ratio = round(r.fps / sfps, 3)}
  end
end
