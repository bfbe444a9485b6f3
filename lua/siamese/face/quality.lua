--- siamese.face.quality: the gate a face passes before any door decision
-- (verify, identify, enrol, attendance, the web API).
--
--   local quality = require "siamese.face.quality"
--   local ok, reason, q = quality.check(face)   -- face from Recognizer:detect
--   if not ok then print("refused: " .. reason) end  -- "face too small: 31 px"
--
-- A face is accepted when
--   * the detector found it at its normal score (default 0.5: a low-score
--     retry or the centred region of a portrait, the fallbacks, score
--     lower and are refused unless the caller lowers min_score);
--   * its box is at least min_size pixels on its shorter side (default 40);
--   * its landmarks fit the box: the box a face with these landmarks has
--     (siamese.face.box_from_landmarks) overlaps the detector's box by an
--     intersection over union of at least min_overlap (default 0.55). The
--     landmark net answers with a face shape for any input, and on
--     patterns the detector mistakes for a face (checkerboards, text,
--     skin-coloured blobs) that shape does not fill the box: on the
--     generated non-faces of spec/door_nonface_spec.lua every overlap is
--     below 0.49, on LFW's development photos 95 % are above 0.67;
--   * eyes, nose and mouth are in a plausible geometry: measured in units
--     of the distance between the eye centres (iod), along and across the
--     eye line, the head rolled at most max_roll degrees (default 40), the
--     eyes 0.2-0.6 of the box's width apart, the nose 0.1-1.2 iod below
--     the eye line and within 0.6 iod of its middle, the mouth 0.5-1.8 iod
--     below it, below the nose, within 0.5 iod of the middle, and 0.4-1.6
--     iod wide. (On LFW's development photos the 1st-99th percentiles are
--     0.24-0.41, 0.29-0.82, 0.86-1.35 and 0.66-1.12 iod.)
-- Landmarks are the 68 iBUG points of face-api's landmark nets, or five
-- points (eye centres, nose tip, mouth corners) in face.points5.
-- After the face is embedded, quality.check_embedding applies the
-- pipeline's minimum embedding norm (the MobileFaceNet pipeline's: the
-- network must see a face; siamese.door runs both halves).
local face_box_from_landmarks -- siamese.face.box_from_landmarks, loaded lazily (it requires this module)

local quality = {}

quality.DEFAULTS = {min_score = 0.5, min_size = 40, min_overlap = 0.55, max_roll = 40}

local function mean_point(p, a, b)
  local x, y = 0, 0
  for i = a, b do x, y = x + p[i][1], y + p[i][2] end
  return {x / (b - a + 1), y / (b - a + 1)}
end

--- The five points {left eye, right eye, nose tip, left mouth corner,
-- right mouth corner} (in the image: "left" is the one on the left) of a
-- face with 68 landmarks or face.points5; nil when it has neither.
function quality.points5(f)
  if type(f.points5) == "table" and #f.points5 == 5 then return f.points5 end
  local p = f.landmarks
  if type(p) ~= "table" or #p ~= 68 then return nil end
  return {mean_point(p, 37, 42), mean_point(p, 43, 48), p[31], p[49], p[55]}
end

local function iou(a, b)
  local x1, y1 = math.max(a.x, b.x), math.max(a.y, b.y)
  local x2, y2 = math.min(a.x + a.width, b.x + b.width), math.min(a.y + a.height, b.y + b.height)
  local inter = math.max(0, x2 - x1) * math.max(0, y2 - y1)
  local union = a.width * a.height + b.width * b.height - inter
  return union > 0 and inter / union or 0
end

local function check_opts(opts)
  if opts == nil then return quality.DEFAULTS end
  if type(opts) ~= "table" then
    error("quality.check: bad argument #2 (options table expected, got " .. type(opts) .. ")", 3)
  end
  local o = {}
  for k, v in pairs(quality.DEFAULTS) do
    local given = opts[k]
    if given ~= nil and (type(given) ~= "number" or given ~= given or given < 0) then
      error(string.format("quality.check: option %s must be a non-negative number, got %s", k, tostring(given)), 3)
    end
    o[k] = given or v
  end
  return o
end

