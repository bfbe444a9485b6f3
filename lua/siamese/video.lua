--- siamese.video: frames from a video file, a network stream (rtsp://,
-- http://, https://) or a V4L2 camera (/dev/videoN), as siamese.image
-- images (3 channels, RGB).
--
--   local v <close> = assert(siamese.video.open("door.mkv"))   -- or {width =, height =, fps =, live =}
--   for frame, info in v:frames() do                           -- info: {index, time, dropped}
--     print(info.index, info.time, frame.width, frame.height)
--   end
--   if v.error then print(v.error) end                         -- why the loop ended early, if it did
--
-- Debian's ffmpeg decodes, as a child process run from an argument vector
-- (never a shell), writing raw rgb24 frames to a pipe; ffprobe gives the
-- size and rate first. No ffmpeg code is linked. The reader is C
-- (src/video.c): for files it delivers every frame; for live sources it
-- drains the pipe and hands over the newest complete frame, counting the
-- ones it skipped, so a slow consumer stays near real time. The child is
-- stopped and reaped by v:close(), at the end of the stream, on an error,
-- when a frames() loop ends (also by break or an error in its body), on
-- <close> and on garbage collection.
local core = require "siamese.core"
local argcheck = require "siamese.argcheck"
local json = require "siamese.json"

local C, P = core.video, core.process

local video = {
  --- The programs run (names looked up in PATH, or paths).
  programs = {ffmpeg = "ffmpeg", ffprobe = "ffprobe"},
}

local Video = {__name = "siamese.Video"}
Video.__index = Video

local OPTION_TYPES = {width = "integer", height = "integer", fps = "number", live = "boolean",
                      realtime = "boolean", timeout = "number"}
local LIVE_TIMEOUT = 10  -- seconds a live source may go without a frame (opts.timeout)
local PROBE_TIMEOUT = 30 -- seconds ffprobe may take (or opts.timeout when larger)
local EOF_WAIT = 2       -- seconds ffmpeg gets to exit by itself at the end of a stream

-- Raises "bad argument #argn to 'open' (...)" blaming open's caller
-- (level 4: this function, a helper of open, open).
local function open_error(argn, fmt, ...)
  error(("bad argument #%d to 'open' (" .. fmt .. ")"):format(argn, ...), 4)
end

local function check_opts(opts)
  if opts == nil then return {} end
  if type(opts) ~= "table" then open_error(2, "table expected, got %s", argcheck.typename(opts)) end
  for k, v in pairs(opts) do
    local want = OPTION_TYPES[k]
    if not want then open_error(2, "unknown option '%s'", tostring(k)) end
    local ok = want == "boolean" and type(v) == "boolean"
      or want == "integer" and math.type(v) == "integer" and v >= 1 and v <= 65535
      or want == "number" and argcheck.is_number(v) and v > 0 and v <= (k == "fps" and 1000 or 86400)
    if not ok then
      local range = want == "integer" and " 1..65535" or want == "number" and (k == "fps" and " in (0, 1000]"
        or " in (0, 86400] seconds") or ""
      open_error(2, "option '%s' must be %s %s%s, got %s", k, want == "integer" and "an" or "a", want, range,
                 tostring(v))
    end
  end
  return opts
end

-- "file", "url" or "device", and the input arguments of ffmpeg/ffprobe.
local function classify(source)
  if source:match("^/dev/video%d+$") then return "device", {"-f", "v4l2", "-i", source} end
  local scheme = source:match("^(%a[%w+.-]*)://")
  if scheme then
    scheme = scheme:lower()
    if scheme ~= "rtsp" and scheme ~= "http" and scheme ~= "https" then
      open_error(1, "unsupported URL scheme '%s' (rtsp, http, https, a file or /dev/videoN)", scheme)
    end
    return "url", {"-i", source}
  end
  -- "file:" keeps a name like "concat:a|b" a plain file; the whitelist keeps
  -- the file from pulling in other files or URLs (playlists).
  return "file", {"-protocol_whitelist", "file", "-i", "file:" .. source}
end

local function append(t, list)
  for _, x in ipairs(list) do t[#t + 1] = x end
  return t
end

local function missing_ffmpeg(program, err)
  return ("siamese.video needs %s (%s): install Debian's ffmpeg package (run `make deps`)"):format(program, err)
end

-- Runs argv, returns its standard output (or nil, message). The child is
-- reaped on every path.
local function capture(argv, timeout)
  local rfd, wfd = C.pipe()
  if not rfd then return nil, wfd end
  local pid, err = P.spawn(argv, {stdout = wfd})
  P.close(wfd)
  if not pid then
    P.close(rfd)
    return nil, missing_ffmpeg(argv[1], err)
  end
  local ok, out, rerr = pcall(C.read_all, rfd, 1 << 20, timeout)
  P.close(rfd)
  if not (ok and out) then P.kill(pid, "KILL") end
  P.waitpid(pid)
  if not ok then error(out, 0) end
  return out, rerr
end

-- A rate "30000/1001" as a number, or nil.
local function rate(s)
  local n, d = tostring(s or ""):match("^(%d+)/(%d+)$")
  local r = n and tonumber(d) > 0 and tonumber(n) / tonumber(d)
  return r and r > 0 and r <= 1000 and r or nil
end

-- {width, height, fps} of the first video stream, or nil, message.
local function probe(source, input, timeout)
  local argv = append({video.programs.ffprobe, "-v", "quiet", "-show_error", "-select_streams", "v:0",
                       "-show_entries", "stream=codec_type,width,height,r_frame_rate,avg_frame_rate"
                         .. ":stream_side_data=rotation", "-of", "json"}, input)
  local out, err = capture(argv, timeout)
  if not out then return nil, ("cannot probe '%s': %s"):format(source, err) end
  local info = json.decode(out)
  if type(info) ~= "table" then return nil, ("cannot probe '%s': ffprobe gave no answer"):format(source) end
  if type(info.error) == "table" then
    return nil, ("cannot read '%s': %s"):format(source, tostring(info.error.string or "ffprobe failed"))
  end
  local s = type(info.streams) == "table" and info.streams[1]
  if type(s) ~= "table" or math.type(s.width) ~= "integer" or math.type(s.height) ~= "integer"
    or s.width < 1 or s.height < 1 then
    return nil, ("'%s' has no video stream"):format(source)
  end
  local w, h = s.width, s.height
  for _, sd in ipairs(type(s.side_data_list) == "table" and s.side_data_list or {}) do
    local rot = type(sd) == "table" and tonumber(sd.rotation)
    if rot and (rot % 180) == 90 then w, h = h, w end -- ffmpeg turns the frames upright
  end
  return {width = w, height = h, fps = rate(s.avg_frame_rate) or rate(s.r_frame_rate),
          fps_text = (rate(s.avg_frame_rate) and s.avg_frame_rate) or (rate(s.r_frame_rate) and s.r_frame_rate)}
end

--- Opens a video. source: a file path, an rtsp://, http:// or https:// URL,
-- or a V4L2 device /dev/videoN. opts (all optional):
--   width, height  frame size (ffmpeg scales; one alone keeps the aspect ratio)
--   fps            frame rate (ffmpeg drops or repeats frames to keep it)
--   live           drop frames when the reader is slower than the source
--                  (default: true for URLs and devices, false for files)
--   realtime       read the input at its own frame rate, as a camera
--                  delivers it (ffmpeg -re): to replay a recording as live
--   timeout        seconds a read may wait for a frame (default: 10 for
--                  live sources, none for files) and ffprobe may take
-- Returns the video {width, height, fps, live, source, pid (ffmpeg's)}, or
-- nil and a message for a missing or unreadable source (or no ffmpeg).
function video.open(source, opts)
  if type(source) ~= "string" then
    argcheck.error("open", 1, "string expected, got %s", argcheck.typename(source))
  end
  if source == "" or source:find("\0", 1, true) then argcheck.error("open", 1, "empty path or a zero byte") end
  opts = check_opts(opts)
  local kind, input = classify(source)
  if kind ~= "url" then
    local f, err = io.open(source, "rb")
    if not f then return nil, ("cannot open '%s': %s"):format(source, err:match(": (.*)$") or err) end
    f:close()
  end
  local live = opts.live
  if live == nil then live = kind ~= "file" end
  local timeout = opts.timeout or (live and LIVE_TIMEOUT or nil)

  local info, err = probe(source, input, math.max(timeout or 0, PROBE_TIMEOUT))
  if not info then return nil, err end
  local w, h = opts.width, opts.height
  if w and not h then h = math.max(1, math.floor(w * info.height / info.width + 0.5)) end
  if h and not w then w = math.max(1, math.floor(h * info.width / info.height + 0.5)) end
  w, h = math.min(w or info.width, 65535), math.min(h or info.height, 65535)
  local fps, fps_text = info.fps, info.fps_text -- the probed rate, kept exact ("30000/1001")
  if opts.fps then fps, fps_text = opts.fps, ("%.17g"):format(opts.fps) end
  if not fps then return nil, ("cannot tell the frame rate of '%s': give opts.fps"):format(source) end

  local argv = {video.programs.ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error"}
  if opts.realtime then argv[#argv + 1] = "-re" end
  append(argv, input)
  -- The fps filter makes the rate constant (frames dropped or repeated by
  -- timestamp), so index and time agree; scale makes every frame w x h.
  append(argv, {"-map", "0:v:0", "-an", "-sn", "-dn", "-vf", ("fps=%s,scale=%d:%d"):format(fps_text, w, h),
                "-pix_fmt", "rgb24", "-f", "rawvideo", "-flush_packets", "1", "pipe:1"})

  local fr, fw = C.pipe()
  if not fr then return nil, fw end
  local lr, lw = C.pipe()
  if not lr then
    P.close(fr)
    P.close(fw)
    return nil, lw
  end
  local reader, rerr = C.reader(fr, lr, w, h, {live = live, timeout = timeout})
  if not reader then
    for _, fd in ipairs{fr, fw, lr, lw} do P.close(fd) end
    return nil, rerr
  end
  local pid, serr = P.spawn(argv, {stdout = fw, stderr = lw})
  P.close(fw)
  P.close(lw)
  if not pid then
    reader:close()
    return nil, missing_ffmpeg(argv[1], serr)
  end
  reader:adopt(pid)
  return setmetatable({width = w, height = h, fps = fps, live = live, source = source, pid = pid,
                       _reader = reader}, Video)
end

local function check_video(fname, v)
  if getmetatable(v) ~= Video then
    -- level 3: blames the caller of the method that called check_video
    error(("bad argument #1 to '%s' (siamese.Video expected, got %s)"):format(fname, argcheck.typename(v)), 3)
  end
end

-- The last non-empty line of ffmpeg's stderr, for messages.
local function last_line(log)
  local last
  for line in log:gmatch("[^\r\n]+") do
    if line:find("%S") then last = line end
  end
  return last
end

-- Ends the stream: reaps ffmpeg and sets v.error (nil at a clean end).
local function finish(v, err)
  local r = v._reader
  v._reader = nil
  local how, code = r:close(not err and EOF_WAIT or nil)
  local line = last_line(r:log())
  if not err and (how == "signal" or (how == "exit" and code ~= 0)) then
    err = ("ffmpeg failed (%s %d)"):format(how == "exit" and "exit status" or "signal", code)
  end
  if err then v.error = ("video '%s': %s%s"):format(v.source, err, line and (": ffmpeg: " .. line) or "") end
end

--- The next frame (files) or the newest one (live) and its info
-- {index (frame number, 1-based), time (seconds from the start: (index - 1)
-- / fps), dropped (frames skipped since the previous read; 0 for files)}.
-- At the end of the stream: nil (the video closes itself); on a broken
-- stream (ended mid-frame, ffmpeg failed, no frame within the timeout):
-- nil and a message, also kept in v.error. After the end, nil again.
function Video:read()
  check_video("read", self)
  local r = self._reader
  if not r then return nil, self.error end
  local frame, index, dropped = r:read()
  if frame then return frame, {index = index, time = (index - 1) / self.fps, dropped = dropped} end
  finish(self, index)
  return nil, self.error
end

local function next_frame(v)
  return v:read()
end

--- Iterates over the frames: `for frame, info in v:frames() do ... end`
-- (frame and info as read gives them). The loop ends at the end of the
-- stream or on an error (then v.error holds the message); the video is
-- closed when the loop ends, however it ends (break, error, return).
function Video:frames()
  check_video("frames", self)
  return next_frame, self, nil, self
end

--- Stops ffmpeg (SIGTERM, then SIGKILL after 0.5 s) and reaps it.
-- Idempotent; also the video's __close.
function Video:close()
  check_video("close", self)
  local r = self._reader
  if r then
    self._reader = nil
    r:close()
  end
end

Video.__close = Video.close

return video
