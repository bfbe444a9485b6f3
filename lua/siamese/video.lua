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
-- (src/video.c): for files it delivers every frame; for live sources a
-- thread of the reader drains the pipe as the frames come (ffmpeg never
-- waits on us) and read hands over the newest complete frame, counting the
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
                       "-show_entries", "stream=codec_type,width,height,r_frame_rate,avg_frame_rate,nb_frames,"
                         .. "duration:stream_side_data=rotation:format=duration", "-of", "json"}, input)
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
  -- the length, when the container tells it (a number of seconds, frames)
  local function positive(x)
    x = tonumber(x)
    return x and x > 0 and x < 1e9 and x or nil
  end
  local nb = positive(s.nb_frames)
  return {width = w, height = h, fps = rate(s.avg_frame_rate) or rate(s.r_frame_rate),
          fps_text = (rate(s.avg_frame_rate) and s.avg_frame_rate) or (rate(s.r_frame_rate) and s.r_frame_rate),
          nb_frames = nb and math.tointeger(nb),
          duration = positive(s.duration) or positive(type(info.format) == "table" and info.format.duration)}
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
-- Returns the video {width, height, fps, live, source, pid (ffmpeg's),
-- frame_count, duration}, or nil and a message for a missing or unreadable
-- source (or no ffmpeg). frame_count (the number of frames to expect, at
-- fps) and duration (seconds) are given for files when ffprobe knows them
-- (the stream's nb_frames, or the duration x the rate), nil for URLs and
-- devices.
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

  local frames, duration
  if kind == "file" then
    duration = info.duration or (info.nb_frames and info.fps and info.nb_frames / info.fps)
    if info.nb_frames and not opts.fps then
      frames = info.nb_frames
    elseif duration then
      frames = math.max(1, math.floor(duration * fps + 0.5))
    end
  end

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
  -- its own process group: a terminal's Ctrl-C reaches only us, and we stop it
  local pid, serr = P.spawn(argv, {stdout = fw, stderr = lw, new_group = true})
  P.close(fw)
  P.close(lw)
  if not pid then
    reader:close()
    return nil, missing_ffmpeg(argv[1], serr)
  end
  reader:adopt(pid)
  return setmetatable({width = w, height = h, fps = fps, live = live, source = source, pid = pid,
                       frame_count = frames, duration = duration, _reader = reader}, Video)
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

-- ---- writing -------------------------------------------------------------------
--
--   local w = assert(siamese.video.writer("out.mp4", {width = 640, height = 480, fps = 10}))
--   for _, img in ipairs(frames) do assert(w:write(img)) end   -- nil, message if ffmpeg died
--   assert(w:close())                                           -- true once out.mp4 is complete
--
-- Debian's ffmpeg encodes, as a child process run from an argument vector,
-- reading raw rgb24 frames from a pipe on its stdin; C (src/video.c) writes
-- each frame whole from the image's pixels. ffmpeg writes a temporary file
-- beside the target ("<path>.tmp.<pid>.<k>.<ext>"), renamed to path only
-- when ffmpeg finished cleanly and w:close() was called; on any failure
-- (and on garbage collection of a writer never closed) the temporary is
-- removed, so no partial file is ever left at path.

local Writer = {__name = "siamese.VideoWriter"}
Writer.__index = Writer

local WRITER_OPTIONS = {width = "integer", height = "integer", fps = "number", codec = "string",
                        pix_fmt = "string", overwrite = "boolean", timeout = "number"}
local CLOSE_TIMEOUT = 60 -- seconds ffmpeg may take to finish after the last frame (opts.timeout)

-- Raises "bad argument #argn to 'writer' (...)" blaming writer's caller
-- (level 4: this function, check_writer_opts, writer).
local function writer_error(argn, fmt, ...)
  error(("bad argument #%d to 'writer' (" .. fmt .. ")"):format(argn, ...), 4)
end

local function check_writer_opts(opts)
  if type(opts) ~= "table" then writer_error(2, "table expected, got %s", argcheck.typename(opts)) end
  for k, v in pairs(opts) do
    local want = WRITER_OPTIONS[k]
    if not want then writer_error(2, "unknown option '%s'", tostring(k)) end
    local ok = want == "integer" and math.type(v) == "integer" and v >= 1 and v <= 65535
      or want == "number" and argcheck.is_number(v) and v > 0 and v <= (k == "fps" and 1000 or 86400)
      or want == "boolean" and type(v) == "boolean"
      or want == "string" and type(v) == "string" and v:match("^[%w_.-]+$") ~= nil
    if not ok then
      local what = want == "integer" and "an integer 1..65535" or want == "string" and "a name ([%w_.-]+)"
        or want == "boolean" and "a boolean" or k == "fps" and "a number in (0, 1000]" or "a number of seconds in (0, 86400]"
      writer_error(2, "option '%s' must be %s, got %s", k, what, tostring(v))
    end
  end
  for _, k in ipairs{"width", "height", "fps"} do
    if opts[k] == nil then writer_error(2, "option '%s' is required", k) end
  end
  return opts
end

local function exists(path)
  local f, _, code = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil or code ~= 2 -- anything but "no such file" counts as there
end

--- Opens a video file for writing. opts: width, height (the frames'
-- size), fps (required), codec (default "libx264"; e.g. "ffv1" for a
-- lossless .mkv), pix_fmt (default "yuv420p" for libx264, else ffmpeg's
-- choice for the codec), overwrite (default false: an existing path is
-- refused), timeout (seconds close waits for ffmpeg to finish, and a write
-- for it to take data; default 60). The container follows path's
-- extension. With yuv420p, an odd width or height is padded by one black
-- column or row (the video is then w.out_width x w.out_height).
-- Returns the writer {path, width, height, fps, codec, pid (ffmpeg's),
-- frames (written so far)}, or nil and a message (path exists, folder not
-- writable, no ffmpeg).
function video.writer(path, opts)
  if type(path) ~= "string" then
    argcheck.error("writer", 1, "string expected, got %s", argcheck.typename(path))
  end
  if path == "" or path:find("\0", 1, true) then argcheck.error("writer", 1, "empty path or a zero byte") end
  local ext = path:match("[^/](%.[%w]+)$")
  if not ext then
    argcheck.error("writer", 1, "'%s' has no extension to choose the container (.mp4, .mkv, ...)", path)
  end
  opts = check_writer_opts(opts)
  local w, h, codec = opts.width, opts.height, opts.codec or "libx264"
  local pix_fmt = opts.pix_fmt
  if pix_fmt == nil and codec == "libx264" then pix_fmt = "yuv420p" end
  local ow, oh = w, h
  if pix_fmt and (pix_fmt:match("^yuvj?420") or pix_fmt:match("^nv[12][12]")) then
    ow, oh = w + w % 2, h + h % 2 -- 4:2:0 chroma needs even sides
  end
  if not opts.overwrite and exists(path) then
    return nil, ("'%s' exists (give overwrite = true to replace it)"):format(path)
  end
  local timeout = opts.timeout or CLOSE_TIMEOUT

  local tmp, terr = C.create_temp(path, ext)
  if not tmp then return nil, terr end
  local fps_text = ("%.17g"):format(opts.fps)
  local argv = {video.programs.ffmpeg, "-hide_banner", "-nostdin", "-nostats", "-loglevel", "error",
                "-f", "rawvideo", "-pix_fmt", "rgb24", "-video_size", ("%dx%d"):format(w, h),
                "-framerate", fps_text, "-i", "pipe:0", "-an", "-map", "0:v:0"}
  if ow ~= w or oh ~= h then append(argv, {"-vf", ("pad=%d:%d:0:0:black"):format(ow, oh)}) end
  append(argv, {"-c:v", codec})
  if pix_fmt then append(argv, {"-pix_fmt", pix_fmt}) end
  -- "file:" keeps a name like "concat:a|b" a plain file; the whitelist keeps
  -- the muxer from opening anything but files.
  append(argv, {"-protocol_whitelist", "file", "-y", "file:" .. tmp})

  local child_in, ours = C.output_pipe()
  if not child_in then
    os.remove(tmp)
    return nil, ours
  end
  local log_r, log_w = C.pipe()
  if not log_r then
    P.close(child_in)
    P.close(ours)
    os.remove(tmp)
    return nil, log_w
  end
  local wr, werr = C.writer(ours, log_r, w, h, {timeout = timeout}) -- owns ours and log_r from here
  if not wr then
    for _, fd in ipairs{child_in, ours, log_r, log_w} do P.close(fd) end
    os.remove(tmp)
    return nil, werr
  end
  -- its own process group: a terminal's Ctrl-C reaches only us, so the
  -- file being written can still be finished by close
  local pid, serr = P.spawn(argv, {stdin = child_in, stdout = log_w, stderr = log_w, new_group = true})
  P.close(child_in)
  P.close(log_w)
  if not pid then
    wr:close()
    os.remove(tmp)
    return nil, missing_ffmpeg(argv[1], serr)
  end
  wr:adopt(pid)
  return setmetatable({path = path, width = w, height = h, out_width = ow, out_height = oh, fps = opts.fps,
                       codec = codec, pid = pid, frames = 0, overwrite = opts.overwrite or false,
                       timeout = timeout, _w = wr, _tmp = tmp}, Writer)
end

local function check_writer(fname, w)
  if getmetatable(w) ~= Writer then
    error(("bad argument #1 to '%s' (siamese.VideoWriter expected, got %s)"):format(fname, argcheck.typename(w)), 3)
  end
end

-- Ends a writer that failed or was abandoned: ffmpeg killed and reaped,
-- the temporary removed. Sets and returns w.error (with err).
local function abort(w, err)
  local r = w._w
  w._w = nil
  if r then r:close() end
  if w._tmp then
    os.remove(w._tmp)
    w._tmp = nil
  end
  if err and not w.error then
    local line = r and last_line(r:log())
    w.error = ("video writer '%s': %s%s"):format(w.path, err, line and (": ffmpeg: " .. line) or "")
  end
  return w.error
end

--- Writes one frame: an image of the writer's width x height, 3 channels
-- (a gray one is converted). Returns true, or nil and a message when
-- ffmpeg died or stopped taking frames (then the writer is over: later
-- writes and close give that message, and nothing is left at path).
function Writer:write(img)
  check_writer("write", self)
  if not argcheck.is_image(img) then
    argcheck.error("write", 1, "siamese.Image expected, got %s", argcheck.typename(img))
  end
  if img.channels == 1 and img.width == self.width and img.height == self.height then img = img:to_rgb() end
  if img.channels ~= 3 or img.width ~= self.width or img.height ~= self.height then
    argcheck.error("write", 1, "expected a 3-channel %dx%d image, got a %d-channel %dx%d one", self.width,
                   self.height, img.channels, img.width, img.height)
  end
  local r = self._w
  if not r then
    if self.error then return nil, self.error end
    argcheck.error("write", 1, "the writer of '%s' is closed", self.path)
  end
  local ok, err = r:write(img)
  if not ok then return nil, abort(self, err) end
  self.frames = self.frames + 1
  return true
end

--- Ends the video: closes the pipe, lets ffmpeg finish (at most
-- opts.timeout seconds, then it is killed), reaps it and moves the file
-- to path. Returns true, or nil and a message (ffmpeg's exit status and
-- the last line it printed; nothing is then left at path). Idempotent (the
-- same answer again); also the writer's __close.
function Writer:close()
  check_writer("close", self)
  local r = self._w
  if not r then
    if self.error then return nil, self.error end
    return true
  end
  self._w = nil
  local how, code = r:close(self.timeout)
  local err
  if how == "killed" then
    err = ("ffmpeg did not finish within %g s (killed)"):format(self.timeout)
  elseif how == nil then
    err = "ffmpeg's exit status is unknown"
  elseif how == "signal" or code ~= 0 then
    err = ("ffmpeg failed (%s %d)"):format(how == "exit" and "exit status" or "signal", code)
  else
    local ok, cerr = C.commit(self._tmp, self.path, self.overwrite)
    if ok then
      self._tmp = nil
      return true
    end
    err = cerr
  end
  self._w = r -- for abort's message (already closed: nothing is waited for)
  return nil, abort(self, err)
end

Writer.__close = function(w) w:close() end

-- A writer collected without close: ffmpeg killed, nothing left at path.
Writer.__gc = function(w) abort(w) end

return video
