-- A throw-away PostgreSQL cluster for the specs: `initdb` into a new
-- directory under /tmp, the server started as a child process listening on
-- a Unix socket in that directory only (no TCP), stopped and removed at the
-- end. As root (CI) the server programs run as the `postgres` user through
-- setpriv (initdb refuses root); otherwise as the caller. Every program is
-- started from an argument vector, never a shell. Load with
--   local pg_cluster = dofile("spec/pg_cluster.lua")
--   local c = pg_cluster.start()      -- error when PostgreSQL is missing (make deps installs it)
--   ... c.conninfo, c.url, c:new_database(name) (its URL) ...
--   c:stop() / c:start() / c:kill()   -- for tests of a database that goes away
--   c:destroy()                       -- stops it and removes the directory
local core = require "siamese.core"
local support = dofile("spec/support.lua")

local P, V = core.process, core.video
local M = {}

-- The newest /usr/lib/postgresql/N/bin that has initdb and postgres.
local function bindir()
  local best
  for _, name in ipairs(require("siamese.fs").list_dir("/usr/lib/postgresql") or {}) do
    local n = tonumber(name)
    local dir = "/usr/lib/postgresql/" .. name .. "/bin"
    if n and io.open(dir .. "/initdb") and io.open(dir .. "/postgres") and (not best or n > best.n) then
      best = {n = n, dir = dir}
    end
  end
  return best and best.dir
end

local function is_root()
  local f = io.open("/proc/self/status")
  local s = f and f:read("a") or ""
  if f then f:close() end
  return s:match("\nUid:%s+0%s") ~= nil
end

-- argv run in dir (which the server user can enter: the server programs
-- look at their working directory) as the postgres user when we are root.
local function as_server_user(dir, argv)
  local out = {"env", "-C", dir}
  if is_root() then
    for _, a in ipairs{"setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--"} do
      out[#out + 1] = a
    end
  end
  for _, a in ipairs(argv) do out[#out + 1] = a end
  return out
end

-- The server programs run without the sanitizer runtime that `make
-- sanitize` preloads into lua5.4 (postgres does not start under it).
local SERVER_ENV = {LD_PRELOAD = ""}

-- Runs argv to its end (2 minutes at most, then it is killed): output
-- (stdout and stderr) and exit code.
local function run(argv)
  local r, w = assert(V.pipe())
  local pid, err = P.spawn(argv, {stdout = w, stderr = w, env = SERVER_ENV})
  P.close(w)
  if not pid then
    P.close(r)
    return nil, err
  end
  local out, rerr = V.read_all(r, 1 << 20, 120)
  P.close(r)
  if not out then P.kill(pid, "KILL") end
  local _, code = P.waitpid(pid)
  return out or rerr, code
end

local Cluster = {}
Cluster.__index = Cluster

--- Starts the server (again, after stop or kill) and waits until it
-- accepts connections (30 s at most).
function Cluster:start()
  assert(not self.pid, "the cluster is running")
  local pq = require "siamese.pq"
  self.pid = assert(P.spawn(as_server_user(self.dir, {
    self.bin .. "/postgres", "-D", self.data, "-k", self.dir, "-p", tostring(self.port),
    "-c", "listen_addresses=", "-c", "fsync=off", "-c", "full_page_writes=off",
    "-c", "log_min_messages=panic", "-c", "log_min_error_statement=panic",
  }), {env = SERVER_ENV}))
  for _ = 1, 300 do
    local c = pq.connect(self.conninfo)
    if c then
      c:close()
      return self
    end
    local exited = P.waitpid(self.pid, true)
    if exited then
      self.pid = nil
      error("postgres exited at start (see " .. self.data .. ")")
    end
    support.sleep(0.1)
  end
  error("postgres did not accept connections within 30 s")
end

--- A new empty database in the cluster: its postgresql:// URL.
function Cluster:new_database(name)
  local pq = require "siamese.pq"
  local admin <close> = assert(pq.connect(self.conninfo))
  assert(admin:exec("create database " .. name))
  return ("postgresql://siamese@/%s?host=%s&port=%d"):format(name, self.dir, self.port)
end

--- Stops the server cleanly (fast shutdown: clients are disconnected).
function Cluster:stop()
  if not self.pid then return end
  P.kill(self.pid, "INT")
  P.waitpid(self.pid)
  self.pid = nil
end

--- Kills the server as a crash would (SIGKILL of the postmaster; its
-- backends notice and exit). start() recovers.
function Cluster:kill()
  if not self.pid then return end
  P.kill(self.pid, "KILL")
  P.waitpid(self.pid)
  self.pid = nil
  support.sleep(0.5) -- orphaned backends exit when they see the postmaster gone
end

--- Stops the server and removes its directory.
function Cluster:destroy()
  self:stop()
  if self.dir then
    run{"rm", "-rf", "--", self.dir}
    self.dir = nil
  end
end

--- Whether the PostgreSQL server programs are installed.
function M.available()
  local dir = bindir()
  if not dir then return nil, "no PostgreSQL server in /usr/lib/postgresql (run make deps)" end
  return dir
end

--- A new cluster, initialised and started (the database "postgres", user
-- "siamese", trust authentication on its socket).
function M.start()
  local bin = assert(M.available())
  local dir = support.temp_dir("pg")
  local self = setmetatable({bin = bin, dir = dir, data = dir .. "/data", port = 5432}, Cluster)
  self.conninfo = ("host=%s port=%d user=siamese dbname=postgres"):format(dir, self.port)
  self.url = ("postgresql://siamese@/postgres?host=%s&port=%d"):format(dir, self.port)
  if is_root() then
    local out, code = run{"chown", "postgres:postgres", dir}
    assert(code == 0, "chown: " .. tostring(out))
  end
  local out, code = run(as_server_user(dir, {bin .. "/initdb", "-D", self.data, "-U", "siamese", "-A", "trust",
                                            "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions"}))
  if code ~= 0 then
    run{"rm", "-rf", "--", dir}
    error("initdb failed: " .. tostring(out))
  end
  return self:start()
end

return M