--- The measures of five points {left eye, right eye, nose, left and right
-- mouth corner}: iod (the eye centres' distance), roll (degrees), and in
-- units of iod along and across the eye line from its middle, the nose's
-- and the mouth centre's positions (nose_along, nose_below, mouth_along,
-- mouth_below) and the mouth's width. With coincident eyes (iod 0) the
-- measures but iod and roll are not numbers.
function quality.point_measures(pts)
  local le, re, nose, ml, mr = pts[1], pts[2], pts[3], pts[4], pts[5]
  local ex, ey = re[1] - le[1], re[2] - le[2]
  local iod = math.sqrt(ex * ex + ey * ey)
  local ux, uy = ex / iod, ey / iod
  local mx, my = (le[1] + re[1]) / 2, (le[2] + re[2]) / 2
  local function along_across(p)
    local dx, dy = p[1] - mx, p[2] - my
    return (dx * ux + dy * uy) / iod, (-dx * uy + dy * ux) / iod
  end
  local nx, ny = along_across(nose)
  local cx, cy = along_across({(ml[1] + mr[1]) / 2, (ml[2] + mr[2]) / 2})
  return {iod = iod, roll = math.deg(math.atan(ey, ex)), nose_along = nx, nose_below = ny, mouth_along = cx,
          mouth_below = cy, mouth_width = math.sqrt((mr[1] - ml[1]) ^ 2 + (mr[2] - ml[2]) ^ 2) / iod}
end

-- The geometry of the five points: nil, reason when implausible.
local function geometry(f, pts, o, q)
  local m = quality.point_measures(pts)
  q.roll = m.roll
  if m.iod <= 0 or math.abs(q.roll) > o.max_roll then
    return nil, string.format("head rolled %.0f degrees (at most %g)", q.roll, o.max_roll)
  end
  q.eyes = m.iod / f.box.width
  if q.eyes < 0.2 or q.eyes > 0.6 then
    return nil, string.format("implausible landmarks: eyes %.2f of the face's width apart", q.eyes)
  end
  local nx, ny, cx, cy, mw = m.nose_along, m.nose_below, m.mouth_along, m.mouth_below, m.mouth_width
  if ny < 0.1 or ny > 1.2 or math.abs(nx) > 0.6 then
    return nil, "implausible landmarks: the nose is not below the eyes"
  end
  if cy < 0.5 or cy > 1.8 or cy <= ny or math.abs(cx) > 0.5 then
    return nil, "implausible landmarks: the mouth is not below the nose"
  end
  if mw < 0.4 or mw > 1.6 then
    return nil, string.format("implausible landmarks: mouth %.2f eye distances wide", mw)
  end
  return true
end

--- Checks a face (box, score, landmarks or points5). opts: min_score, min_size, min_overlap,
-- max_roll (quality.DEFAULTS). Returns ok, reason (nil when ok), and the
-- measures {score, size, overlap, roll, eyes}.
function quality.check(f, opts)
  if type(f) ~= "table" or type(f.box) ~= "table" then
    error("quality.check: bad argument #1 (a face with a box expected, got " .. type(f) .. ")", 2)
  end
  local o = check_opts(opts)
  local q = {score = f.score, size = math.min(f.box.width, f.box.height)}
  if type(f.score) ~= "number" or f.score < o.min_score then
    return false, string.format("no face at score >= %g", o.min_score), q
  end
  if q.size < o.min_size then
    return false, string.format("face too small: %d px (at least %g)", math.floor(q.size), o.min_size), q
  end
  local pts = quality.points5(f)
  if not pts then return false, "no landmarks", q end
  if f.landmarks and #f.landmarks == 68 then
    face_box_from_landmarks = face_box_from_landmarks or require("siamese.face").box_from_landmarks
    q.overlap = iou(f.box, face_box_from_landmarks(f.landmarks))
    if q.overlap < o.min_overlap then
      return false, string.format("landmarks do not fit the face (overlap %.2f < %g)", q.overlap, o.min_overlap), q
    end
  end
  local ok, why = geometry(f, pts, o, q)
  if not ok then return false, why, q end
  return true, nil, q
end

--- The second half of the gate, after the face is embedded: the length
-- of its embedding before normalisation (f.embedding_norm, which the
-- MobileFaceNet pipeline reports) must be at least min_norm. A network
-- trained with an ArcFace-type loss gives faces long embeddings and
-- patterns it does not take for a face short ones (the norm measures how
-- sure it is), and MTCNN does fire on some such patterns at a high score
-- (a dress's print, in face-api's sample4.jpg, at 0.96): the geometry of
-- five points cannot tell them apart, as 68 landmarks fitting the box can.
-- Returns true (also when either is nil: the check does not apply), or
-- false and the reason.
function quality.check_embedding(f, min_norm)
  if type(f) ~= "table" then
    error("quality.check_embedding: bad argument #1 (a face expected, got " .. type(f) .. ")", 2)
  end
  if min_norm ~= nil and (type(min_norm) ~= "number" or min_norm ~= min_norm or min_norm < 0) then
    error("quality.check_embedding: bad argument #2 (a non-negative number expected, got " .. tostring(min_norm) .. ")", 2)
  end
  local n = f.embedding_norm
  if n == nil or min_norm == nil or n >= min_norm then return true end
  return false, string.format("not a face to the recognition network (embedding norm %.1f < %g)", n, min_norm)
end

return quality
