--- The options of every command that reads photos: --pipeline, --min-face,
-- --detector, --threads, --max-pixels, --ignore-exif.
--
--   local photo_options = require "siamese.app.cli.photo_options"
--   photo_options.merge(SPEC)                       -- adds the options
--   local opts, pos = args.parse(argv, SPEC)
--   local ok, err = photo_options.apply(opts)       -- checks and applies them
--   if not ok then return cli.fail(err, usage) end  -- err names the flag
--
-- The options' descriptions are in photo_options.SPEC (a command's --help
-- lists them with its own).
local photo_options = {}

photo_options.DETECTORS = {"tiny", "ssd"}
photo_options.PIPELINES = {"faceapi", "mobilefacenet"}
photo_options.MIN_FACE = {6, 10000} -- --min-face's range, pixels
photo_options.MAX_THREADS = 1024

--- The option spec fragment (siamese.app.cli.args): pipeline (no default:
-- siamese.face.DEFAULT_MODEL, or a gallery's own), min_face (no default:
-- MTCNN's), detector (no default: the face pipeline's, tiny), threads and
-- max_pixels (no default: all cores, the decoder's limit).
photo_options.SPEC = {
  ignore_exif = {kind = "flag", default = false,
                 help = "keep JPEG pixels as stored (by default a photo's EXIF orientation is applied, so a "
                   .. "phone photo comes upright)"},
  pipeline = {kind = "string", choices = photo_options.PIPELINES, arg = "mobilefacenet|faceapi",
              help = "the face pipeline (default mobilefacenet, or the one a gallery was made with): "
                .. "mobilefacenet (MTCNN, five points, ArcFace chip, 192-D, cosine) or faceapi (face-api's "
                .. "detector, 68 landmarks, dlib chip, 128-D, euclidean)"},
  min_face = {kind = "number", arg = "N",
              help = "mobilefacenet: the smallest face MTCNN looks for, in pixels (6..10000; default 20)"},
  detector = {kind = "string", choices = photo_options.DETECTORS, arg = "tiny|ssd",
              help = "faceapi: the face detector (default tiny; ssd: SSD MobileNet v1, slower and more "
                .. "sensitive)"},
  threads = {kind = "number", arg = "N", help = "threads for the networks (1..1024; default all cores)"},
  max_pixels = {kind = "number", arg = "N", help = "refuse images with more pixels (default the decoder's limit)"},
}

-- Option entries several commands share: --models; --model of the
-- commands that use a gallery's encoder (GALLERY_MODEL) and of the
-- benchmarks (ENCODER); the benchmarks' --metric.
photo_options.MODELS = {kind = "string", arg = "DIR", help = "the folder of the face models (default: the installed ones)"}
photo_options.GALLERY_MODEL = {kind = "string", arg = "NAME|PATH",
                               help = "the encoder, when not the one the gallery names"}
photo_options.ENCODER = {kind = "string", arg = "face|NAME|PATH",
                         help = "face (default, the pretrained face pipeline) or a trained encoder "
                           .. "(siamese.encoder.load: a name such as att, or a .safetensors path) that embeds "
                           .. "the whole photo"}
photo_options.METRIC = {kind = "string", choices = {"euclidean", "cosine"}, help = "the distance (default the encoder's)"}

--- The --fallback entry (what the face model does when no face is found
-- at its normal score), with the command's own help text.
function photo_options.fallback(help)
  return {kind = "string", default = "none", choices = {"none", "threshold", "centre"}, arg = "none|threshold|centre",
          help = help}
end

--- Adds the options to a command's option spec (returns it). A command's
-- own entry of the same name is replaced.
function photo_options.merge(spec)
  for k, v in pairs(photo_options.SPEC) do spec[k] = v end
  return spec
end

-- An integer value of an option (4 and 4.0 alike), or nil.
local function integer(v)
  return type(v) == "number" and math.tointeger(v) or nil
end

--- The face pipeline the options choose: --pipeline, else
-- siamese.face.DEFAULT_MODEL.
function photo_options.pipeline(opts)
  return opts.pipeline or require("siamese.face").DEFAULT_MODEL
end

--- Checks that the pipeline options fit a pipeline (default: the one the
-- options choose): --detector is faceapi's, --min-face mobilefacenet's.
-- Returns true, or nil and a message naming the flag.
function photo_options.check_pipeline(opts, pipeline)
  pipeline = pipeline or photo_options.pipeline(opts)
  if opts.detector ~= nil and pipeline ~= "faceapi" then
    return nil, "--detector is for --pipeline faceapi"
  end
  if opts.min_face ~= nil and pipeline ~= "mobilefacenet" then
    return nil, "--min-face is for --pipeline mobilefacenet"
  end
  return true
end

--- Checks parsed options: --pipeline (faceapi or mobilefacenet),
-- --min-face (pixels, 6..10000), --detector (tiny or ssd) and whether they
-- fit the pipeline, --threads (an integer 1..1024), --max-pixels (a
-- positive integer). Returns true, or nil and a message naming the flag;
-- nothing is applied then.
function photo_options.check(opts)
  if opts.pipeline ~= nil and opts.pipeline ~= "faceapi" and opts.pipeline ~= "mobilefacenet" then
    return nil, "--pipeline must be faceapi or mobilefacenet, got '" .. tostring(opts.pipeline) .. "'"
  end
  if opts.min_face ~= nil then
    local v, r = opts.min_face, photo_options.MIN_FACE
    if type(v) ~= "number" or v ~= v or v < r[1] or v > r[2] then
      return nil, string.format("--min-face must be a number of pixels from %d to %d, got %s", r[1], r[2],
        tostring(v))
    end
  end
  if opts.detector ~= nil and opts.detector ~= "tiny" and opts.detector ~= "ssd" then
    return nil, "--detector must be tiny or ssd, got '" .. tostring(opts.detector) .. "'"
  end
  if opts.model ~= nil and opts.model ~= "face"
     and (opts.min_face ~= nil or (opts.pipeline ~= nil and opts.pipeline_explicit ~= false)) then
    return nil, "--pipeline and --min-face are for the face model (--model face)"
  end
  local pok, perr = photo_options.check_pipeline(opts)
  if not pok then return nil, perr end
  if opts.threads ~= nil then
    local n = integer(opts.threads)
    if not n or n < 1 or n > photo_options.MAX_THREADS then
      return nil, string.format("--threads must be an integer from 1 to %d, got %s", photo_options.MAX_THREADS,
        tostring(opts.threads))
    end
  end
  if opts.max_pixels ~= nil then
    local n = integer(opts.max_pixels)
    if not n or n < 1 then
      return nil, "--max-pixels must be a positive integer, got " .. tostring(opts.max_pixels)
    end
  end
  return true
end

--- Checks the options (photo_options.check) and applies them: --threads
-- sets the thread count (siamese.set_num_threads), --max-pixels the
-- decoder's pixel limit (siamese.image.set_max_pixels); both stored back
-- in opts as integers. --pipeline, --min-face and --detector are for the
-- encoder (opts.pipeline, opts.min_face, opts.detector): opts.pipeline is
-- set to the pipeline chosen (siamese.face.DEFAULT_MODEL when not given)
-- and opts.pipeline_explicit tells whether --pipeline was given (a
-- gallery's own pipeline is used otherwise). Returns true, or nil and a
-- message naming the flag.
function photo_options.apply(opts)
  local ok, err = photo_options.check(opts)
  if not ok then return nil, err end
  if opts.pipeline_explicit == nil then opts.pipeline_explicit = opts.pipeline ~= nil end
  opts.pipeline = photo_options.pipeline(opts)
  local siamese = require "siamese"
  if opts.ignore_exif then siamese.image.set_exif(false) end
  if opts.threads ~= nil then
    opts.threads = integer(opts.threads)
    siamese.set_num_threads(opts.threads)
  end
  if opts.max_pixels ~= nil then
    opts.max_pixels = integer(opts.max_pixels)
    siamese.image.set_max_pixels(opts.max_pixels)
  end
  return true
end

return photo_options
