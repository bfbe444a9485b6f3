--- siamese.face.track: faces followed across the frames of a video, and one
-- identity decision per visit (pure Lua).
--
--   local track = require "siamese.face.track"
--   local tracker = track.new{gallery = g, model = enc.model_id}   -- min_iou 0.3, max_missed 5, m 3, n 5
--   for i, img in frames do
--     local events
--     if i % 3 == 1 then events = tracker:update(enc.faces(img), i, t)   -- detect every 3rd frame
--     else events = tracker:coast(i, t) end                              -- track in between
--     for _, e in ipairs(events) do
--       if e.kind == "decided" then open_for(e.decision.name) end          -- once per visit
--       if e.kind == "end" and e.decision and e.decision.state == "unknown" and e.best and e.best.chip then
--         e.best.chip:save(string.format("unknown-%d.png", e.track.id))   -- kept for review
--       end
--     end
--   end
--   tracker:finish()                                                        -- end events for the live tracks
--
-- Matching. Each live track predicts where its face is now: its last box
-- moved by its velocity (pixels per frame, smoothed over its matches) times
-- the frames since it was last seen, at most half a face. Every pair (track,
-- face) whose predicted box and face box overlap by an IoU of at least
-- min_iou is a candidate; the greedy loop takes the pair of highest IoU,
-- except that among the pairs within iou_tie of it the one whose five points
-- lie closest to the track's (mean distance in units of the face's size)
-- wins — two faces over the same place (people crossing) are told apart by
-- their shape. A pair whose points are more than max_point_distance face
-- sizes apart is never matched (the points confirm the boxes). Faces left
-- over start tracks; a track with no face for max_missed detection frames
-- in a row ends. Frames where detection is skipped go to coast: nothing is
-- aged there, the tracks keep their last box, and the prediction counts
-- those frames (frame indices, not calls), so "detect every k-th frame"
-- just needs a min_iou the motion over k frames keeps.
--
-- Identity. A track keeps the descriptors of its last n faces that passed
-- the quality gate (face.quality.ok and a descriptor): the most recent, not
-- the highest-scoring, so the decision follows the face now in the box (a
-- track taken over by another person is not held to the first one's faces)
-- and the gate already refused the bad frames. track:decide asks the
-- gallery for each one's nearest name under the threshold and accepts a
-- name only when at least m of them agree and no other name has as many:
-- one blurred frame (refused by the gate: never a vote) or one embedding
-- that names someone else never decides, with m >= 2.
--
-- A track's fields: id (from 1, per tracker), box (the last one seen),
-- points (its five points), first_frame, first_time, last_frame,
-- last_time (when last seen), missed (detection frames since), faces (the
-- last `history` {frame, time, face}), n_faces (all of them), good (the
-- last n {descriptor, frame, time}), best and best_frame (the face for
-- review: one that passed the gate, then the highest score x size; its
-- face table, so its chip when the pipeline cut one), decision (the
-- accepted one, set once), last_decision (the latest vote of the
-- tracker), and when it has ended ended_frame, ended_time, end_reason
-- ("missed" | "finished") and final (its decision at the end).
local argcheck = require "siamese.argcheck"
local quality = require "siamese.face.quality"

local track = {}

track.DEFAULTS = {min_iou = 0.3, max_missed = 5, max_point_distance = 1.0, iou_tie = 0.05, m = 3, n = 5,
                  history = 30, motion = true}

-- Velocities are smoothed over the matches with this weight for the newest.
local VELOCITY_WEIGHT = 0.5

-- ---- geometry ------------------------------------------------------------------------

local function iou(a, b)
  local x1, y1 = math.max(a.x, b.x), math.max(a.y, b.y)
  local x2, y2 = math.min(a.x + a.width, b.x + b.width), math.min(a.y + a.height, b.y + b.height)
  local inter = math.max(0, x2 - x1) * math.max(0, y2 - y1)
  local union = a.width * a.height + b.width * b.height - inter
  return union > 0 and inter / union or 0
end
track.iou = iou

-- The five points of a face (points5, or the 68 landmarks' eyes, nose and
-- mouth corners, as the quality gate takes them); nil when it has neither.
local points5 = quality.points5

-- Mean distance between the points of a face and a track's (shifted by
-- dx, dy), in units of the face's size; nil when either has no points.
local function point_distance(pts, tpts, dx, dy, box)
  if not pts or not tpts then return nil end
  local s = 0
  for i = 1, 5 do
    s = s + math.sqrt((pts[i][1] - tpts[i][1] - dx) ^ 2 + (pts[i][2] - tpts[i][2] - dy) ^ 2)
  end
  return s / 5 / ((box.width + box.height) / 2)
