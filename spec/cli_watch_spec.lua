-- siamese watch, run as a child process (argument vectors, no shell), on a
-- test video made here: bundled photos (examples/data/faces, 250x250) as
-- frames at 10 fps in lossless ffv1:
--   Tony_Blair_0001 (8 frames), gray (6), Serena_Williams_0001 (9, two of
--   them blurred), gray (6), Colin_Powell_0002 (8; not enrolled), gray (6),
--   Tony_Blair_0002 (8): a second visit.
-- The gallery holds Tony_Blair and Serena_Williams from OTHER photos (0003,
-- 0004). Detection runs on every 2nd frame; a visit ends after 2 detection
-- frames without its face (the gray gaps have 3); a name needs 2 of the last
-- 3 votes. Checks: every visit once with the right name, the stranger an
-- unknown visit (never named, no door), the hook once per opening, no
-- ffmpeg left after the end, an error mid-way and Ctrl-C.
local siamese = require "siamese"
local core = require "siamese.core"
local json = require "siamese.json"
local support = dofile("spec/support.lua")

local P, V = core.process, core.video
local FACES = "examples/data/faces"

local function photo(name, i)
  return string.format("%s/%s/%s_%04d.jpg", FACES, name, name, i)
end

-- Starts argv with stdout and stderr on pipes: pid, out_fd, err_fd.
local function start(argv)
  local ro, wo = assert(V.pipe())
  local re, we = assert(V.pipe())
  local pid, err = P.spawn(argv, {stdout = wo, stderr = we})
  P.close(wo)
  P.close(we)
  assert(pid, err)
  return pid, ro, re
end

-- Waits for a child started by start: its output, errors and exit status
-- (128 + the signal when killed).
local function finish(pid, ro, re)
  local out = V.read_all(ro, 1 << 22, 600) or ""
  local err = V.read_all(re, 1 << 22, 600) or ""
  P.close(ro)
  P.close(re)
  local _, code, how = P.waitpid(pid)
  return out, err, how == "exit" and code or 128 + code
end

local function run(argv)
  return finish(start(argv))
end

local function siamese_argv(...)
  return {"bin/siamese", ...}
end

local function ffmpeg(...)
  local out, err, code = run{"ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-y", ...}
  assert(code == 0, "ffmpeg failed (run make deps?): " .. out .. err)
end

local sleep = support.sleep

