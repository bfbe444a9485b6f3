--- The pace of siamese watch: which frames the detector runs on (--every),
-- the progress line of a file and the statistics of a live source, on
-- stderr.
--
--   local stats = require "siamese.app.cli.watch_stats"
--   local s = stats.new{live = v.live, fps = v.fps, every = "auto"}   -- or an integer K
--   for frame, info in v:frames() do
--     s:frame(info)
--     if s:detect_now() then
--       local t0 = siamese.clock(); ...detect and update...; s:after_detection(siamese.clock() - t0)
--     else ...coast... end
--     s:decision(info)   -- for each decision taken on this frame: its latency
--     s:tick()           -- prints the progress line / statistics when due
--   end
--   s:finish()
--
-- --every K counts the source's frames (info.index): the detector runs on
-- the first frame, then on the first frame read at least K frames after
-- the last one it ran on; the frames read in between only carry the tracks
-- on (tracker:coast). A file delivers every frame, so that is every K-th
-- frame. A live source hands over its newest frame and drops the others
-- while we work, so a frame read after a long detection is already K
-- frames on: nothing waits.
--
-- --every auto. A file is read as fast as we go, so nothing falls behind:
-- K = 1, every frame. For a live source (a camera, a stream, --live) K is
-- the processing time of a detected frame over the source's frame interval
-- (1 / fps), rounded, from 1 to stats.MAX_AUTO; the time is an exponential
-- average over the detected frames (weight stats.WEIGHT for the newest;
-- the first one, slower while the networks warm up, is left out). When
-- detection takes three frame intervals K is 3: the detector runs on
-- every frame it can reach, the two frames the source made meanwhile are
-- dropped, and the statistics say so. K follows the machine's pace (a
-- busier machine, more faces in view).
--
-- Latency (live): how far behind the source a decision came: the clock
-- when it was taken minus the time the frame it was taken on was due,
-- counted from the arrival of the first frame (so the delay before the
-- first frame, inside the camera and ffmpeg, is not included).
local siamese = require "siamese"

local stats = {
  MAX_AUTO = 8,         -- --every auto never skips more
  WEIGHT = 0.3,         -- of the newest detection time in the average
  PROGRESS_EVERY = 2,   -- seconds between progress lines (files)
  STATS_EVERY = 10,     -- seconds between statistics lines (live)
}

local Stats = {}
Stats.__index = Stats