end

-- ---- argument checks -----------------------------------------------------------------
-- The helpers below run inside a public function: their errors blame the
-- caller of that function (level 4), as argcheck.error does for checks
-- made in the public function itself.

local function bad(fname, argn, fmt, ...)
  error(string.format("bad argument #%d to '%s' (" .. fmt .. ")", argn, fname, ...), 4)
end

local function check_number(fname, argn, name, v, lo, hi, integer)
  if not argcheck.is_number(v) or v < lo or v > hi or (integer and math.type(v) ~= "integer") then
    bad(fname, argn, "option %s must be %s in [%s, %s], got %s", name,
      integer and "an integer" or "a number", tostring(lo), tostring(hi), tostring(v))
  end
  return v
end

local function check_gallery(fname, argn, g)
  local ok = argcheck.typename(g) == "siamese.Gallery" or (type(g) == "table" and type(g.identify) == "function")
  if not ok then bad(fname, argn, "a siamese.gallery expected, got %s", argcheck.typename(g)) end
  return g
end

local function check_box(fname, argn, what, b)
  if type(b) ~= "table" or not argcheck.is_number(b.x) or not argcheck.is_number(b.y)
      or not argcheck.is_number(b.width) or not argcheck.is_number(b.height) or b.width <= 0 or b.height <= 0 then
    bad(fname, argn, "%s has no box {x, y, width, height} with a positive size", what)
  end
end

-- ---- a track ------------------------------------------------------------------------

local Track = {}
Track.__index = Track
track.Track = Track

-- How good a face is for review: one that passed the gate beats one that
-- did not; then score x size (the shorter side of the box).
local function face_rank(f)
  local passed = type(f.quality) == "table" and f.quality.ok == true
  local score = argcheck.is_number(f.score) and f.score or 0
  return (passed and 1 or 0), score * math.min(f.box.width, f.box.height)
end

local function better(f, than)
  if not than then return true end
  local p1, s1 = face_rank(f)
  local p2, s2 = face_rank(than)
  return p1 > p2 or (p1 == p2 and s1 > s2)
end

local function new_track(id, tracker)
  return setmetatable({id = id, missed = 0, faces = {}, n_faces = 0, good = {}, capacity = tracker.opts.n,
                       m = tracker.opts.m, history = tracker.opts.history, vx = 0, vy = 0}, Track)
end

