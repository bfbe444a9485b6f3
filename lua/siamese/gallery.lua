--- siamese.gallery: enrolled identities and exact nearest-neighbour search.
--
--   local gallery = require "siamese.gallery"
--   local g = gallery.new{dim = 128, metric = "euclidean", threshold = 0.6,
--                         model = fr.model_id, score = "nearest"}
--   g:add("alice", emb)                      -- Tensor [128] or [n,128]
--   local name, d, candidates = g:identify(probe, {k = 5})
--   assert(g:save("people.gallery"))
--
-- The store, the search and the file format are C (src/gallery.c);
-- siamese.gallery_object adds the result tables and the name checks; this
-- file, loading, updates under a lock and PostgreSQL URLs. Distances:
-- euclidean (not squared), or cosine = 1 - cosine similarity; an identity
-- is scored by its nearest template ("nearest") or by its mean template
-- ("mean"; for cosine the mean of the L2-normalised templates). k-NN
-- computes |q|^2 - 2 q.t + |t|^2 with one sgemm per block (clamped at 0
-- before the square root); verify computes the distance directly in double
-- precision.
--
-- Names (siamese.names): add, add_many and rename trim them and refuse
-- control, format and bidirectional characters, and names that differ
-- from an enrolled one only by case; load refuses a file holding such a
-- name. Thresholds lie in (0, 2) (checked by new, set_threshold and load).
--
-- Shared files. g:save replaces the file atomically (temporary, fsync,
-- rename): readers see the old file or the new one, never a mix. Writers
-- that read, modify and save go through gallery.update, which holds an
-- advisory lock on "<file>.lock" (next to the file; the kernel releases it
-- when the process dies) and re-reads the file under it, so concurrent
-- enrolments (two commands, a command and the web server) all land. A
-- reader that keeps a gallery in memory compares gallery.generation(path)
-- with the generation load gave it and reloads when it changed.
--
-- PostgreSQL. load, update and generation take a postgresql:// URL in
-- place of a path and hand it to siamese.gallery_pg (one transaction under
-- an advisory lock for update; replicas kept current by LISTEN/NOTIFY).
local core = require "siamese.core"
local names = require "siamese.names"
local pg = require "siamese.pg"

local gallery = {
  new = core.gallery.new,
  Gallery = core.gallery.Gallery,
}

-- The gallery object's Lua methods: names checked by add, add_many and
-- rename; verify, identify, identify_batch and search (siamese.gallery_object).
require "siamese.gallery_object"

--- Loads a gallery file: the gallery and the generation of the file read
-- (see gallery.generation); nil, message when it is missing, damaged, or
-- holds a name that siamese.names refuses (it is then not trusted).
function gallery.load(path)
  if pg.is_url(path) then return require("siamese.gallery_pg").load(path) end
  local g, err = core.gallery.load(path)
  if not g then return nil, err end
  local generation = err
  local seen = {}
  for _, n in ipairs(g:names()) do
    local clean, why = names.check(n)
    if clean ~= n then
      g:close()
      return nil, string.format("'%s': gallery file holds a refused name (%s), not trusted", path,
        why or "white space around it")
    end
    local k = names.key(n)
    if seen[k] then
      g:close()
      return nil, string.format("'%s': gallery file holds '%s' and '%s', the same name but for case, not trusted",
        path, seen[k], n)
    end
    seen[k] = n
  end
  return g, generation
end

--- The generation of a gallery file: a string that changes whenever the
-- file is replaced or rewritten (device, inode, size, modification time in
-- nanoseconds); nil, message when it cannot be read (e.g. no such file).
-- For a postgresql:// URL: "pg:N", N the changes committed so far
-- (siamese.gallery_pg).
function gallery.generation(path)
  if pg.is_url(path) then return require("siamese.gallery_pg").generation(path) end
  return core.gallery.generation(path)
end

--- The file a gallery path finally names (symlinks followed): where saves
-- write and next to which the lock file lives.
gallery.target = core.gallery.target

-- A gallery file kept current: the same interface as gallery_pg's replica.
local Follower = {}
Follower.__index = Follower

--- Reloads the file when another process replaced it (its generation
-- moved): 1, or 0 when it did not change; nil, message when it cannot be
-- read (the gallery in memory is kept, status says "offline: ...").
-- timeout is accepted for symmetry with a replica's sync and not waited.
function Follower:sync(timeout)
  local now, err = gallery.generation(self.path)
  if now and now == self.generation then
    self.status = "up"
    return 0
  end
  local g, gen = now and gallery.load(self.path)
  if not g then
    self.status = "offline: " .. tostring(gen or err)
    return nil, gen or err
  end
  local old = self.gallery
  if g:dim() ~= old:dim() or g:metric() ~= old:metric() or g:model() ~= old:model() then
    g:close()
    self.status = "offline: the gallery's dimension, metric or model changed: restart"
    return nil, self.status:sub(10)
  end
  require("siamese.gallery_pg").refill(old, g)
  g:close()
  self.generation, self.status = gen, "up"
  self.reloads = (self.reloads or 0) + 1
  return 1