-- The pids and parents of the processes whose command line has ffmpeg and text.
local function ffmpegs_with(text)
  local found = {}
  local names = require("siamese.fs").list_dir("/proc") or {}
  for _, name in ipairs(names) do
    if name:match("^%d+$") then
      local f = io.open("/proc/" .. name .. "/cmdline", "rb")
      local cmd = f and f:read("a") or ""
      if f then f:close() end
      if cmd:find("ffmpeg", 1, true) and cmd:find(text, 1, true) then
        local st = io.open("/proc/" .. name .. "/stat", "rb")
        local stat = st and st:read("a") or ""
        if st then st:close() end
        found[#found + 1] = {pid = tonumber(name), ppid = tonumber(stat:match("^%d+ %b() %a (%d+)"))}
      end
    end
  end
  return found
end

-- Waits (up to a minute: the models load first) for watch's ffmpeg child.
local function wait_for_ffmpeg(watch_pid, text)
  for _ = 1, 600 do
    for _, p in ipairs(ffmpegs_with(text)) do
      if p.ppid == watch_pid then return p.pid end
    end
    sleep(0.1)
  end
  error("no ffmpeg child of siamese watch appeared")
end

local function json_lines(out)
  local list = {}
  for line in out:gmatch("[^\n]+") do list[#list + 1] = assert(json.decode(line), line) end
  return list
end

local function count(s, plain)
  local n, i = 0, 1
  while true do
    local a, b = s:find(plain, i, true)
    if not a then return n end
    n, i = n + 1, b + 1
  end
end

describe("siamese watch", function()
  local dir, clip, gallery_path, common_args

  setup(function()
    dir = support.temp_dir("cli_watch")
    clip = dir .. "/visits.mkv"
    gallery_path = dir .. "/office.gallery"
    -- the frames, as numbered PNGs for ffmpeg's image2 input
    local function png(img) return assert(img:encode("png")) end
    local function load(name, i) return assert(siamese.image.load(photo(name, i))) end
    local serena = load("Serena_Williams", 1)
    local gray = png(siamese.image.new(250, 250, 3, string.rep("\128", 250 * 250 * 3)))
    local blurred = png(serena:resize(12, 12, {method = "area"}):resize(250, 250))
    local plan = {
      {png(load("Tony_Blair", 1)), 8}, {gray, 6},
      {png(serena), 3}, {blurred, 2}, {png(serena), 4}, {gray, 6},
      {png(load("Colin_Powell", 2)), 8}, {gray, 6},
      {png(load("Tony_Blair", 2)), 8},
    }
    local n = 0
    for _, p in ipairs(plan) do
      for _ = 1, p[2] do
        n = n + 1
        support.write_file(string.format("%s/f%03d.png", dir, n), p[1])
      end
    end
    ffmpeg("-framerate", "10", "-i", dir .. "/f%03d.png", "-c:v", "ffv1", "-pix_fmt", "bgr0", clip)
    for i = 1, n do os.remove(string.format("%s/f%03d.png", dir, i)) end
    local out, err, code = run(siamese_argv("enroll", "--gallery", gallery_path, "Tony_Blair",
      photo("Tony_Blair", 3), photo("Tony_Blair", 4)))
    assert(code == 0, out .. err)
    out, err, code = run(siamese_argv("enroll", "--gallery", gallery_path, "Serena_Williams",
      photo("Serena_Williams", 3), photo("Serena_Williams", 4)))
    assert(code == 0, out .. err)
    common_args = {"--gallery", gallery_path, "--source", clip, "--every", "2", "--max-missed", "2",
                   "--min-votes", "2", "--votes", "3", "--threads", "1"}
  end)

  teardown(function()
    if dir then os.execute("rm -rf " .. support.q(dir)) end
  end)

  local function watch_argv(...)
    local argv = siamese_argv("watch")
    for _, a in ipairs(common_args) do argv[#argv + 1] = a end
    for _, a in ipairs{...} do argv[#argv + 1] = a end
    return argv
  end

  local function assert_no_ffmpeg()
    assert.are.same({}, ffmpegs_with(clip))
  end

  it("attendance: each visit recorded once, the stranger as an unknown face with a review PNG (--json)", function()
    local db, review = dir .. "/office.db", dir .. "/review"
    local out, err, code = run(watch_argv("--db", db, "--review", review, "--start", "2026-11-22 09:00", "--json"))
    assert.are.equal(0, code, err)
    assert_no_ffmpeg()
    local events = json_lines(out)
    local named, unknown = {}, {}
    for _, e in ipairs(events) do
      if e.event == "decided" then named[#named + 1] = e.name end
      if e.event == "unknown" then unknown[#unknown + 1] = e end
      assert.is_nil(e.door) -- no --door: no door opens
    end
    assert.are.same({"Tony_Blair", "Serena_Williams", "Tony_Blair"}, named)
    assert.are.equal(1, #unknown)
    assert.is_true(unknown[1].distance > 0.549)
    assert.are.equal(review, unknown[1].crop:match("^(.*)/[^/]+%.png$"))
    local chip = assert(siamese.image.load(unknown[1].crop))
    assert.is_true(chip.width > 0)
    local done = events[#events]
    assert.are.equal("done", done.event)
    assert.are.equal(51, done.frames)
    assert.are.same({3, 1}, {done.named, done.unknown})
    assert.matches("watch: 51 frames", err, 1, true)

    -- the register: Tony twice, Serena once, one unknown face with its descriptor
    local attendance = require "siamese.app.attendance"
    local reg <close> = assert(attendance.open(db, {create = false}))
    local all = assert(reg:events())
    assert.are.equal(4, #all)
    local by_name = {}
    for _, e in ipairs(all) do
      local k = e.name or "?"
      by_name[k] = (by_name[k] or 0) + 1
      assert.are.equal("2026-11-22", e.day)
    end
    assert.are.same({Tony_Blair = 2, Serena_Williams = 1, ["?"] = 1}, by_name)
    local unknowns = assert(reg:unknowns())
    assert.are.equal(1, #unknowns)
    assert.are.equal(192, #unknowns[1].descriptor)
    assert.are.equal(unknown[1].crop, unknowns[1].crop)
    -- first arrivals as the register computes them: the first visit's time
    local report = assert(reg:report("2026-11-22"))
    assert.are.equal(2, #report)
    assert.are.equal("Tony_Blair", report[1].name)
    assert.are.equal("09:00:00", report[1].first)
    assert.are.equal(2, report[1].count)
    assert.are.equal("Serena_Williams", report[2].name)
  end)

  -- Runs of pixels of colour c (within 3 per channel) in img: the longest
  -- in a row and in a column, and how many there are.
  local function colour_runs(img, c)
    local bytes, w, h = img:bytes(), img.width, img.height
    local function is(x, y)
      local i = (y * w + x) * 3 + 1
      local r, g, b = bytes:byte(i, i + 2)
      return math.abs(r - c[1]) <= 3 and math.abs(g - c[2]) <= 3 and math.abs(b - c[3]) <= 3
    end
    local row, col, n = 0, 0, 0
    local down = {}
    for y = 0, h - 1 do
      local streak = 0
      for x = 0, w - 1 do
        if is(x, y) then
          n, streak, down[x] = n + 1, streak + 1, (down[x] or 0) + 1
          row, col = math.max(row, streak), math.max(col, down[x])
        else
          streak, down[x] = 0, 0
        end
      end
    end
    return row, col, n
  end

  it("--out: every frame annotated, the accepted face's box green; an existing file refused", function()
    local out_path = dir .. "/annotated.mkv"
    local out, err, code = run(watch_argv("--json", "--out", out_path))
    assert.are.equal(0, code, err)
    assert_no_ffmpeg()
    local tony
    for _, e in ipairs(json_lines(out)) do
      if e.event == "decided" and e.name == "Tony_Blair" and not tony then tony = e.frame end
    end
    assert.is_number(tony)
    local video = require "siamese.video"
    local v <close> = assert(video.open(out_path))
    assert.are.same({250, 250, 10}, {v.width, v.height, v.fps})
    local green = require("siamese.viz").FACE_COLOURS.accepted
    local n = 0
    for frame, info in v:frames() do
      n = n + 1
      local row, col = colour_runs(frame, green)
      if info.index == 1 then
        assert.is_true(row < 10 and col < 10, "green before any decision") -- undecided: gray
      elseif info.index == tony then
        -- the box around Tony's face: a green edge across and down the face
        assert.is_true(row >= 40 and col >= 40, string.format("no green box edge (%d, %d)", row, col))
      end
    end
    assert.is_nil(v.error)
    assert.are.equal(51, n)
    -- an existing --out is refused before anything starts, and kept
    local size = #support.read_file(out_path)
    local _
    _, err, code = run(watch_argv("--out", out_path))
    assert.are.equal(2, code)
    assert.are.equal("siamese: --out " .. out_path .. " exists (give --overwrite to replace it) (see siamese watch --help)\n",
                     err)
    assert.are.equal(size, #support.read_file(out_path))
  end)

  it("door: 'open for NAME' once per visit, the hook once per opening, the stranger an unknown visitor", function()
    local hook, opened = dir .. "/hook.lua", dir .. "/opened.txt"
    support.write_file(hook, [[
local name = assert(os.getenv("SIAMESE_NAME"))
local f = assert(io.open(arg[1], "a"))
f:write(name, " ", #arg, "\n")
f:close()
print("hook ran for " .. name)
]])
    local out, err, code = run(watch_argv("--door", "--on-open", "lua5.4", "--", hook, opened))
    assert.are.equal(0, code, err)
    assert_no_ffmpeg()
    local opens = {}
    for name in out:gmatch("open for ([%w_]+)") do opens[#opens + 1] = name end
    assert.are.same({"Tony_Blair", "Serena_Williams", "Tony_Blair"}, opens)
    assert.are.equal(1, count(out, "unknown visitor (track"))
    assert.is_nil(out:find("Colin", 1, true))
    -- every hook ran (and was reaped) before watch ended, with the name in
    -- its environment (SIAMESE_NAME) and only the arguments after "--";
    -- its output went to stderr
    assert.are.equal("Tony_Blair 1\nSerena_Williams 1\nTony_Blair 1\n", support.read_file(opened))
    assert.are.equal(3, count(err, "hook ran for "))
    assert.is_nil(out:find("hook ran", 1, true))
    assert.matches("51 frames %(26 detected%): 3 named visits, 1 unknown\n$", out)
  end)

  it("the progress line of a file gives the total and an ETA when the file tells its length", function()
    local stats = require "siamese.app.cli.watch_stats"
    local lines = {}
    local real = io.stderr
    io.stderr = {write = function(_, ...) lines[#lines + 1] = table.concat{...} end} -- luacheck: ignore
    local ok, err = pcall(function()
      local s = stats.new{live = false, fps = 10, every = 1, total = 51}
      s.started = siamese.clock() - 2 -- 20 frames in 2 s: 10 fps, 31 left: 3.1 s
      for i = 1, 20 do s:frame{index = i, time = (i - 1) / 10, dropped = 0} end
      s:_progress(siamese.clock())
      s:finish()
      local u = stats.new{live = false, fps = 10, every = 1} -- length unknown: no ETA
      u:frame{index = 1, time = 0, dropped = 0}
      u:_progress(siamese.clock())
      u:finish()
    end)
    io.stderr = real -- luacheck: ignore
    require("siamese.app.cli").line_open = false
    assert(ok, err)
    assert.matches("^\rwatch: 20 frames of 51 %(0:01%.9 of video%), %d+%.%d fps, ETA 0:0[34], detecting every 1", lines[1])
    assert.matches("^\rwatch: 20 frames %(0:01%.9 of video%)", lines[2]) -- the last line: the frames
    assert.is_nil(lines[3]:find("ETA", 1, true))
    assert.is_nil(lines[3]:find(" of %d"))
  end)

  it("refuses bad options naming the flag, and a damaged gallery before starting (exit 2)", function()
    local cases = {
      {{"--every", "0"}, "--every must be auto or an integer from 1 to 1000, got '0'"},
      {{"--every", "fast"}, "--every must be auto or an integer from 1 to 1000, got 'fast'"},
      {{"--min-votes", "4"}, "--min-votes must be at most --votes (3), got 4"},
      {{"--max-missed", "1.5"}, "--max-missed must be an integer from 1 to 10000, got 1.5"},
      {{"--start", "yesterday"}, "--start must be 'YYYY-MM-DD HH:MM[:SS]', got 'yesterday'"},
      {{"--on-open", "true"}, "--on-open needs --door (it runs at each door opening)"},
      {{"--door", "--", "x"}, "arguments after -- are for the --on-open program: give --on-open PROGRAM"},
      {{"--overwrite"}, "--overwrite is for --out FILE"},
      {{"--out", dir .. "/noext"}, "--out " .. dir .. "/noext: no extension to choose the container (.mkv, .mp4, ...)"},
    }
    for _, c in ipairs(cases) do
      local out, err, code = run(watch_argv(table.unpack(c[1])))
      assert.are.equal(2, code, c[2])
      assert.are.equal("", out)
      assert.are.equal("siamese: " .. c[2] .. " (see siamese watch --help)\n", err)
    end
    -- the conventions of every command: one line, --json on stdout, --help
    local out, err, code = run(siamese_argv("watch", "--json", "--bogus-flag"))
    assert.are.equal(2, code)
    assert.are.same({error = "unknown option '--bogus-flag'"}, json.decode(out))
    assert.are.equal("siamese: unknown option '--bogus-flag' (see siamese watch --help)\n", err)
    out, err, code = run(siamese_argv("watch", "--help"))
    assert.are.equal(0, code)
    assert.matches("^usage: siamese watch ", out)
    assert.matches("exit status: 0 done", out, 1, true)
    assert.are.equal("", err)
    out, err, code = run(siamese_argv("watch", "--gallery", gallery_path))
    assert.are.equal(2, code)
    assert.matches("--source SRC is required", err, 1, true)
    assert.are.equal("", out)
    out, err, code = run(siamese_argv("watch", "--gallery", gallery_path, "--source", dir .. "/none.mkv"))
    assert.are.equal(2, code)
    assert.matches("cannot open", err, 1, true)
    assert.are.equal("", out)
    local damaged = dir .. "/damaged.gallery"
    support.write_file(damaged, support.read_file(gallery_path):sub(1, 100))
    out, err, code = run(siamese_argv("watch", "--gallery", damaged, "--source", clip, "--door", "--json"))
    assert.are.equal(2, code)
    assert.is_string(json.decode(out).error)
    assert.matches("^siamese: ", err)
    assert_no_ffmpeg()
  end)

  it("a gallery in PostgreSQL: names from the database; the door goes on while the database is down", function()
    local cluster = dofile("spec/pg_cluster.lua").start()
    local ok, e = pcall(function()
      for _, who in ipairs{"Tony_Blair", "Serena_Williams"} do
        local out, err, code = run(siamese_argv("enroll", "--gallery", cluster.url, who, photo(who, 3), photo(who, 4)))
        assert.are.equal(0, code, out .. err)
      end
      local argv = siamese_argv("watch", "--gallery", cluster.url, "--source", clip, "--every", "2", "--max-missed",
        "2", "--min-votes", "2", "--votes", "3", "--threads", "1", "--door", "--live")
      local pid, ro, re = start(argv)
      wait_for_ffmpeg(pid, clip) -- the replica is loaded before the video opens
      cluster:stop()             -- while the clip plays (5.5 s, live)
      local out, err, code = finish(pid, ro, re)
      assert.are.equal(0, code, err)
      local opens = {}
      for name in out:gmatch("open for ([%w_]+)") do opens[#opens + 1] = name end
      assert.are.same({"Tony_Blair", "Serena_Williams", "Tony_Blair"}, opens)
      assert.matches("the gallery's database is unreachable, deciding from the gallery in memory", err)
    end)
    cluster:destroy()
    if not ok then error(e, 0) end
  end)

  -- These two read the file as a camera would deliver it (--live: at its
  -- own 10 fps), so ffmpeg is still running whatever the machine's speed.
  it("a source that dies mid-way: the error, exit 2, ffmpeg reaped", function()
    local pid, ro, re = start(watch_argv("--door", "--live"))
    local ff = wait_for_ffmpeg(pid, clip)
    P.kill(ff, "KILL")
    local _, err, code = finish(pid, ro, re)
    assert.are.equal(2, code, err)
    assert.matches("siamese: video '" .. clip .. "': ffmpeg failed", err, 1, true)
    assert_no_ffmpeg()
  end)

  it("a live source faster than the machine: frames dropped, not queued; decisions stay near real time", function()
    -- The clip at 100 fps (each frame 10 times): 550 frames in 5.5 s,
    -- delivered in real time (--live), detection on every frame of one
    -- thread: the source outpaces the processing on any machine here.
    local fast = dir .. "/visits_100fps.mkv"
    ffmpeg("-i", clip, "-vf", "fps=100", "-c:v", "ffv1", fast)
    local argv = siamese_argv("watch", "--gallery", gallery_path, "--source", fast, "--live", "--door", "--json",
      "--every", "1", "--max-missed", "20", "--min-votes", "2", "--votes", "3", "--threads", "1")
    local out, err, code = run(argv)
    assert.are.equal(0, code, err)
    assert.are.same({}, ffmpegs_with(fast))
    local opens, latencies = {}, {}
    for _, e in ipairs(json_lines(out)) do
      if e.door == "open" then opens[#opens + 1] = e.name end
      if e.latency then latencies[#latencies + 1] = e.latency end
    end
    assert.are.same({"Tony_Blair", "Serena_Williams", "Tony_Blair"}, opens)
    -- The statistics lines (one per window of a few seconds): the slowest
    -- window's processing rate, the frames dropped (a running count).
    local fps_done, dropped
    for done, d in err:gmatch("[%d.]+ fps in, ([%d.]+) fps processed, [^\n]- (%d+) dropped") do
      fps_done = math.min(fps_done or math.huge, tonumber(done))
      dropped = tonumber(d)
    end
    assert(fps_done, "no statistics line in: " .. err)
    assert.is_true(dropped > 0, "no frame dropped: " .. err)
    -- Bounded latency: a frame waits at most for the frame being processed
    -- when it arrives, then for its own processing, so the latency of a
    -- decision is about two frame times (1 / fps processed), whatever the
    -- machine's speed; 4 frame times and 0.5 s for the scheduler as the
    -- bound. Queued frames would instead lag by the clip's length times
    -- (1 - processed / in) by the last visit: seconds.
    local bound = 4 / fps_done + 0.5
    assert.is_true(#latencies >= 3)
    for _, l in ipairs(latencies) do
      assert.is_true(l <= bound, ("latency %.2f s over %.2f s (%s)"):format(l, bound, err))
    end
  end)

  it("Ctrl-C: exit 130, one line, ffmpeg stopped and reaped, the --out video so far kept", function()
    local out_path = dir .. "/interrupted.mkv"
    local pid, ro, re = start(watch_argv("--door", "--live", "--out", out_path))
    wait_for_ffmpeg(pid, clip)
    sleep(1.0)
    P.kill(pid, "INT")
    local _, err, code = finish(pid, ro, re)
    assert.are.equal(130, code, err)
    assert.matches("siamese: interrupted\n$", err)
    assert.is_nil(err:find("traceback", 1, true))
    assert_no_ffmpeg()
    assert.are.same({}, ffmpegs_with(out_path))
    -- the annotated video of the frames before Ctrl-C, finished
    local v <close> = assert(require("siamese.video").open(out_path))
    local n = 0
    for frame in v:frames() do
      n = n + 1
      assert.are.same({250, 250}, {frame.width, frame.height})
    end
    assert.is_nil(v.error)
    assert.is_true(n >= 1)
  end)
end)
