-- core.process.spawn: an argument vector run with posix_spawnp (no shell),
-- with variables added to the child's environment and, on request, in a
-- process group of its own.
local core = require "siamese.core"
local support = dofile("spec/support.lua")

local P, V = core.process, core.video

-- Runs argv with opts (stdout on a pipe) to its end: its output, exit code.
local function run(argv, opts)
  local r, w = assert(V.pipe())
  opts = opts or {}
  opts.stdout = w
  local pid = assert(P.spawn(argv, opts))
  P.close(w)
  local out = V.read_all(r, 1 << 20, 60) or ""
  P.close(r)
  local _, code = P.waitpid(pid)
  return out, code
end

describe("core.process.spawn", function()
  it("adds env's variables to the parent's environment for the child", function()
    local out, code = run({"sh", "-c", 'printf "%s|%s|%s" "$SIAMESE_NAME" "$SPEC_TWO" "$PATH"'},
      {env = {SIAMESE_NAME = "Tony Blair; rm -rf /", SPEC_TWO = 42}})
    assert.are.equal(0, code)
    assert.are.equal("Tony Blair; rm -rf /|42|" .. os.getenv("PATH"), out)
  end)

  it("replaces a parent's variable of the same name, once", function()
    local out = run({"env"}, {env = {PATH = "/usr/bin:/bin", _x1 = ""}})
    local paths = 0
    for line in out:gmatch("[^\n]+") do
      if line:match("^PATH=") then
        paths = paths + 1
        assert.are.equal("PATH=/usr/bin:/bin", line)
      end
    end
    assert.are.equal(1, paths)
    assert.truthy(out:find("\n_x1=\n", 1, true) or out:find("^_x1=\n"))
    -- without env (and with an empty one) the child has the parent's environment
    assert.are.equal(os.getenv("HOME") or "", run({"sh", "-c", 'printf "%s" "$HOME"'}))
    assert.are.equal(os.getenv("HOME") or "", run({"sh", "-c", 'printf "%s" "$HOME"'}, {env = {}}))
  end)

  it("raises on a bad env, naming spawn and the argument", function()
    local bad = {
      {{["1ABC"] = "x"}, "'env' name '1ABC' must match"},
      {{["A-B"] = "x"}, "'env' name 'A-B' must match"},
      {{[""] = "x"}, "'env' name '' must match"},
      {{"positional"}, "'env' names must be strings"},
      {{A = "x\0y"}, "'env' value of A must not contain a zero byte"},
      {{A = true}, "'env' value of A must be a string, got boolean"},
    }
    for _, c in ipairs(bad) do
      support.assert_error(function() P.spawn({"true"}, {env = c[1]}) end, "bad argument #2 to 'spawn'", c[2])
    end
    support.assert_error(function() P.spawn({"true"}, {env = "A=1"}) end, "bad argument #2 to 'spawn'",
      "'env' must be a table")
    support.assert_error(function() P.spawn({"true"}, {new_group = 1}) end, "bad argument #2 to 'spawn'",
      "'new_group' must be a boolean")
  end)

  -- The fields after the command's ")" in /proc/<pid>/stat: state, ppid, pgrp.
  local function pgrp(pid)
    local f = assert(io.open("/proc/" .. pid .. "/stat", "rb"))
    local stat = f:read("a")
    f:close()
    return tonumber(stat:match("%) %S+ %d+ (%d+)"))
  end

  it("new_group: the child leads a process group of its own", function()
    local pid = assert(P.spawn({"sleep", "30"}, {new_group = true}))
    local own = pgrp(pid)
    P.kill(pid, "KILL")
    P.waitpid(pid)
    assert.are.equal(pid, own)
    -- without it the child is in our group
    pid = assert(P.spawn({"sleep", "30"}))
    local shared = pgrp(pid)
    P.kill(pid, "KILL")
    P.waitpid(pid)
    assert.are.equal(pgrp(P.getpid()), shared)
    assert.are_not.equal(pid, shared)
  end)
end)
