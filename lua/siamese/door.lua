--- siamese.door: decisions at a door — verify a claim (1:1), identify
-- (1:K) or say unknown, and check an enrolment — taken only on a real face.
-- The command line (verify, identify, enroll, attendance, compare) and the
-- web server decide through this module, so they answer alike.
--
--   local door = require "siamese.door"
--   local enc = assert(door.encoder{})                 -- the face pipeline
--   local d = door.new{gallery = g, encoder = enc}
--   local r = d:verify("Alice", img)
--   if r.accepted then open() else print(r.reason) end  -- "face too small: 31 px (at least 40)"
--
-- A face is decided on only when the detector found it at its normal score
-- and it passes siamese.face.quality (size, landmarks that fit the box, a
-- plausible geometry). Fallbacks (a low-score retry, the centred region of
-- a portrait) are for evaluation; a door uses them only when asked
-- (opts.fallback), and the quality gate still applies (at the fallback's
-- lower score). Results use one vocabulary: accepted, name (or claim),
-- distance, threshold, box, score, quality {ok, reason, ...}, reason.
local quality = require "siamese.face.quality"

local door = {}

door.FACE_MODEL_PREFIX = "faceapi_recognition"

-- Default thresholds per model family and metric. The face pipeline's 0.6
-- euclidean is dlib's, for its ResNet; the cosine one gives the same
-- false-accept rate on LFW's development pairs (models/README.md,
-- "Thresholds"). Unit-length encoders (siamese.encoder) store their own
-- euclidean threshold t; for unit vectors cosine distance = t^2 / 2.
door.DEFAULT_THRESHOLDS = {
  [door.FACE_MODEL_PREFIX] = {euclidean = 0.6, cosine = 0.087},
  -- MTCNN + MobileFaceNet: the cosine distance at which one impostor in a
  -- thousand is accepted, over every pair of two people among LFW's 4,992
  -- development photos (12.5 million pairs; models/calibrate_threshold.lua,
  -- models/README.md "Thresholds"). Its descriptors are unit length, so
  -- euclidean = sqrt(2 * cosine).
  mobilefacenet = {cosine = 0.549, euclidean = 1.0479},
}

-- The score the fallbacks accept a face at.
local FALLBACK_SCORE = {threshold = 0.1, centre = 0}

--- The default threshold of a model (id "family:digest/...") under a
-- metric; encoder_threshold: the encoder's own (euclidean) one.
function door.default_threshold(model_id, metric, encoder_threshold)
  local family = tostring(model_id):match("^([^:]+)")
  local t = door.DEFAULT_THRESHOLDS[family]
  if t and t[metric] then return t[metric] end
  if encoder_threshold then
    return metric == "cosine" and encoder_threshold ^ 2 / 2 or encoder_threshold
  end
  return metric == "cosine" and 0.18 or 0.6
end

--- Checks a threshold for a metric: finite and inside (0, 2) (distances
-- between unit vectors lie in [0, 2]). Returns it, or nil and a message
-- naming what (default "threshold").
function door.check_threshold(t, metric, what)
  what = what or "threshold"
  if type(t) ~= "number" or t ~= t or t <= 0 or t >= 2 then
    return nil, string.format("%s must be a number in (0, 2) for %s distances, got %s", what,
      metric or "euclidean", tostring(t))
  end
  return t
end

-- ---- encoders ----------------------------------------------------------------------

local function with_quality(f, qopts)
  local ok, reason, q = quality.check(f, qopts)
  q.ok, q.reason = ok, reason
  f.quality = q
  return f
end

