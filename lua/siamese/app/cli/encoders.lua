--- siamese.app.cli.encoders: the encoder behind --model, and the one a gallery
-- was made with.
--
-- "face" (default) is a pretrained face pipeline (--pipeline): each photo
-- is searched for faces; faceapi: detect -> 68 landmarks -> aligned chip ->
-- 128-D descriptor, euclidean; mobilefacenet: MTCNN -> five points ->
-- ArcFace chip -> 192-D descriptor, cosine. Any other --model value (a
-- name such as "att", or a .safetensors path) is loaded with
-- siamese.encoder.load and embeds the whole photo (for datasets of face
-- crops such as AT&T). Both give an object with model_id, dim, kind,
-- faces(img) and main(img).
local encoders = {}

encoders.FACE_MODEL_PREFIX = "faceapi_recognition"

-- The face pipeline of a model id's family ("faceapi_recognition:..." is
-- faceapi, "mobilefacenet:..." mobilefacenet); nil for other encoders.
encoders.PIPELINE_OF_FAMILY = {[encoders.FACE_MODEL_PREFIX] = "faceapi", mobilefacenet = "mobilefacenet"}

--- The face pipeline a gallery's model id names, or nil (a trained encoder).
function encoders.pipeline_of(model_id)
  return encoders.PIPELINE_OF_FAMILY[tostring(model_id):match("^([^:]+)") or ""]
end

--- The encoder chosen by opts.model ("face", default; else a name or path
-- for siamese.encoder.load) with the door's quality gate (siamese.door).
-- opts: models (face models dir), pipeline ("faceapi" | "mobilefacenet";
-- default siamese.face.DEFAULT_MODEL), min_face (mobilefacenet), align and
-- detector (faceapi), fallback ("none" | "threshold" | "centre"; default
-- none). Returns it, or nil, message.
function encoders.encoder(opts)
  local door = require "siamese.door"
  local face_model = opts.model == nil or opts.model == "face"
  if not face_model and (opts.pipeline_explicit or (opts.pipeline_explicit == nil and opts.pipeline ~= nil)
                         or opts.min_face ~= nil) then
    return nil, "--pipeline and --min-face are for the face model (--model face)"
  end
  local pipeline = face_model and (opts.pipeline or require("siamese.face").DEFAULT_MODEL) or nil
  if face_model then
    local ok, err = require("siamese.app.cli.photo_options").check_pipeline(opts, pipeline)
    if not ok then return nil, err end
    if opts.align ~= nil and pipeline ~= "faceapi" then return nil, "--align is for --pipeline faceapi" end
  end
  return door.encoder{model = opts.model, models_dir = opts.models, pipeline = pipeline, min_face = opts.min_face,
                      align = pipeline == "faceapi" and opts.align or nil,
                      detector = pipeline == "faceapi" and opts.detector or nil, fallback = opts.fallback}
end

--- The encoder a gallery was made with: its model id names it ("faceapi_
-- recognition:..." is the faceapi face pipeline, "mobilefacenet:..." the
-- mobilefacenet one, "att:..." the encoder "att"); opts.model overrides the
-- name. Without --pipeline the gallery's pipeline is used; a --pipeline
-- other than the gallery's is refused. Refuses an encoder whose id differs.
function encoders.encoder_for(g, opts)
  local id = g:model()
  local o = {}
  for k, v in pairs(opts) do o[k] = v end
  local explicit = o.pipeline_explicit
  if explicit == nil then explicit = o.pipeline ~= nil end
  local gp = encoders.pipeline_of(id)
  if o.model == nil or (o.model == "face" and gp) then
    local prefix = id:match("^([^:]+)")
    o.model = gp and "face" or prefix
    if gp then
      if explicit and o.pipeline ~= gp then
        return nil, string.format("gallery made with the %s pipeline (model %s), not --pipeline %s: "
          .. "use --pipeline %s, or enroll again into a new gallery with --pipeline %s", gp, id, o.pipeline, gp,
          o.pipeline)
      end
      o.pipeline = gp
    end
    local enc, err = encoders.encoder(o)
    if not enc then
      return nil, string.format("gallery made with model %s: cannot load its encoder (%s)", id, tostring(err))
    end
    local ok, merr = encoders.check_model(g, enc)
    if not ok then return nil, merr end
    return enc
  end
  local enc, err = encoders.encoder(o)
  if not enc then return nil, "--model " .. o.model .. ": " .. tostring(err) end
  local ok, merr = encoders.check_model(g, enc)
  if not ok then return nil, merr end
  return enc
end

--- nil, message when the encoder is not the one the gallery was made with.
function encoders.check_model(g, enc, path)
  if g:model() ~= enc.model_id then
    return nil, string.format("%sgallery made with model %s, the encoder is %s (use --model, or enroll again into a new gallery)",
      path and path .. ": " or "", g:model(), tostring(enc.model_id))
  end
  return true
end

return encoders
