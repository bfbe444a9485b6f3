-- siamese.video and core.video: frames from ffmpeg through a pipe. The test
-- videos are made here with ffmpeg (lossless ffv1 in .mkv, so pixels can be
-- compared exactly); without ffmpeg the spec fails, saying to run make deps.
local siamese = require "siamese"
local core = require "siamese.core"
local support = dofile("spec/support.lua")

local video = siamese.video
local P, V = core.process, core.video

-- Runs argv (no shell) to its end; true and its output when it exits with 0.
local function run(argv)
  local r, w = assert(V.pipe())
  local pid, err = P.spawn(argv, {stdout = w, stderr = w})
  P.close(w)
  if not pid then
    P.close(r)
    return nil, err
  end
  local out = V.read_all(r, 1 << 20, 120)
  P.close(r)
  local _, code, how = P.waitpid(pid)
  return how == "exit" and code == 0, out
end

local sleep, assert_gone = support.sleep, support.assert_gone

local function ffmpeg(...)
  local argv = {"ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-y", ...}
  local ok, out = run(argv)
  assert(ok, "ffmpeg failed: " .. table.concat(argv, " ") .. "\n" .. tostring(out))
end

-- Largest difference between two images' bytes.
local function max_diff(a, b)
  local x, y = a:bytes(), b:bytes()
  assert.equal(#x, #y)
  local m = 0
  for i = 1, #x do
    local d = math.abs(x:byte(i) - y:byte(i))
    if d > m then m = d end
  end
  return m
end

describe("siamese.video", function()
  local dir, clip, still, still_png, solid, long, audio

  setup(function()
    local ok, err = run{"ffmpeg", "-version"}
    assert(ok, "siamese.video needs ffmpeg; run `make deps` (" .. tostring(err) .. ")")
    ok, err = run{"ffprobe", "-version"}
    assert(ok, "siamese.video needs ffprobe (Debian's ffmpeg); run `make deps` (" .. tostring(err) .. ")")
    dir = support.temp_dir("video")
    clip, still, still_png = dir .. "/clip.mkv", dir .. "/still.mkv", dir .. "/still.png"
    solid, long, audio = dir .. "/solid.mkv", dir .. "/long.mkv", dir .. "/audio.wav"
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=64x48:rate=10", "-t", "2", "-c:v", "ffv1", clip)
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=64x48:rate=10", "-t", "3", "-c:v", "ffv1", long)
    ffmpeg("-f", "lavfi", "-i", "color=c=0x3366CC:size=64x48:rate=10,format=rgb24", "-t", "1", "-c:v", "ffv1", solid)
    ffmpeg("-f", "lavfi", "-i", "sine=duration=1", audio)
    -- A photo (scaled to 80 px wide by siamese.image) as a 5-frame still video.
    local photo = assert(siamese.image.load("spec/fixtures/faceapi/sample1.jpg"))
    local small = photo:resize(80, math.floor(80 * photo.height / photo.width))
    assert(small:save(still_png))
    ffmpeg("-loop", "1", "-framerate", "5", "-i", still_png, "-t", "1", "-c:v", "ffv1", still)
  end)

  teardown(function()
    if dir then support.remove_dir(dir) end
  end)

  it("reads every frame of a file, in order, with its index and time", function()
    local v = assert(video.open(clip))
    assert.same({64, 48, 10, false}, {v.width, v.height, v.fps, v.live})
    local pid, n = v.pid, 0
    for frame, info in v:frames() do
      n = n + 1
      assert.same({64, 48, 3}, {frame.width, frame.height, frame.channels})
      assert.equal(n, info.index)
      assert.near((n - 1) / 10, info.time, 1e-9)
      assert.equal(0, info.dropped)
    end
    assert.equal(20, n)
    assert.is_nil(v.error)
    assert_gone(pid)
    assert.is_nil(v:read()) -- after the end, the end again
  end)

  it("tells a file's number of frames and duration, and runs ffmpeg in a process group of its own", function()
    local v <close> = assert(video.open(clip))
    assert.equal(20, v.frame_count)
    assert.near(2, v.duration, 0.05)
    local f = assert(io.open("/proc/" .. v.pid .. "/stat", "rb"))
    local stat = f:read("a")
    f:close()
    assert.equal(v.pid, tonumber(stat:match("%) %S+ %d+ (%d+)"))) -- its pgid is its pid: no terminal Ctrl-C
    local n = 0
    for _ in v:frames() do n = n + 1 end
    assert.equal(v.frame_count, n)
    -- at another rate: the frames at that rate
    local fast <close> = assert(video.open(clip, {fps = 20}))
    assert.equal(40, fast.frame_count)
    assert.near(2, fast.duration, 0.05)
    local s <close> = assert(video.open(still))
    assert.equal(5, s.frame_count)
    -- an mp4 tells nb_frames
    local mp4 = dir .. "/count.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=64x48:rate=10", "-t", "1.5", "-c:v", "mpeg4", mp4)
    local m <close> = assert(video.open(mp4))
    assert.equal(15, m.frame_count)
    assert.near(1.5, m.duration, 0.05)
    n = 0
    for _ in m:frames() do n = n + 1 end
    assert.equal(15, n)
  end)

  it("gives the pixels of the photo a still video was made from", function()
    local photo = assert(siamese.image.load(still_png))
    local v <close> = assert(video.open(still))
    local n = 0
    for frame in v:frames() do
      n = n + 1
      assert.same({photo.width, photo.height}, {frame.width, frame.height})
      assert.is_true(max_diff(photo, frame) <= 1) -- ffv1 is lossless: 0 here
    end
    assert.equal(5, n)
  end)

  it("scales and sets the rate when asked", function()
    local v = assert(video.open(solid, {width = 32, height = 20, fps = 5}))
    assert.same({32, 20, 5}, {v.width, v.height, v.fps})
    local want = siamese.image.new(32, 20, 3)
    for y = 0, 19 do for x = 0, 31 do want:set(x, y, 0x33, 0x66, 0xCC) end end
    local n = 0
    for frame, info in v:frames() do
      n = n + 1
      assert.same({32, 20}, {frame.width, frame.height})
      assert.is_true(max_diff(want, frame) <= 1)
      assert.near((n - 1) / 5, info.time, 1e-9)
    end
    assert.equal(5, n)

    local times = {}
    for _, info in assert(video.open(clip, {fps = 20})):frames() do times[#times + 1] = info.time end
    assert.equal(40, #times)
    assert.near(1.95, times[40], 1e-9)

    local w = assert(video.open(clip, {width = 32})) -- the height keeps the aspect ratio
    assert.same({32, 24}, {w.width, w.height})
    w:close()
  end)

  it("returns nil and a message for a missing or unreadable source", function()
    local v, err = video.open(dir .. "/nothing.mkv")
    assert.is_nil(v)
    assert.matches("cannot open .*nothing.mkv.*No such file", err)
    v, err = video.open("README.md")
    assert.is_nil(v)
    assert.matches("cannot read 'README.md': Invalid data", err)
    v, err = video.open(audio)
    assert.is_nil(v)
    assert.matches("no video stream", err)
    v, err = video.open("/dev/video99")
    assert.is_nil(v)
    assert.matches("cannot open '/dev/video99'", err)
    local saved = video.programs.ffprobe
    video.programs.ffprobe = dir .. "/no-ffprobe"
    v, err = video.open(clip)
    video.programs.ffprobe = saved
    assert.is_nil(v)
    assert.matches("make deps", err)
  end)

  it("raises on misuse, naming the function and the argument", function()
    support.assert_error(function() video.open(42) end, "bad argument #1 to 'open'", "string expected, got number")
    -- the message blames the caller's line, not the library's
    support.assert_error(function() video.open(clip, {width = 0}) end, "video_spec.lua:")
    support.assert_error(function() video.open(clip, 5) end, "bad argument #2 to 'open'", "table expected")
    support.assert_error(function() video.open(clip, {width = 0}) end, "#2 to 'open'", "'width' must be an integer 1..65535")
    support.assert_error(function() video.open(clip, {fps = -1}) end, "#2 to 'open'", "'fps' must be a number")
    support.assert_error(function() video.open(clip, {live = "yes"}) end, "#2 to 'open'", "'live' must be a boolean")
    support.assert_error(function() video.open(clip, {sizes = 1}) end, "#2 to 'open'", "unknown option 'sizes'")
    support.assert_error(function() video.open("ftp://host/x") end, "#1 to 'open'", "unsupported URL scheme 'ftp'")
    local v <close> = assert(video.open(clip))
    support.assert_error(function() v.read(42) end, "bad argument #1 to 'read'", "siamese.Video expected")
    support.assert_error(function() v.frames({}) end, "bad argument #1 to 'frames'", "siamese.Video expected")
    support.assert_error(function() v.close("x") end, "bad argument #1 to 'close'", "siamese.Video expected")
  end)

  it("drops frames from a live source read slower than real time, keeping latency bounded", function()
    local t0 = siamese.clock()
    local v <close> = assert(video.open(long, {live = true, realtime = true}))
    assert.is_true(v.live)
    local prev, jumps, total, reads = 0, 0, 0, 0
    while true do
      local frame, info = v:read()
      if not frame then break end
      reads = reads + 1
      assert.equal(prev + info.dropped + 1, info.index)
      if info.index > prev + 1 then jumps = jumps + 1 end
      total = total + info.dropped
      prev = info.index
      -- The frame handed over is recent: at most a generous 2 s behind the
      -- wall clock (ffmpeg's start-up included), never far ahead of it.
      local lag = siamese.clock() - t0 - info.time
      assert.is_true(lag < 2, "frame " .. info.index .. " is " .. lag .. " s behind")
      assert.is_true(lag > -1, "frame " .. info.index .. " is " .. -lag .. " s ahead of real time")
      sleep(0.3) -- the consumer takes 3 frame periods
    end
    assert.is_nil(v.error)
    assert.equal(30, prev)                -- the last frame is always delivered
    assert.equal(30, reads + total)       -- every frame read or counted as dropped
    assert.is_true(jumps > 0 and total > 0)
  end)

  it("never drops frames of a file read slowly, even in real time", function()
    local v <close> = assert(video.open(solid, {realtime = true}))
    local n = 0
    for _, info in v:frames() do
      n = n + 1
      assert.same({n, 0}, {info.index, info.dropped})
      if n <= 4 then sleep(0.2) end
    end
    assert.equal(10, n)
  end)

  describe("leaves no child behind", function()
    it("after close in the middle of the stream", function()
      local v = assert(video.open(long))
      assert(v:read())
      v:close()
      v:close() -- idempotent
      assert_gone(v.pid)
      assert.is_nil(v:read())
    end)

    it("after breaking out of a frames loop", function()
      local v = assert(video.open(long, {live = true}))
      for _, info in v:frames() do
        if info.index >= 1 then break end
      end
      assert_gone(v.pid)
    end)

    it("after an error thrown in the loop body", function()
      local v = assert(video.open(long))
      local ok, err = pcall(function()
        for _ in v:frames() do error("boom") end
      end)
      assert.is_false(ok)
      assert.matches("boom", err)
      assert_gone(v.pid)
    end)

    it("after <close>", function()
      local pid
      do
        local v <close> = assert(video.open(long))
        pid = v.pid
        assert(v:read())
      end
      assert_gone(pid)
    end)

    it("after garbage collection", function()
      local pid = assert(video.open(long)).pid
      collectgarbage()
      collectgarbage()
      assert_gone(pid)
    end)

    it("after ffmpeg dies in the middle: nil and a message", function()
      local v = assert(video.open(long, {realtime = true}))
      assert(v:read())
      P.kill(v.pid, "KILL")
      local frame, err
      repeat frame, err = v:read() until not frame
      assert.is_string(err)
      assert.matches("video '.*long.mkv': ", err)
      assert.equal(err, v.error)
      assert_gone(v.pid)
    end)
  end)
end)

describe("core.video reader", function()
  local dir
  setup(function() dir = support.temp_dir("video_core") end)
  teardown(function() support.remove_dir(dir) end)

  -- Frame k of 4x2 pixels: every byte is k.
  local FRAME = 4 * 2 * 3
  local function frames(first, count, extra)
    local t = {}
    for k = first, first + count - 1 do t[#t + 1] = string.rep(string.char(k), FRAME) end
    return table.concat(t) .. string.rep(string.char(first + count), extra or 0)
  end

  -- Writes bytes into the pipe's write end through `cat` (waits for it).
  local function feed(w, bytes)
    local path = dir .. "/feed"
    support.write_file(path, bytes)
    local pid = assert(P.spawn({"cat", path}, {stdout = w}))
    P.waitpid(pid)
  end

  it("reads whole frames in order from a file source, then the end", function()
    local r, w = assert(V.pipe())
    local reader = assert(V.reader(r, nil, 4, 2))
    feed(w, frames(1, 3))
    P.close(w)
    for k = 1, 3 do
      local img, index, dropped = reader:read()
      assert.same({4, 2, 3}, {img.width, img.height, img.channels})
      assert.same({k, 0}, {index, dropped})
      assert.equal(string.rep(string.char(k), FRAME), img:bytes())
    end
    assert.is_nil(reader:read())
    assert.is_nil(reader:read())
    assert.equal(3, reader:frames())
    reader:close()
  end)

  -- The live reader's thread takes what cat wrote a moment later: wait
  -- (up to 10 s) until it has counted n complete frames.
  local function await_frames(reader, n)
    local t0 = siamese.clock()
    while reader:frames() < n and siamese.clock() - t0 < 10 do support.sleep(0.01) end
    assert.equal(n, reader:frames())
  end

  it("live: hands over the newest complete frame and counts the dropped ones", function()
    local r, w = assert(V.pipe())
    local reader = assert(V.reader(r, nil, 4, 2, {live = true}))
    feed(w, frames(1, 3, 10)) -- 3 frames and 10 bytes of the 4th
    await_frames(reader, 3)
    local img, index, dropped = reader:read()
    assert.same({3, 2}, {index, dropped})
    assert.equal(string.rep("\3", FRAME), img:bytes())
    feed(w, string.rep("\4", FRAME - 10) .. frames(5, 1, 5)) -- the rest of 4, 5, a part of 6
    await_frames(reader, 5)
    img, index, dropped = reader:read()
    assert.same({5, 1}, {index, dropped})
    assert.equal(string.rep("\5", FRAME), img:bytes())
    P.close(w)
    local none, err = reader:read()
    assert.is_nil(none)
    assert.matches("ended in the middle of a frame %(5 of 24 bytes%)", err)
    assert.is_nil(reader:read())
    reader:close()
  end)

  it("live: drains the pipe while nobody reads, so the source never waits on it", function()
    -- 64 frames of 64x64 (768 KiB, over ten times what a pipe holds) from
    -- cat, never read meanwhile: cat can only finish because the reader's
    -- thread keeps taking them. Without it cat would block on the full
    -- pipe; the 20 s deadline turns that into a failure, not a hang.
    local r, w = assert(V.pipe())
    local reader = assert(V.reader(r, nil, 64, 64, {live = true}))
    local size = 64 * 64 * 3
    local parts = {}
    for k = 1, 64 do parts[k] = string.rep(string.char(k), size) end
    local path = dir .. "/burst"
    support.write_file(path, table.concat(parts))
    local pid = assert(P.spawn({"cat", path}, {stdout = w}))
    P.close(w)
    local t0, exited = siamese.clock(), false
    while not exited and siamese.clock() - t0 < 20 do
      exited = P.waitpid(pid, true)
      if not exited then support.sleep(0.02) end
    end
    if not exited then P.kill(pid) P.waitpid(pid) end
    assert.is_true(exited, "cat is blocked on the pipe: the reader does not drain it")
    local img, index, dropped = reader:read()
    assert.same({64, 63}, {index, dropped})
    assert.equal(string.rep("\64", size), img:bytes())
    assert.is_nil(reader:read()) -- then the clean end
    reader:close()
  end)

  it("returns nil and a message when no frame comes in time", function()
    local r, w = assert(V.pipe())
    local reader = assert(V.reader(r, nil, 4, 2, {timeout = 0.2}))
    local img, err = reader:read()
    assert.is_nil(img)
    assert.matches("no frame within 0.2 s", err)
    reader:close()
    P.close(w)
  end)

  it("keeps the end of the child's stderr and reaps the child", function()
    local r, w = assert(V.pipe())
    local lr, lw = assert(V.pipe())
    local reader = assert(V.reader(r, lr, 4, 2))
    local pid = assert(P.spawn({"ls", dir .. "/missing"}, {stdout = w, stderr = lw}))
    P.close(w)
    P.close(lw)
    reader:adopt(pid)
    assert.is_nil(reader:read())
    local how, code = reader:close(5)
    assert.equal("exit", how)
    assert.is_true(code ~= 0)
    assert.matches("missing", reader:log())
    assert.is_nil(reader:close()) -- idempotent: no child any more
    assert_gone(pid)
  end)

  it("stops a child that does not end by itself", function()
    local r, w = assert(V.pipe())
    local reader = assert(V.reader(r, nil, 4, 2))
    local pid = assert(P.spawn({"sleep", "30"}, {stdout = w}))
    P.close(w)
    reader:adopt(pid)
    assert.equal("stopped", reader:close())
    assert_gone(pid)
  end)

  it("read_all reads a child's output to its end", function()
    local ok, out = run{"printf", "%s", "hello"}
    assert.is_true(ok)
    assert.equal("hello", out)
    local r, w = assert(V.pipe())
    feed(w, string.rep("x", 100))
    P.close(w)
    local s, err = V.read_all(r, 10)
    assert.is_nil(s)
    assert.matches("longer than 10 bytes", err)
    P.close(r)
  end)

  it("raises on misuse", function()
    local r, w = assert(V.pipe())
    support.assert_error(function() V.reader(r, nil, 0, 2) end, "bad argument #3 to 'reader'", "width must be 1..65535")
    support.assert_error(function() V.reader(r, nil, 4, 70000) end, "bad argument #4 to 'reader'")
    support.assert_error(function() V.reader(w, nil, 4, 2) end, "bad argument #1 to 'reader'", "non-blocking")
    support.assert_error(function() V.reader(r, nil, 4, 2, {timeout = -1}) end, "timeout must be")
    support.assert_error(function() V.read_all(r, -1) end, "bad argument #2 to 'read_all'")
    local reader = assert(V.reader(r, nil, 4, 2))
    support.assert_error(function() reader:adopt(0) end, "to 'adopt'", "pid must be a positive integer")
    support.assert_error(function() reader.read(42) end, "bad argument #1 to 'read'")
    reader:close()
    support.assert_error(function() reader:adopt(1) end, "the reader is closed")
    P.close(w)
  end)
end)
