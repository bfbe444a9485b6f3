-- Specs of siamese.face.track: tracks across frames (matching, ends after
-- max_missed detection frames, coasting frames) and one identity decision
-- per visit by m-of-n votes. Synthetic faces (plain tables) except the last
-- block, which runs the real pipeline on three bundled photos.
local siamese = require "siamese"
local track = require "siamese.face.track"
local T = require "siamese.tensor"
local support = dofile("spec/support.lua")

local DIM = 8

-- A unit vector: e_axis plus noise * e_other (cosine distance to e_axis
-- 1 - 1/sqrt(1 + noise^2)).
local function unit(axis, noise, other)
  local v = {}
  for i = 1, DIM do v[i] = 0 end
  v[axis] = 1
  if noise then v[other or 8] = noise end
  local n = math.sqrt(1 + (noise or 0) ^ 2)
  for i = 1, DIM do v[i] = v[i] / n end
  return T.new(v)
end

local function cos_dist(noise) return 1 - 1 / math.sqrt(1 + noise ^ 2) end

-- Two enrolled people (axes 1 and 2) and a stranger (axis 3, cosine
-- distance 1 from both).
local DESC = {
  A = function(noise) return unit(1, noise or 0.1, 6) end,
  B = function(noise) return unit(2, noise or 0.1, 7) end,
  S = function(noise) return unit(3, noise or 0.1, 8) end,
}

local function new_gallery()
  local g = siamese.gallery.new{dim = DIM, metric = "cosine", threshold = 0.3, model = "test:0"}
  g:add("A", unit(1))
  g:add("B", unit(2))
  return g
end

-- Five points in a square box of side s at (x, y); two face shapes, so
-- that faces over the same place can be told apart.
local SHAPES = {
  wide = {{0.3, 0.4}, {0.7, 0.4}, {0.5, 0.6}, {0.35, 0.8}, {0.65, 0.8}},
  narrow = {{0.38, 0.3}, {0.62, 0.3}, {0.5, 0.45}, {0.42, 0.62}, {0.58, 0.62}},
}

