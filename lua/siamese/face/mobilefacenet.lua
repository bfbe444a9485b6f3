--- siamese.face.mobilefacenet: the MTCNN + MobileFaceNet face pipeline:
-- MTCNN finds faces and their five points (siamese.face.mtcnn), the points
-- are mapped onto ArcFace's 112x112 template (siamese.face.arcface), and
-- MobileFaceNet (ArcFace-trained, models/mobilefacenet.safetensors) gives a
-- 192-D descriptor, L2-normalised, compared by cosine distance.
--
--   local fr = assert(siamese.face.load{model = "mobilefacenet"})
--   for _, f in ipairs(fr:embed_all(img)) do print(f.score, f.box.x, f.descriptor:size(1)) end
--
-- The recognizer answers the methods of siamese.face's (detect,
-- main_face, align, embed, embed_batch, embed_faces, embed_all), so the
-- door, the command line, the web server and the LFW protocol take either
-- pipeline. Faces carry points5 (left eye, right eye, nose, left and right
-- mouth corner, pixels), which siamese.face.quality checks, and no 68
-- landmarks.
local class = require "siamese.class"
local argcheck = require "siamese.argcheck"
local mtcnn = require "siamese.face.mtcnn"
local arcface = require "siamese.face.arcface"

local mfn = {}

