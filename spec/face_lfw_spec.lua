-- Specs of siamese.face.lfw: the pairs files, the protocol's figures and
-- the embedding of a pairs file's photos (examples/data/faces is laid out
-- like LFW: Name/Name_0001.jpg).
--
-- Float comparisons use bounds derived from the computation
-- (spec/face_bounds.lua: gamma(n) for float32, gamma64(n) for doubles).
local siamese = require "siamese"
local lfw = require "siamese.face.lfw"
local bounds = dofile("spec/face_bounds.lua")

local function write(path, text)
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
  return path
end

local ROOT = "examples/data/faces"

describe("siamese.face.lfw", function()
  local tmp = os.tmpname()

  after_each(function() os.remove(tmp) end)

  it("reads View 1 files into 10 interleaved folds and View 2 files by block", function()
    local lines = {"20"}
    for i = 1, 20 do lines[#lines + 1] = string.format("Colin_Powell\t%d\t%d", i, i + 1) end
    for i = 1, 20 do lines[#lines + 1] = string.format("Colin_Powell %d Tony_Blair %d", i, i) end
    local p = assert(lfw.read_pairs(write(tmp, table.concat(lines, "\n") .. "\n")))
    assert.are.equal(40, #p)
    assert.is_true(p[1].same)
    assert.are.same({"Colin_Powell", 1}, p[1].a)
    assert.are.same({"Colin_Powell", 2}, p[1].b)
    assert.is_false(p[21].same)
    assert.are.same({"Tony_Blair", 1}, p[21].b)
    assert.are.equal(1, p[1].fold)
    assert.are.equal(1, p[11].fold)
    assert.are.equal(1, p[21].fold)
    assert.are.equal(10, p[40].fold)
    local q = assert(lfw.read_pairs(write(tmp, "2 1\nA 1 2\nA 1 B 1\nC 1 2\nC 1 D 3\n")))
    assert.are.same({1, 1, 2, 2}, {q[1].fold, q[2].fold, q[3].fold, q[4].fold})
  end)

  it("lists the distinct photos of the pairs in order of first appearance", function()
    local q = assert(lfw.read_pairs(write(tmp, "2 1\nA 1 2\nA 1 B 1\nC 1 2\nC 1 D 3\n")))
    local keys, side_of = lfw.photos(q)
    assert.are.same({"A/1", "A/2", "B/1", "C/1", "C/2", "D/3"}, keys)
    assert.are.same({"D", 3}, side_of["D/3"])
    assert.are.same({}, (lfw.photos({})))
    assert.has_error(function() lfw.photos("pairs.txt") end,
      "bad argument #1 to 'photos' (list of pairs expected, got string)")
  end)

  it("refuses malformed pairs files with a message", function()
    local p, err = lfw.read_pairs(write(tmp, "ten\n"))
    assert.is_nil(p)
    assert.matches("first line", err)
    p, err = lfw.read_pairs(write(tmp, "1\nA 1\nA 1 B 2\n"))
    assert.is_nil(p)
    assert.matches(":2: expected 3 or 4 fields", err)
    p, err = lfw.read_pairs(write(tmp, "2\nA 1 2\nA 1 B 2\n"))
    assert.is_nil(p)
    assert.matches("header announces 4", err)
    assert.is_nil(lfw.read_pairs("/nonexistent/pairs.txt"))
  end)

  it("finds photos under the root or its lfw-deepfunneled folder", function()
    assert.are.equal(ROOT .. "/Tony_Blair/Tony_Blair_0003.jpg", lfw.image_path(ROOT, "Tony_Blair", 3))
  end)

  it("turns descriptors into distances and the protocol's figures", function()
    local T = siamese.tensor
    local lines = {"10"}
    for i = 1, 10 do lines[#lines + 1] = "A " .. i .. " " .. (i + 10) end
    for i = 1, 10 do lines[#lines + 1] = "A " .. i .. " B " .. i end
    local p = assert(lfw.read_pairs(write(tmp, table.concat(lines, "\n"))))
    local desc = {}
    for i = 1, 20 do desc["A/" .. i] = T.new{0, i * 0.001} end
    for i = 1, 10 do desc["B/" .. i] = T.new{1, 0} end
    local d, same, folds = lfw.distances(p, desc)
    -- 0.001 and 0.011 stored in float32 (U each, relative), their float32
    -- difference (U) and a norm of two terms (gamma(3)), in float32 or better
    assert.is_true(math.abs(d[1] - 0.01) <= bounds.U * 0.012 + bounds.gamma(4) * 0.01)
    assert.is_true(d[11] > 0.9)
    local m = lfw.metrics(d, same, folds)
    -- each fold's accuracy is exactly 1; the mean sums 10 rounded tenths
    assert.is_true(math.abs(m.accuracy - 1) <= bounds.gamma64(11))
    assert.are.equal(1, m.auc)
    assert.are.equal(20, m.pairs)
  end)

  it("embeds every photo of the pairs once, plain, jittered or L2-normalised", function()
    local p = assert(lfw.read_pairs(write(tmp,
      "2\nSerena_Williams 1 2\nTony_Blair 1 2\nSerena_Williams 1 Tony_Blair 1\nColin_Powell 1 Tony_Blair 2\n")))
    local fr = assert(siamese.face.load{model = "faceapi"})
    local calls = 0
    local desc, how = lfw.embed_images(fr, ROOT, p, function(i, n)
      calls = calls + 1
      assert.are.equal(5, n)
      assert.is_true(i >= 1 and i <= n)
    end)
    assert.are.equal(5, calls)
    assert.are.equal(5, how.detected + how.low_threshold + how.centre)
    local d = lfw.distances(p, desc)
    assert.is_true(d[1] < d[3] and d[2] < d[4])
    local jd = lfw.embed_images(fr, ROOT, {p[1]}, nil, {jitter = 2, l2 = true})
    local a, b = jd["Serena_Williams/1"], desc["Serena_Williams/1"]
    -- d / |d|: the norm of 128 squares (gamma(129), float32 or better), one
    -- rounding per component (U, and the double 1 / |d|), and a:norm()
    -- itself (gamma(129) again)
    assert.is_true(math.abs(a:norm() - 1) <= 2 * bounds.gamma(130) + 2 * bounds.U)
    local cos = a:clone():mul(b):sum() / b:norm()
    -- Semantic, not round-off: the mean over the chip and two jittered
    -- copies is another descriptor of the same face (cosine above 0.95)
    -- that jitter did move (1 - cos above 1e-6; here ~1.3e-3). The derived
    -- bound on two forwards of one chip (2 R max|desc| per component,
    -- face_bounds, R ~ 0.3 for this net) is far too wide to tell jitter
    -- from round-off, so this stays a semantic threshold: "moved at all",
    -- where 1 - cos is second order in the descriptors' difference.
    assert.is_true(cos > 0.95 and cos < 1 - 1e-6, "cosine " .. cos)
    assert.has_error(function() lfw.embed_images(fr, ROOT, p, nil, {jitter = -1}) end)
  end)

  it("siamese eval lfw refuses a bad --jitter, --align or --refine before any work", function()
    local eval_cmd = require "siamese.app.cli.eval"
    local stderr = io.stderr
    io.stderr = assert(io.open("/dev/null", "w")) -- luacheck: ignore
    local codes = {
      eval_cmd.run{"lfw", "--root", ROOT, "--pairs", tmp, "--jitter", "-2"},
      eval_cmd.run{"lfw", "--root", ROOT, "--pairs", tmp, "--jitter", "1.5"},
      eval_cmd.run{"lfw", "--root", ROOT, "--pairs", tmp, "--align", "mirror"},
      eval_cmd.run{"lfw", "--root", ROOT, "--pairs", tmp, "--refine", "9"},
    }
    io.stderr:close()
    io.stderr = stderr -- luacheck: ignore
    assert.are.same({2, 2, 2, 2}, codes)
  end)
end)