end

function Follower:close()
  if self.gallery then self.gallery:close() end
  self.gallery = nil
end
Follower.__close = Follower.close

--- A gallery kept current for a long-running process (a door): for a
-- postgresql:// URL a replica (siamese.gallery_pg.replica: pushed changes),
-- for a file one that reloads when the file is replaced. Either way:
-- r.gallery (the same object throughout: reloads refill it), r:sync(timeout)
-- (changes applied, or nil, message while the source is unreachable: the
-- gallery in memory is kept), r.status ("up" or "offline: ..."),
-- r:close(). Returns it, or nil, message.
function gallery.open(path)
  if type(path) ~= "string" or path == "" then
    error("gallery.open: bad argument #1 (a gallery path or postgresql:// URL expected, got " .. type(path) .. ")", 2)
  end
  if pg.is_url(path) then return require("siamese.gallery_pg").replica(path) end
  local g, gen = gallery.load(path)
  if not g then return nil, gen end
  return setmetatable({path = path, gallery = g, generation = gen, status = "up"}, Follower)
end

-- Lock targets this process holds (a second lock on the same file would
-- wait for itself).
local held = {}

--- Read-modify-write of a gallery file under its lock:
--
--   local ok, n = gallery.update("people.gallery", function(g, ctx)
--     if g:has("alice") then return false, "already enrolled" end
--     return true, g:add("alice", emb)
--   end, {new = {dim = 128, model = id}, timeout = 10})
--
-- Takes the lock "<file>.lock" (waiting for another process; opts.timeout
-- seconds at most, then nil, "'<file>': gallery is locked by another
-- process ..."), loads the file fresh (or, when it does not exist, creates
-- a gallery with gallery.new(opts.new), or opts.new() when it is a
-- function; without opts.new: nil, "<file>: no such gallery"), calls
-- fn(g, ctx) and saves atomically when fn's first result is true. ctx:
-- path, created (true for a new gallery), generation (of the file read;
-- after a save, of the file written), saved. Returns fn's results; nil,
-- message when the file cannot be loaded or saved. The lock is released
-- in every case; an error raised by fn is raised again after that (error
-- objects such as tables pass through unchanged). g stays open: fn may
-- return it.
function gallery.update(path, fn, opts)
  if type(path) ~= "string" or path == "" then
    error("gallery.update: bad argument #1 (a gallery path expected, got " .. type(path) .. ")", 2)
  end
  if type(fn) ~= "function" then
    error("gallery.update: bad argument #2 (function expected, got " .. type(fn) .. ")", 2)
  end
  if opts ~= nil and type(opts) ~= "table" then
    error("gallery.update: bad argument #3 (options table expected, got " .. type(opts) .. ")", 2)
  end
  opts = opts or {}
  local timeout = opts.timeout
  if timeout ~= nil and (type(timeout) ~= "number" or timeout < 0 or timeout ~= timeout) then
    error("gallery.update: option timeout must be a number of seconds >= 0, got " .. tostring(timeout), 2)
  end
  if pg.is_url(path) then return require("siamese.gallery_pg").update(path, fn, opts) end
  local target, terr = core.gallery.target(path)
  if not target then return nil, terr end
  if held[target] then
    error(string.format("gallery.update: '%s' is already being updated by this process (nested update)", path), 2)
  end
  local lock, lerr = core.gallery.lock(path, timeout)
  if not lock then return nil, lerr end
  held[target] = true
  local function release()
    held[target] = nil
    lock:close()
  end
  local ctx = {path = path, created = false, saved = false}
  local g, gen = gallery.load(path)
  if not g then
    if gallery.generation(path) then -- there, but damaged or unreadable
      release()
      return nil, gen
    end
    if opts.new == nil then
      release()
      return nil, path .. ": no such gallery"
    end
    local ok, made = pcall(function()
      if type(opts.new) == "function" then return opts.new() end
      return gallery.new(opts.new)
    end)
    if not ok then
      release()
      error(made, 0)
    end
    g, ctx.created = made, true
  else
    ctx.generation = gen
  end
  local res = table.pack(pcall(fn, g, ctx))
  if not res[1] then
    release()
    error(res[2], 0)
  end
  if res[2] == true then
    local ok, saved = g:save(path)
    if not ok then
      release()
      return nil, saved
    end
    ctx.saved, ctx.generation = true, saved
  end
  release()
  return table.unpack(res, 2, res.n)
end

return gallery