--- The face pipeline as an encoder: opts recognizer (a loaded
-- siamese.face recognizer; else one is loaded with models_dir, pipeline
-- "faceapi" | "mobilefacenet" (default siamese.face.DEFAULT_MODEL), and
-- the pipeline's options: align, detector "tiny" | "ssd" for faceapi,
-- min_face for mobilefacenet), fallback (nil | "none" | "threshold" | "centre"),
-- quality (siamese.face.quality options). Returns enc {kind = "face",
-- model_id, dim, metric, threshold, recognizer, faces(img), main(img)};
-- or nil, message.
function door.face_encoder(opts)
  opts = opts or {}
  local face = require "siamese.face"
  local fr, err = opts.recognizer
  if not fr then
    if (opts.pipeline or face.DEFAULT_MODEL) == "mobilefacenet" then
      fr, err = face.load{model = "mobilefacenet", models_dir = opts.models_dir, min_face = opts.min_face}
    else
      fr, err = face.load{model = opts.pipeline, models_dir = opts.models_dir, align = opts.align,
                          detector = opts.detector}
    end
    if not fr then return nil, err end
  end
  local fallback = opts.fallback ~= "none" and opts.fallback or nil
  local qopts = {}
  for k, v in pairs(opts.quality or {}) do qopts[k] = v end
  if fallback and qopts.min_score == nil then qopts.min_score = FALLBACK_SCORE[fallback] end
  -- the metric the pipeline's descriptors are compared with (a stand-in
  -- recognizer whose missing fields are functions has the default)
  local metric = type(fr.metric) == "string" and fr.metric or "euclidean"
  local enc = {kind = "face", name = "face", model_id = fr.model_id, dim = fr.dim or 128, metric = metric,
               threshold = door.default_threshold(fr.model_id, metric), recognizer = fr,
               fallback = fallback,
               no_face = string.format("no face at score >= %g", qopts.min_score or quality.DEFAULTS.min_score)}
  -- After embedding: a face whose embedding is too short for the pipeline
  -- (quality.check_embedding) fails the gate and loses its descriptor
  -- (unless all: evaluation keeps it).
  local function check_embedding(f, all)
    if f.embedding_norm then f.quality.embedding_norm = f.embedding_norm end
    if not f.quality.ok then return end
    local ok, why = quality.check_embedding(f, fr.min_embedding_norm)
    if not ok then
      f.quality.ok, f.quality.reason = false, why
      if not all then f.descriptor = nil end
    end
  end
  -- Every face of the photo, each with box, score, landmarks, how,
  -- quality and (when it passed the gate, or always with all = true)
  -- chip and descriptor. With a fallback and no detection, the main face
  -- that fallback finds.
  function enc.faces(img, all)
    local found = fr:detect(img)
    for _, f in ipairs(found) do f.how = "detected" end
    if #found == 0 and fallback then
      local f, how = fr:main_face(img, {fallback = fallback})
      if f then
        f.how = how
        found = {f}
      end
    end
    local keep = {}
    for _, f in ipairs(found) do
      with_quality(f, qopts)
      if all or f.quality.ok then keep[#keep + 1] = f end
    end
    fr:embed_faces(img, keep)
    for _, f in ipairs(keep) do check_embedding(f, all) end
    return found
  end
  -- The main face of a portrait (the detection nearest the centre; the
  -- fallback when none), with quality, chip and descriptor; nil when none.
  function enc.main(img, all)
    local f, how = fr:main_face(img, {fallback = fallback})
    if not f then return nil end
    f.how = how
    with_quality(f, qopts)
    if all or f.quality.ok then
      fr:embed_faces(img, {f})
      check_embedding(f, all)
    end
    return f
  end
  return enc
end

--- A trained encoder (siamese.encoder.load: a name such as "att" or a
-- .safetensors path) that embeds the whole photo. At a door the photo
-- must still show a face: the face pipeline's detector and the quality
-- gate are run on it (opts.models_dir; opts.gate = false skips them, and
-- main(img, true) too, for evaluation on face crops).
function door.image_encoder(opts)
  local ok, encoder = pcall(require, "siamese.encoder")
  if not ok then return nil, "--model " .. tostring(opts.model) .. ": this build has no siamese.encoder" end
  local model, err = encoder.load(opts.model)
  if not model then return nil, err end
  local enc = {kind = "image", name = model.name or opts.model, model_id = model.model_id, dim = model.dim,
               metric = model.metric or "euclidean", threshold = model.threshold, model = model,
               no_face = string.format("no face at score >= %g", opts.quality and opts.quality.min_score
                                         or quality.DEFAULTS.min_score)}
  local gate
  if opts.gate ~= false then
    local fr, ferr = require("siamese.face").load{models_dir = opts.models_dir}
    if not fr then return nil, "the face detector for the quality gate: " .. tostring(ferr) end
    gate = fr
  end
  local qopts = opts.quality
  -- all = true (evaluation): the whole photo embedded, no gate run.
  function enc.main(img, all)
    local f = {box = {x = 0, y = 0, width = img.width, height = img.height}, score = 1, how = "whole image",
               quality = {ok = true}}
    if gate and not all then
      -- Photos for these encoders are tight face crops, which the detector
      -- (made for faces in scenes) mostly misses: it looks at the photo with
      -- a border of half its size on each side (edge pixels repeated). On the
      -- bundled AT&T photos that takes detections at score 0.5 from 18 % to
      -- 94 % of the photos, all of which pass the gate. (A large photo is
      -- no crop: it is looked at as it is.)
      local px, py = 0, 0
      if math.max(img.width, img.height) <= 1024 then px, py = img.width // 2, img.height // 2 end
      local g = gate:main_face(px > 0 and img:pad{left = px, top = py, right = px, bottom = py, mode = "edge"} or img)
      if not g then
        f.score, f.how = 0, "no face"
        with_quality(f, qopts)
      else
        with_quality(g, qopts)
        f.score, f.quality = g.score, g.quality
        f.box = {x = g.box.x - px, y = g.box.y - py, width = g.box.width, height = g.box.height}
      end
    end
    if all or f.quality.ok then f.chip, f.descriptor = img, model:embed(img) end
    return f
  end
  function enc.faces(img, all) return {enc.main(img, all)} end
  return enc
end

--- The encoder opts.model names: "face" (default) or a trained encoder.
function door.encoder(opts)
  opts = opts or {}
  if opts.model == nil or opts.model == "face" then return door.face_encoder(opts) end
  return door.image_encoder(opts)
end

-- ---- decisions ---------------------------------------------------------------------

local Door = {}
Door.__index = Door
door.Door = Door

--- A door over a gallery: opts gallery (required), encoder (door.encoder;
-- its model must be the gallery's), threshold (overrides the gallery's;
-- checked), k (candidates listed, default 3).
function door.new(opts)
  if type(opts) ~= "table" or opts.gallery == nil or type(opts.encoder) ~= "table" then
    error("door.new: bad argument #1 (a table with gallery and encoder expected)", 2)
  end
  local g, enc = opts.gallery, opts.encoder
  if g:model() ~= enc.model_id then
    return nil, string.format("gallery made with model %s, the encoder is %s", g:model(), tostring(enc.model_id))
  end
  local t = opts.threshold or g:threshold()
  local ok, err = door.check_threshold(t, g:metric())
  if not ok then return nil, err end
  return setmetatable({gallery = g, encoder = enc, threshold = t, k = opts.k or 3}, Door)
end

local function face_fields(r, f)
  r.box, r.score, r.quality = f.box, f.score, f.quality
  return r
end

-- The refusal of a photo with no face that passes the gate.
local function no_face(r, f, enc)
  if f then
    face_fields(r, f)
    r.reason = f.quality.reason
  else
    r.reason = enc.no_face or "no face found"
  end
  return r
end

--- Verifies a claim on the photo's main face. Returns {claim, accepted,
-- distance (nil when no decision), threshold, box, score, quality,
-- reason}; nil, message when the claim is not enrolled.
function Door:verify(claim, img)
  local g = self.gallery
  if not g:has(claim) then
    return nil, string.format("unknown identity '%s' (enrolled: %d %s)", claim, g:count(),
      g:count() == 1 and "identity" or "identities")
  end
  local r = {claim = claim, accepted = false, threshold = self.threshold}
  local f = self.encoder.main(img)
  if not f or not f.quality.ok then return no_face(r, f, self.encoder) end
  local _, d = g:verify(claim, f.descriptor, self.encoder.model_id)
  face_fields(r, f)
  r.distance = d
  r.accepted = d <= self.threshold
  r.reason = r.accepted and "match" or "distance above threshold"
  return r
