--- siamese.gallery_pg: a gallery kept in PostgreSQL, for many doors sharing
-- one organisation's enrolments. siamese.gallery sends postgresql:// URLs
-- here, so gallery.load, gallery.update and gallery.generation work on a
-- database as on a file; a door keeps a replica in memory:
--
--   local r = assert(gallery_pg.replica(url))   -- full load, then LISTEN
--   r:sync(0.5)                                  -- apply pushed changes (waits up to 0.5 s for one)
--   r.gallery:identify(probe)                    -- the C gallery, as from a file
--   print(r.status, r.generation)               -- "up" or "offline: why"; the database generation
--
-- Schema (version 1, created on first use: siamese.pg.migrate):
--   siamese_gallery   one row: dim, metric, model, threshold, score and the
--                     generation, which every committed change increments
--   siamese_identity  seq (identity, the enrolment order), name (unique,
--                     with the rules of siamese.names as constraints:
--                     trimmed, 1..64 bytes, no control, format or bidi
--                     character), name_key (names.key, unique: no two
--                     names that differ only by case)
--   siamese_template  the embeddings (float32 little-endian bytes) of an
--                     identity, deleted with it
--   siamese_change    one row per change: generation, op (add: the
--                     identity's templates are new or replaced; remove;
--                     rename; threshold; reload: an import replaced
--                     everything), the identity's seq and name
-- Writers (gallery.update) work in one transaction under an advisory lock:
-- the gallery is read fresh under it, fn changes it in memory, and the
-- difference is written back with one change row each and a NOTIFY on the
-- channel siamese_gallery carrying the new generation; concurrent
-- enrolments queue on the lock, so none is lost. A replica applies the
-- change rows after its generation in order, by identity seq (a rename is
-- a rename, not a removal and an addition); when they do not follow on
-- (a gap, or a name held by another identity) it loads the whole gallery
-- again. When the database cannot be reached the replica keeps its
-- gallery, says so in status and catches up once it is back.
local core = require "siamese.core"
local names = require "siamese.names"
local pg = require "siamese.pg"
require "siamese.gallery_object" -- the methods of the gallery objects it makes

local gallery_pg = {}

gallery_pg.CHANNEL = "siamese_gallery"