-- A face table as siamese.door's encoder gives: who (the person; a spec
-- tag), box, score, points5, quality, descriptor (when it passed the gate).
-- opts: size (60), shape ("wide"), ok (true), desc (the descriptor;
-- default one near who's axis), score (0.99), chip.
local function face(who, x, y, opts)
  opts = opts or {}
  local s = opts.size or 60
  local pts = {}
  for i, p in ipairs(SHAPES[opts.shape or "wide"]) do pts[i] = {x + p[1] * s, y + p[2] * s} end
  local ok = opts.ok ~= false
  local desc = opts.desc
  if desc == nil and DESC[who] then desc = DESC[who]() end
  return {who = who, box = {x = x, y = y, width = s, height = s}, score = opts.score or 0.99, points5 = pts,
          quality = {ok = ok, reason = not ok and "face too small" or nil},
          descriptor = (ok or opts.keep_desc) and desc or nil, chip = opts.chip}
end

-- The events of one kind.
local function of_kind(events, kind)
  local out = {}
  for _, e in ipairs(events) do if e.kind == kind then out[#out + 1] = e end end
  return out
end

-- Runs frames (a list of face lists; false: a coasting frame) from frame
-- 1 and returns every event, each with .frame.
local function run(tracker, frames, first)
  local all = {}
  for i, faces in ipairs(frames) do
    local frame = (first or 1) + i - 1
    local events = faces and tracker:update(faces, frame, frame / 25) or tracker:coast(frame, frame / 25)
    for _, e in ipairs(events) do
      e.frame = frame
      all[#all + 1] = e
    end
  end
  return all
end

-- The tags of the faces a track holds, in order.
local function whos(t)
  local out = {}
  for _, h in ipairs(t.faces) do out[#out + 1] = h.face.who end
  return table.concat(out)
end

describe("siamese.face.track: tracks", function()
  it("keeps one id for a face that moves a few pixels per frame", function()
    local tr = track.new()
    local frames = {}
    for i = 1, 20 do frames[i] = {face("A", 50 + 3 * i, 40 + i)} end
    local events = run(tr, frames)
    assert.are.equal(1, #events)
    assert.are.equal("start", events[1].kind)
    local t = events[1].track
    assert.are.equal(1, t.id)
    assert.are.equal(1, #tr:tracks())
    assert.are.equal(t, tr:tracks()[1])
    assert.are.same({x = 110, y = 60, width = 60, height = 60}, t.box)
    assert.are.equal(1, t.first_frame)
    assert.are.equal(20, t.last_frame)
    support.near(t.first_time, 1 / 25, 1e-12, "first time")
    support.near(t.last_time, 20 / 25, 1e-12, "last time")
    assert.are.equal(20, t.n_faces)
    assert.are.equal(20, #t.faces)
    assert.are.equal(20, t.faces[20].frame)
    -- the history is bounded
    local short = track.new{history = 4}
    local ev = run(short, frames)
    assert.are.equal(4, #ev[1].track.faces)
    assert.are.equal(17, ev[1].track.faces[1].frame)
    assert.are.equal(20, ev[1].track.n_faces)
  end)

  it("numbers new tracks from 1 in the order of the faces, and ends them all with finish", function()
    local tr = track.new()
    local ev = tr:update({face("A", 0, 0), face("B", 200, 0), face("S", 400, 0)}, 1)
    assert.are.same({1, 2, 3}, {ev[1].track.id, ev[2].track.id, ev[3].track.id})
    assert.are.same({"A", "B", "S"}, {ev[1].track.faces[1].face.who, ev[2].track.faces[1].face.who,
                                      ev[3].track.faces[1].face.who})
    ev = tr:update({face("B", 203, 2), face("A", 3, 1)}, 2)
    assert.are.same({}, ev)
    assert.are.equal("AA", whos(tr:tracks()[1]))
    assert.are.equal("BB", whos(tr:tracks()[2]))
    local fin = tr:finish(3)
    assert.are.equal(3, #fin)
    for i, e in ipairs(fin) do
      assert.are.equal("end", e.kind)
      assert.are.equal("finished", e.reason)
      assert.are.equal(i, e.track.id)
      assert.is_nil(e.decision) -- no gallery: tracks only
    end
    assert.are.same({}, tr:tracks())
    -- a face far from every track starts a new one (ids keep increasing)
    ev = tr:update({face("A", 3, 1)}, 4)
    assert.are.equal(4, ev[1].track.id)
  end)

  it("keeps the ids of two people who cross (motion, and the five points when the boxes coincide)", function()
    -- A goes right and B left, 4 px per frame, on the same line: at frame
    -- 16 their boxes coincide, and around it each face overlaps both tracks
    for _, motion in ipairs{true, false} do
      local tr = track.new{motion = motion}
      local frames = {}
      -- B is listed first on the first frame (track 1), then A (so that a
      -- tie left to the order of tracks and faces would swap them)
      for i = 1, 31 do
        local a, b = face("A", 40 + 4 * (i - 1), 50), face("B", 160 - 4 * (i - 1), 50, {shape = "narrow"})
        frames[i] = i == 1 and {b, a} or {a, b}
      end
      local events = run(tr, frames)
      assert.are.equal(2, #events, "motion " .. tostring(motion))
      local a, b = tr:tracks()[1], tr:tracks()[2]
      assert.are.equal("B", a.faces[1].face.who)
      assert.are.equal(("B"):rep(30), whos(a), "motion " .. tostring(motion))
      assert.are.equal(("A"):rep(30), whos(b), "motion " .. tostring(motion))
      assert.are.equal(31, b.n_faces)
    end
  end)

  it("follows a face with the predicted box when detection runs every 5th frame", function()
    -- 8 px per frame on a 60 px face: detected on frames 1 and 2 (the
    -- velocity), then every 5th frame, 40 px apart: IoU 0.2 with the last
    -- box, 0.71 with the predicted one (moved at most half a face, 30 px)
    local function frames()
      local out = {{face("A", 0, 0)}}
      for i = 2, 27 do out[i] = (i == 2 or i % 5 == 2) and {face("A", 8 * (i - 1), 0)} or false end
      return out
    end
    local tr = track.new()
    assert.are.equal(1, #run(tr, frames()))
    assert.are.equal(7, tr:tracks()[1].n_faces)
    local pbox = tr:tracks()[1]:predict(30)
    assert.are.same({x = 208 + 24, y = 0, width = 60, height = 60}, pbox)
    -- without the prediction each detection starts a track
    tr = track.new{motion = false}
    assert.are.equal(6, #of_kind(run(tr, frames()), "start"))
  end)

  it("matches a box only when the five points agree, or when a face has none", function()
    local function shifted(dx)
      local f = face("A", 50, 50)
      for _, p in ipairs(f.points5) do p[1] = p[1] + dx end
      return f
    end
    -- the same box, its points 80 px (1.33 face sizes) away: a new track
    local tr = track.new()
    local ev = run(tr, {{face("A", 50, 50)}, {shifted(80)}})
    assert.are.equal(2, #of_kind(ev, "start"))
    tr = track.new{max_point_distance = 2}
    assert.are.equal(1, #run(tr, {{face("A", 50, 50)}, {shifted(80)}}))
    -- no points (nor landmarks): the boxes decide
    local bare = face("A", 52, 50)
    bare.points5 = nil
    tr = track.new()
    assert.are.equal(1, #run(tr, {{face("A", 50, 50)}, {bare}, {face("A", 54, 50)}}))
    -- 68 landmarks stand for the five points (as in the quality gate)
    local marks = {}
    for i = 1, 68 do marks[i] = {130, 130} end
    local lm = face("A", 52, 50)
    lm.points5, lm.landmarks = nil, marks
    tr = track.new{max_point_distance = 0.3}
    assert.are.equal(2, #of_kind(run(tr, {{face("A", 50, 50)}, {lm}}), "start"))
  end)

  it("ends a track at max_missed detection frames without its face, and starts another when it reappears", function()
    for _, max_missed in ipairs{1, 3, 5} do
      -- gone for max_missed - 1 frames: the same track
      local tr = track.new{max_missed = max_missed}
      local frames = {{face("A", 50, 50)}}
      for _ = 1, max_missed - 1 do frames[#frames + 1] = {} end
      frames[#frames + 1] = {face("A", 52, 50)}
      local events = run(tr, frames)
      assert.are.equal(1, #events)
      assert.are.equal(2, events[1].track.n_faces)
      assert.are.equal(0, events[1].track.missed)
      -- gone for max_missed frames: ended on the last of them, then a new track
      tr = track.new{max_missed = max_missed}
      frames = {{face("A", 50, 50)}}
      for _ = 1, max_missed do frames[#frames + 1] = {} end
      frames[#frames + 1] = {face("A", 52, 50)}
      events = run(tr, frames)
      assert.are.same({"start", "end", "start"}, {events[1].kind, events[2].kind, events[3].kind})
      assert.are.equal(1 + max_missed, events[2].frame)
      assert.are.equal("missed", events[2].reason)
      assert.are.equal(1, events[2].track.id)
      assert.are.equal(1, events[2].track.last_frame)
      assert.are.equal(1 + max_missed, events[2].track.ended_frame)
      assert.are.equal(2, events[3].track.id)
      assert.are.equal(2 + max_missed, events[3].frame)
    end
  end)

  it("does not age tracks on coasting frames: detect every 3rd frame, track in between", function()
    local tr = track.new() -- max_missed 5
    local frames = {}
    -- 2 px per frame; detection on frames 1, 4, 7, ...; the face is not
    -- detected on frames 19..28 (4 detection frames, 10 frames in all)
    for i = 1, 40 do
      if i % 3 ~= 1 then
        frames[i] = false
      elseif i >= 19 and i <= 28 then
        frames[i] = {}
      else
        frames[i] = {face("A", 10 + 2 * i, 30)}
      end
    end
    local events = run(tr, frames)
    assert.are.equal(1, #events)
    local t = tr:tracks()[1]
    assert.are.equal(14 - 4, t.n_faces)
    assert.are.equal(40, t.last_frame)
    -- on a coasting frame the box stays the last one seen
    local box = t.box
    tr:coast(41)
    assert.are.same(box, tr:tracks()[1].box)
    -- five detection frames without the face end it, however many coasting frames lie between
    tr = track.new()
    frames = {{face("A", 10, 10)}}
    for i = 2, 30 do frames[i] = (i % 6 == 0) and {} or false end
    events = run(tr, frames)
    assert.are.equal(1, #of_kind(events, "end"))
    assert.are.equal(30, of_kind(events, "end")[1].frame)
  end)

  it("keeps the best face (passed the gate, then score x size) for review", function()
    local tr = track.new()
    local chip = {"chip of frame 3"}
    run(tr, {
      {face("A", 50, 50, {score = 0.9})},
      {face("A", 51, 50, {score = 0.999, size = 64, ok = false, chip = {"refused"}})},
      {face("A", 52, 50, {score = 0.95, size = 62, chip = chip})},
      {face("A", 53, 50, {score = 0.99, size = 55})},
    })
    local t = tr:tracks()[1]
    assert.are.equal(chip, t.best.chip)
    assert.are.equal(3, t.best_frame)
    -- with no face through the gate, the best of the refused ones
    tr = track.new()
    run(tr, {{face("A", 50, 50, {ok = false, score = 0.6})}, {face("A", 51, 50, {ok = false, score = 0.7})}})
    assert.are.equal(2, tr:tracks()[1].best_frame)
  end)
end)

describe("siamese.face.track: decisions", function()
  local g
  before_each(function() g = new_gallery() end)

  -- frames of one face at about the same place, one per spec: list of
  -- {who, opts}
  local function visit(list, x)
    local frames = {}
    for i, p in ipairs(list) do frames[i] = {face(p[1], (x or 50) + i, 50, p[2])} end
    return frames
  end

  it("emits one decided event per visit, when m of the last n embeddings agree", function()
    local tr = track.new{gallery = g, model = "test:0"}
    local list = {}
    for i = 1, 12 do list[i] = {"A"} end
    local events = run(tr, visit(list))
    local decided = of_kind(events, "decided")
    assert.are.equal(1, #decided)
    local d = decided[1]
    assert.are.equal(3, d.frame)
    assert.are.equal(1, d.track.id)
    assert.are.equal("accepted", d.decision.state)
    assert.are.equal("A", d.decision.name)
    assert.are.equal(3, d.decision.votes)
    support.near(d.decision.distance, cos_dist(0.1), 1e-5, "median distance")
    assert.are.equal(d.decision, d.track.decision)
    -- the track keeps its last n = 5 good embeddings
    assert.are.equal(5, #d.track.good)
    assert.are.same({8, 12}, {d.track.good[1].frame, d.track.good[5].frame})
    -- gone for 5 frames: the visit ends with its decision, the next visit decides again
    local rest = {{}, {}, {}, {}, {}}
    for _, f in ipairs(visit({{"A"}, {"A"}, {"A"}, {"A"}})) do rest[#rest + 1] = f end
    events = run(tr, rest, 13)
    local ended = of_kind(events, "end")
    assert.are.equal(1, #ended)
    assert.are.equal(17, ended[1].frame)
    assert.are.equal("A", ended[1].decision.name)
    decided = of_kind(events, "decided")
    assert.are.equal(1, #decided)
    assert.are.equal(2, decided[1].track.id)
    assert.are.equal(20, decided[1].frame)
    assert.are.same({}, of_kind(tr:finish(), "decided"))
    -- the decision of a visit stands at its end, whatever came after it
    tr = track.new{gallery = g}
    list = {{"A"}, {"A"}, {"A"}, {"S"}, {"S"}, {"S"}, {"S"}, {"S"}}
    events = run(tr, visit(list))
    assert.are.equal(1, #of_kind(events, "decided"))
    local e = tr:finish()[1]
    assert.are.same({"accepted", "A"}, {e.decision.state, e.decision.name})
    assert.are.equal("unknown", e.track:decide(g).state)
  end)

  it("never decides on one outlier embedding or on faces refused by the gate", function()
    -- an embedding naming B first, then faces refused by the gate whose
    -- descriptors (kept, as evaluation does) would name B too
    local refusedB = {ok = false, keep_desc = true, desc = DESC.B()}
    local tr = track.new{gallery = g}
    local events = run(tr, visit{{"A", {desc = DESC.B()}}, {"A", refusedB}, {"A", refusedB}, {"A", refusedB},
                                 {"A", refusedB}, {"A"}, {"A"}})
    assert.are.same({}, of_kind(events, "decided"))
    local t = tr:tracks()[1]
    assert.are.equal("undecided", t.last_decision.state)
    assert.are.equal(3, t.last_decision.faces)
    events = run(tr, visit({{"A", {desc = DESC.B()}}, {"A"}}, 60), 8)
    local decided = of_kind(events, "decided")
    assert.are.equal(1, #decided)
    assert.are.equal(9, decided[1].frame)
    assert.are.equal("A", decided[1].decision.name)
    assert.are.equal(3, decided[1].decision.votes)
    assert.are.equal(5, decided[1].decision.faces)
    assert.are.same({A = 3, B = 2}, decided[1].decision.tally)
    -- a track of refused faces only never decides, however long
    tr = track.new{gallery = g, m = 1}
    local list = {}
    for i = 1, 20 do list[i] = {"A", {ok = false, keep_desc = true}} end
    events = run(tr, visit(list))
    assert.are.same({}, of_kind(events, "decided"))
    assert.are.equal("undecided", tr:finish()[1].decision.state)
  end)

  it("calls a stranger unknown and keeps the best face for review", function()
    local tr = track.new{gallery = g}
    local list = {}
    for i = 1, 6 do list[i] = {"S", {chip = {"chip " .. i}, score = 0.9 + i / 100}} end
    list[4][2].score = 0.999
    local events = run(tr, visit(list))
    assert.are.same({}, of_kind(events, "decided"))
    local fin = tr:finish()
    assert.are.equal(1, #fin)
    local e = fin[1]
    assert.are.equal("unknown", e.decision.state)
    assert.is_nil(e.decision.name)
    assert.are.equal(0, e.decision.votes)
    assert.are.equal(e.track.best, e.best)
    assert.are.same({"chip 4"}, e.best.chip)
    assert.are.equal(e.decision, e.track.final)
  end)

  it("puts the boundaries at m of the last n: m - 1 votes are undecided or unknown", function()
    -- a track (no gallery in the tracker) with the given descriptors, one per frame
    local function with(descs, opts)
      local tr = track.new(opts)
      local list = {}
      for i, who in ipairs(descs) do list[i] = {who} end
      run(tr, visit(list))
      return tr:tracks()[1]
    end
    local r = with{"A", "A"}:decide(g)
    assert.are.same({"undecided", 2}, {r.state, r.votes})
    assert.are.equal("A", r.candidate)
    assert.is_nil(r.name)
    r = with{"A", "A", "S", "S"}:decide(g)       -- one more vote for A could still make 3 of 5
    assert.are.same({"undecided", 2, 4}, {r.state, r.votes, r.faces})
    r = with{"A", "A", "S", "S", "S"}:decide(g)  -- 2 of 5: the window is full
    assert.are.same({"unknown", 2}, {r.state, r.votes})
    r = with{"S", "S", "S"}:decide(g)            -- 0 + 2 to come < 3
    assert.are.same({"unknown", 0}, {r.state, r.votes})
    r = with{"A", "S", "A", "S", "A"}:decide(g)
    assert.are.same({"accepted", "A", 3}, {r.state, r.name, r.votes})
    -- only the last n count
    r = with{"S", "S", "S", "S", "S", "A", "A", "A"}:decide(g)
    assert.are.same({"accepted", "A", 3, 5}, {r.state, r.name, r.votes, r.faces})
    r = with{"A", "A", "A", "S", "S", "S"}:decide(g)
    assert.are.same({"unknown", 2}, {r.state, r.votes})
    -- m and n of the call: 4 of 5, 2 of 3, and a tie for the lead accepts nobody
    local t = with{"A", "S", "A", "S", "A"}
    assert.are.equal("unknown", t:decide(g, {m = 4}).state)
    assert.are.same({"accepted", "A"}, {t:decide(g, {m = 2, n = 3}).state, t:decide(g, {m = 2, n = 3}).name})
    assert.are.equal("unknown", t:decide(g, {m = 2, n = 2}).state)
    r = with{"A", "B", "A", "B", "S"}:decide(g, {m = 2})
    assert.are.equal("unknown", r.state)
    assert.are.same({A = 2, B = 2}, r.tally)
    r = with{"A", "B", "A", "B"}:decide(g, {m = 2})
    assert.are.equal("undecided", r.state)
    -- the tracker's m and n are the track's defaults
    r = with({"A", "S", "A"}, {m = 2, n = 3}):decide(g)
    assert.are.same({"accepted", 2, 3}, {r.state, r.votes, r.n})
  end)

  it("takes the median distance of the agreeing votes and the gallery's threshold unless given one", function()
    local tr = track.new()
    local noises = {0.3, 0.1, 0.5, 0.2}
    local list = {}
    for i, nz in ipairs(noises) do list[i] = {"A", {desc = DESC.A(nz)}} end
    run(tr, visit(list))
    local t = tr:tracks()[1]
    local r = t:decide(g)
    assert.are.equal(4, r.votes)
    support.near(r.distance, (cos_dist(0.2) + cos_dist(0.3)) / 2, 1e-5, "median of 4")
    -- under a threshold between the distances only the nearer ones vote
    r = t:decide(g, {threshold = (cos_dist(0.2) + cos_dist(0.3)) / 2})
    assert.are.same({"undecided", 2}, {r.state, r.votes})
    g:set_threshold(0.001)
    assert.are.equal("unknown", t:decide(g, {n = 3}).state)
    -- a tracker's threshold overrides the gallery's
    g:set_threshold(0.3)
    local strict = track.new{gallery = g, threshold = 0.001}
    local all = {}
    for i = 1, 6 do all[i] = {"A"} end
    assert.are.same({}, of_kind(run(strict, visit(all)), "decided"))
    assert.are.equal("unknown", strict:finish()[1].decision.state)
  end)

  it("asks the gallery again after an enrolment during the visit", function()
    local tr = track.new{gallery = g}
    local list = {}
    for i = 1, 5 do list[i] = {"S"} end
    run(tr, visit(list))
    local t = tr:tracks()[1]
    assert.are.equal("unknown", t:decide(g).state)
    g:add("Sam", unit(3))
    local r = t:decide(g)
    assert.are.same({"accepted", "Sam", 5}, {r.state, r.name, r.votes})
  end)

  it("raises errors naming the function and the argument on misuse", function()
    support.assert_error(function() track.new("x") end, "bad argument #1 to 'track.new'", "options table")
    support.assert_error(function() track.new{min_iou = 1.5} end, "'track.new'", "min_iou")
    support.assert_error(function() track.new{max_missed = 0} end, "'track.new'", "max_missed")
    support.assert_error(function() track.new{max_missed = 2.5} end, "'track.new'", "max_missed", "integer")
    support.assert_error(function() track.new{m = 6, n = 5} end, "'track.new'", "option m")
    support.assert_error(function() track.new{gallery = {}} end, "'track.new'", "gallery")
    support.assert_error(function() track.new{threshold = "0.3"} end, "'track.new'", "threshold")
    support.assert_error(function() track.new{model = 5} end, "'track.new'", "model")
    local tr = track.new{gallery = g}
    support.assert_error(function() tr:update(nil, 1) end, "bad argument #1 to 'tracker:update'", "list of faces")
    support.assert_error(function() tr:update({5}, 1) end, "'tracker:update'", "faces[1]")
    support.assert_error(function() tr:update({{box = {x = 0, y = 0, width = 0, height = 5}}}, 1) end,
      "'tracker:update'", "faces[1] has no box")
    support.assert_error(function() tr:update({{score = 1}}, 1) end, "'tracker:update'", "faces[1] has no box")
    support.assert_error(function() tr:update({}, 1.5) end, "bad argument #2 to 'tracker:update'", "frame index")
    support.assert_error(function() tr:update({}, 1, "now") end, "bad argument #3 to 'tracker:update'", "time")
    tr:update({face("A", 0, 0)}, 3)
    support.assert_error(function() tr:update({}, 3) end, "bad argument #2 to 'tracker:update'", "not after")
    support.assert_error(function() tr:coast(2) end, "bad argument #1 to 'tracker:coast'", "not after")
    support.assert_error(function() tr:coast(nil) end, "bad argument #1 to 'tracker:coast'", "frame index")
    support.assert_error(function() tr:finish(1) end, "'tracker:finish'", "not after")
    local t = tr:tracks()[1]
    support.assert_error(function() t:decide() end, "bad argument #1 to 'track:decide'", "gallery")
    support.assert_error(function() t:decide(g, 3) end, "bad argument #2 to 'track:decide'", "options")
    support.assert_error(function() t:decide(g, {n = 6}) end, "'track:decide'", "option n")
    support.assert_error(function() t:decide(g, {m = 0}) end, "'track:decide'", "option m")
    support.assert_error(function() t:decide(g, {threshold = -1}) end, "'track:decide'", "threshold")
    -- every message points at the caller's line
    for _, fn in ipairs{function() track.new{min_iou = 2} end, function() track.new(1) end,
                        function() tr:update({{}}, 9) end, function() tr:update({}, 1) end,
                        function() tr:coast(1) end, function() t:decide({}) end, function() t:decide(g, {m = 9}) end} do
      local ok, err = pcall(fn)
      assert.is_false(ok)
      assert.matches("^spec/face_track_spec.lua:%d+: bad argument", err)
    end
    -- a descriptor of another model is the gallery's error
    support.assert_error(function() t:decide(g, {model = "other:1"}) end, "other:1")
  end)
end)

describe("siamese.face.track with the face pipeline", function()
  it("accepts Tony Blair once over frames of three photos, enrolled from a fourth", function()
    local door = require "siamese.door"
    local enc = assert(door.encoder{min_face = 60})
    local function photo(name, i)
      return assert(siamese.image.load(string.format("examples/data/faces/%s/%s_%04d.jpg", name, name, i)))
    end
    local g = siamese.gallery.new{dim = enc.dim, metric = enc.metric, threshold = enc.threshold, model = enc.model_id}
    g:add("Tony_Blair", enc.main(photo("Tony_Blair", 4)).descriptor)
    g:add("Colin_Powell", enc.main(photo("Colin_Powell", 1)).descriptor)
    local tr = track.new{gallery = g, model = enc.model_id}
    local events, frame = {}, 0
    for i = 1, 3 do
      local faces = enc.faces(photo("Tony_Blair", i))
      assert.are.equal(1, #faces)
      -- each photo is two frames (the same detections, fresh tables)
      for _ = 1, 2 do
        frame = frame + 1
        local copy = {}
        for k, v in pairs(faces[1]) do copy[k] = v end
        for _, e in ipairs(tr:update({copy}, frame)) do
          e.frame = frame
          events[#events + 1] = e
        end
      end
    end
    for _, e in ipairs(tr:finish()) do events[#events + 1] = e end
    assert.are.same({"start", "decided", "end"}, {events[1].kind, events[2].kind, events[3].kind})
    assert.are.equal(3, #events)
    assert.are.equal(3, events[2].frame)
    assert.are.equal("Tony_Blair", events[2].decision.name)
    assert(events[2].decision.distance <= enc.threshold)
    assert.are.equal("Tony_Blair", events[3].decision.name)
    assert.are.equal(6, events[3].track.n_faces)
    assert.are.equal("siamese.Image", getmetatable(events[3].best.chip).__name)
  end)
end)
