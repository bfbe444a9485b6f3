--- siamese.face: recognise faces in photos with pretrained networks
-- (models/). face.load() gives the default pipeline, MTCNN + MobileFaceNet
-- (siamese.face.mobilefacenet: five points, ArcFace chip, unit 192-D
-- descriptors compared by cosine distance); face.load{model = "faceapi"}
-- gives face-api's, defined here (models/convert_faceapi.lua): tiny face
-- detector (or SSD MobileNet v1, detector = "ssd") -> 68 landmarks ->
-- alignment -> 128-D descriptor (ResNet), compared by euclidean distance.
-- Both answer the same methods (detect, main_face, align, embed,
-- embed_batch, embed_faces, embed_all).
--
--   local fr = assert(siamese.face.load())           -- bundled models
--   for _, f in ipairs(fr:embed_all(img)) do print(f.score, f.descriptor:norm()) end
--
-- The faceapi pipeline's alignment: "dlib" (default; dlib's own face
-- chip, which the network was trained on: 33 landmarks fitted to dlib's
-- mean face, padding 0.25 — siamese.face.align.dlib_chip), "similarity"
-- (eyes and mouth mapped to canonical positions of a 150x150 chip, roll
-- removed) or "faceapi" (face-api's square crop around eyes and mouth, no
-- rotation). On LFW's development pairs dlib's chip is as good as or
-- better than the others (models/tune_lfw.lua, models/README.md, "LFW
-- benchmark").
local class = require "siamese.class"
local weights = require "siamese.face.weights"
local detector = require "siamese.face.detector"
local ssd = require "siamese.face.ssd"
local landmarks = require "siamese.face.landmarks"
local recognition = require "siamese.face.recognition"
local align = require "siamese.face.align"

local face = {align = align, weights = weights}

local Recognizer = class("FaceRecognizer")
face.Recognizer = Recognizer

local ALIGN = {similarity = true, dlib = true, faceapi = true}

--- The pipeline face.load gives without opts.model.
face.DEFAULT_MODEL = "mobilefacenet"

--- Loads a face pipeline. opts.model: "mobilefacenet" (the default:
-- MTCNN, five points, ArcFace alignment and MobileFaceNet's 192-D
-- descriptor: siamese.face.mobilefacenet, with its options min_face, flip
-- and convention) or "faceapi" (face-api's detector, 68 landmarks and
-- dlib's 128-D ResNet, below). Both take models_dir; an option of the
-- other pipeline, or an unknown one, is an error.
-- The faceapi model's options: models_dir, align ("similarity" |
-- "dlib" | "faceapi"), detector ("tiny": face-api's TinyFaceDetector, default,
-- or "ssd": its SsdMobilenetv1, siamese.face.ssd), landmarks ("tiny",
-- face-api's default in its pipeline, or "full": its larger
-- FaceLandmark68Net), refine (landmark refinement passes, default 1: see
-- Recognizer:landmarks_in), input_size (tiny detector, multiple of 32,
-- default 416; the SSD always sees 512x512), score_threshold (default 0.5).
-- Returns the recognizer, or nil, message.
local OPTIONS = {
  faceapi = {align = true, detector = true, landmarks = true, refine = true, input_size = true, score_threshold = true},
  mobilefacenet = {min_face = true, flip = true, convention = true},
}

function face.load(opts)
  if opts ~= nil and type(opts) ~= "table" then
    error("face.load: bad argument #1 (options table expected, got " .. type(opts) .. ")", 2)
  end
  opts = opts or {}
  local model = opts.model or face.DEFAULT_MODEL
  if not OPTIONS[model] then
    error("face.load: model must be 'mobilefacenet' or 'faceapi', got " .. tostring(model), 2)
  end
  for k in pairs(opts) do
    if k ~= "model" and k ~= "models_dir" and not OPTIONS[model][k] then
      local other = model == "faceapi" and "mobilefacenet" or "faceapi"
      if OPTIONS[other][k] then
        error(string.format("face.load: option '%s' is for the %s model (model = '%s'), not %s", k, other, other,
          model), 2)
      end
      error(string.format("face.load: unknown option '%s'", tostring(k)), 2)
    end
  end
  if model == "mobilefacenet" then
    return require("siamese.face.mobilefacenet").load{models_dir = opts.models_dir, min_face = opts.min_face,
                                                      flip = opts.flip, convention = opts.convention}
  end
  local method = opts.align or "dlib"
  if not ALIGN[method] then error("face.load: align must be 'similarity', 'dlib' or 'faceapi', got " .. tostring(method), 2) end
  local refine = opts.refine or 1
  if math.type(refine) ~= "integer" or refine < 0 or refine > 5 then
    error("face.load: refine must be an integer 0..5, got " .. tostring(refine), 2)
  end
  local dir = opts.models_dir or require("siamese.models").dir()
  local kind = opts.detector or "tiny"
  if kind ~= "tiny" and kind ~= "ssd" then
    error("face.load: detector must be 'tiny' or 'ssd', got " .. tostring(kind), 2)
  end
  local det, err
  if kind == "ssd" then
    det, err = ssd.load(dir .. "/faceapi_ssd_mobilenetv1.safetensors")
  else
    det, err = detector.load(dir .. "/faceapi_tiny_detector.safetensors")
  end
  if not det then return nil, err end
  local which = opts.landmarks or "tiny"
  if which ~= "tiny" and which ~= "full" then
    error("face.load: landmarks must be 'tiny' or 'full', got " .. tostring(which), 2)
  end
  local lm, err2 = landmarks.load(dir .. (which == "full" and "/faceapi_landmarks68.safetensors"
                                                          or "/faceapi_landmarks68_tiny.safetensors"))
  if not lm then return nil, err2 end
  local rec_path = dir .. "/faceapi_recognition.safetensors"
  local rec, err3 = recognition.load(rec_path)
  if not rec then return nil, err3 end
  -- Galleries record which model made their embeddings: the name, the
  -- first 16 hex digits of the weights' SHA-256 and the alignment, since
  -- descriptors of one face differ between chip geometries (a gallery
  -- enrolled with one alignment refuses queries made with another).
  local digest, err4 = require("siamese.hash").file_sha256(rec_path)
  if not digest then return nil, err4 end
  local fr = setmetatable({}, Recognizer)
  fr.detector, fr.landmarks, fr.recognition = det, lm, rec
  fr.detector_kind = kind
  fr.model_id = "faceapi_recognition:" .. digest:sub(1, 16) .. "/" .. method
  fr.dim = 128
  fr.metric = "euclidean"
  fr.align_method = method
  fr.input_size = opts.input_size or 416
  fr.score_threshold = opts.score_threshold or 0.5
  fr.refine = refine
  return fr
end

--- Faces in a photo: {box = {x, y, width, height}, score, landmarks =
-- {{x, y}, ...68}}, by descending score. opts: score_threshold (or its
-- synonym min_score), max_results (SSD only, default 100), input_size
-- (tiny detector only).
-- The detector's boxes and scores at this score threshold, whichever
-- detector was loaded (each takes its own option names).
local function detections(self, img, score, opts)
  if self.detector_kind == "ssd" then
    return self.detector:detect(img, {min_score = score, max_results = opts.max_results})
  end
  return self.detector:detect(img, {input_size = opts.input_size or self.input_size, score_threshold = score})
end

function Recognizer:detect(img, opts)
  opts = opts or {}
  local found = detections(self, img, opts.min_score or opts.score_threshold or self.score_threshold, opts)
  local faces = {}
  for _, f in ipairs(found) do
    local points = self:landmarks_in(img, f.box)
    if points then
      f.landmarks = points
      faces[#faces + 1] = f
    end
  end
  return faces
end

-- The last fallback of main_face: the centred region that portrait crops
-- such as LFW are framed around, with the landmarks found inside it.
local function centre_region_face(self, img)
  local box = {x = img.width * 0.3, y = img.height * 0.28, width = img.width * 0.4, height = img.height * 0.44}
  local points = self:landmarks_in(img, box)
  if not points then return nil end
  return {box = box, score = 0, landmarks = points}, "centre"
end

-- main_face with opts.central (see there).
local function central_face(self, img, opts)
  local cx, cy = img.width / 2, img.height / 2
  local low = opts.fallback == "threshold" or opts.fallback == "centre"
  local best
  for _, f in ipairs(detections(self, img, low and math.min(0.1, self.score_threshold) or self.score_threshold,
                                opts)) do
    local b = f.box
    if b.x <= cx and b.x + b.width >= cx and b.y <= cy and b.y + b.height >= cy
       and (not best or f.score > best.score) then
      best = f
    end
  end
  if best then
    local points = self:landmarks_in(img, best.box)
    if points then
      best.landmarks = points
      return best, best.score >= self.score_threshold and "detected" or "low_threshold"
    end
  end
  if opts.fallback ~= "centre" then return nil end
  return centre_region_face(self, img)
end

--- The main face of a photo: the detection nearest the centre. When none
-- is found, opts.fallback = "threshold" retries at score 0.1, and
-- "centre" also falls back to the centred region that portrait crops such
-- as LFW are framed around (landmarks found inside it). Returns the face
-- and how it was found ("detected", "low_threshold", "centre"), or nil.
-- opts.central = true is for photos framed around their subject (LFW): the
-- face is the best-scored detection whose box contains the photo's centre
-- (at score 0.1 when a fallback is allowed), never an off-centre face; when
-- no box contains the centre, the fallback "centre" region, else nil.
function Recognizer:main_face(img, opts)
  opts = opts or {}
  local cx, cy = img.width / 2, img.height / 2
  if opts.central then return central_face(self, img, opts) end
  local function nearest(faces)
    local best, bd
    for _, f in ipairs(faces) do
      local d = (f.box.x + f.box.width / 2 - cx) ^ 2 + (f.box.y + f.box.height / 2 - cy) ^ 2
      if not bd or d < bd then best, bd = f, d end
    end
    return best
  end
  local f = nearest(self:detect(img, opts))
  if f then return f, "detected" end
  if opts.fallback ~= "threshold" and opts.fallback ~= "centre" then return nil end
  f = nearest(self:detect(img, {input_size = opts.input_size, score_threshold = 0.1}))
  if f then return f, "low_threshold" end
  if opts.fallback ~= "centre" then return nil end
  return centre_region_face(self, img)
end

-- Landmark refinement: the box a detection of a face has, re-derived from
-- its 68 landmarks: centre = c + s (dx, dy), size = s (width, height), c the
-- landmarks' centroid and s their RMS distance to it. The factors are the
-- means over the 4,229 development photos of LFW detected at 0.5
-- (models/tune_lfw.lua); re-running the landmark net on this box
-- normalises the detector's box jitter (LFW development pairs: 98.66 % ->
-- 98.94 %, models/README.md, "LFW benchmark").
face.REFINE_BOX = {dx = -0.0246, dy = 0.0812, width = 3.2310, height = 3.1307}

--- The box {x, y, width, height} a detection of the face with these 68
-- landmarks would typically have (face.REFINE_BOX).
function face.box_from_landmarks(points)
  if type(points) ~= "table" or #points < 2 then
    error("box_from_landmarks: expected a list of {x, y} points", 2)
  end
  local cx, cy = 0, 0
  for _, p in ipairs(points) do cx, cy = cx + p[1], cy + p[2] end
  cx, cy = cx / #points, cy / #points
  local ss = 0
  for _, p in ipairs(points) do ss = ss + (p[1] - cx) ^ 2 + (p[2] - cy) ^ 2 end
  local s = math.sqrt(ss / #points)
  local r = face.REFINE_BOX
  local w, h = r.width * s, r.height * s
  return {x = cx + r.dx * s - w / 2, y = cy + r.dy * s - h / 2, width = w, height = h}
end

--- Landmarks for a box (a detection, or a fallback crop given by the
-- caller), refined as many times as the recognizer's refine setting: the
-- landmark net re-run on face.box_from_landmarks of its last answer.
-- Returns 68 {x, y} points, or nil and a reason.
function Recognizer:landmarks_in(img, box)
  local points, err = self.landmarks:predict(img, box)
  if not points then return nil, err end
  for _ = 1, self.refine do
    local again = self.landmarks:predict(img, face.box_from_landmarks(points))
    if not again then break end
    points = again
  end
  return points
end

--- The face's chip: dlib's 150x150 RGB chip, the similarity-aligned one,
-- or face-api's square crop (opts.align overrides the recognizer's
-- method). opts.jitter, a chip -> chip 2x3 matrix (align.jitter_transform),
-- moves the similarity and dlib chips.
function Recognizer:align(img, f, opts)
  local method = opts and opts.align or self.align_method
  if type(f) ~= "table" or type(f.landmarks) ~= "table" then
    error("align: expected a face with 68 landmarks (from detect)", 2)
  end
  local jitter = opts and opts.jitter
  if method == "similarity" then
    if not jitter then return align.similarity_chip(img, f.landmarks, 150) end
    local m = align.compose(align.invert(align.chip_transform(f.landmarks, 150)), jitter)
    return (img.channels == 3 and img or img:to_rgb()):warp_affine(m, 150, 150, {inverse = true})
  elseif method == "dlib" then
    return align.dlib_chip(img, f.landmarks, 150, 0.25, "dlib", jitter)
  elseif method == "faceapi" then
    local r = landmarks.descriptor_rect(f.landmarks, img.width, img.height)
    if not r then return nil, "face crop is outside the image" end
    return img:crop(r.x, r.y, r.width, r.height)
  end
  error("align: method must be 'similarity', 'dlib' or 'faceapi', got " .. tostring(method), 2)
end

--- Test-time augmentation like dlib's jitter: the face's chip and n
-- randomly jittered copies (rotation up to 3 degrees, scale 0.96-0.99,
-- shift up to 2 %, mirrored half the time; align.jitter_transform),
-- drawn with rand (default math.random). Returns the list of n + 1 chips.
function Recognizer:jittered_chips(img, f, n, opts, rand)
  if math.type(n) ~= "integer" or n < 0 then
    error("jittered_chips: n must be a non-negative integer, got " .. tostring(n), 2)
  end
  local method = opts and opts.align or self.align_method
  if n > 0 and method == "faceapi" then error("jittered_chips: the faceapi crop cannot be jittered", 2) end
  local chips = {(self:align(img, f, opts))}
  for _ = 1, n do
    local m, mirror = align.jitter_transform(150, rand or math.random)
    local chip = self:align(img, f, {align = method, jitter = m})
    chips[#chips + 1] = mirror and chip:flip() or chip
  end
  return chips
end

--- The mean descriptor [128] of the face's chip and n jittered copies
-- (jittered_chips; n = 0: the plain descriptor).
function Recognizer:embed_jittered(img, f, n, opts, rand)
  local chips = self:jittered_chips(img, f, n, opts, rand)
  local d = self:embed_batch(chips)
  return d:sum(1):view(self.dim):scale(1 / #chips)
end

--- The 128-D descriptor of a face image (a chip from align, or any face crop).
function Recognizer:embed(img)
  return self.recognition:embed(img)
end

--- Descriptors of many chips at once: [N,128].
function Recognizer:embed_batch(chips)
  return self.recognition:embed_batch(chips)
end

-- align + embed of the faces of a photo in one batch, and detect + align +
-- embed: the same for every pipeline (siamese.face.pipeline).
local pipeline = require "siamese.face.pipeline"
Recognizer.embed_faces = pipeline.embed_faces
Recognizer.embed_all = pipeline.embed_all

return face