-- The characters siamese.names refuses, as a regular-expression bracket
-- of PostgreSQL (\uXXXX / \UXXXXXXXX escapes); NUL never reaches text.
local function refused_bracket()
  local parts = {}
  local function esc(cp)
    return cp > 0xFFFF and string.format("\\U%08X", cp) or string.format("\\u%04X", cp)
  end
  for _, r in ipairs(names.REFUSED) do
    local first = math.max(r[1], 1)
    parts[#parts + 1] = first == r[2] and esc(first) or esc(first) .. "-" .. esc(r[2])
  end
  return "[" .. table.concat(parts) .. "]"
end

-- White space names.check trims (so a stored name never starts or ends with it).
local SPACE = "[\\u0009-\\u000D\\u0020\\u00A0\\u1680\\u2000-\\u200A\\u202F\\u205F\\u3000]"

local SCHEMA = {
  { -- version 1
    "create table siamese_gallery (id int primary key default 1 check (id = 1),"
      .. " dim int not null check (dim between 1 and 65536),"
      .. " metric text not null check (metric in ('euclidean', 'cosine')),"
      .. " model text not null,"
      .. " threshold float8 not null check (threshold > 0 and threshold < 2),"
      .. " score text not null check (score in ('nearest', 'mean')),"
      .. " generation int8 not null default 0 check (generation >= 0))",
    "create table siamese_identity (seq int8 generated always as identity primary key,"
      .. " name text not null unique check (octet_length(name) between 1 and " .. names.MAX_BYTES
      .. " and name !~ '" .. refused_bracket() .. "' and name !~ '^" .. SPACE .. "' and name !~ '"
      .. SPACE .. "$'),"
      .. " name_key text not null unique check (name_key <> ''))",
    "create table siamese_template (id int8 generated always as identity primary key,"
      .. " identity int8 not null references siamese_identity (seq) on delete cascade,"
      .. " embedding bytea not null check (octet_length(embedding) > 0 and octet_length(embedding) % 4 = 0))",
    "create index siamese_template_identity on siamese_template (identity)",
    "create table siamese_change (generation int8 primary key,"
      .. " op text not null check (op in ('add', 'remove', 'rename', 'threshold', 'reload')),"
      .. " identity int8, name text, at timestamptz not null default now())",
  },
}

local Replica = {}
Replica.__index = Replica

-- Raised inside transactions for a database failure: {pg_error = message}.
local function q(conn, sql, ...)
  local r, err = conn:exec(sql, ...)
  if not r then error({pg_error = err}, 0) end
  return r
end

local function qb(conn, sql, ...)
  local r, err = conn:exec_binary(sql, ...)
  if not r then error({pg_error = err}, 0) end
  return r
end

-- Runs fn(conn) and turns a {pg_error} raised in it into nil, message
-- (with the redacted URL in front); other errors pass through.
local function guarded(url, fn, ...)
  local res = table.pack(pcall(fn, ...))
  if res[1] then return table.unpack(res, 2, res.n) end
  local e = res[2]
  if type(e) == "table" and e.pg_error then return nil, pg.redact(url) .. ": " .. e.pg_error end
  error(e, 0)
end

local function connect(url) return pg.open(url, "gallery", SCHEMA) end

-- The gallery row, or nil when the database holds no gallery yet.
local function settings(conn)
  local r = q(conn, "select dim, metric, model, threshold, score, generation from siamese_gallery where id = 1")
  local row = r.rows[1]
  if not row then return nil end
  return {dim = math.tointeger(tonumber(row[1])), metric = row[2], model = row[3], threshold = tonumber(row[4]),
          score = row[5], generation = math.tointeger(tonumber(row[6]))}
end

local function int8(s) return (string.unpack(">i8", s)) end

-- The whole gallery read in one query (binary: embeddings as raw bytes):
-- the C gallery and the map seq -> name. Raises {pg_error} for a
-- database failure, or returns nil, message for data that is not trusted.
local function read_all(conn, s, url)
  local r = qb(conn, "select i.seq, i.name, t.embedding from siamese_identity i"
    .. " join siamese_template t on t.identity = i.seq order by i.seq, t.id")
  local g = core.gallery.new{dim = s.dim, metric = s.metric, threshold = s.threshold, model = s.model, score = s.score}
  local owners, blobs, by_seq = {}, {}, {}
  local want = 4 * s.dim
  for i, row in ipairs(r.rows) do
    if #row[3] ~= want then
      g:close()
      return nil, string.format("%s: a template of '%s' has %d bytes, not %d (dimension %d): not trusted",
        pg.redact(url), row[2], #row[3], want, s.dim)
    end
    owners[i], blobs[i] = row[2], row[3]
    by_seq[int8(row[1])] = row[2]
  end
  if #owners > 0 then
    local embs = core.tensor_from_bytes(table.concat(blobs), 0, "F32", {#owners, s.dim})
    local ok, err = pcall(g.add_many, g, owners, embs)
    if not ok then
      g:close()
      return nil, pg.redact(url) .. ": holds a refused name, not trusted (" .. tostring(err) .. ")"
    end
  end
  return g, by_seq
end

-- Loads under a snapshot: g, generation (integer), by_seq; or nil, message.
local function load_snapshot(conn, url)
  q(conn, "begin isolation level repeatable read read only")
  local ok, a, b, c = pcall(function()
    local s = settings(conn)
    if not s then return nil, pg.redact(url) .. ": no gallery in this database (siamese enroll creates it)" end
    local g, by_seq = read_all(conn, s, url)
    if not g then return nil, by_seq end
    return g, s.generation, by_seq
  end)
  conn:exec("commit")
  if not ok then error(a, 0) end
  return a, b, c
end

--- Loads the gallery of the database at url: the gallery (siamese.gallery's
-- C gallery) and its generation ("pg:N"); nil, message when the database
-- cannot be reached, holds no gallery or holds data that is not trusted.
function gallery_pg.load(url)
  local conn, err = connect(url)
  if not conn then return nil, err end
  local g, gen = guarded(url, load_snapshot, conn, url)
  conn:close()
  if not g then return nil, gen end
  return g, "pg:" .. gen
end

--- The generation of the gallery at url ("pg:N", N counting the changes
-- committed), or nil, message.
function gallery_pg.generation(url)
  local conn, err = connect(url)
  if not conn then return nil, err end
  local s, serr = guarded(url, settings, conn)
  conn:close()
  if not s then return nil, serr or (pg.redact(url) .. ": no gallery in this database") end
  return "pg:" .. s.generation
end

local function pq_null() return pg.driver().null end

-- The gallery's settings row, from g (dim, metric, model, threshold, score).
local function insert_settings(conn, g)
  q(conn, "insert into siamese_gallery (dim, metric, model, threshold, score) values ($1, $2, $3, $4, $5)",
    g:dim(), g:metric(), g:model(), g:threshold(), g:score_mode())
end

-- The new generation recorded and announced (NOTIFY, sent at commit).
local function announce(conn, gen)
  q(conn, "update siamese_gallery set generation = $1 where id = 1", gen)
  q(conn, "select pg_notify($1, $2)", gallery_pg.CHANNEL, tostring(gen))
end

-- Each identity's templates as one byte string (float32, in stored order),
-- from one pass over the gallery (g:rows): list, {name = bytes}.
local function template_bytes(g)
  local list, rows, owners = g:names(), g:rows()
  local all, row = core.tensor_to_bytes(rows), 4 * g:dim()
  local parts = {}
  for r, o in ipairs(owners) do
    local p = parts[o]
    if not p then
      p = {}
      parts[o] = p
    end
    p[#p + 1] = all:sub((r - 1) * row + 1, r * row)
  end
  local bytes = {}
  for i, n in ipairs(list) do bytes[n] = table.concat(parts[i] or {}) end
  return list, bytes
end

-- Each name's templates as bytes, the names in order, the threshold.
local function snapshot(g)
  local list, bytes = template_bytes(g)
  return {names = list, bytes = bytes, threshold = g:threshold()}
end

-- Writes the difference between before and g (after fn) in the open
-- transaction: change rows, the new generation; returns it and the count
-- of changes.
local function write_changes(conn, before, g, seq_of, generation)
  local after = snapshot(g)
  local gen, count = generation, 0
  local function change(op, seq, name)
    gen, count = gen + 1, count + 1
    q(conn, "insert into siamese_change (generation, op, identity, name) values ($1, $2, $3, $4)",
      gen, op, seq or pq_null(), name or pq_null())
  end
  local removed, added = {}, {}
  for _, n in ipairs(before.names) do if not after.bytes[n] then removed[#removed + 1] = n end end
  for _, n in ipairs(after.names) do if not before.bytes[n] then added[#added + 1] = n end end
  -- a name gone and a new one with the very same templates: a rename
  -- (matched through a map of the new names' bytes: linear, whatever fn did)
  local renamed, taken, new_by_bytes = {}, {}, {}
  for _, new in ipairs(added) do
    local list = new_by_bytes[after.bytes[new]]
    if not list then
      list = {}
      new_by_bytes[after.bytes[new]] = list
    end
    list[#list + 1] = new
  end
  for _, old in ipairs(removed) do
    local list = new_by_bytes[before.bytes[old]]
    local new = list and table.remove(list, 1)
    if new then renamed[#renamed + 1], taken[new], taken[old] = {old, new}, true, true end
  end
  local pq = pg.driver()
  local function insert_templates(seq, name)
    local blob, row = after.bytes[name], 4 * g:dim()
    for off = 1, #blob, row do
      q(conn, "insert into siamese_template (identity, embedding) values ($1, $2)", seq,
        pq.bytes(blob:sub(off, off + row - 1)))
    end
  end
  for _, n in ipairs(removed) do
    if not taken[n] then
      q(conn, "delete from siamese_identity where seq = $1", seq_of[n])
      change("remove", seq_of[n], n)
    end
  end
  for _, rn in ipairs(renamed) do
    q(conn, "update siamese_identity set name = $1, name_key = $2 where seq = $3", rn[2], names.key(rn[2]),
      seq_of[rn[1]])
    change("rename", seq_of[rn[1]], rn[2])
  end
  for _, n in ipairs(after.names) do
    if before.bytes[n] and before.bytes[n] ~= after.bytes[n] then
      q(conn, "delete from siamese_template where identity = $1", seq_of[n])
      insert_templates(seq_of[n], n)
      change("add", seq_of[n], n)
    end
  end
  for _, n in ipairs(added) do
    if not taken[n] then
      local seq = math.tointeger(tonumber(q(conn, "insert into siamese_identity (name, name_key) values ($1, $2)"
        .. " returning seq", n, names.key(n)).rows[1][1]))
      insert_templates(seq, n)
      change("add", seq, n)
    end
  end
  if after.threshold ~= before.threshold then
    q(conn, "update siamese_gallery set threshold = $1 where id = 1", after.threshold)
    change("threshold")
  end
  if count > 0 then announce(conn, gen) end
  return gen, count
end

--- Read-modify-write of the gallery at url, as siamese.gallery.update does
-- for a file (see there for fn, ctx and opts.new; opts.timeout is the
-- seconds to wait for another writer, default none). One transaction
-- under an advisory lock: fn sees the gallery as committed, its changes
-- are written when its first result is true and rolled back otherwise.
-- ctx: path (the URL), created, generation ("pg:N" read; after a save,
-- written), saved.
function gallery_pg.update(url, fn, opts)
  opts = opts or {}
  local conn, err = connect(url)
  if not conn then return nil, err end
  local ctx = {path = url, created = false, saved = false}
  local res
  local ok, e = pcall(function()
    q(conn, "begin")
    if opts.timeout then q(conn, "select set_config('lock_timeout', $1, true)", math.floor(opts.timeout * 1000) .. "ms") end
    q(conn, "select pg_advisory_xact_lock($1)", pg.LOCK_GALLERY)
    local s = settings(conn)
    local g, seq_of, generation
    if s then
      local by_seq
      g, by_seq = read_all(conn, s, url)
      if not g then error({pg_error = by_seq}, 0) end
      seq_of = {}
      for seq, n in pairs(by_seq) do seq_of[n] = seq end
      generation = s.generation
      ctx.generation = "pg:" .. generation
    else
      if opts.new == nil then error({pg_error = "no gallery in this database"}, 0) end
      g = type(opts.new) == "function" and opts.new() or core.gallery.new(opts.new)
      insert_settings(conn, g)
      ctx.created, seq_of, generation = true, {}, 0
    end
    local before = snapshot(g)
    res = table.pack(pcall(fn, g, ctx))
    if not res[1] then error({fn_error = res[2]}, 0) end
    if res[2] == true then
      local gen = write_changes(conn, before, g, seq_of, generation)
      q(conn, "commit")
      ctx.saved, ctx.generation = true, "pg:" .. gen
    else
      q(conn, "rollback") -- also a gallery created for fn
    end
  end)
  if not ok then
    conn:exec("rollback")
    conn:close()
    if type(e) == "table" and e.fn_error ~= nil then error(e.fn_error, 0) end
    if type(e) == "table" and e.pg_error then
      local msg = e.pg_error
      if msg:find("lock timeout", 1, true) then msg = "gallery is locked by another process (" .. msg .. ")" end
      return nil, pg.redact(url) .. ": " .. msg
    end
    error(e, 0)
  end
  conn:close()
  return table.unpack(res, 2, res.n)
end

-- COPY's binary format (PostgreSQL's "Binary Format" of COPY): a
-- signature, flags and header extension (0, 0), then per row the field
-- count and each field as a 32-bit length and its bytes, then -1.
local COPY_HEADER = "PGCOPY\n\255\r\n\0" .. string.pack(">i4i4", 0, 0)

-- The rows (ord, name, name_key, embedding) of every template of g, in
-- enrolment order, as one binary COPY stream.
local function copy_stream(g)
  local parts, ord, row = {COPY_HEADER}, 0, 4 * g:dim()
  local list, bytes = template_bytes(g)
  for _, name in ipairs(list) do
    local key, blob = names.key(name), bytes[name]
    for off = 1, #blob, row do
      ord = ord + 1
      parts[#parts + 1] = string.pack(">i2 i4i8 s4 s4 s4", 4, 8, ord, name, key, blob:sub(off, off + row - 1))
    end
  end
  parts[#parts + 1] = string.pack(">i2", -1)
  return table.concat(parts), ord
end

--- Writes the gallery src (a siamese.gallery, e.g. loaded from a file)
-- into the database at url, whose gallery must be absent or empty (its
-- settings are then replaced by src's). One transaction under the
-- writers' lock; the templates go in by one binary COPY, whatever their
-- number; replicas reload (a change row "reload"). Returns the number of
-- templates, or nil, message.
function gallery_pg.import(url, src)
  local conn, err = connect(url)
  if not conn then return nil, err end
  local stream, count = copy_stream(src)
  local ok, e = pcall(function()
    q(conn, "begin")
    q(conn, "select pg_advisory_xact_lock($1)", pg.LOCK_GALLERY)
    local s = settings(conn)
    local generation = 0
    if s then
      local n = math.tointeger(tonumber(q(conn, "select count(*) from siamese_identity").rows[1][1]))
      if n > 0 then
        error({pg_error = string.format("the database's gallery is not empty (%d %s): import into an empty one", n,
          n == 1 and "identity" or "identities")}, 0)
      end
      q(conn, "delete from siamese_gallery") -- empty: its settings give way to src's
      generation = s.generation
    end
    insert_settings(conn, src)
    q(conn, "create temporary table siamese_import (ord int8, name text, name_key text, embedding bytea)"
      .. " on commit drop")
    local copied, cerr = conn:copy_in("copy siamese_import from stdin (format binary)", stream)
    if not copied then error({pg_error = cerr}, 0) end
    q(conn, "insert into siamese_identity (name, name_key) select name, name_key from siamese_import"
      .. " group by name, name_key order by min(ord)")
    q(conn, "insert into siamese_template (identity, embedding) select i.seq, s.embedding from siamese_import s"
      .. " join siamese_identity i on i.name = s.name order by s.ord")
    generation = generation + 1
    q(conn, "insert into siamese_change (generation, op) values ($1, 'reload')", generation)
    announce(conn, generation)
    q(conn, "commit")
  end)
  if not ok then
    conn:exec("rollback")
    conn:close()
    if type(e) == "table" and e.pg_error then return nil, pg.redact(url) .. ": " .. e.pg_error end
    error(e, 0)
  end
  conn:close()
  return count
end

--- A replica of the gallery at url for a door: loaded whole, then kept up
-- to date by r:sync(). Returns it, or nil, message when the database
-- cannot be reached or holds no gallery.
function gallery_pg.replica(url)
  local conn, err = connect(url)
  if not conn then return nil, err end
  local self = setmetatable({url = url, conn = conn, status = "up"}, Replica)
  -- LISTEN before the snapshot: a change committed in between is both in
  -- the snapshot or after it, and announced
  local ok, lerr = guarded(url, q, conn, "listen " .. gallery_pg.CHANNEL)
  if not ok then
    conn:close()
    return nil, lerr
  end
  local g, gen, by_seq = guarded(url, load_snapshot, conn, url)
  if not g then
    conn:close()
    return nil, gen
  end
  self.gallery, self.generation, self.by_seq = g, gen, by_seq
  return self
end

--- Makes gallery g hold exactly what g2 holds (identities, templates in
-- their order, threshold), in one pass over each: g stays the same object.
function gallery_pg.refill(g, g2)
  g:clear()
  local list, rows, owners = g2:names(), g2:rows()
  if #owners > 0 then
    local names_of = {}
    for r, o in ipairs(owners) do names_of[r] = list[o] end
    g:add_many(names_of, rows)
  end
  g:set_threshold(g2:threshold())
end

-- Loads the whole gallery again into the replica's gallery object (the
-- same object, so whoever holds it sees the new contents). A change of
-- dimension, metric or model cannot be taken in place: an error.
function Replica:_reload()
  local g2, gen, by_seq = load_snapshot(self.conn, self.url)
  if not g2 then error({pg_error = gen}, 0) end
  local g = self.gallery
  if g2:dim() ~= g:dim() or g2:metric() ~= g:metric() or g2:model() ~= g:model() or g2:score_mode() ~= g:score_mode() then
    g2:close()
    error({pg_error = "the gallery's dimension, metric, model or scoring changed in the database: restart"}, 0)
  end
  gallery_pg.refill(g, g2)
  g2:close()
  self.generation, self.by_seq = gen, by_seq
  self.reloads = (self.reloads or 0) + 1
end

-- The current name and templates of identity seq (nil when it is gone).
function Replica:_fetch(seq)
  local r = qb(self.conn, "select i.name, t.embedding from siamese_identity i join siamese_template t"
    .. " on t.identity = i.seq where i.seq = $1 order by t.id", seq)
  if #r.rows == 0 then return nil end
  local blobs = {}
  for i, row in ipairs(r.rows) do blobs[i] = row[2] end
  local dim = self.gallery:dim()
  return r.rows[1][1], core.tensor_from_bytes(table.concat(blobs), 0, "F32", {#blobs, dim})
end

-- Applies one change row; false when it does not follow on (then reload).
function Replica:_apply(op, seq, name)
  local g, by_seq = self.gallery, self.by_seq
  if op == "remove" then
    if by_seq[seq] then
      g:remove(by_seq[seq])
      by_seq[seq] = nil
    end
  elseif op == "rename" then
    local old = by_seq[seq]
    if old and old ~= name then
      if g:has(name) and names.key(name) ~= names.key(old) then return false end
      local ok, renamed = pcall(g.rename, g, old, name)
      if not ok or not renamed then return false end
      by_seq[seq] = name
    end
  elseif op == "add" then
    if by_seq[seq] then
      g:remove(by_seq[seq])
      by_seq[seq] = nil
    end
    local current, embs = self:_fetch(seq)
    if current then
      if g:has(current) or not pcall(g.add, g, current, embs) then return false end
      by_seq[seq] = current
    end
  elseif op == "threshold" then
    local s = settings(self.conn)
    if s then g:set_threshold(s.threshold) end
  end
  return true
end

-- Applies the changes after self.generation (or reloads).
function Replica:_catch_up()
  local s = settings(self.conn)
  if not s then error({pg_error = "the gallery was removed from the database"}, 0) end
  if s.generation == self.generation then return 0 end
  if s.dim ~= self.gallery:dim() or s.metric ~= self.gallery:metric() or s.model ~= self.gallery:model() then
    self:_reload() -- raises: it cannot be taken in place
  end
  local r = q(self.conn, "select generation, op, identity, name from siamese_change where generation > $1"
    .. " order by generation", self.generation)
  local expect, applied, null = self.generation + 1, 0, pq_null()
  for _, row in ipairs(r.rows) do
    local gen = math.tointeger(tonumber(row[1]))
    local seq = row[3] ~= null and math.tointeger(tonumber(row[3])) or nil
    if gen ~= expect or row[2] == "reload" or not self:_apply(row[2], seq, row[4] ~= null and row[4] or nil) then
      self:_reload()
      return applied + 1
    end
    self.generation, expect, applied = gen, gen + 1, applied + 1
  end
  return applied
end

-- Seconds between two attempts to reconnect while offline; an attempt is
-- made without waiting (it advances at each sync) and abandoned after
-- pg.CONNECT_TIMEOUT seconds.
gallery_pg.RETRY_EVERY = 10

-- Advances the reconnection without waiting: true once connected (and
-- listening again), false while it is under way, or nil, message.
function Replica:_reconnect(clock)
  if not self.pending then
    local c, err = pg.connect_start(self.url)
    if not c then return nil, err end
    self.pending, self.pending_since = c, clock()
  end
  local st, err = self.pending:connect_poll()
  if st == "pending" then
    if clock() - self.pending_since < pg.CONNECT_TIMEOUT then return false end
    err = "no connection within " .. pg.CONNECT_TIMEOUT .. " s"
  end
  if st ~= "ok" then
    self.pending:close()
    self.pending = nil
    return nil, pg.redact(self.url) .. ": " .. tostring(err)
  end
  self.conn:close()
  self.conn, self.pending = self.pending, nil
  local ok, lerr = self.conn:exec("listen " .. gallery_pg.CHANNEL)
  if not ok then return nil, pg.redact(self.url) .. ": " .. lerr end
  return true
end

--- Applies the changes other processes committed: waits up to timeout
-- seconds (default 0) for a notification, then reads the change rows
-- after the replica's generation. Returns the number of changes applied
-- (0 when none), or nil and a message when the database cannot be
-- reached: the gallery is kept as it was, status says "offline: ...",
-- and later syncs reconnect, never waiting for the network (an attempt at
-- most every gallery_pg.RETRY_EVERY seconds, opts.retry_now to start one
-- at once), then catch up (status "up").
function Replica:sync(timeout, opts)
  local url = self.url
  local clock = require("siamese.core").clock
  local function offline(msg)
    self.status = "offline: " .. msg
    self.retry_at = clock() + gallery_pg.RETRY_EVERY
    return nil, msg
  end
  if not self.conn:ok() or self.status ~= "up" then
    local quiet = (self.status:gsub("^offline: ", ""))
    if self.status == "up" then quiet = "the connection was lost" end
    if not self.pending and self.retry_at and clock() < self.retry_at and not (opts and opts.retry_now) then
      return nil, quiet
    end
    local done, rerr = self:_reconnect(clock)
    if done == nil then return offline(rerr) end
    if not done then
      if self.status == "up" then self.status = "offline: reconnecting" end
      return nil, quiet
    end
    self.status = "up"
    local n, cerr = guarded(url, self._catch_up, self)
    if not n then return offline(cerr) end
    return n
  end
  local got, err = self.conn:notifies(timeout or 0)
  if not got then return offline(pg.redact(url) .. ": " .. err) end
  if #got == 0 then return 0 end
  local n, cerr = guarded(url, self._catch_up, self)
  if not n then return offline(cerr) end
  return n
end

--- sync(0), telling tell(text) when the database goes away ("the
-- gallery's database is unreachable, <using> the gallery in memory:
-- why") and when it is back ("... is back (N changes applied)"): what a
-- door or a server logs. Returns sync's results.
function Replica:sync_telling(tell, using)
  local was_up = self.status == "up"
  local n, err = self:sync(0)
  if not n and was_up then
    tell(("the gallery's database is unreachable, %s the gallery in memory: %s"):format(using, err))
  elseif n and not was_up then
    tell(("the gallery's database is back (%d changes applied)"):format(n))
  end
  return n, err
end

--- Applies the change rows after the replica's generation now, without
-- waiting for their notification (after a change this process made).
-- Returns the number applied, or nil, message.
function Replica:catch_up()
  if self.status ~= "up" or not self.conn:ok() then return self:sync(0, {retry_now = true}) end
  local n, err = guarded(self.url, self._catch_up, self)
  if not n then
    self.status = "offline: " .. err
    return nil, err
  end
  return n
end

--- Closes the connection and the gallery.
function Replica:close()
  if self.pending then self.pending:close() end
  if self.conn then self.conn:close() end
  if self.gallery then self.gallery:close() end
  self.conn, self.gallery = nil, nil
end
Replica.__close = Replica.close
Replica.__gc = Replica.close

return gallery_pg
