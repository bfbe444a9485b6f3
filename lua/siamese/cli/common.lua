--- Parts shared by the gallery commands (enroll, verify, identify,
-- attendance, calibrate, eval folder/pairs): the encoder behind a
-- --model option, gallery files, photo lists and progress lines.
--
-- Encoders. "face" (default) is a pretrained face pipeline (--pipeline):
-- each photo is searched for faces; faceapi: detect -> 68 landmarks ->
-- aligned chip -> 128-D descriptor, euclidean; mobilefacenet: MTCNN -> five
-- points -> ArcFace chip -> 192-D descriptor, cosine. Any other --model value (a name such as "att",
-- or a .safetensors path) is loaded with siamese.encoder.load and embeds
-- the whole photo (for datasets of face crops such as AT&T). Both give an
-- object with model_id, dim, kind, faces(img) and main(img).
local common = {}

-- Sorted entries of a directory: names, is_dir (or nil, message).
local list_dir = require("siamese.fs").list_dir

local IMAGE_EXT = {jpg = true, jpeg = true, png = true, pgm = true, ppm = true, pnm = true}

common.FACE_MODEL_PREFIX = "faceapi_recognition"

-- The face pipeline of a model id's family ("faceapi_recognition:..." is
-- faceapi, "mobilefacenet:..." mobilefacenet); nil for other encoders.
common.PIPELINE_OF_FAMILY = {[common.FACE_MODEL_PREFIX] = "faceapi", mobilefacenet = "mobilefacenet"}

--- The face pipeline a gallery's model id names, or nil (a trained encoder).
function common.pipeline_of(model_id)
  return common.PIPELINE_OF_FAMILY[tostring(model_id):match("^([^:]+)") or ""]
end

--- True when a file can be opened for reading.
function common.exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

--- nil, message when value is a database URL with a password in it: a
-- command line is visible to every user of the machine (ps). true
-- otherwise.
function common.no_password(value)
  local pg = require "siamese.pg"
  if pg.is_url(value) and pg.has_password(value) then
    return nil, pg.redact(value) .. ": a password in the URL is visible to every user of this machine (ps);"
      .. " put it in PGPASSWORD or ~/.pgpass instead"
  end
  return true
end

--- Whether the gallery path names exists: a file that can be read, or a
-- postgresql:// database holding a gallery. true or false; nil, message
-- when the database cannot be asked.
function common.gallery_exists(path)
  local pg = require "siamese.pg"
  local ok, perr = common.no_password(path)
  if not ok then return nil, perr end
  if pg.is_url(path) then
    local gen, err = require("siamese.gallery").generation(path)
    if gen then return true end
    if tostring(err):find("no gallery in this database", 1, true) then return false end
    return nil, err
  end
  return common.exists(path)
end

local function is_image(name)
  local ext = name:match("%.(%w+)$")
  return ext ~= nil and IMAGE_EXT[ext:lower()] == true and name:sub(1, 1) ~= "."
end

