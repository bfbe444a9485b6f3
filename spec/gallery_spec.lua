-- Specs of siamese.gallery: enrolment, exact search against brute force,
-- verification and identification, persistence (round trip, damaged
-- files, a save killed half-way).
local siamese = require "siamese"
local support = dofile("spec/support.lua")
local T, gallery = siamese.tensor, siamese.gallery

local MODEL = "test_model:0123456789abcdef"

local function new(opts)
  opts = opts or {}
  opts.dim = opts.dim or 4
  opts.model = opts.model or MODEL
  return gallery.new(opts)
end

-- Reference distances computed element by element in Lua.
local function row(t, i)
  local r = {}
  for j = 1, t:shape(2) do r[j] = t:get(i, j) end
  return r
end

local function ref_distance(a, b, metric)
  local dot, aa, bb, d2 = 0, 0, 0, 0
  for j = 1, #a do
    dot, aa, bb, d2 = dot + a[j] * b[j], aa + a[j] ^ 2, bb + b[j] ^ 2, d2 + (a[j] - b[j]) ^ 2
  end
  if metric == "euclidean" then return math.sqrt(d2) end
  if aa == 0 or bb == 0 then return 1 end
  return 1 - dot / math.sqrt(aa * bb)
end

describe("siamese.gallery", function()
  describe("construction", function()
    it("records dim, metric, threshold, model and score mode", function()
      local g = gallery.new{dim = 128, metric = "cosine", threshold = 0.3, model = MODEL, score = "mean"}
      assert.are.equal(128, g:dim())
      assert.are.equal("cosine", g:metric())
      assert.are.equal(0.3, g:threshold())
      assert.are.equal(MODEL, g:model())
      assert.are.equal("mean", g:score_mode())
      assert.are.equal(0, #g)
      assert.are.equal(0, g:count())
      assert.are.equal(0, g:size())
      local d = new()
      assert.are.equal("euclidean", d:metric())
      assert.are.equal("nearest", d:score_mode())
      assert.are.equal(0.6, d:threshold())
      d:set_threshold(0.25)
      assert.are.equal(0.25, d:threshold())
      assert.truthy(tostring(d):find("siamese.Gallery(4-D euclidean/nearest", 1, true))
      assert.are.equal(gallery, siamese.gallery)
    end)

    it("raises on bad options, naming them", function()
      support.assert_error(function() gallery.new{dim = 4} end, "gallery.new", "model")
      support.assert_error(function() gallery.new{dim = 0, model = MODEL} end, "gallery.new", "dim")
      support.assert_error(function() gallery.new{dim = 4, model = MODEL, metric = "l1"} end, "metric", "l1")
      support.assert_error(function() gallery.new{dim = 4, model = MODEL, score = "max"} end, "score", "max")
      support.assert_error(function() gallery.new{dim = 4, model = MODEL, threshold = 0 / 0} end, "threshold")
      support.assert_error(function() gallery.new{dim = 4, model = ""} end, "model id")
      support.assert_error(function() gallery.new{dim = 4, model = string.rep("m", 256)} end, "model id")
      support.assert_error(function() new():set_threshold(math.huge) end, "set_threshold")
    end)
  end)

  describe("enrolment", function()
    it("adds one or several templates per identity and lists them in order", function()
      local g = new()
      assert.are.equal(1, g:add("alice", T.new{1, 0, 0, 0}))
      assert.are.equal(3, g:add("alice", T.new{{0.5, 0.25, 0, 0}, {0.75, 0.125, 0, 0}}))
      assert.are.equal(1, g:add("bob", T.new{0, 1, 0, 0}, MODEL))
      assert.are.equal(2, #g)
      assert.are.equal(2, g:count())
      assert.are.equal(4, g:size())
      assert.truthy(g:memory() >= 4 * 4 * 4) -- at least the vectors
      assert.are.equal(0, new():memory())
      assert.are.same({"alice", "bob"}, g:names())
      assert.is_true(g:has("alice"))
      assert.is_false(g:has("carol"))
      assert.are.same({{1, 0, 0, 0}, {0.5, 0.25, 0, 0}, {0.75, 0.125, 0, 0}}, g:templates("alice"):totable())
      assert.is_nil(g:templates("carol"))
      -- the copy is independent of the store
      g:templates("bob"):fill(7)
      assert.are.same({{0, 1, 0, 0}}, g:templates("bob"):totable())
    end)

    it("accepts strided embeddings", function()
      local g = new()
      local m = T.new{{1, 2, 3, 4}, {5, 6, 7, 8}}:t() -- [4,2] view
      g:add("x", m:t())
      assert.are.same({{1, 2, 3, 4}, {5, 6, 7, 8}}, g:templates("x"):totable())
    end)

    it("add_many enrols thousands of people in one call", function()
      local g = new{dim = 8}
      local n = 20000
      local names = {}
      for i = 1, n do names[i] = "person" .. i end
      names[n] = "person1" -- a second template for person1
      assert.are.equal(n, g:add_many(names, T.randn{n, 8}))
      assert.are.equal(n - 1, #g)
      assert.are.equal(n, g:size())
      assert.are.equal(2, g:templates("person1"):shape(1))
      for i = 1, n - 1, 997 do assert.is_true(g:has("person" .. i)) end
      assert.are.equal("person19999", g:names()[n - 1])
    end)

    it("raises on misuse, naming shapes and models", function()
      local g = new()
      support.assert_error(function() g:add("a", T.new{1, 2, 3}) end, "gallery:add", "[3]", "4-D")
      support.assert_error(function() g:add("a", T.zeros{2, 5}) end, "gallery:add", "[2,5]")
      support.assert_error(function() g:add("a", T.zeros{2, 2, 4}) end, "gallery:add", "[2,2,4]")
      support.assert_error(function() g:add("a", T.zeros{0, 4}) end, "gallery:add", "no embeddings")
      support.assert_error(function() g:add("a", {1, 2, 3, 4}) end, "gallery:add", "Tensor")
      support.assert_error(function() g:add("", T.zeros{4}) end, "gallery:add", "empty")
      support.assert_error(function() g:add("a\0b", T.zeros{4}) end, "gallery:add", "U+0000")
      support.assert_error(function() g:add("a", T.new{1, 0 / 0, 0, 0}) end, "gallery:add", "not finite")
      support.assert_error(function() g:add("a", T.zeros{4}, "other:1") end, "other:1", MODEL)
      support.assert_error(function() g:add_many({"a", "b"}, T.zeros{3, 4}) end, "add_many", "2 names", "3")
      support.assert_error(function() g:add_many({"a", 5}, T.zeros{2, 4}) end, "add_many", "names[2]")
      support.assert_error(function() g:add_many({"a"}, T.zeros{1, 4}, "m2") end, "add_many", "m2")
      assert.are.equal(0, g:size()) -- nothing was half-added
    end)

    it("removes and renames identities", function()
      local g = new()
      g:add_many({"a", "b", "a", "c", "b"}, T.new{{1, 0, 0, 0}, {0, 1, 0, 0}, {2, 0, 0, 0}, {0, 0, 1, 0}, {0, 2, 0, 0}})
      assert.are.equal(2, g:remove("a"))
      assert.are.equal(0, g:remove("a"))
      assert.are.same({"b", "c"}, g:names())
      assert.are.equal(3, g:size())
      assert.are.same({{0, 1, 0, 0}, {0, 2, 0, 0}}, g:templates("b"):totable())
      assert.is_true(g:rename("b", "bea"))
      assert.is_true(g:rename("bea", "bea"))
      local ok, err = g:rename("zed", "z")
      assert.is_nil(ok)
      assert.are.equal("unknown identity 'zed'", err)
      ok, err = g:rename("bea", "c")
      assert.is_nil(ok)
      assert.truthy(err:find("'c' already exists", 1, true))
      support.assert_error(function() g:rename("c", "") end, "rename", "empty")
      assert.are.same({"bea", "c"}, g:names())
      assert.is_false(g:has("b"))
      assert.are.equal("bea", g:identify(T.new{0, 1.9, 0, 0}))
      -- removal after many renames keeps names intact
      for i = 1, 300 do assert(g:rename(i == 1 and "c" or "c" .. (i - 1), "c" .. i)) end
      g:add("d", T.new{0, 0, 0, 1})
      assert.are.equal(2, g:remove("bea"))
      assert.are.same({"c300", "d"}, g:names())
      assert.are.equal("d", (g:identify(T.new{0, 0, 0, 1.1})))
    end)

    it("close frees the store; later calls raise, a second close is harmless", function()
      local g = new()
      g:add("a", T.zeros{4})
      g:close()
      g:close()
      assert.are.equal(0, #g)
      support.assert_error(function() g:add("a", T.zeros{4}) end, "closed")
      do
        local h <close> = new()
        h:add("a", T.zeros{4})
      end
    end)
  end)

  describe("search", function()
    -- Every metric and score mode, with more templates than one sgemm block
    -- (4096) and more queries than one query block (64).
    for _, metric in ipairs{"euclidean", "cosine"} do
      it("template-level k-NN equals a brute-force loop (" .. metric .. ")", function()
        siamese.manual_seed(7)
        local dim, n, m, k = 6, 4500, 70, 4
        local g = new{dim = dim, metric = metric}
        local names = {}
        for i = 1, n do names[i] = "p" .. ((i - 1) % 1000 + 1) end
        local data = T.randn{n, dim}
        data:select(1, 17):zero() -- a zero template (cosine: distance 1)
        g:add_many(names, data)
        local q = T.randn{m, dim}
        local D, I, N = g:search(q, k)
        assert.are.same({m, k}, D:shape())
        local rows = {}
        for j = 1, n do rows[j] = row(data, j) end
        for i = 1, m, 3 do
          local qi = row(q, i)
          local ds = {}
          for j = 1, n do ds[j] = {ref_distance(qi, rows[j], metric), j} end
          table.sort(ds, function(a, b) return a[1] < b[1] or (a[1] == b[1] and a[2] < b[2]) end)
          for r = 1, k do
            support.near(D:get(i, r), ds[r][1], 2e-5, "distance")
            -- indices agree unless two distances are within rounding
            if math.abs(ds[r][1] - (ds[r + 1] or {math.huge})[1]) > 1e-4 and
               (r == 1 or math.abs(ds[r][1] - ds[r - 1][1]) > 1e-4) then
              assert.are.equal(ds[r][2], I[i][r])
            end
            assert.are.equal(names[I[i][r]], N[i][r])
          end
        end
      end)
    end

    it("clamps k to the number of templates and works on an empty gallery", function()
      local g = new()
      local D, I, N = g:search(T.zeros{2, 4}, 3)
      assert.are.same({2, 0}, D:shape())
      assert.are.same({{}, {}}, I)
      assert.are.same({{}, {}}, N)
      g:add("a", T.new{3, 4, 0, 0})
      D, I, N = g:search(T.zeros{4}, 3)
      assert.are.same({1, 1}, D:shape())
      assert.are.equal(5, D:get(1, 1))
      assert.are.same({{1}}, I)
      assert.are.same({{"a"}}, N)
      support.assert_error(function() g:search(T.zeros{4}, 0) end, "search", "k")
      support.assert_error(function() g:search(T.zeros{5}, 1) end, "search", "[5]")
      support.assert_error(function() g:search(T.zeros{4}, 1, "other") end, "search", "other")
    end)

    it("identity-level search keeps distinct identities (nearest template)", function()
      local g = new{dim = 2, threshold = 0.5}
      g:add_many({"a", "a", "a", "b", "c"}, T.new{{0, 0}, {0.1, 0}, {0.2, 0}, {1, 0}, {3, 0}})
      local name, d, c = g:identify(T.new{0.15, 0}, {k = 3})
      assert.are.equal("a", name)
      support.near(d, 0.05, 1e-6, "best")
      assert.are.equal(3, #c)
      assert.are.same({"a", "b", "c"}, {c[1].name, c[2].name, c[3].name})
      support.near(c[2].distance, 0.85, 1e-6, "b")
      support.near(c[3].distance, 2.85, 1e-6, "c")
      -- unknown beyond the threshold, overridable per call
      name, d = g:identify(T.new{2, 0})
      assert.is_nil(name)
      support.near(d, 1, 1e-6, "best")
      assert.are.equal("b", (g:identify(T.new{2, 0}, {threshold = 1.5})))
      -- k larger than the identities
      assert.are.equal(3, #select(3, g:identify(T.new{0, 0}, {k = 10})))
      -- the threshold itself is accepted (distance <= threshold)
      assert.are.equal("a", (g:identify(T.new{-0.5, 0})))
      assert.are.equal(0.5, select(2, g:identify(T.new{-0.5, 0})))
    end)

    it("scores by the mean template with score = 'mean'", function()
      local g = new{dim = 2, score = "mean", threshold = 1}
      g:add_many({"a", "a", "b"}, T.new{{0, 0}, {2, 0}, {1.5, 0}})
      -- mean of a is (1, 0): q = (1.2, 0) is 0.2 from a, 0.3 from b
      local name, d, c = g:identify(T.new{1.2, 0}, {k = 2})
      assert.are.equal("a", name)
      support.near(d, 0.2, 1e-6, "mean distance")
      support.near(c[2].distance, 0.3, 1e-6, "b")
      local ok, dv = g:verify("a", T.new{1.2, 0})
      assert.is_true(ok)
      support.near(dv, 0.2, 1e-6, "verify")
      -- means follow enrolment and removal
      g:add("a", T.new{4, 0})
      support.near(select(2, g:verify("a", T.new{2, 0})), 0, 1e-6, "new mean")
      g:remove("b")
      assert.are.equal("a", (g:identify(T.new{2, 0})))
    end)

    it("cosine mean uses the normalised templates", function()
      local g = new{dim = 2, metric = "cosine", score = "mean"}
      g:add("a", T.new{{10, 0}, {0, 1}}) -- mean direction (1, 1) / 2
      local _, d = g:verify("a", T.new{1, 1})
      support.near(d, 0, 1e-6, "cosine to the mean direction")
      _, d = g:verify("a", T.new{1, 0})
      support.near(d, 1 - math.sqrt(0.5), 1e-6, "45 degrees")
    end)

    it("verify accepts within the threshold and reports unknown names", function()
      local g = new{threshold = 0.5}
      g:add("alice", T.new{{1, 0, 0, 0}, {0, 0, 1, 0}})
      local ok, d, t = g:verify("alice", T.new{0.7, 0, 0, 0})
      assert.is_true(ok)
      support.near(d, 0.3, 1e-7, "distance")
      assert.are.equal(0.5, t)
      ok, d = g:verify("alice", T.new{0, 1, 0, 0})
      assert.is_false(ok)
      support.near(d, math.sqrt(2), 1e-7, "distance")
      local none, msg = g:verify("bob", T.new{1, 0, 0, 0})
      assert.is_nil(none)
      assert.are.equal("unknown identity 'bob'", msg)
      support.assert_error(function() g:verify("alice", T.zeros{2, 4}) end, "verify", "[2,4]")
      support.assert_error(function() g:verify("alice", T.zeros{4}, "other:0") end, "verify", "other:0")
    end)

    it("identify on an empty gallery gives nil, math.huge, {}", function()
      local name, d, c = new():identify(T.zeros{4})
      assert.is_nil(name)
      assert.are.equal(math.huge, d)
      assert.are.same({}, c)
    end)

    it("identify_batch agrees with identify row by row", function()
      siamese.manual_seed(3)
      local g = new{dim = 5, threshold = 1.9}
      local names = {}
      for i = 1, 200 do names[i] = "id" .. (i % 37) end
      g:add_many(names, T.randn{200, 5})
      local q = T.randn{9, 5}
      local batch = g:identify_batch(q, {k = 3})
      assert.are.equal(9, #batch)
      for i = 1, 9 do
        local name, d, c = g:identify(q:select(1, i), {k = 3})
        assert.are.equal(name, batch[i].name)
        support.near(batch[i].distance, d, 1e-6, "distance")
        for j = 1, 3 do assert.are.equal(c[j].name, batch[i].candidates[j].name) end
      end
      support.assert_error(function() g:identify(q) end, "identify", "identify_batch")
      support.assert_error(function() g:identify(q:select(1, 1), {k = 0}) end, "identify", "k")
      support.assert_error(function() g:identify_batch(q, nil, "m9") end, "identify_batch", "m9")
    end)
  end)

  describe("persistence", function()
    local dir
    before_each(function() dir = support.temp_dir("gallery") end)
    after_each(function() support.remove_dir(dir) end)

    local function sample()
      local g = gallery.new{dim = 3, metric = "cosine", threshold = 0.125, model = MODEL, score = "mean"}
      g:add_many({"ann", "bob", "ann", "zoë"}, T.new{{1, 2, 3}, {0, 1, 0}, {-1, 0.5, 2}, {0, 0, 1}})
      return g
    end

    it("round-trips names, vectors, metric, score, threshold and model", function()
      local g = sample()
      local path = dir .. "/people.gallery"
      assert.is_true(g:save(path))
      local h = assert(gallery.load(path))
      assert.are.same(g:names(), h:names())
      assert.are.equal("cosine", h:metric())
      assert.are.equal("mean", h:score_mode())
      assert.are.equal(0.125, h:threshold())
      assert.are.equal(MODEL, h:model())
      assert.are.equal(4, h:size())
      for _, name in ipairs(g:names()) do assert.are.same(g:templates(name):totable(), h:templates(name):totable()) end
      local q = T.new{{1, 1, 1}, {0, 1, 0.1}}
      local a, b = g:identify_batch(q, {k = 3}), h:identify_batch(q, {k = 3})
      assert.are.same(a, b)
      -- an empty gallery too, and saving over an existing file
      assert.is_true(new():save(path))
      local e = assert(gallery.load(path))
      assert.are.equal(0, #e)
      assert.are.same({"people.gallery"}, support.list_dir(dir)) -- no temporary left behind
    end)

    it("returns nil, message when the file cannot be written or read", function()
      local ok, err = sample():save(dir .. "/missing/x.gallery")
      assert.is_nil(ok)
      assert.truthy(err:find("missing/x.gallery", 1, true))
      ok, err = gallery.load(dir .. "/none.gallery")
      assert.is_nil(ok)
      assert.truthy(err:find("none.gallery", 1, true))
      ok, err = gallery.load(dir)
      assert.is_nil(ok)
      assert.truthy(err)
    end)

    -- the bytes of a saved file, and the same bytes with a fixed CRC-32
    local function bytes_of(g)
      local path = dir .. "/s.gallery"
      assert(g:save(path))
      return support.read_file(path)
    end
    local function with_crc(body)
      return body .. string.pack("<I4", (siamese.hash.crc32(body)))
    end
    local function load_bytes(bytes)
      local path = dir .. "/m.gallery"
      support.write_file(path, bytes)
      return gallery.load(path)
    end
    local function refused(bytes, ...)
      local g, err = load_bytes(bytes)
      assert.is_nil(g)
      assert.are.equal("string", type(err))
      for _, text in ipairs{...} do
        assert(err:find(text, 1, true), "message '" .. err .. "' lacks '" .. text .. "'")
      end
    end

    it("refuses truncated, damaged, foreign and inconsistent files with a message", function()
      local s = bytes_of(sample())
      for len = 0, #s - 1 do refused(s:sub(1, len)) end
      refused(s .. "x", "CRC")
      refused("NOTAGALL" .. s:sub(9), "bad magic")
      refused(s:sub(1, 8) .. string.pack("<I4", 2) .. s:sub(13), "version 2")
      local body = s:sub(1, -5)
      -- absurd counts with a valid checksum
      local function set(off, fmt, v)
        return with_crc(body:sub(1, off) .. string.pack(fmt, v) .. body:sub(off + string.packsize(fmt) + 1))
      end
      refused(set(48, "<I8", 1 << 40), "do not fit")         -- templates
      refused(set(40, "<I8", 1 << 40), "do not fit")         -- identities
      refused(set(40, "<I8", 2), "bytes after the names")    -- fewer identities than named
      refused(set(32, "<I8", 0), "dimension")
      refused(set(32, "<I8", 1 << 62), "dimension")
      refused(set(12, "<I4", 7), "metric")
      refused(set(16, "<I4", 9), "score")
      refused(set(20, "<I4", 0), "model id")
      refused(set(24, "<d", 0 / 0), "threshold")
      -- a name repeated, the owners out of order, a NaN vector
      local model_end = 56 + #MODEL
      local name1 = body:sub(model_end + 1, model_end + 7)  -- u32 3, "ann"
      assert.are.equal(string.pack("<I4", 3) .. "ann", name1)
      local dup = body:sub(1, model_end + 7) .. string.pack("<I4", 3) .. "ann" .. body:sub(model_end + 14 + 1)
      assert.are.equal(#body, #dup)
      refused(with_crc(dup), "appears twice")
      local owners = #body - 4 * 3 * 4 - 4 * 4 -- 4 templates x 3 floats, then 4 owners before them
      refused(set(owners, "<I4", 2), "owner")
      refused(set(#body - 4, "<f", 0 / 0), "not finite")
    end)

    it("fuzz: a few hundred mutated files all return, none crashes", function()
      local s = bytes_of(sample())
      local rng_state = 12345
      local function rand(n) -- small LCG: the same mutations every run
        rng_state = (rng_state * 1103515245 + 12345) % 2147483648
        return rng_state % n + 1
      end
      local loaded = 0
      for trial = 1, 300 do
        local b = {s:byte(1, -1)}
        for _ = 1, rand(4) do
          local i = rand(#b)
          b[i] = (b[i] ~ (1 << (rand(8) - 1))) & 0xFF
        end
        local m = string.char(table.unpack(b))
        if trial % 2 == 0 then m = with_crc(m:sub(1, -5)) end -- also past the checksum
        local g, err = load_bytes(m)
        if g then
          loaded = loaded + 1
          assert.are.equal(trial % 2, 0) -- only a fixed checksum can pass
          g:identify(T.new{1, 1, 1}) -- whatever loaded is usable
        else
          assert.are.equal("string", type(err))
        end
      end
      assert.truthy(loaded < 300)
    end)

    it("a save killed half-way leaves the previous file intact", function()
      local path = dir .. "/big.gallery"
      local small = sample()
      assert(small:save(path))
      local build = os.getenv("SIAMESE_BUILD") or "build"
      local flag, pidfile = dir .. "/saving", dir .. "/pid"
      local child = dir .. "/child.lua"
      -- the child builds a big gallery then saves it over path again and again
      support.write_file(child, string.format([[
        local siamese = require "siamese"
        local g = siamese.gallery.new{dim = 128, model = "big", threshold = 1}
        local names = {}
        for i = 1, 60000 do names[i] = "n" .. i end
        g:add_many(names, siamese.tensor.randn{60000, 128})
        io.open(%q, "w"):close()
        while true do assert(g:save(%q)) end
      ]], flag, path))
      local env = string.format("LUA_PATH_5_4='./lua/?.lua;./lua/?/init.lua;;' LUA_CPATH_5_4='./%s/?.so;;'", build)
      local function temporaries()
        local found = {}
        for _, name in ipairs(support.list_dir(dir)) do
          if name:find("big.gallery.tmp.", 1, true) then found[#found + 1] = name end
        end
        return found
      end
      -- Odd attempts kill after a delay (any phase of a save), even ones as
      -- soon as a temporary file exists (the new file half-written). They go
      -- on until a kill has landed while a temporary existed, at most 12.
      local interrupted, attempt = 0, 0
      while (interrupted == 0 or attempt < 2) and attempt < 12 do
        attempt = attempt + 1
        os.remove(flag)
        assert(os.execute(string.format("%s lua5.4 %s >/dev/null 2>&1 & echo $! > %s", env, child, pidfile)))
        local pid = support.read_file(pidfile):match("%d+")
        local waited = 0
        while not io.open(flag) and waited < 600 do
          os.execute("sleep 0.05")
          waited = waited + 1
        end
        assert(io.open(flag), "the child never started saving")
        if attempt % 2 == 1 then
          os.execute(string.format("sleep %.2f", 0.1 + (attempt * 0.37) % 0.6))
        else
          local polls = 0
          while #temporaries() == 0 and polls < 2000 do polls = polls + 1 end
        end
        os.execute("kill -9 " .. pid)
        while os.execute("kill -0 " .. pid .. " 2>/dev/null") do os.execute("sleep 0.02") end
        for _, name in ipairs(temporaries()) do
          interrupted = interrupted + 1
          os.remove(dir .. "/" .. name)
        end
        -- the file is the small gallery or a complete big one, never broken
        local g, err = gallery.load(path)
        assert(g, err)
        if g:model() == "big" then
          assert.are.equal(60000, #g)
        else
          assert.are.same(small:names(), g:names())
        end
      end
      assert.truthy(interrupted > 0, "no kill landed in the middle of a save")
    end)
  end)

  it("rows gives every template and its owner in one pass; clear empties the gallery", function()
    local g = new{dim = 3}
    assert.are.same({0, 3}, {g:rows():size(1), g:rows():size(2)})
    g:add("a", T.new{{1, 2, 3}, {4, 5, 6}})
    g:add("b", T.new{{7, 8, 9}})
    g:add("a", T.new{{0, 0, 1}})
    local t, owners = g:rows()
    assert.are.same({1, 1, 2, 1}, owners)
    assert.are.same({{1, 2, 3}, {4, 5, 6}, {7, 8, 9}, {0, 0, 1}}, t:totable())
    -- the same rows as templates gives, name by name
    assert.are.same({{1, 2, 3}, {4, 5, 6}, {0, 0, 1}}, g:templates("a"):totable())
    g:clear()
    assert.are.same({0, 0, {}}, {g:count(), g:size(), g:names()})
    assert.is_false(g:has("a"))
    g:add("a", T.new{{1, 1, 1}}) -- usable again
    assert.are.same({"a"}, g:names())
    g:close()
    support.assert_error(function() g:rows() end, "gallery:rows", "closed")
  end)

  it("face.load records the recognizer's model id and dimension", function()
    local fr = assert(siamese.face.load{model = "faceapi"})
    local digest = siamese.hash.file_sha256("models/faceapi_recognition.safetensors")
    assert.are.equal("faceapi_recognition:" .. digest:sub(1, 16) .. "/dlib", fr.model_id)
    assert.are.equal(128, fr.dim)
    -- the alignment is part of the id: chips of another geometry give other descriptors
    local other = assert(siamese.face.load{model = "faceapi", align = "faceapi"})
    assert.are.equal("faceapi_recognition:" .. digest:sub(1, 16) .. "/faceapi", other.model_id)
    local g = gallery.new{dim = fr.dim, model = fr.model_id}
    assert.are.equal(fr.model_id, g:model())
  end)
end)

describe("siamese.gallery_object", function()
  it("gives the C gallery its checked names and result tables, whichever module made it", function()
    local Gallery = require "siamese.gallery_object"
    local core = require "siamese.core"
    assert.are.equal(core.gallery.Gallery, Gallery)
    local g = core.gallery.new{dim = 2, metric = "euclidean", threshold = 0.5, model = MODEL}
    assert.are.equal(1, g:add("  Ada  ", T.new{1, 0}))
    assert.are.same({"Ada"}, g:names())                                     -- trimmed
    assert.has_error(function() g:add("ADA", T.new{0, 1}) end)              -- a case twin
    assert.has_error(function() g:add("Bad\1name", T.new{0, 1}) end)        -- a control character
    g:add_many({"Bob", "Cy"}, T.new{{0, 1}, {-1, 0}})
    g:rename("Cy", "Cyd")
    local name, d, candidates = g:identify(T.new{0.9, 0.1}, {k = 2})
    assert.are.equal("Ada", name)
    assert.is_true(math.abs(d - math.sqrt(0.02)) < 1e-6)
    assert.are.equal(2, #candidates)
    local ok, dist = g:verify("Cyd", T.new{-1, 0})
    assert.is_true(ok)
    assert.are.equal(0, dist)
    assert.are.equal(3, #g:identify_batch(T.new{{1, 0}, {0, 1}, {-1, 0}}))
  end)
end)
