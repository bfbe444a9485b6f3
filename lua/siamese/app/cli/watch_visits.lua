--- What siamese watch does with the tracker's events (siamese.face.track):
-- one visit is one track. A named visit (the track's "decided" event, once
-- per track) opens the door (--door: the line, the --on-open hook) and is
-- recorded (--db); a visit that ends without a name but with at least one
-- face that passed the quality gate is an unknown visitor: its best face
-- saved (--review) and recorded with its descriptor (--db). A track that
-- never had a face past the gate (a blurred passer-by, a false detection)
-- is no visit. Without --door and --db every tracker event is printed.
--
--   local visits = require "siamese.app.cli.watch_visits"
--   local vs = visits.new{door = true, db = db, review = dir, json = false, hooks = h, gallery = g,
--                         model = enc.model_id, threshold = t, source = "door.mkv", start = os.time(),
--                         stats = s}
--   vs:handle(tracker:update(faces, info.index, info.time), info)
local json = require "siamese.json"
local output = require "siamese.app.cli.output"
local stats = require "siamese.app.cli.watch_stats"

local visits = {}

local Visits = {}
Visits.__index = Visits

--- opts: door, db (an open siamese.app.attendance register or nil), review
-- (a directory or nil), json, hooks (siamese.app.cli.watch_hooks or nil),
-- gallery, model, threshold, source, start (seconds since the epoch of
-- the video's time 0), stats (siamese.app.cli.watch_stats).
function visits.new(opts)
  local v = setmetatable({named = 0, unknown = 0, failed = nil}, Visits)
  for k, x in pairs(opts) do v[k] = x end
  v.events_only = not (opts.door or opts.db)
  return v
end

-- Prints one event: a JSON line (obj) or a text line.
function Visits:_out(obj, text)
  self.stats:break_line()
  io.stdout:write(self.json and json.encode(obj) or text, "\n")
  io.stdout:flush()
end

-- The register's time of a moment of the video (whole seconds).
function Visits:_when(t)
  return self.start + math.floor(t or 0)
end

-- Records an event; sets the fields id and at of obj. A failure (a locked
-- database) is kept in self.failed and ends the watch.
function Visits:_record(ev, obj)
  if not self.db then return true end
  local id, err = self.db:record(ev)
  if not id then
    self.failed = err
    return nil, err
  end
  obj.id, obj.at = id, os.date("%Y-%m-%d %H:%M:%S", ev.time)
  return id
end

local function where(self, t)
  return string.format("%s#t=%.1f", self.source, t or 0)
end

-- " recorded as #3 at 2026-11-22 09:00:01" or "".
local function recorded_text(obj)
  return obj.id and string.format(", recorded as #%d at %s", obj.id, obj.at) or ""
end

-- A named visit: the track's first acceptance.
function Visits:_decided(e, info)
  local t, d = e.track, e.decision
  self.named = self.named + 1
  local latency = self.stats:decision(info)
  local obj = {event = "decided", track = t.id, name = d.name, distance = output.number(d.distance),
               votes = d.votes, faces = d.faces, frame = info.index, time = output.number(info.time),
               latency = latency and output.number(latency) or nil}
  if self.door then
    obj.door = "open"
    if self.hooks then self.hooks:run(d.name) end
  end
  local ok = self:_record({time = self:_when(info.time), name = d.name, distance = d.distance,
                           threshold = self.threshold, photo = where(self, info.time), box = t.box,
                           model = self.model}, obj)
  if not ok then return end
  local what = string.format("(track %d, %d of %d votes, distance %.3f%s)", t.id, d.votes, d.faces, d.distance,
    latency and string.format(", %.2f s after the frame", latency) or "")
  self:_out(obj, string.format("%s %s%s %s%s", stats.clock_text(info.time), self.door and "open for " or "",
    d.name, what, recorded_text(obj)))
end

-- The descriptor of an unknown visit: its best face's, else its last
-- good one's.
local function descriptor_of(t)
  if t.best and t.best.descriptor then return t.best.descriptor end
  local g = t.good[#t.good]
  return g and g.descriptor
end

-- A visit that ended without a name.
function Visits:_unknown(e)
  local t = e.track
  local desc = descriptor_of(t)
  if not desc then return end -- no face passed the gate: no visit
  self.unknown = self.unknown + 1
  local _, nearest = self.gallery:identify(desc, {k = 1, threshold = self.threshold}, self.model)
  local time = t.last_time or 0
  local when = self:_when(time)
  local crop = output.save_chip(self.review, string.format("%s-track%d", os.date("%Y%m%d-%H%M%S", self.start),
    t.id), t.best or {})
  if self.review and not crop and t.best and t.best.chip then
    self.failed = "--review " .. self.review .. ": cannot write the face of track " .. t.id
  end
  local d = e.decision or {}
  local state = d.state or "undecided"
  local obj = {event = "unknown", track = t.id, state = state, reason = d.reason or json.null,
               distance = output.number(nearest), candidate = d.candidate or json.null, faces = #t.good,
               frame = t.last_frame, time = output.number(time), crop = crop or json.null}
  local ok = self:_record({time = when, distance = nearest, threshold = self.threshold, photo = where(self, time),
                           box = (t.best or {}).box, descriptor = desc, crop = crop, model = self.model}, obj)
  if not ok then return end
  self:_out(obj, string.format("%s unknown visitor (track %d, %s, nearest at %s)%s%s", stats.clock_text(time),
    t.id, state == "undecided" and "too few faces: " .. (d.reason or "") or (d.reason or state),
    nearest and string.format("%.3f", nearest) or "?", crop and ", face in " .. crop or "", recorded_text(obj)))
end

--- Handles the events of one frame (info: the frame's {index, time}).
function Visits:handle(events, info)
  for _, e in ipairs(events) do
    local t = e.track
    if e.kind == "start" and self.events_only then
      self:_out({event = "start", track = t.id, frame = info.index, time = output.number(info.time)},
        string.format("%s track %d started", stats.clock_text(info.time), t.id))
    elseif e.kind == "decided" then
      self:_decided(e, info)
    elseif e.kind == "end" then
      local state = e.decision and e.decision.state or "undecided"
      if state ~= "accepted" then self:_unknown(e) end
      if self.events_only then
        local name = state == "accepted" and e.decision.name or nil
        self:_out({event = "end", track = t.id, reason = e.reason, state = state, name = name or json.null,
                   frame = info.index, time = output.number(info.time)},
          string.format("%s track %d ended (%s): %s", stats.clock_text(info.time), t.id,
            e.reason == "missed" and "face gone" or "end of video", name or state))
      end
    end
    if self.failed then return end
  end
end

return visits
