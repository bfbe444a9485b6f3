-- siamese.video.writer (ffmpeg encoding raw frames from a pipe) and
-- siamese.viz.annotate_faces. Videos written here are read back with
-- siamese.video.open: ffv1 in .mkv is lossless for rgb24 (pixels compared
-- exactly), the default mp4 (x264, yuv420p) only loosely.
local siamese = require "siamese"
local core = require "siamese.core"
local viz = require "siamese.viz"
local support = dofile("spec/support.lua")

local video, image = siamese.video, siamese.image
local P = core.process

local W, H, FPS = 64, 48, 10

-- Frame k: coloured blocks that move with k (smooth enough for x264).
local function pattern(k, w, h)
  w, h = w or W, h or H
  local img = image.new(w, h, 3)
  for y = 0, h - 1 do
    for x = 0, w - 1 do
      local bx, by = (x + 4 * k) // 16, y // 16
      img:set(x, y, (bx * 70 + k * 20) % 256, (by * 90) % 256, ((bx + by) % 2) * 200 + 20)
    end
  end
  return img
end

local function read_all(path)
  local v = assert(video.open(path))
  local frames = {}
  for f in v:frames() do frames[#frames + 1] = f end
  assert.is_nil(v.error)
  return frames, v
end

local function diffs(a, b)
  local x, y = a:bytes(), b:bytes()
  assert.equal(#x, #y)
  local m, s = 0, 0
  for i = 1, #x do
    local d = math.abs(x:byte(i) - y:byte(i))
    s = s + d
    if d > m then m = d end
  end
  return m, s / #x
end

local sleep, assert_gone = support.sleep, support.assert_gone

-- Waits (at most 5 s) until the child pid is a zombie: dead, not reaped.
local function wait_dead(pid)
  for _ = 1, 500 do
    local f = io.open("/proc/" .. pid .. "/stat")
    local st = f and f:read("a"):match("^%d+ %b() (%a)")
    if f then f:close() end
    if st == "Z" or not f then return end
    sleep(0.01)
  end
  error("child " .. pid .. " still runs")
end

describe("siamese.video.writer", function()
  local dir

  setup(function()
    dir = support.temp_dir("video_writer")
  end)

  teardown(function()
    if dir then support.remove_dir(dir) end
  end)

  -- The names in dir other than the ones given (temporaries left behind).
  local function others(...)
    local keep = {}
    for _, n in ipairs{...} do keep[n] = true end
    local out = {}
    for _, n in ipairs(support.list_dir(dir)) do
      if not keep[n] then out[#out + 1] = n end
    end
    return out
  end

  local function clear()
    for _, n in ipairs(support.list_dir(dir)) do os.remove(dir .. "/" .. n) end
  end

  before_each(clear)

  it("writes ffv1 in .mkv losslessly: every frame, its size and pixels", function()
    local path = dir .. "/out.mkv"
    local w = assert(video.writer(path, {width = W, height = H, fps = FPS, codec = "ffv1"}))
    assert.same({path, W, H, FPS, "ffv1", 0}, {w.path, w.width, w.height, w.fps, w.codec, w.frames})
    assert.is_nil(io.open(path)) -- nothing at path before close
    for k = 1, 6 do assert.is_true(w:write(pattern(k))) end
    assert.equal(6, w.frames)
    local pid = w.pid
    assert.is_true(w:close())
    assert_gone(pid)
    assert.is_true(w:close()) -- idempotent
    assert.same({}, others("out.mkv")) -- no temporary left
    local frames, v = read_all(path)
    assert.equal(6, #frames)
    assert.same({W, H, FPS}, {v.width, v.height, v.fps})
    for k, f in ipairs(frames) do
      assert.same({W, H, 3}, {f.width, f.height, f.channels})
      assert.is_true(diffs(f, pattern(k)) <= 1) -- rgb24 ffv1 is lossless: 0 here
    end
  end)

  it("writes mp4 (x264, yuv420p) by default, close to the frames", function()
    local path = dir .. "/out.mp4"
    local w = assert(video.writer(path, {width = W, height = H, fps = FPS}))
    assert.equal("libx264", w.codec)
    for k = 1, 6 do assert(w:write(pattern(k))) end
    assert.is_true(w:close())
    local frames, v = read_all(path)
    assert.equal(6, #frames)
    assert.same({W, H}, {v.width, v.height})
    for k, f in ipairs(frames) do
      local _, mean = diffs(f, pattern(k))
      local _, other = diffs(f, pattern(k % 6 + 1))
      -- lossy: near its own frame (mean under 8 of 255), far from the next one's
      assert(mean < 8, ("frame %d: mean difference %.2f"):format(k, mean))
      assert(other > 2 * mean, ("frame %d: %.2f to its own, %.2f to another"):format(k, mean, other))
    end
  end)

  it("converts gray images to RGB", function()
    local path = dir .. "/gray.mkv"
    local g = image.new(W, H, 1)
    for y = 0, H - 1 do for x = 0, W - 1 do g:set(x, y, (x * 4 + y) % 256) end end
    local w = assert(video.writer(path, {width = W, height = H, fps = FPS, codec = "ffv1"}))
    assert(w:write(g))
    assert(w:close())
    local frames = read_all(path)
    assert.equal(1, #frames)
    assert.equal(0, (diffs(frames[1], g:to_rgb())))
  end)

  it("refuses to overwrite a file unless told to", function()
    local path = dir .. "/taken.mkv"
    support.write_file(path, "old")
    local w, err = video.writer(path, {width = W, height = H, fps = FPS, codec = "ffv1"})
    assert.is_nil(w)
    assert.matches("exists", err)
    assert.matches("overwrite", err)
    assert.equal("old", support.read_file(path))
    assert.same({}, others("taken.mkv"))
    w = assert(video.writer(path, {width = W, height = H, fps = FPS, codec = "ffv1", overwrite = true}))
    assert(w:write(pattern(1)))
    assert.equal("old", support.read_file(path)) -- replaced only on close
    assert.is_true(w:close())
    assert.equal(1, #read_all(path))
  end)

  it("never replaces a file that appeared while writing (overwrite = false)", function()
    local path = dir .. "/race.mkv"
    local w = assert(video.writer(path, {width = W, height = H, fps = FPS, codec = "ffv1"}))
    assert(w:write(pattern(1)))
    support.write_file(path, "theirs")
    local ok, err = w:close()
    assert.is_nil(ok)
    assert.matches("race.mkv", err)
    assert.equal("theirs", support.read_file(path))
    assert.same({}, others("race.mkv"))
  end)

  it("pads odd sizes to even ones for mp4 (yuv420p); ffv1 keeps them", function()
    local path = dir .. "/odd.mp4"
    local w = assert(video.writer(path, {width = 33, height = 25, fps = FPS}))
    assert.same({33, 25, 34, 26}, {w.width, w.height, w.out_width, w.out_height})
    for k = 1, 3 do assert(w:write(pattern(k, 33, 25))) end
    assert.is_true(w:close())
    local frames = read_all(path)
    assert.equal(3, #frames)
    assert.same({34, 26}, {frames[1].width, frames[1].height})
    local _, mean = diffs(frames[2]:crop(0, 0, 32, 24), pattern(2, 33, 25):crop(0, 0, 32, 24))
    assert(mean < 10, ("mean difference %.2f"):format(mean))

    path = dir .. "/odd.mkv"
    w = assert(video.writer(path, {width = 33, height = 25, fps = FPS, codec = "ffv1"}))
    assert.same({33, 25}, {w.out_width, w.out_height})
    assert(w:write(pattern(1, 33, 25)))
    assert(w:close())
    frames = read_all(path)
    assert.same({33, 25}, {frames[1].width, frames[1].height})
    assert.equal(0, (diffs(frames[1], pattern(1, 33, 25))))
  end)

  it("raises on misuse, naming the function", function()
    local path = dir .. "/misuse.mkv"
    local ok = {width = W, height = H, fps = FPS, codec = "ffv1"}
    support.assert_error(function() video.writer(nil, ok) end, "bad argument #1 to 'writer'")
    support.assert_error(function() video.writer(dir .. "/noext", ok) end, "'writer'", "extension")
    support.assert_error(function() video.writer(path) end, "bad argument #2 to 'writer'")
    support.assert_error(function() video.writer(path, {width = W, height = H}) end, "'fps' is required")
    support.assert_error(function() video.writer(path, {width = 0, height = H, fps = 1}) end, "'width'")
    support.assert_error(function() video.writer(path, {width = W, height = H, fps = 1, colour = 1}) end,
                         "unknown option 'colour'")
    support.assert_error(function() video.writer(path, {width = W, height = H, fps = 1, codec = "a b"}) end,
                         "'codec'")
    assert.same({}, others())

    local w = assert(video.writer(path, ok))
    support.assert_error(function() w:write(pattern(1, 32, 48)) end, "bad argument #1 to 'write'", "64x48",
                         "32x48")
    support.assert_error(function() w:write(image.new(W, H, 4)) end, "'write'", "4-channel")
    support.assert_error(function() w:write("pixels") end, "'write'", "siamese.Image expected")
    support.assert_error(function() w.write(nil, pattern(1)) end, "'write'", "siamese.VideoWriter expected")
    assert.is_true(w:write(pattern(1))) -- the writer still works
    assert.is_true(w:close())
    support.assert_error(function() w:write(pattern(1)) end, "'write'", "closed")
    assert.equal(1, #read_all(path))
  end)

  it("gives nil, message when ffmpeg dies mid-way, and leaves nothing at path", function()
    local path = dir .. "/killed.mkv"
    local w = assert(video.writer(path, {width = W, height = H, fps = FPS, codec = "ffv1"}))
    assert(w:write(pattern(1)))
    local pid = w.pid
    assert(P.kill(pid, "KILL"))
    wait_dead(pid)
    local ok, err = w:write(pattern(2))
    assert.is_nil(ok)
    assert.matches("killed.mkv", err)
    assert.matches("broken pipe", err)
    assert_gone(pid) -- reaped at once
    local ok2, err2 = w:write(pattern(3))
    assert.is_nil(ok2)
    assert.equal(err, err2)
    ok, err2 = w:close()
    assert.is_nil(ok)
    assert.equal(err, err2)
    assert.same({}, others()) -- neither the file nor its temporary
  end)

  it("gives ffmpeg's own message when it fails (an unknown codec)", function()
    local path = dir .. "/bad.mkv"
    local w = assert(video.writer(path, {width = W, height = H, fps = FPS, codec = "no_such_codec"}))
    local ok, err = w:write(pattern(1)) -- may still fit in the pipe
    if ok then ok, err = w:close() end
    assert.is_nil(ok)
    assert.matches("ffmpeg", err)
    assert.matches("no_such_codec", err) -- ffmpeg: Unknown encoder 'no_such_codec'
    assert.same({}, others())
  end)

  it("waits a bounded time for ffmpeg, then kills it", function()
    -- A stand-in that never reads its input nor exits.
    local hang = dir .. "/hang.sh"
    support.write_file(hang, "#!/bin/sh\nexec sleep 30\n")
    os.execute("chmod +x '" .. hang .. "'")
    local saved = video.programs.ffmpeg
    video.programs.ffmpeg = hang
    local w = assert(video.writer(dir .. "/hang.mkv", {width = W, height = H, fps = FPS, codec = "ffv1",
                                                        timeout = 0.3}))
    video.programs.ffmpeg = saved
    local pid = w.pid
    local ok, err
    for _ = 1, 100 do -- the pipe fills up, then a write times out
      ok, err = w:write(pattern(1))
      if not ok then break end
    end
    assert.is_nil(ok)
    assert.matches("took no frame data for 0.3 s", err)
    assert_gone(pid)

    video.programs.ffmpeg = hang
    w = assert(video.writer(dir .. "/hang.mkv", {width = W, height = H, fps = FPS, codec = "ffv1", timeout = 0.3}))
    video.programs.ffmpeg = saved
    pid = w.pid
    assert(w:write(pattern(1)))
    local t0 = core.clock()
    ok, err = w:close()
    assert.is_nil(ok)
    assert.matches("did not finish within 0.3 s", err)
    assert(core.clock() - t0 < 5)
    assert_gone(pid)
    assert.same({"hang.sh"}, others())
  end)

  it("reaps ffmpeg on <close> (the file kept) and on garbage collection (the file dropped)", function()
    local path = dir .. "/scoped.mkv"
    local pid
    do
      local w <close> = assert(video.writer(path, {width = W, height = H, fps = FPS, codec = "ffv1"}))
      pid = w.pid
      assert(w:write(pattern(1)))
    end
    assert_gone(pid)
    assert.equal(1, #read_all(path))

    path = dir .. "/dropped.mkv"
    local w = assert(video.writer(path, {width = W, height = H, fps = FPS, codec = "ffv1"}))
    pid = w.pid
    assert(w:write(pattern(1)))
    w = nil -- luacheck: ignore
    collectgarbage()
    collectgarbage()
    assert_gone(pid)
    assert.same({"scoped.mkv"}, others())
  end)

  it("says to run make deps when ffmpeg is missing", function()
    local saved = video.programs.ffmpeg
    video.programs.ffmpeg = dir .. "/no-such-ffmpeg"
    local w, err = video.writer(dir .. "/none.mkv", {width = W, height = H, fps = FPS})
    video.programs.ffmpeg = saved
    assert.is_nil(w)
    assert.matches("make deps", err)
    assert.same({}, others())
  end)

  it("gives nil, message for a folder that does not exist", function()
    local w, err = video.writer(dir .. "/missing/out.mkv", {width = W, height = H, fps = FPS})
    assert.is_nil(w)
    assert.matches("missing/out.mkv", err)
  end)
end)

describe("siamese.viz.annotate_faces", function()
  local C = viz.FACE_COLOURS

  local function same_region(a, b, x0, y0, x1, y1)
    for y = y0, y1 do
      for x = x0, x1 do
        if table.concat({a:get(x, y)}, ",") ~= table.concat({b:get(x, y)}, ",") then return false end
      end
    end
    return true
  end

  it("draws boxes, points and labels in the decision's colour", function()
    local img = image.new(300, 140, 3)
    local faces = {
      {box = {x = 10, y = 40, width = 30, height = 30}, points = {{20, 50}}, name = "ada", id = 3,
       state = "accepted"},
      {box = {x = 100, y = 40, width = 30, height = 30}, id = 4, state = "unknown", name = "nobody"},
      {box = {x = 260, y = 2, width = 30, height = 40}, points5 = {{270, 12}}}, -- undecided, at the top
      {box = {x = 70, y = 110, width = 20, height = 20}, accepted = true, name = "bob"},
      {box = {x = 100, y = 110, width = 20, height = 20}, state = "refused", label = "too small"},
    }
    assert.equal(img, viz.annotate_faces(img, faces))
    assert.same(C.accepted, {img:get(10, 55)})   -- left edge
    assert.same(C.accepted, {img:get(40, 55)})   -- right edge
    assert.same(C.unknown, {img:get(100, 55)})
    assert.same(C.undecided, {img:get(260, 20)})
    assert.same(C.accepted, {img:get(70, 120)})
    assert.same(C.refused, {img:get(100, 120)})
    assert.same({0, 0, 0}, {img:get(25, 62)})   -- inside stays
    assert.same({255, 220, 0}, {img:get(21, 50)}) -- a point
    assert.same({255, 220, 0}, {img:get(271, 12)})
    -- the labels: the text the face says, above the box (below it at the top)
    local want = image.new(300, 140, 3)
    viz.draw_text(want, 10, 40 - 19, "ADA #3", {255, 255, 255}, 2, C.accepted)
    viz.draw_text(want, 100, 40 - 19, "UNKNOWN #4", {255, 255, 255}, 2, C.unknown)
    assert.is_true(same_region(img, want, 9, 20, 10 + 6 * 12, 21 + 16))
    assert.is_true(same_region(img, want, 99, 20, 100 + 10 * 12, 21 + 16))
    local below = image.new(300, 140, 3)
    local text = "UNDECIDED"
    local tx = 300 - #text * 12 - 1 -- moved left to stay in the picture
    viz.draw_text(below, tx, 2 + 40 + 3, text, {255, 255, 255}, 2, C.undecided)
    assert.is_true(same_region(img, below, tx - 1, 44, 299, 45 + 16))
  end)

  it("annotated frames survive a lossless video", function()
    local path = support.temp_dir("video_writer") .. "/annotated.mkv"
    local w = assert(video.writer(path, {width = W, height = H, fps = FPS, codec = "ffv1"}))
    local frame = pattern(1)
    viz.annotate_faces(frame, {{box = {x = 10, y = 20, width = 20, height = 20}, state = "accepted", name = "a"}},
                       {thickness = 1, text_scale = 1})
    assert(w:write(frame))
    assert(w:close())
    local v = assert(video.open(path))
    local got = assert(v:read())
    v:close()
    assert.same(C.accepted, {got:get(10, 30)})
    assert.equal(0, (diffs(got, frame)))
    os.remove(path)
    os.remove(path:match("^(.*)/"))
  end)

  it("raises on misuse, naming annotate_faces and the argument", function()
    local img = image.new(20, 20, 3)
    support.assert_error(function() viz.annotate_faces(image.new(20, 20, 1), {}) end,
                         "bad argument #1 to 'annotate_faces'", "RGB")
    support.assert_error(function() viz.annotate_faces("img", {}) end, "#1 to 'annotate_faces'")
    support.assert_error(function() viz.annotate_faces(img, nil) end, "#2 to 'annotate_faces'")
    support.assert_error(function() viz.annotate_faces(img, {{}}) end, "#2 to 'annotate_faces'", "faces[1].box")
    support.assert_error(function() viz.annotate_faces(img, {{box = {x = 1, y = 1, width = 2, height = 2},
                                                              state = "maybe"}}) end, "faces[1].state")
    support.assert_error(function() viz.annotate_faces(img, {}, 3) end, "#3 to 'annotate_faces'")
    support.assert_error(function() viz.annotate_faces(img, {}, {thickness = 0}) end, "thickness")
    assert.equal(img, viz.annotate_faces(img, {})) -- no faces: nothing drawn
  end)
end)
