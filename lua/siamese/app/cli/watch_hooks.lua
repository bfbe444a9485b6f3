--- The --on-open hook of siamese watch: a program run once per door
-- opening, from an argument vector (core.process.spawn: posix_spawnp, no
-- shell), with the name in its environment as SIAMESE_NAME (never in a
-- shell string, never among its arguments).
--
--   local hooks = require "siamese.app.cli.watch_hooks"
--   local h <close> = hooks.new{"/usr/local/bin/relay", "--pin", "17"}
--   h:run("Tony_Blair")   -- runs: /usr/local/bin/relay --pin 17
--                         -- with SIAMESE_NAME=Tony_Blair added to the environment
--   h:poll()              -- reaps the hooks that have ended (call often)
--
-- The video is never held up by a hook: it runs while the frames go on and
-- is reaped by poll once it has ended. At close (the end of the video, an
-- error, Ctrl-C) the hooks still running get hooks.GRACE seconds to end,
-- then SIGTERM, then SIGKILL, and are reaped: none is left behind. A hook's
-- standard output goes to our standard error (stdout stays the events').
-- A hook that cannot be started or that fails is reported on stderr; the
-- watch goes on.
local P = require("siamese.core").process
local V = require("siamese.core").video

local hooks = {
  GRACE = 5,     -- seconds the hooks still running at close get to end
  TERM_WAIT = 1, -- then seconds between SIGTERM and SIGKILL
}

local Hooks = {}
Hooks.__index = Hooks

local function warn(fmt, ...)
  local cli = require "siamese.app.cli"
  if cli.line_open then io.stderr:write("\n") end
  cli.line_open = false
  io.stderr:write("siamese: ", string.format(fmt, ...), "\n")
end

-- Waits about s seconds without a process or a busy loop: a read with a
-- timeout on a pipe nobody writes to.
local function sleep(self, s)
  if not self._sleep_r then self._sleep_r, self._sleep_w = V.pipe() end
  if self._sleep_r then V.read_all(self._sleep_r, 1, s) end
end

--- Hooks running argv (a list of strings: the program, then its
-- arguments; each run gets the name as SIAMESE_NAME).
function hooks.new(argv)
  return setmetatable({argv = argv, running = {}, started = 0, failed = 0}, Hooks)
end

--- Runs the hook for name. Returns its pid, or nil, message (also
-- reported on stderr).
function Hooks:run(name)
  local pid, err = P.spawn(self.argv, {stdout = 2, env = {SIAMESE_NAME = name}})
  if not pid then
    self.failed = self.failed + 1
    warn("--on-open %s: cannot run it: %s", self.argv[1], tostring(err))
    return nil, err
  end
  self.started = self.started + 1
  self.running[pid] = name
  return pid
end

-- Reaps pid if it has ended (true), reporting a failure.
local function reap(self, pid, hang)
  local exited, code, how = P.waitpid(pid, not hang)
  if exited == false then return false end
  local name = self.running[pid]
  self.running[pid] = nil
  if exited == nil then return true end -- not our child any more
  if how ~= "exit" or code ~= 0 then
    self.failed = self.failed + 1
    warn("--on-open %s for %s: %s %d", self.argv[1], name, how == "exit" and "exit status" or "signal", code)
  end
  return true
end

--- Reaps the hooks that have ended; returns how many still run.
function Hooks:poll()
  local n = 0
  for pid in pairs(self.running) do
    if not reap(self, pid) then n = n + 1 end
  end
  return n
end

--- Waits for the running hooks (hooks.GRACE seconds), then stops the rest
-- (SIGTERM, SIGKILL) and reaps them. Idempotent; also __close.
function Hooks:close()
  local deadline = require("siamese").clock() + hooks.GRACE
  while self:poll() > 0 and require("siamese").clock() < deadline do sleep(self, 0.05) end
  for _, sig in ipairs{"TERM", "KILL"} do
    if next(self.running) == nil then break end
    for pid in pairs(self.running) do P.kill(pid, sig) end
    local until_ = require("siamese").clock() + hooks.TERM_WAIT
    while self:poll() > 0 and require("siamese").clock() < until_ do sleep(self, 0.02) end
  end
  for pid in pairs(self.running) do reap(self, pid, true) end -- after SIGKILL: gone soon
  if self._sleep_r then
    P.close(self._sleep_r)
    P.close(self._sleep_w)
    self._sleep_r, self._sleep_w = nil, nil
  end
end

Hooks.__close = Hooks.close

return hooks
