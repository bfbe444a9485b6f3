--- siamese.face: recognise faces in photos with face-api's pretrained
-- networks (models/, converted by models/convert_faceapi.lua): tiny face
-- detector (or SSD MobileNet v1, detector = "ssd") -> 68 landmarks ->
-- alignment -> 128-D descriptor (ResNet).
--
--   local fr = assert(siamese.face.load())           -- bundled models
--   for _, f in ipairs(fr:embed_all(img)) do print(f.score, f.descriptor:norm()) end
--
-- Alignment: "similarity" (default; eyes and mouth mapped to canonical
-- positions of a 150x150 chip, roll removed — siamese.face.align) or
-- "faceapi" (face-api's square crop around eyes and mouth, no rotation).
-- Descriptors are compared with euclidean distance.
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

local ALIGN = {similarity = true, faceapi = true}

--- Loads the three networks. opts: models_dir, align ("similarity" |
-- "faceapi"), detector ("tiny": face-api's TinyFaceDetector, default, or
-- "ssd": its SsdMobilenetv1, siamese.face.ssd), landmarks ("tiny",
-- face-api's default in its pipeline, or "full": its larger
-- FaceLandmark68Net), input_size (tiny detector, multiple of 32, default
-- 416; the SSD always sees 512x512), score_threshold (default 0.5).
-- Returns the recognizer, or nil, message.
function face.load(opts)
  opts = opts or {}
  local method = opts.align or "similarity"
  if not ALIGN[method] then error("face.load: align must be 'similarity' or 'faceapi', got " .. tostring(method), 2) end
  local dir = opts.models_dir or weights.models_dir()
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
  -- Galleries record which model made their embeddings: the name and the
  -- first 16 hex digits of the weights' SHA-256.
  local digest, err4 = require("siamese.hash").file_sha256(rec_path)
  if not digest then return nil, err4 end
  local fr = setmetatable({}, Recognizer)
  fr.detector, fr.landmarks, fr.recognition = det, lm, rec
  fr.detector_kind = kind
  fr.model_id = "faceapi_recognition:" .. digest:sub(1, 16)
  fr.dim = 128
  fr.align_method = method
  fr.input_size = opts.input_size or 416
  fr.score_threshold = opts.score_threshold or 0.5
  return fr
end

--- Faces in a photo: {box = {x, y, width, height}, score, landmarks =
-- {{x, y}, ...68}}, by descending score. opts: score_threshold (or its
-- synonym min_score), max_results (SSD only, default 100), input_size
-- (tiny detector only).
function Recognizer:detect(img, opts)
  opts = opts or {}
  local score = opts.min_score or opts.score_threshold or self.score_threshold
  local found
  if self.detector_kind == "ssd" then
    found = self.detector:detect(img, {min_score = score, max_results = opts.max_results})
  else
    found = self.detector:detect(img, {input_size = opts.input_size or self.input_size, score_threshold = score})
  end
  local faces = {}
  for _, f in ipairs(found) do
    local points = self.landmarks:predict(img, f.box)
    if points then
      f.landmarks = points
      faces[#faces + 1] = f
    end
  end
  return faces
end

--- The main face of a photo: the detection nearest the centre. When none
-- is found, opts.fallback = "threshold" retries at score 0.1, and
-- "centre" also falls back to the centred region that portrait crops such
-- as LFW are framed around (landmarks found inside it). Returns the face
-- and how it was found ("detected", "low_threshold", "centre"), or nil.
function Recognizer:main_face(img, opts)
  opts = opts or {}
  local cx, cy = img.width / 2, img.height / 2
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
  local box = {x = img.width * 0.3, y = img.height * 0.28, width = img.width * 0.4, height = img.height * 0.44}
  local points = self.landmarks:predict(img, box)
  if not points then return nil end
  return {box = box, score = 0, landmarks = points}, "centre"
end

--- Landmarks for a box given by the caller (e.g. a fallback crop).
function Recognizer:landmarks_in(img, box)
  return self.landmarks:predict(img, box)
end

--- The face's chip: a 150x150 similarity-aligned RGB image, or face-api's
-- square crop (opts.align overrides the recognizer's method).
function Recognizer:align(img, f, opts)
  local method = opts and opts.align or self.align_method
  if type(f) ~= "table" or type(f.landmarks) ~= "table" then
    error("align: expected a face with 68 landmarks (from detect)", 2)
  end
  if method == "similarity" then
    return align.similarity_chip(img, f.landmarks, 150)
  elseif method == "faceapi" then
    local r = landmarks.descriptor_rect(f.landmarks, img.width, img.height)
    if not r then return nil, "face crop is outside the image" end
    return img:crop(r.x, r.y, r.width, r.height)
  end
  error("align: method must be 'similarity' or 'faceapi', got " .. tostring(method), 2)
end

--- The 128-D descriptor of a face image (a chip from align, or any face crop).
function Recognizer:embed(img)
  return self.recognition:embed(img)
end

--- Descriptors of many chips at once: [N,128].
function Recognizer:embed_batch(chips)
  return self.recognition:embed_batch(chips)
end

--- align + embed of faces found in img (from detect or main_face), in one
-- batch: returns those whose chip could be cut, each given .chip and
-- .descriptor ([128]).
function Recognizer:embed_faces(img, faces, opts)
  local chips, kept = {}, {}
  for _, f in ipairs(faces) do
    local chip = self:align(img, f, opts)
    if chip then
      f.chip = chip
      chips[#chips + 1] = chip
      kept[#kept + 1] = f
    end
  end
  if #chips > 0 then
    local d = self:embed_batch(chips)
    for i, f in ipairs(kept) do f.descriptor = d:select(1, i):clone() end
  end
  return kept
end

--- detect + align + embed: the faces of a photo, each with .descriptor ([128]).
function Recognizer:embed_all(img, opts)
  return self:embed_faces(img, self:detect(img, opts), opts)
end

return face
