-- Specs of siamese.eval's identification metrics: closed-set rank-1 with a
-- gallery, open-set DIR at a false-alarm rate (hand-computed cases).
local siamese = require "siamese"
local support = dofile("spec/support.lua")
local eval, T = siamese.eval, siamese.tensor

describe("siamese.eval identification", function()
  -- The gallery's euclidean distance of a float32 probe q (rounded from
  -- the double literals: u |q|) to a template t: s = |t|^2 - 2 q.t + |q|^2
  -- within E = gamma(dim + 4) (|q|^2 + |t|^2 + 2 sum|q_j t_j|), so the root
  -- within E / d (+ u d for its own rounding).
  local function dist_bound(q, t, d)
    local qq, tt, qt = 0, 0, 0
    for j = 1, #q do qq, tt, qt = qq + q[j] ^ 2, tt + t[j] ^ 2, qt + math.abs(q[j] * t[j]) end
    local E = support.gamma(#q + 4) * (qq + tt + 2 * qt)
    return math.min(E / d, math.sqrt(E)) + support.U * (d + math.sqrt(qq))
  end

  it("rank1 counts enrolled probes whose nearest identity is right", function()
    local g = siamese.gallery.new{dim = 2, model = "m", threshold = 0.1}
    g:add_many({"a", "b", "c"}, T.new{{0, 0}, {1, 0}, {0, 1}})
    local q = T.new{{0.1, 0}, {0.9, 0.1}, {0.6, 0.1}, {0, 0.9}, {5, 6}}
    -- probe 3 is c but lies nearer b; probe 5 is not enrolled
    local acc, predicted, distances = eval.rank1(g, q, {"a", "b", "c", "c", false})
    support.near(acc, 3 / 4, 0, "rank-1") -- 3 / 4: exact
    assert.are.same({"a", "b", "b", "c", "c"}, predicted) -- threshold ignored
    support.within(distances[1], 0.1, dist_bound({0.1, 0}, {0, 0}, 0.1), "distance 1")
    support.within(distances[5], math.sqrt(50), dist_bound({5, 6}, {0, 1}, math.sqrt(50)), "distance 5")
    -- a label that is not in the gallery counts as not enrolled
    assert.are.equal(1, (eval.rank1(g, q:narrow(1, 1, 2), {"a", "zed"})))
    assert.is_nil((eval.rank1(g, q:narrow(1, 5, 1), {false})))
    support.assert_error(function() eval.rank1(g, q, {"a"}) end, "rank1", "1 labels for 5")
  end)

  -- probes 1-3 are enrolled (3 misidentified), 4-7 impostors at 0.4, 0.6, 0.9, 0.35
  local probes = {
    distances = {0.2, 0.5, 0.3, 0.4, 0.6, 0.9, 0.35},
    predicted = {"a", "b", "x", "a", "b", "c", "a"},
    labels = {"a", "b", "c", false, false, false, false},
  }
  local function at(far)
    return eval.open_set{distances = probes.distances, predicted = probes.predicted, labels = probes.labels, far = far}
  end

  it("open_set: DIR and threshold at false-alarm rates 0, 1/4, 1/2, 1", function()
    local dir, t, info = at(0)
    support.near(dir, 1 / 3, 0, "DIR at 0") -- a ratio of small integers: one rounding, as 1 / 3 here
    assert.are.equal(0.3, t)      -- the largest distance below the nearest impostor (0.35)
    assert.are.equal(0, info.far)
    support.near(info.rank1, 2 / 3, 0, "rank-1")
    assert.are.equal(3, info.genuine)
    assert.are.equal(4, info.impostors)
    dir, t, info = at(0.25)
    support.near(dir, 1 / 3, 0, "DIR at 0.25")
    assert.are.equal(0.35, t)
    assert.are.equal(0.25, info.far)
    dir, t, info = at(0.5)
    support.near(dir, 2 / 3, 0, "DIR at 0.5")
    assert.are.equal(0.5, t)
    assert.are.equal(0.5, info.far)
    dir, t, info = at(1)
    support.near(dir, 2 / 3, 0, "DIR at 1")
    assert.are.equal(0.9, t)
    assert.are.equal(1, info.far)
  end)

  it("open_set never exceeds the rate when impostors tie", function()
    local dir, t, info = eval.open_set{distances = {0.1, 0.4, 0.4}, predicted = {"a", "a", "a"},
                                       labels = {"a", false, false}, far = 0.5}
    assert.are.equal(0.1, t)
    assert.are.equal(0, info.far)
    assert.are.equal(1, dir)
    -- nothing below the first impostor: nothing accepted
    dir, t = eval.open_set{distances = {0.5, 0.1}, predicted = {"a", "a"}, labels = {"a", false}, far = 0}
    assert.are.equal(0, dir)
    assert.are.equal(-math.huge, t)
  end)

  it("open_set rejects malformed input", function()
    assert.has_error(function() eval.open_set{distances = {1}, predicted = {}, labels = {"a"}, far = 0.1} end)
    assert.has_error(function() eval.open_set{distances = {1}, predicted = {"a"}, labels = {"a"}, far = 2} end)
    assert.has_error(function() eval.open_set{distances = {}, predicted = {}, labels = {}, far = 0.1} end)
  end)

  it("rank1 and open_set chain on a gallery", function()
    local g = siamese.gallery.new{dim = 2, model = "m"}
    g:add_many({"a", "b"}, T.new{{0, 0}, {1, 0}})
    local labels = {"a", "b", false}
    local _, predicted, distances = eval.rank1(g, T.new{{0.1, 0}, {1, 0.2}, {0.5, 0.5}}, labels)
    local dir, t = eval.open_set{distances = distances, predicted = predicted, labels = labels, far = 0}
    assert.are.equal(1, dir)
    support.within(t, 0.2, dist_bound({1, 0.2}, {1, 0}, 0.2), "threshold") -- probe 2's distance
  end)
end)