--- opts: live (boolean), fps (the source's), every ("auto" or an integer),
-- total (a file's number of frames, when known: the progress line then
-- gives an ETA), quiet (no lines on stderr).
function stats.new(opts)
  local auto = opts.every == "auto"
  return setmetatable({live = opts.live, fps = opts.fps, auto = auto, k = auto and 1 or opts.every,
                       total = not opts.live and opts.total or nil,
                       quiet = opts.quiet, frames = 0, detected = 0, dropped = 0, last_detect = nil,
                       detect_time = nil, latency_sum = 0, latency_n = 0, latency_max = 0,
                       started = siamese.clock(), last_line = siamese.clock(), window = nil}, Stats)
end

--- A frame was read (info from video:read).
function Stats:frame(info)
  local now = siamese.clock()
  self.frames = self.frames + 1
  self.dropped = self.dropped + (info.dropped or 0)
  self.index, self.time = info.index, info.time
  if not self.origin then self.origin = now - info.time end -- when the source's time 0 was, by our clock
  if not self.window then self.window = {at = now, frames = 0, index = info.index - 1, detected = 0} end
  self.window.frames = self.window.frames + 1
end

--- True when the detector should run on the frame last given to frame():
-- the first one, then one at least K source frames after the last
-- detected one.
function Stats:detect_now()
  if self.last_detect == nil or self.index - self.last_detect >= self.k then
    self.last_detect = self.index
    return true
  end
  return false
end

--- The processing time (seconds) of a frame the detector ran on.
function Stats:after_detection(seconds)
  self.detected = self.detected + 1
  if self.window then self.window.detected = self.window.detected + 1 end
  if self.detected == 1 then return end -- warming up
  self.detect_time = self.detect_time and (stats.WEIGHT * seconds + (1 - stats.WEIGHT) * self.detect_time)
    or seconds
  if self.auto and self.live then
    self.k = math.max(1, math.min(stats.MAX_AUTO, math.floor(self.detect_time * self.fps + 0.5)))
  end
end

--- The current K (detect every K-th frame).
function Stats:every() return self.k end

--- Records the latency of a decision taken on the frame info (live
-- sources; nil for files). Returns it.
function Stats:decision(info)
  if not self.live or not self.origin then return nil end
  local l = math.max(0, siamese.clock() - (self.origin + info.time))
  self.latency_sum, self.latency_n = self.latency_sum + l, self.latency_n + 1
  self.latency_max = math.max(self.latency_max, l)
  return l
end

--- Ends an open progress line (before an event is printed).
function Stats:break_line()
  local cli = require "siamese.app.cli"
  if cli.line_open then
    io.stderr:write("\n")
    cli.line_open = false
  end
end

local function clock_text(s)
  return string.format("%d:%04.1f", math.floor(s / 60), s % 60)
end
stats.clock_text = clock_text

-- "m:ss" of s seconds, rounded up.
local function eta_text(s)
  s = math.ceil(math.max(0, s))
  if s >= 3600 then return string.format("%d:%02d:%02d", s // 3600, s % 3600 // 60, s % 60) end
  return string.format("%d:%02d", s // 60, s % 60)
end

-- The progress line of a file: frames, rate, position in the video, and
-- when the number of frames is known (siamese.video's frame_count) the
-- total and an ETA at the rate so far. The last line gives the frames.
function Stats:_progress(now, final)
  local cli = require "siamese.app.cli"
  local rate = self.frames / math.max(now - self.started, 1e-9)
  local total, eta = "", ""
  if self.total and not final then
    total = string.format(" of %d", self.total)
    eta = string.format(", ETA %s", eta_text(math.max(0, self.total - self.frames) / math.max(rate, 1e-9)))
  end
  io.stderr:write(string.format("\rwatch: %d frames%s (%s of video), %.1f fps%s, detecting every %d   ", self.frames,
    total, clock_text(self.time or 0), rate, eta, self.k))
  if final then io.stderr:write("\n") end
  cli.line_open = not final
end

-- A statistics line of a live source over the last window.
function Stats:_live(now)
  local w = self.window
  local dt = math.max(now - w.at, 1e-9)
  local arrived = (self.index or w.index) - w.index -- frames the source made (read or dropped)
  local lat = self.latency_n > 0 and string.format(", latency %.2f s (max %.2f)", self.latency_sum / self.latency_n,
    self.latency_max) or ""
  self:break_line()
  io.stderr:write(string.format("watch: %.1f fps in, %.1f fps processed, %.1f detections/s (every %d), "
    .. "%d dropped%s\n", arrived / dt, w.frames / dt, w.detected / dt, self.k, self.dropped, lat))
  self.window = {at = now, frames = 0, index = self.index or w.index, detected = 0}
  self.latency_sum, self.latency_n, self.latency_max = 0, 0, 0
end

--- Prints the progress line (files, every PROGRESS_EVERY s) or the
-- statistics (live, every STATS_EVERY s) when due.
function Stats:tick()
  if self.quiet then return end
  local now = siamese.clock()
  if self.live then
    if self.window and now - self.window.at >= stats.STATS_EVERY then self:_live(now) end
  elseif now - self.last_line >= stats.PROGRESS_EVERY then
    self.last_line = now
    self:_progress(now)
  end
end

--- The last progress line (files); for live sources the last statistics.
function Stats:finish()
  if self.quiet then return end
  local now = siamese.clock()
  if self.live then
    if self.window and self.window.frames > 0 then self:_live(now) end
  elseif self.frames > 0 then
    self:_progress(now, true)
  end
end

return stats