-- Adds a matched face seen on frame at time: box, points, velocity, history,
-- best face, and the descriptor when the face passed the gate (true then).
function Track:_add(f, frame, time, motion)
  local b = f.box
  if self.box and motion then
    local dt = frame - self.last_frame
    local vx = ((b.x + b.width / 2) - (self.box.x + self.box.width / 2)) / dt
    local vy = ((b.y + b.height / 2) - (self.box.y + self.box.height / 2)) / dt
    local w = self.moved and VELOCITY_WEIGHT or 1 -- the first displacement is the velocity
    self.vx = w * vx + (1 - w) * self.vx
    self.vy = w * vy + (1 - w) * self.vy
    self.moved = true
  end
  self.box = {x = b.x, y = b.y, width = b.width, height = b.height}
  self.points = points5(f)
  if not self.first_frame then self.first_frame, self.first_time = frame, time end
  self.last_frame, self.last_time, self.missed = frame, time, 0
  self.n_faces = self.n_faces + 1
  local h = self.faces
  h[#h + 1] = {frame = frame, time = time, face = f}
  if #h > self.history then table.remove(h, 1) end
  if better(f, self.best) then self.best, self.best_frame = f, frame end
  if type(f.quality) == "table" and f.quality.ok == true and f.descriptor ~= nil then
    local g = self.good
    g[#g + 1] = {descriptor = f.descriptor, frame = frame, time = time}
    if #g > self.capacity then table.remove(g, 1) end
    return true
  end
  return false
end

--- The box the track expects on frame (its last box moved by its
-- velocity, at most half a face), and the shift applied (dx, dy).
function Track:predict(frame)
  local b = self.box
  local dt = frame - self.last_frame
  local dx = math.max(-b.width / 2, math.min(b.width / 2, self.vx * dt))
  local dy = math.max(-b.height / 2, math.min(b.height / 2, self.vy * dt))
  return {x = b.x + dx, y = b.y + dy, width = b.width, height = b.height}, dx, dy
end

-- The nearest name of a kept embedding (or nil) and its distance: asked
-- once per gallery, threshold and model (the gallery's size is part of
-- the key, so an enrolment or a removal during the visit asks again).
local function identify(entry, g, threshold, model)
  local size = argcheck.typename(g) == "siamese.Gallery" and g:size() or nil
  local c = entry.cache
  if not (c and c.g == g and c.threshold == threshold and c.model == model and c.size == size) then
    local name, d = g:identify(entry.descriptor, {k = 1, threshold = threshold}, model)
    c = {g = g, threshold = threshold, model = model, size = size, name = name, distance = d}
    entry.cache = c
  end
  return c.name, c.distance
end

local function median(xs)
  table.sort(xs)
  local k = #xs
  if k == 0 then return nil end
  if k % 2 == 1 then return xs[(k + 1) // 2] end
  return (xs[k // 2] + xs[k // 2 + 1]) / 2
end

--- The track's identity by vote over its last n good embeddings. opts:
-- m (default the tracker's, 3; at most n), n (default the tracker's, 5,
-- which is also how many the track keeps), threshold (default the
-- gallery's), model (the id of the model that made the descriptors).
-- Returns {state = "accepted" | "unknown" | "undecided", name (when
-- accepted), votes (the leading name's), distance (the median of its
-- votes), candidate (the leading name, also when not accepted; in a tie
-- the first to lead), faces (embeddings counted), tally {name = votes}, m,
-- n, reason}. "unknown": the window is full, or the faces counted rule
-- out m votes for one name even if the rest of the window agreed;
-- "undecided": too few good faces yet.
function Track:decide(g, opts)
  check_gallery("track:decide", 1, g)
  if opts ~= nil and type(opts) ~= "table" then
    argcheck.error("track:decide", 2, "options table expected, got %s", argcheck.typename(opts))
  end
  opts = opts or {}
  local n = check_number("track:decide", 2, "n", opts.n or self.capacity, 1, self.capacity, true)
  local m = check_number("track:decide", 2, "m", opts.m or math.min(self.m, n), 1, n, true)
  local threshold = opts.threshold
  if threshold == nil then threshold = g:threshold() end
  check_number("track:decide", 2, "threshold", threshold, 0, 2)
  local model = opts.model
  if model ~= nil and type(model) ~= "string" then
    argcheck.error("track:decide", 2, "option model must be a string, got %s", argcheck.typename(model))
  end
  local tally, dists, order = {}, {}, {}
  local good = self.good
  local first = math.max(1, #good - n + 1)
  for i = first, #good do
    local name, d = identify(good[i], g, threshold, model)
    if name then
      if not tally[name] then
        tally[name], dists[name] = 0, {}
        order[#order + 1] = name
      end
      tally[name] = tally[name] + 1
      table.insert(dists[name], d)
    end
  end
  local counted = #good - first + 1
  -- the leading name; a tie for the lead leaves none accepted
  local lead, votes, tied = nil, 0, false
  for _, name in ipairs(order) do
    if tally[name] > votes then
      lead, votes, tied = name, tally[name], false
    elseif tally[name] == votes then
      tied = true
    end
  end
  local r = {votes = votes, candidate = lead, distance = lead and median(dists[lead]), faces = counted, m = m, n = n,
             tally = tally}
  if votes >= m and not tied then
    r.state, r.name = "accepted", lead
    r.reason = string.format("%d of %d votes for %s", votes, counted, lead)
  elseif counted >= n or votes + (n - counted) < m then
    r.state = "unknown"
    r.reason = tied and votes >= m and string.format("%d votes each for two names", votes)
      or string.format("no name has %d of %d votes", m, n)
  else
    r.state = "undecided"
    r.reason = string.format("%d good faces, %d votes needed", counted, m)
  end
  return r
end

-- ---- the tracker ----------------------------------------------------------------------

local Tracker = {}
Tracker.__index = Tracker
track.Tracker = Tracker

--- A tracker: opts min_iou (0.3), max_missed (5 detection frames),
-- max_point_distance (1.0 face sizes), iou_tie (0.05), motion (true:
-- predict boxes from the tracks' velocities), n (5 good embeddings kept
-- per track), m (3 votes to accept), history (30 faces kept per track),
-- and for decisions gallery (without it: tracks only, no decisions),
-- threshold (default the gallery's), model (the encoder's model id).
function track.new(opts)
  if opts ~= nil and type(opts) ~= "table" then
    argcheck.error("track.new", 1, "options table expected, got %s", argcheck.typename(opts))
  end
  opts = opts or {}
  local D = track.DEFAULTS
  local o = {
    min_iou = check_number("track.new", 1, "min_iou", opts.min_iou or D.min_iou, 0, 1),
    max_missed = check_number("track.new", 1, "max_missed", opts.max_missed or D.max_missed, 1, math.maxinteger,
      true),
    max_point_distance = check_number("track.new", 1, "max_point_distance",
      opts.max_point_distance or D.max_point_distance, 0, math.huge),
    iou_tie = check_number("track.new", 1, "iou_tie", opts.iou_tie or D.iou_tie, 0, 1),
    n = check_number("track.new", 1, "n", opts.n or D.n, 1, math.maxinteger, true),
    history = check_number("track.new", 1, "history", opts.history or D.history, 1, math.maxinteger, true),
    motion = opts.motion ~= false,
  }
  o.m = check_number("track.new", 1, "m", opts.m or math.min(D.m, o.n), 1, o.n, true)
  if opts.gallery ~= nil then o.gallery = check_gallery("track.new", 1, opts.gallery) end
  if opts.threshold ~= nil then o.threshold = check_number("track.new", 1, "threshold", opts.threshold, 0, 2) end
  if opts.model ~= nil and type(opts.model) ~= "string" then
    argcheck.error("track.new", 1, "option model must be a string, got %s", argcheck.typename(opts.model))
  end
  o.model = opts.model
  return setmetatable({opts = o, live = {}, next_id = 1, frame = nil, time = nil}, Tracker)
end

-- Checks frame (an integer after the last one seen) and time (a number or nil).
function Tracker:_advance(fname, frame, time, argn)
  if math.type(frame) ~= "integer" then
    bad(fname, argn, "frame index must be an integer, got %s", argcheck.typename(frame))
  end
  if self.frame and frame <= self.frame then
    bad(fname, argn, "frame index %d is not after the last one, %d", frame, self.frame)
  end
  if time ~= nil and not argcheck.is_number(time) then
    bad(fname, argn + 1, "time must be a number or nil, got %s", tostring(time))
  end
  self.frame, self.time = frame, time
end

function Tracker:_decision_opts()
  local o = self.opts
  return {m = o.m, n = o.n, threshold = o.threshold, model = o.model}
end

-- Ends track t: its end event, with its decision (the accepted one if it
-- was accepted during the visit, else its vote now) and best face.
function Tracker:_end(t, why)
  t.ended_frame, t.ended_time, t.end_reason = self.frame, self.time, why
  local e = {kind = "end", track = t, reason = why, best = t.best}
  if self.opts.gallery then
    t.final = t.decision or t:decide(self.opts.gallery, self:_decision_opts())
    e.decision = t.final
  end
  return e
end

-- Greedy matching of live tracks to faces (see the header): a list of
-- {track, face index}.
function Tracker:_match(faces, frame)
  local o = self.opts
  local pairs_ = {}
  for _, t in ipairs(self.live) do
    local pbox, dx, dy = t.box, 0, 0
    if o.motion then pbox, dx, dy = t:predict(frame) end
    for j, f in ipairs(faces) do
      local ov = iou(pbox, f.box)
      if ov >= o.min_iou and ov > 0 then
        local pd = point_distance(points5(f), t.points, dx, dy, f.box)
        if pd == nil or pd <= o.max_point_distance then
          pairs_[#pairs_ + 1] = {t = t, j = j, iou = ov, pd = pd or math.huge}
        end
      end
    end
  end
  local used_t, used_f, out = {}, {}, {}
  while true do
    local top
    for _, p in ipairs(pairs_) do
      if not used_t[p.t] and not used_f[p.j] and (not top or p.iou > top) then top = p.iou end
    end
    if not top then break end
    -- among the near-ties, the closest points; then the older track, the first face
    local pick
    for _, p in ipairs(pairs_) do
      if not used_t[p.t] and not used_f[p.j] and p.iou >= top - o.iou_tie then
        if not pick or p.pd < pick.pd or (p.pd == pick.pd and (p.iou > pick.iou
            or (p.iou == pick.iou and (p.t.id < pick.t.id or (p.t.id == pick.t.id and p.j < pick.j))))) then
          pick = p
        end
      end
    end
    used_t[pick.t], used_f[pick.j] = true, true
    out[#out + 1] = {pick.t, pick.j}
  end
  return out, used_f
end

--- One frame where detection ran: faces (a list of face tables, each with
-- box {x, y, width, height}; score, points5 or landmarks, quality and
-- descriptor are used when present), frame (an integer, increasing), time
-- (optional, e.g. seconds). Returns the events, in this order: {kind =
-- "end", track, reason = "missed", decision, best} for tracks whose face
-- was missing max_missed detection frames in a row, {kind = "start",
-- track} for new tracks, and {kind = "decided", track, decision} the
-- first time a track's identity is accepted (once per track; needs
-- opts.gallery).
function Tracker:update(faces, frame, time)
  if type(faces) ~= "table" then
    argcheck.error("tracker:update", 1, "list of faces expected, got %s", argcheck.typename(faces))
  end
  for i, f in ipairs(faces) do
    if type(f) ~= "table" then
      argcheck.error("tracker:update", 1, "faces[%d] is %s, not a face table", i, argcheck.typename(f))
    end
    check_box("tracker:update", 1, string.format("faces[%d]", i), f.box)
  end
  self:_advance("tracker:update", frame, time, 2)
  local o, events, fresh = self.opts, {}, {}
  local matched, used_f = self:_match(faces, frame)
  local seen = {}
  for _, mt in ipairs(matched) do
    local t, f = mt[1], faces[mt[2]]
    seen[t] = true
    if t:_add(f, frame, time, o.motion) then fresh[#fresh + 1] = t end
  end
  -- tracks not seen age by one detection frame; at max_missed they end
  local live = {}
  for _, t in ipairs(self.live) do
    if not seen[t] then t.missed = t.missed + 1 end
    if t.missed >= o.max_missed then
      events[#events + 1] = self:_end(t, "missed")
    else
      live[#live + 1] = t
    end
  end
  for j, f in ipairs(faces) do
    if not used_f[j] then
      local t = new_track(self.next_id, self)
      self.next_id = self.next_id + 1
      if t:_add(f, frame, time, o.motion) then fresh[#fresh + 1] = t end
      live[#live + 1] = t
      events[#events + 1] = {kind = "start", track = t}
    end
  end
  self.live = live
  -- a vote only when a track gained a good embedding, until it is accepted
  if o.gallery then
    table.sort(fresh, function(a, b) return a.id < b.id end)
    for _, t in ipairs(fresh) do
      if not t.decision then
        local d = t:decide(o.gallery, self:_decision_opts())
        t.last_decision = d
        if d.state == "accepted" then
          t.decision = d
          events[#events + 1] = {kind = "decided", track = t, decision = d}
        end
      end
    end
  end
  return events
end

--- A frame where detection was skipped: the tracks keep their last box
-- and are not aged (only frames where detection ran count as missed).
-- Returns an empty list of events, for symmetry with update.
function Tracker:coast(frame, time)
  self:_advance("tracker:coast", frame, time, 1)
  return {}
end

--- Ends every live track (the end of the video): their end events, with
-- reason "finished". frame and time are optional (default the last ones).
function Tracker:finish(frame, time)
  if frame ~= nil then self:_advance("tracker:finish", frame, time, 1) end
  local events = {}
  for _, t in ipairs(self.live) do events[#events + 1] = self:_end(t, "finished") end
  self.live = {}
  return events
end

--- The live tracks, by id.
function Tracker:tracks()
  local out = {}
  for i, t in ipairs(self.live) do out[i] = t end
  table.sort(out, function(a, b) return a.id < b.id end)
  return out
end

return track