--- Photos of the arguments: files as given, directories replaced by their
-- image files (name order, not recursive). Returns the list, or nil,
-- message (a directory that cannot be read).
function common.photos(args_)
  local out = {}
  for _, a in ipairs(args_) do
    local names, is_dir = list_dir(a)
    if names then
      for i, name in ipairs(names) do
        if not is_dir[i] and is_image(name) then out[#out + 1] = a .. "/" .. name end
      end
    else
      out[#out + 1] = a
    end
  end
  return out
end

--- A folder dataset: one sub-folder per person with one or more photos.
-- Returns a list of {name, photos = {paths}} in name order, or nil, message.
function common.people(dir)
  local names, is_dir = list_dir(dir)
  if not names then return nil, tostring(is_dir) end
  local people = {}
  for i, name in ipairs(names) do
    if is_dir[i] and name:sub(1, 1) ~= "." then
      local files, fdir = list_dir(dir .. "/" .. name)
      if not files then return nil, tostring(fdir) end
      local photos = {}
      for k, f in ipairs(files) do
        if not fdir[k] and is_image(f) then photos[#photos + 1] = dir .. "/" .. name .. "/" .. f end
      end
      if #photos > 0 then people[#people + 1] = {name = name, photos = photos} end
    end
  end
  if #people == 0 then return nil, dir .. ": no sub-folders with photos (expected one folder per person)" end
  return people
end

-- ---- encoders --------------------------------------------------------------------

--- The encoder chosen by opts.model ("face", default; else a name or path
-- for siamese.encoder.load) with the door's quality gate (siamese.door).
-- opts: models (face models dir), pipeline ("faceapi" | "mobilefacenet";
-- default siamese.face.DEFAULT_MODEL), min_face (mobilefacenet), align and
-- detector (faceapi), fallback ("none" | "threshold" | "centre"; default
-- none). Returns it, or nil, message.
function common.encoder(opts)
  local door = require "siamese.door"
  local face_model = opts.model == nil or opts.model == "face"
  if not face_model and (opts.pipeline_explicit or (opts.pipeline_explicit == nil and opts.pipeline ~= nil)
                         or opts.min_face ~= nil) then
    return nil, "--pipeline and --min-face are for the face model (--model face)"
  end
  local pipeline = face_model and (opts.pipeline or require("siamese.face").DEFAULT_MODEL) or nil
  if face_model then
    local ok, err = require("siamese.cli.photo_options").check_pipeline(opts, pipeline)
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
function common.encoder_for(g, opts)
  local id = g:model()
  local o = {}
  for k, v in pairs(opts) do o[k] = v end
  local explicit = o.pipeline_explicit
  if explicit == nil then explicit = o.pipeline ~= nil end
  local gp = common.pipeline_of(id)
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
    local enc, err = common.encoder(o)
    if not enc then
      return nil, string.format("gallery made with model %s: cannot load its encoder (%s)", id, tostring(err))
    end
    local ok, merr = common.check_model(g, enc)
    if not ok then return nil, merr end
    return enc
  end
  local enc, err = common.encoder(o)
  if not enc then return nil, "--model " .. o.model .. ": " .. tostring(err) end
  local ok, merr = common.check_model(g, enc)
  if not ok then return nil, merr end
  return enc
end

--- nil, message when the encoder is not the one the gallery was made with.
function common.check_model(g, enc, path)
  if g:model() ~= enc.model_id then
    return nil, string.format("%sgallery made with model %s, the encoder is %s (use --model, or enroll again into a new gallery)",
      path and path .. ": " or "", g:model(), tostring(enc.model_id))
  end
  return true
end

-- ---- galleries -------------------------------------------------------------------

--- Loads an existing gallery; nil, message when missing or damaged.
function common.load_gallery(path)
  if not path then return nil, "--gallery FILE is required" end
  local exists, xerr = common.gallery_exists(path)
  if exists == nil then return nil, xerr end
  if not exists then
    return nil, path .. ": no such gallery (create one with: siamese enroll --gallery " .. path .. " NAME PHOTO...)"
  end
  local gallery = require "siamese.gallery"
  return gallery.load(path)
end

--- Loads the gallery, or creates an empty one for the encoder (metric:
-- opts.metric or the encoder's; threshold: opts.threshold, else the
-- default of the model and metric, siamese.door.default_threshold).
-- Returns g, created; or nil, message (a damaged file, a bad threshold).
function common.open_or_create_gallery(path, enc, opts)
  local door = require "siamese.door"
  local exists, xerr = common.gallery_exists(path)
  if exists == nil then return nil, xerr end
  if exists then
    local g, err = require("siamese.gallery").load(path)
    if not g then return nil, err end
    return g, false
  end
  local metric = opts.metric or enc.metric or "euclidean"
  local threshold = opts.threshold or door.default_threshold(enc.model_id, metric, enc.threshold)
  local ok, terr = door.check_threshold(threshold, metric, "--threshold")
  if not ok then return nil, terr end
  local g = require("siamese.gallery").new{dim = enc.dim, metric = metric, threshold = threshold, model = enc.model_id}
  return g, true
end

--- "1 identity", "2 identities".
-- Days in a month of a year (Gregorian).
local function month_days(y, m)
  if m == 2 then return (y % 4 == 0 and (y % 100 ~= 0 or y % 400 == 0)) and 29 or 28 end
  return (m == 4 or m == 6 or m == 9 or m == 11) and 30 or 31
end

--- Seconds since the epoch of "YYYY-MM-DD HH:MM" or "YYYY-MM-DD HH:MM:SS"
-- (a "T" may stand for the space; local time), or nil when the text is not
-- such a time or names none (2026-02-30, 24:00, 08:60). Command-line
-- values (attendance --time, watch --start) go through it.
function common.parse_time(s)
  if type(s) ~= "string" then return nil end
  local y, mo, d, h, mi, rest = s:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)[T ](%d%d):(%d%d)(.*)$")
  if not y then return nil end
  local sec = "0"
  if rest ~= "" then
    sec = rest:match("^:(%d%d)$")
    if not sec then return nil end
  end
  local t = {year = tonumber(y), month = tonumber(mo), day = tonumber(d), hour = tonumber(h),
             min = tonumber(mi), sec = tonumber(sec)}
  if t.month < 1 or t.month > 12 or t.day < 1 or t.day > month_days(t.year, t.month) or t.hour > 23
     or t.min > 59 or t.sec > 59 then
    return nil
  end
  return os.time(t)
end

function common.plural(n, one, many)
  return string.format("%d %s", n, n == 1 and one or many)
end

-- ---- output ----------------------------------------------------------------------

-- Numbers, boxes and decisions are printed as siamese.door reports them
-- (one vocabulary and one rounding for the commands and the web API).
local door_json = setmetatable({}, {__index = function(_, k) return require("siamese.door")[k] end})

--- A box with rounded numbers for output (nil when none).
function common.box(b)
  if not b then return nil end
  return door_json.json_box(b)
end

--- A number for JSON output rounded to 4 decimals, or json.null.
function common.number(v) return door_json.json_number(v) end

--- The quality verdict of a face for JSON.
function common.quality_json(q) return door_json.json_quality(q) end

--- A door decision for JSON (siamese.door.json).
function common.decision_json(r, extra) return door_json.json(r, extra) end

--- A progress printer for long jobs: call p(i, n) after each item; it
-- writes "label: i/n items, rate/s, ETA" to stderr at most every 2 s.
function common.progress(label, what)
  local siamese = require "siamese"
  local start, last = siamese.clock(), -math.huge
  return function(i, n)
    local now = siamese.clock()
    if now - last < 2 and i < n then return end
    last = now
    require("siamese.cli").line_open = i < n -- Ctrl-C then ends the line first
    local rate = i / math.max(now - start, 1e-9)
    io.stderr:write(string.format("\r%s: %d/%d %s, %.1f %s/s, ETA %ds   ", label, i, n, what, rate, what,
      math.floor((n - i) / rate + 0.5)))
    if i == n then io.stderr:write("\n") end
  end
end

--- Saves a face's chip (or crop) as PNG under dir; returns the path or nil.
function common.save_chip(dir, stem, f)
  if not (dir and f.chip) then return nil end
  if not require("siamese.fs").mkdir_p(dir) then return nil end
  local path = string.format("%s/%s.png", dir, stem)
  if f.chip:save(path) then return path end
  return nil
end

-- ---- datasets --------------------------------------------------------------------

--- Embeds the photos of a folder dataset (common.people) with enc.main.
-- Returns {descriptors = {Tensor [dim], ...}, labels = {person index},
-- paths, names (person names)}, and the skipped photos {{photo, reason}}.
-- progress(i, n) is called after each photo.
function common.embed_people(enc, people, progress)
  local image = require "siamese.image"
  local total = 0
  for _, p in ipairs(people) do total = total + #p.photos end
  local set, skipped, done = {descriptors = {}, labels = {}, paths = {}, names = {}}, {}, 0
  for label, p in ipairs(people) do
    set.names[label] = p.name
    for _, path in ipairs(p.photos) do
      local img, err = image.load(path)
      local f = img and enc.main(img, true)
      if f and f.descriptor then
        local k = #set.descriptors + 1
        set.descriptors[k], set.labels[k], set.paths[k] = f.descriptor, label, path
      else
        skipped[#skipped + 1] = {photo = path, reason = err or "no face found"}
      end
      done = done + 1
      if progress then progress(done, total) end
    end
  end
  return set, skipped
end

--- Distance between two descriptors for a metric: euclidean, or cosine
-- (1 - cosine similarity), as the gallery computes them.
function common.distance(a, b, metric)
  if metric == "cosine" then
    local na, nb = a:norm(), b:norm()
    if na == 0 or nb == 0 then return 1 end
    local dot = a:view(1, -1):matmul(b:view(-1, 1)):get(1, 1)
    return 1 - dot / (na * nb)
  end
  return a:sub(b):norm()
end

--- Every pair of an embedded set: distances and labels (true: same
-- person). Past max_pairs (default 300000) the impostor pairs are a
-- seeded sample (every genuine pair is kept).
function common.all_pairs(set, metric, max_pairs)
  local d, same = {}, {}
  local n = #set.descriptors
  max_pairs = max_pairs or 300000
  local total = n * (n - 1) // 2
  local genuine = 0
  local count = {}
  for _, l in ipairs(set.labels) do count[l] = (count[l] or 0) + 1 end
  for _, c in pairs(count) do genuine = genuine + c * (c - 1) // 2 end
  -- keep each impostor pair with probability p (a fixed LCG: reproducible)
  local p = total <= max_pairs and 1 or math.max(0, (max_pairs - genuine) / (total - genuine))
  local state = 12345
  local function coin()
    state = (state * 1103515245 + 12345) % 2147483648
    return state / 2147483648 < p
  end
  for i = 1, n do
    for j = i + 1, n do
      local s = set.labels[i] == set.labels[j]
      if s or p >= 1 or coin() then
        d[#d + 1] = common.distance(set.descriptors[i], set.descriptors[j], metric)
        same[#same + 1] = s
      end
    end
  end
  return d, same
end

--- Distances of an LFW-style pairs file (siamese.face.lfw.read_pairs;
-- photos root/NAME/NAME_0001.jpg). Returns distances, labels, folds and
-- the count of photos by how their face was found; or nil, message.
function common.pair_distances(enc, pairs_path, root, metric, progress)
  local lfw = require "siamese.face.lfw"
  local image = require "siamese.image"
  local list, err = lfw.read_pairs(pairs_path)
  if not list then return nil, err end
  local keys, seen = lfw.photos(list)
  local desc, how = {}, {}
  for i, key in ipairs(keys) do
    local path = lfw.image_path(root, seen[key][1], seen[key][2])
    local img, lerr = image.load(path)
    if not img then return nil, lerr end
    local f = enc.main(img, true)
    if not (f and f.descriptor) then return nil, path .. ": no face found (try --fallback centre)" end
    desc[key] = f.descriptor
    how[f.how] = (how[f.how] or 0) + 1
    if progress then progress(i, #keys) end
  end
  local d, same, folds = {}, {}, {}
  for i, p in ipairs(list) do
    d[i] = common.distance(desc[p.a[1] .. "/" .. p.a[2]], desc[p.b[1] .. "/" .. p.b[2]], metric)
    same[i], folds[i] = p.same, p.fold
  end
  return d, same, folds, how
end

return common