end

--- Identifies every face of the photo. Returns a list of {accepted, name
-- (nil: unknown or refused), distance, threshold, box, score, quality,
-- candidates {{name, distance}}, reason}; faces refused by the gate are
-- listed with their reason and no name.
function Door:identify(img, opts)
  local k = opts and opts.k or self.k
  local out = {}
  for _, f in ipairs(self.encoder.faces(img)) do
    local r = face_fields({accepted = false, threshold = self.threshold, candidates = {}}, f)
    if not f.quality.ok then
      r.reason = f.quality.reason
    elseif self.gallery:count() == 0 then
      r.reason = "empty gallery"
    else
      local name, d, cands = self.gallery:identify(f.descriptor, {k = k, threshold = self.threshold},
        self.encoder.model_id)
      r.name, r.distance, r.candidates = name, d, cands
      r.accepted = name ~= nil
      r.reason = r.accepted and "match" or "unknown (nearest above threshold)"
    end
    r.face = f
    out[#out + 1] = r
  end
  return out
end

-- Distance between two descriptors under a metric (double precision).
function door.distance(a, b, metric)
  local x, y = a:totable(), b:totable()
  if metric == "cosine" then
    local dot, nx, ny = 0, 0, 0
    for i = 1, #x do dot, nx, ny = dot + x[i] * y[i], nx + x[i] ^ 2, ny + y[i] ^ 2 end
    if nx == 0 or ny == 0 then return 1 end
    return 1 - dot / math.sqrt(nx * ny)
  end
  local s = 0
  for i = 1, #x do s = s + (x[i] - y[i]) ^ 2 end
  return math.sqrt(s)
end

-- A template this close to another is the same photo (descriptors are
-- deterministic; two photos of one person are ~0.2 or more apart).
door.SAME_PHOTO_DISTANCE = 1e-3

--- Checks that a descriptor may be enrolled under name. mode: "new" (name
-- must not be enrolled), "add" (another photo of an enrolled person) or
-- "replace" (the person's templates are replaced: only other identities
-- count). Refuses (unless force) a face within the threshold of another
-- identity, and when adding, one farther than the threshold from all of
-- the identity's own templates; always refuses a photo already enrolled
-- (the same descriptor). Returns true, or false, reason, details
-- {{name, distance}}.
function Door:check_enrolment(name, descriptor, mode, force)
  local g, metric, t = self.gallery, self.gallery:metric(), self.threshold
  local exists = g:has(name)
  if mode == "new" and exists then
    return false, string.format("'%s' is already enrolled (add another photo of the same person, or replace "
      .. "the person's templates)", name)
  end
  if mode == "add" and not exists then
    return false, string.format("'%s' is not enrolled (enrol the person first)", name)
  end
  local near, own = {}, nil
  for _, other in ipairs(g:names()) do
    local tm = g:templates(other)
    local best = math.huge
    for i = 1, tm:size(1) do
      local d = door.distance(descriptor, tm:select(1, i), metric)
      if d <= door.SAME_PHOTO_DISTANCE then
        return false, string.format("this photo is already enrolled as '%s'", other), {{name = other, distance = d}}
      end
      best = math.min(best, d)
    end
    if other == name then
      own = best
    elseif best <= t then
      near[#near + 1] = {name = other, distance = best}
    end
  end
  if force then return true end
  if #near > 0 then
    table.sort(near, function(a, b) return a.distance < b.distance end)
    local parts = {}
    for i, n in ipairs(near) do parts[i] = string.format("%s at %.3f", n.name, n.distance) end
    return false, string.format("the face is within the threshold %.3f of %s (force it if this is right)", t,
      table.concat(parts, ", ")), near
  end
  if mode == "add" and own and own > t then
    return false, string.format("the face is %.3f from %s's templates, above the threshold %.3f: another "
      .. "person? (force it if this is right)", own, name, t), {{name = name, distance = own}}
  end
  return true
end

-- ---- reports --------------------------------------------------------------------
-- What the commands print with --json and the web API answers, in one
-- vocabulary and one rounding: distances, thresholds and scores to 4
-- decimals, boxes to 1; no value is json.null.

local function round(v, digits)
  local m = 10 ^ digits
  return math.floor(v * m + 0.5) / m
end

--- A number rounded to 4 decimals, or json.null when there is none (or it
-- is not finite: an empty gallery's best distance).
function door.json_number(v)
  if type(v) ~= "number" or v ~= v or v == math.huge or v == -math.huge then return require("siamese.json").null end
  return round(v, 4)
end

--- A box {x, y, width, height} rounded to 1 decimal (json.null when none).
function door.json_box(b)
  if not b then return require("siamese.json").null end
  return {x = round(b.x, 1), y = round(b.y, 1), width = round(b.width, 1), height = round(b.height, 1)}
end

--- A quality verdict {ok, reason, score, size, overlap, roll, eyes}.
function door.json_quality(q)
  local json = require "siamese.json"
  if not q then return json.null end
  local n = door.json_number
  return {ok = q.ok == true, reason = q.reason or json.null, score = n(q.score), size = n(q.size),
          overlap = n(q.overlap), roll = n(q.roll), eyes = n(q.eyes), embedding_norm = n(q.embedding_norm)}
end

--- A decision (Door:verify, an entry of Door:identify) as JSON: accepted,
-- distance, threshold, box, score, quality, reason, and name and
-- candidates for identification; extra fields are added as given.
function door.json(r, extra)
  local json = require "siamese.json"
  local n = door.json_number
  local out = {accepted = r.accepted == true, distance = n(r.distance), threshold = n(r.threshold),
               box = door.json_box(r.box), score = n(r.score), quality = door.json_quality(r.quality),
               reason = r.reason or json.null}
  if r.candidates then
    local c = {}
    for i, cand in ipairs(r.candidates) do c[i] = {name = cand.name, distance = n(cand.distance)} end
    out.candidates = json.array(c)
    out.name = r.name or json.null
  end
  for k, v in pairs(extra or {}) do out[k] = v end
  return out
end

return door
