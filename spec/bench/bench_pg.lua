-- Galleries in PostgreSQL (`make bench` runs it), on a throw-away cluster
-- started here (spec/pg_cluster.lua: a Unix socket, fsync off):
--   pg_load_<N>        seconds to load a gallery of N identities (one
--                      192-D template each, the default pipeline's size)
--                      from the database into a door's memory
--                      (gallery_pg.replica: one query, binary results);
--                      baseline = siamese.gallery.load of the same gallery
--                      saved as a file, in the same run; ratio = database /
--                      file (> 1: the database is slower). Also import_s:
--                      the one-COPY import that filled the database.
--   pg_search_<N>      identify queries/s on the replica's gallery against
--                      the file's (the same C search: ratio ~1)
--   pg_propagation_ms  delay from the commit of an enrolment (gallery.update
--                      returned, in this process) to its arrival in a
--                      replica in a second process (sync woken by NOTIFY),
--                      both read on CLOCK_MONOTONIC: median, p99, max over
--                      SIAMESE_PG_ENROLMENTS (default 100) enrolments into
--                      a gallery of 1,000 people
-- SIAMESE_PG_SIZES (default "100000,1000000") sets the sizes. Without the
-- PostgreSQL server programs the rows say `skipped`.
local siamese = require "siamese"
local core = require "siamese.core"
local bench = dofile("spec/bench/support.lua")
siamese.set_num_threads(bench.threads)
local emit, P = bench.emit, core.process

local DIM = 192
local SIZES = {}
for n in (os.getenv("SIAMESE_PG_SIZES") or "100000,1000000"):gmatch("%d+") do SIZES[#SIZES + 1] = tonumber(n) end
local ENROLMENTS = tonumber(os.getenv("SIAMESE_PG_ENROLMENTS") or "") or 100

local function note(s) io.stderr:write("bench_pg: ", s, "\n") end

local pg_cluster = dofile("spec/pg_cluster.lua")
local have, why = pg_cluster.available()
if not have then
  for _, n in ipairs(SIZES) do
    emit{name = "pg_load_" .. n, skipped = why}
    emit{name = "pg_search_" .. n, skipped = why}
  end
  emit{name = "pg_propagation_ms", skipped = why}
  return
end

local gallery = require "siamese.gallery"
local gallery_pg = require "siamese.gallery_pg"
local T = siamese.tensor

-- A gallery of n identities with one random template each.
local function make(n)
  siamese.manual_seed(17)
  local g = gallery.new{dim = DIM, metric = "cosine", threshold = 0.549, model = "bench-model"}
  local names = {}
  for i = 1, n do names[i] = string.format("person %07d", i) end
  local e = T.randn{n, DIM}
  g:add_many(names, e)
  return g, e
end

local cluster = pg_cluster.start()
local admin = assert(require("siamese.pq").connect(cluster.conninfo))
local function database(name) return cluster:new_database(name) end

local ok, err = pcall(function()
  for _, n in ipairs(SIZES) do
    note(("%d identities: making the gallery, the file and the database"):format(n))
    local g, e = make(n)
    local file = cluster.dir .. "/bench.gallery"
    assert(g:save(file))
    local url = database("load" .. n)
    local t0 = siamese.clock()
    assert(gallery_pg.import(url, g))
    local import_s = siamese.clock() - t0
    note(("  imported in %.1f s; loading"):format(import_s))
    local function load_file()
      local f = assert(gallery.load(file))
      f:close()
    end
    local function load_db()
      local r = assert(gallery_pg.replica(url))
      r:close()
      collectgarbage()
    end
    local rounds = n >= 1000000 and 3 or 5
    local file_s = bench.median_time(load_file, rounds, 0)
    local db_s = bench.median_time(load_db, rounds, 0)
    emit{name = "pg_load_" .. n, value = db_s, unit = "s", baseline = file_s,
         baseline_name = "siamese.gallery.load of the same gallery as a file", ratio = db_s / file_s,
         import_s = import_s, templates = n, dim = DIM}
    -- search: the replica's gallery and the file's, the same queries
    local r = assert(gallery_pg.replica(url))
    local f = assert(gallery.load(file))
    local q = e:narrow(1, 1, 64):clone()
    local function search(gal) return function() gal:identify_batch(q, {k = 1}) end end
    local file_q = 64 / bench.median_time(search(f), 3, 0.5)
    local db_q = 64 / bench.median_time(search(r.gallery), 3, 0.5)
    emit{name = "pg_search_" .. n, value = db_q, unit = "queries/s", baseline = file_q,
         baseline_name = "the same batches of 64 on the gallery loaded from the file", ratio = db_q / file_q}
    r:close()
    f:close()
    g:close()
    os.remove(file)
    assert(admin:exec("drop database load" .. n))
  end

  -- propagation: a replica in a child process prints when each name arrives
  local url = database("propagation")
  local base = make(1000)
  assert(gallery_pg.import(url, base))
  local script = cluster.dir .. "/replica.lua"
  local f = assert(io.open(script, "w"))
  f:write([[
local siamese = require "siamese"
local gallery_pg = require "siamese.gallery_pg"
local r = assert(gallery_pg.replica(arg[1]))
local want, out = tonumber(arg[2]), assert(io.open(arg[3], "w"))
local known = {}
for _, n in ipairs(r.gallery:names()) do known[n] = true end
assert(io.open(arg[3] .. ".ready", "w")):close()
local got = 0
while got < want do
  assert(r:sync(5))
  local now = siamese.clock()
  for _, n in ipairs(r.gallery:names()) do
    if not known[n] then
      known[n] = true
      got = got + 1
      out:write(n, "\t", string.format("%.6f", now), "\n")
    end
  end
end
out:close()
]])
  f:close()
  local arrivals = cluster.dir .. "/arrivals.txt"
  local env = {LUA_PATH_5_4 = "./lua/?.lua;./lua/?/init.lua;;",
               LUA_CPATH_5_4 = "./" .. (os.getenv("SIAMESE_BUILD") or "build") .. "/?.so;;"}
  local pid = assert(P.spawn({"lua5.4", script, url, tostring(ENROLMENTS), arrivals}, {env = env}))
  for _ = 1, 600 do -- the replica loaded (at most a minute)
    local ready = io.open(arrivals .. ".ready")
    if ready then ready:close() break end
    P.waitpid(assert(P.spawn{"sleep", "0.1"}))
  end
  assert(io.open(arrivals .. ".ready"), "the replica process did not start"):close()
  local committed = {}
  local emb = T.randn{1, DIM}
  for i = 1, ENROLMENTS do
    local name = string.format("new %04d", i)
    emb:normal_()
    assert(gallery.update(url, function(g2) g2:add(name, emb) return true end))
    committed[name] = siamese.clock()
    P.waitpid(assert(P.spawn{"sleep", "0.02"}))
    if i % 20 == 0 then note(("  propagation: %d/%d enrolments"):format(i, ENROLMENTS)) end
  end
  local _, code = P.waitpid(pid)
  assert(code == 0, "the replica process failed")
  local delays = {}
  for line in io.lines(arrivals) do
    local name, at = line:match("^(.-)\t([%d.]+)$")
    delays[#delays + 1] = (tonumber(at) - committed[name]) * 1000
  end
  table.sort(delays)
  local function pct(p) return delays[math.max(1, math.ceil(p * #delays))] end
  emit{name = "pg_propagation_ms", value = pct(0.5), unit = "ms", p99 = pct(0.99), max = delays[#delays],
       enrolments = ENROLMENTS, gallery_identities = 1000,
       note = "commit returned in the enrolling process -> applied in a replica of another process"}
  base:close()
end)
admin:close()
cluster:destroy()
if not ok then error(err, 0) end