mfn.MODEL = "mobilefacenet"
mfn.DIM = 192
-- The fallbacks' thresholds (P-Net, R-Net, O-Net): "threshold" retries a
-- photo without a face at these; "centre" takes O-Net's points on the
-- centred region of a portrait whatever its score.
mfn.LOW_THRESHOLDS = {0.3, 0.4, 0.1}
-- Chosen on LFW's development pairs (models/tune_mobilefacenet.lua,
-- models/README.md): each descriptor is the chip's plus its mirror's.
mfn.DEFAULT_FLIP = true
mfn.DEFAULT_CONVENTION = "standard"
-- The door refuses a face whose embedding (before normalisation, the
-- chip's own) is shorter (siamese.face.quality.check_embedding): the 0.1 %
-- quantile of LFW's development photos' own faces, rounded down; it
-- refuses 4 of those 4,991 faces and 284 of the 894 other detections in
-- them (logos, hands, two half faces at once, people cut by the edge).
-- models/measure_embedding_norms.lua, models/README.md.
mfn.MIN_EMBEDDING_NORM = 45

local Recognizer = class("MobileFaceNetRecognizer")
mfn.Recognizer = Recognizer

--- The model id galleries record for this pipeline (without loading any
-- network): the name, the first 16 hex digits of the weights' SHA-256
-- (dir/mobilefacenet.safetensors), the alignment, and "+flip" when
-- mirrors are averaged in. Returns it, or nil and a message.
function mfn.model_id(dir, flip)
  local digest, err = require("siamese.hash").file_sha256(dir .. "/mobilefacenet.safetensors")
  if not digest then return nil, err end
  return mfn.MODEL .. ":" .. digest:sub(1, 16) .. "/arcface" .. (flip and "+flip" or "")
end

--- Loads the four networks. opts: models_dir (default the bundled
-- models), min_face (MTCNN's smallest face in pixels, default 20), flip
-- (true: each descriptor is that of the chip plus its mirror's, default
-- mfn.DEFAULT_FLIP), convention (MTCNN's box conventions, "standard" or
-- "android": siamese.face.mtcnn; default mfn.DEFAULT_CONVENTION).
-- Returns the recognizer, or nil and a message.
function mfn.load(opts)
  if opts ~= nil and type(opts) ~= "table" then
    argcheck.error("load", 1, "options table expected, got %s", type(opts))
  end
  opts = opts or {}
  local weights = require "siamese.face.weights"
  local dir = opts.models_dir or require("siamese.models").dir()
  local flip = opts.flip
  if flip == nil then flip = mfn.DEFAULT_FLIP end
  if type(flip) ~= "boolean" then argcheck.error("load", 1, "option 'flip' must be a boolean, got %s", type(flip)) end
  local det, err = mtcnn.load(dir, {min_face = opts.min_face, convention = opts.convention or mfn.DEFAULT_CONVENTION})
  if not det then return nil, err end
  local net, nerr = require("siamese.face.netfile").load(dir, "mobilefacenet")
  if not net then return nil, nerr end
  local model_id, derr = mfn.model_id(dir, flip)
  if not model_id then return nil, derr end
  local fr = setmetatable({}, Recognizer)
  fr.detector, fr.net, fr.flip = det, net, flip
  fr.detector_kind = "mtcnn"
  fr.model_id = model_id
  fr.dim = mfn.DIM
  fr.metric = "cosine"
  fr.align_method = "arcface"
  fr.min_face = det.min_face
  fr.min_embedding_norm = mfn.MIN_EMBEDDING_NORM
  fr.models_dir = dir
  return fr
end

-- The same networks at other thresholds (the fallbacks'), made once.
local function detector_at(self, key, thresholds)
  if not self[key] then
    local d = self.detector
    self[key] = mtcnn.new{pnet = d.pnet, rnet = d.rnet, onet = d.onet, min_face = d.min_face,
                          thresholds = thresholds, factor = d.factor, convention = d.convention,
                          resize = d.resize}
  end
  return self[key]
end

local function low_detector(self) return detector_at(self, "low", mfn.LOW_THRESHOLDS) end

local function faces_of(found)
  for _, f in ipairs(found) do f.points5 = f.points end
  return found
end

--- Faces in a photo: {box = {x, y, width, height}, score, points5}, by
-- descending score. opts.min_score (or score_threshold) drops faces
-- scored below it (MTCNN's own thresholds already apply).
function Recognizer:detect(img, opts)
  if not argcheck.is_image(img) then
    argcheck.error("detect", 1, "siamese.Image expected, got %s", argcheck.typename(img))
  end
  opts = opts or {}
  local min = opts.min_score or opts.score_threshold or 0
  local out = {}
  for _, f in ipairs(faces_of(self.detector:detect(img))) do
    if f.score >= min then out[#out + 1] = f end
  end
  return out
end

-- O-Net's points on the centred region of a portrait (the last fallback).
local function centre_region_face(self, img)
  local side = math.min(img.width, img.height) * 0.5
  local x, y = (img.width - side) / 2, (img.height - side) / 2
  local rgb = img.channels == 3 and img or img:to_rgb()
  -- 1-based inclusive corners, as the cascade uses
  local b = {math.floor(x) + 1, math.floor(y) + 1, math.floor(x + side), math.floor(y + side)}
  local any = detector_at(self, "any", {0, 0, 0}) -- O-Net's points whatever its score
  local r = any:output(rgb, {b})[1]
  if not r then return nil end
  return {box = {x = b[1] - 1, y = b[2] - 1, width = b[3] - b[1] + 1, height = b[4] - b[2] + 1},
          score = 0, points5 = r.points, points = r.points}, "centre"
end

local function contains_centre(f, cx, cy)
  local b = f.box
  return b.x <= cx and b.x + b.width >= cx and b.y <= cy and b.y + b.height >= cy
end

--- The main face of a photo: the detection nearest the centre, and how it
-- was found ("detected", "low_threshold", "centre"); or nil. As
-- siamese.face's: opts.fallback "threshold" retries at lower thresholds,
-- "centre" also takes the centred region of a portrait; opts.central =
-- true takes the best detection whose box contains the centre (LFW).
function Recognizer:main_face(img, opts)
  if not argcheck.is_image(img) then
    argcheck.error("main_face", 1, "siamese.Image expected, got %s", argcheck.typename(img))
  end
  opts = opts or {}
  local cx, cy = img.width / 2, img.height / 2
  local function pick(faces)
    local best, bd
    for _, f in ipairs(faces) do
      if opts.central then
        if contains_centre(f, cx, cy) and (not best or f.score > best.score) then best = f end
      else
        local d = (f.box.x + f.box.width / 2 - cx) ^ 2 + (f.box.y + f.box.height / 2 - cy) ^ 2
        if not bd or d < bd then best, bd = f, d end
      end
    end
    return best
  end
  local f = pick(self:detect(img))
  if f then return f, "detected" end
  if opts.fallback ~= "threshold" and opts.fallback ~= "centre" then return nil end
  f = pick(faces_of(low_detector(self):detect(img)))
  if f then return f, "low_threshold" end
  if opts.fallback ~= "centre" then return nil end
  return centre_region_face(self, img)
end

--- The face's 112x112 RGB chip aligned to ArcFace's template.
function Recognizer:align(img, f, opts)
  if type(f) ~= "table" or type(f.points5) ~= "table" then
    argcheck.error("align", 2, "a face with five points (points5, from detect) expected, got %s", argcheck.typename(f))
  end
  if opts and opts.jitter then argcheck.error("align", 3, "this pipeline has no jittered chips") end
  return arcface.chip(img, f.points5, arcface.SIZE)
end

--- Descriptors [N,192], unit length, of chips (112x112 aligned faces;
-- other sizes are resized), and the list of each chip's embedding norm
-- before normalisation (its own, without the mirror's): ArcFace-trained
-- networks give faces long embeddings and other patterns short ones, so
-- the door refuses a "face" whose norm is below mfn.MIN_EMBEDDING_NORM.
function Recognizer:embed_batch(chips)
  if type(chips) ~= "table" or #chips == 0 then
    argcheck.error("embed_batch", 1, "a non-empty list of chips expected, got %s", argcheck.typename(chips))
  end
  local sized = {}
  for i, c in ipairs(chips) do
    if not argcheck.is_image(c) then
      argcheck.error("embed_batch", 1, "chips[%d] is %s, not a siamese.Image", i, argcheck.typename(c))
    end
    sized[i] = (c.width == arcface.SIZE and c.height == arcface.SIZE) and c or c:resize(arcface.SIZE, arcface.SIZE)
  end
  -- arcface.embed's steps (the same forwards, so the same descriptors),
  -- keeping the chips' own norms
  local e = self.net:forward(arcface.to_tensor(sized)):clone()
  local norms = {}
  for i = 1, #sized do norms[i] = e:select(1, i):norm() end
  if self.flip then
    local mirrored = {}
    for i, c in ipairs(sized) do mirrored[i] = c:flip() end
    e:add_(self.net:forward(arcface.to_tensor(mirrored)))
  end
  for i = 1, #sized do
    local row = e:select(1, i)
    local norm = row:norm()
    if norm > 0 then row:scale_(1 / norm) end
  end
  return e, norms
end

--- The descriptor [192] of one chip.
function Recognizer:embed(img)
  return self:embed_batch({img}):select(1, 1):clone()
end

--- Not available in this pipeline (dlib-style jitter is for the face-api one).
function Recognizer:embed_jittered()
  error("embed_jittered: the mobilefacenet pipeline has no jittered chips (use flip)", 2)
end

-- align + embed of faces in one batch, and detect + align + embed: the
-- same for every pipeline (siamese.face.pipeline).
local pipeline = require "siamese.face.pipeline"
Recognizer.embed_faces = pipeline.embed_faces
Recognizer.embed_all = pipeline.embed_all

return mfn
