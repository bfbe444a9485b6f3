--- siamese.app.web.server: the web demo's routes and JSON API, independent of
-- the HTTP library (siamese.app.web.listener connects it to lua-http).
--
--   local app = assert(server.new{gallery = "people.gallery"})
--   local status, body, content_type = app:handle{method = "POST",
--     path = "/api/verify", content_type = "multipart/form-data; boundary=...", body = bytes}
--
-- Routes (requests are multipart/form-data, responses JSON; see lua/siamese/app/web/README.md):
--   GET  /               the page
--   GET  /api/people     enrolled identities
--   POST /api/verify     image1, image2 -> same person or not
--   POST /api/enroll     name, image [, mode = new|add|replace, force = true]
--                                        -> adds the photo's face to the gallery
--   POST /api/identify   image          -> every face in the photo, named or unknown
--   POST /api/remove     name           -> forgets the person
--   POST /api/rename     name, new_name -> the person is enrolled under the new name
-- Who may call which route is decided before (siamese.app.web.guard: tokens,
-- Host, Origin); each decision and change is returned as an audit event.
-- Decisions go through siamese.door (the quality gate, the same
-- vocabulary as the command line: accepted, distance, threshold, box,
-- score, quality, reason). Bad input gets {"error": message} with a 4xx
-- status (a photo whose face the gate refuses: 422 with "quality"); a bug
-- gets a 500.
--
-- Enrollment is load-modify-save of the gallery file under the gallery's
-- lock (siamese.gallery.update: FILE.lock, the file read again under it,
-- saved atomically), so it never loses an enrolment made meanwhile by
-- `siamese enroll` or another server: the file on disk is the reference,
-- the in-memory gallery is replaced only once the save succeeded. Before
-- each request that reads the gallery, the file's generation (device,
-- inode, size, modification time) is compared with the one loaded: when
-- another process changed the file, it is loaded again (a damaged file is
-- logged and the last good gallery kept). The listener runs one handler at
-- a time (a lock), so two enrollments of this process never interleave.
local json = require "siamese.json"
local image = require "siamese.image"
local multipart = require "siamese.app.web.multipart"
local annotate = require "siamese.app.web.annotate"
local page = require "siamese.app.web.page"
local door = require "siamese.door"
local names = require "siamese.names"

local server = {}

server.DEFAULT_MAX_UPLOAD = 10 * 1024 * 1024
server.MAX_NAME_BYTES = names.MAX_BYTES

local App = {}
App.__index = App

local function file_exists(path)
  local f = io.open(path, "rb")
  if f then f:close() return true end
  return false
end

-- The recognizer's model id and descriptor size (added to siamese.face by
-- the gallery work; the fallbacks name the bundled network).
local function model_of(fr)
  return fr.model_id or "faceapi_recognition", fr.dim or 128
end

--- Creates the application. opts: gallery (path, required; created on
-- the first enrollment when absent), recognizer (default
-- siamese.face.load()), threshold (for a new gallery, default the model's
-- for the metric, siamese.door.default_threshold; when given, also
-- overrides a loaded gallery's), metric ("euclidean" or "cosine", new
-- gallery only; default the recognizer's: cosine for mobilefacenet), max_pixels (decoder limit, default the
-- image module's), max_upload (bytes, default 10 MB; enforced by the
-- listener, reported here). Returns the app, or nil and a message (e.g. a
-- damaged gallery file, or one made with another model).
function server.new(opts)
  if type(opts) ~= "table" or type(opts.gallery) ~= "string" or opts.gallery == "" then
    error("bad argument #1 to 'new' (expected a table with a 'gallery' path)", 2)
  end
  local gallery = require "siamese.gallery"
  local fr = opts.recognizer
  if not fr then
    local err
    fr, err = require("siamese.face").load()
    if not fr then return nil, err end
  end
  local model, dim = model_of(fr)
  local enc = assert(door.face_encoder{recognizer = fr})
  enc.model_id, enc.dim = model, dim
  local metric = opts.metric or enc.metric or "euclidean"
  if opts.threshold then
    local ok, terr = door.check_threshold(opts.threshold, metric, "threshold")
    if not ok then return nil, terr end
  end
  local app = setmetatable({
    path = opts.gallery, fr = fr, enc = enc, model = model, dim = dim,
    max_pixels = opts.max_pixels or image.get_max_pixels(),
    max_upload = opts.max_upload or server.DEFAULT_MAX_UPLOAD,
    gallery_module = gallery,
  }, App)
  local g
  local pg = require "siamese.pg"
  if pg.is_url(opts.gallery) then
    -- a replica of the database's gallery (created empty, with the
    -- recognizer's settings, when the database has none yet)
    local gallery_pg = require "siamese.gallery_pg"
    local where = pg.redact(opts.gallery)
    local r, rerr = gallery_pg.replica(opts.gallery)
    if not r and tostring(rerr):find("no gallery in this database", 1, true) then
      local made, merr = gallery_pg.update(opts.gallery, function() return true end, {new = {dim = dim,
        metric = metric, model = model, threshold = opts.threshold or door.default_threshold(model, metric)}})
      if not made then return nil, "cannot create a gallery in " .. where .. ": " .. tostring(merr) end
      r, rerr = gallery_pg.replica(opts.gallery)
    end
    if not r then return nil, "cannot load gallery " .. where .. ": " .. tostring(rerr) end
    if r.gallery:model() ~= model then
      local other = r.gallery:model()
      r:close()
      return nil, ("gallery %s was made with model '%s', the recognizer is '%s'"):format(where, other, model)
    end
    g = r.gallery
    if opts.threshold then g:set_threshold(opts.threshold) end
    app.replica, app.generation = r, "pg:" .. r.generation
  elseif file_exists(opts.gallery) then
    local err
    g, err = gallery.load(opts.gallery)
    if not g then return nil, "cannot load gallery " .. opts.gallery .. ": " .. tostring(err) end
    app.generation = err
    if g:model() ~= model then
      return nil, ("gallery %s was made with model '%s', the recognizer is '%s'"):format(opts.gallery, g:model(), model)
    end
    if opts.threshold then g:set_threshold(opts.threshold) end
  else
    g = gallery.new{dim = dim, metric = metric, model = model,
                    threshold = opts.threshold or door.default_threshold(model, metric)}
  end
  app.g = g
  app.threshold, app.metric = opts.threshold, opts.metric
  return app
end

-- An HTTP error carried through error() to the request's boundary.
local HttpError = {}
HttpError.__index = HttpError
local function fail(status, fmt, ...)
  error(setmetatable({status = status, message = fmt:format(...)}, HttpError), 0)
end

-- A refusal with more fields in its JSON body (e.g. quality).
local function fail_with(status, fields, fmt, ...)
  error(setmetatable({status = status, message = fmt:format(...), fields = fields}, HttpError), 0)
end

local function status_of_decode_error(msg)
  if msg:find("exceeds the limit", 1, true) then return 413 end
  if msg:find("unknown image format", 1, true) or msg:find("empty image data", 1, true) then return 415 end
  return 422 -- the format is known but the data is truncated or corrupt
end

-- Multipart fields of a request, or a 400/415.
local function form_of(req)
  local boundary, err = multipart.boundary(req.content_type)
  if not boundary then fail(415, "expected a multipart/form-data upload (%s)", err) end
  local fields, perr = multipart.parse(req.body or "", boundary)
  if not fields then fail(400, "%s", perr) end
  return fields
end

local function field(fields, name, what)
  local f = fields[name]
  if not f then fail(400, "missing field '%s' (%s)", name, what) end
  return f
end

function App:decode(fields, name)
  local f = field(fields, name, "a photo file")
  if #f.data == 0 then fail(400, "field '%s' is empty (no photo was chosen)", name) end
  local img, err = image.decode(f.data, {max_pixels = self.max_pixels})
  if not img then
    local status = status_of_decode_error(err)
    if status == 415 then fail(415, "%s: not an image (%s)", name, err) end
    if status == 413 then fail(413, "%s: image too large (%s)", name, err) end
    fail(422, "%s: cannot decode the image (%s)", name, err)
  end
  return img
end

-- Rounded numbers, boxes, quality verdicts: as the command line prints them.
local number_json, quality_json = door.json_number, door.json_quality

-- The photos' main faces (nearest the centre), each with its descriptor,
-- or a 422 naming the field: no face, or one the quality gate refuses.
function App:main_faces(imgs, fields)
  local faces = {}
  for i, img in ipairs(imgs) do
    local f = self.enc.main(img)
    if not f then fail(422, "%s: %s", fields[i], self.enc.no_face) end
    if not f.quality.ok then
      fail_with(422, {quality = quality_json(f.quality), field = fields[i]}, "%s: %s", fields[i], f.quality.reason)
    end
    if not f.descriptor then fail(422, "%s: the face is too close to the photo's border", fields[i]) end
    faces[i] = f
  end
  return faces
end

function App:main_face(img, name)
  return self:main_faces({img}, {name})[1]
end

-- Distance between two descriptors under the gallery's metric.
function App:distance(a, b)
  return door.distance(a, b, self.g:metric())
end

local box_json = door.json_box


function App:people(_, ctx)
  local list = {}
  for _, name in ipairs(self.g:names()) do
    local t = self.g:templates(name)
    list[#list + 1] = {name = name, templates = t and t:size(1) or 0}
  end
  ctx.events[1] = {action = "people", accepted = true, detail = ("%d people listed"):format(#list)}
  return {people = json.array(list), count = self.g:count(), threshold = number_json(self.g:threshold()),
          metric = self.g:metric(), model = self.g:model()}
end

function App:verify(req, ctx)
  local fields = form_of(req)
  local img1 = self:decode(fields, "image1")
  local img2 = self:decode(fields, "image2")
  local f = self:main_faces({img1, img2}, {"image1", "image2"})
  local f1, f2 = f[1], f[2]
  local d = self:distance(f1.descriptor, f2.descriptor)
  local t = self.g:threshold()
  local same = d <= t
  local colour = same and annotate.GREEN or annotate.RED
  local label = (same and "SAME " or "DIFFERENT ") .. string.format("%.2f", d)
  ctx.events[1] = {action = "verify", distance = d, threshold = t, accepted = same,
                   detail = same and "match" or "distance above threshold"}
  return {
    accepted = same, distance = number_json(d), threshold = number_json(t), metric = self.g:metric(),
    reason = same and "match" or "distance above threshold",
    faces = json.array{{box = box_json(f1.box), score = number_json(f1.score), quality = quality_json(f1.quality)},
                       {box = box_json(f2.box), score = number_json(f2.score), quality = quality_json(f2.quality)}},
    images = json.array{annotate.data_url(img1, {{box = f1.box, label = label, colour = colour}}),
                        annotate.data_url(img2, {{box = f2.box, label = label, colour = colour}})},
  }
end

local function check_name(raw)
  local name, err = names.check(raw, "field 'name'")
  if not name then fail(400, "%s", err) end
  return name
end

-- Seconds an enrolment waits for the gallery's lock (held by a command
-- line enrolment, say) before answering 503.
server.LOCK_TIMEOUT = 30

-- Load-modify-save under the gallery's lock: the file, read again under
-- it, is the reference when present. The enrolment is checked by the door
-- (mode new|add|replace, duplicates, look-alikes) on the gallery as
-- loaded; a refusal is a 409 with the reason.
function App:enroll_descriptor(name, descriptor, mode, force)
  local reached, ctx_of = false, nil
  local sok, n, g = self.gallery_module.update(self.path, function(g, ctx)
    reached, ctx_of = true, ctx
    if g:model() ~= self.model then
      fail(500, "gallery %s was replaced by one made with model '%s', the recognizer is '%s'", self.path,
        g:model(), self.model)
    end
    if self.threshold then g:set_threshold(self.threshold) end
    local twin = names.same_as(name, g:names())
    if twin then fail(409, "'%s' differs from the enrolled '%s' only by case", name, twin) end
    local d = assert(door.new{gallery = g, encoder = self.enc})
    if mode == "replace" then
      if not g:has(name) then fail(409, "'%s' is not enrolled: nothing to replace", name) end
      g:remove(name)
    end
    local ok, why = d:check_enrolment(name, descriptor, mode == "replace" and "new" or mode, force)
    if not ok then fail(409, "%s", why) end
    return true, g:add(name, descriptor, self.model), g
  end, {timeout = server.LOCK_TIMEOUT,
        new = {dim = self.dim, metric = self.g:metric(), model = self.model, threshold = self.g:threshold()}})
  if not sok then
    if not reached and tostring(n):find("locked by another process", 1, true) then fail(503, "%s", n) end
    -- a file there that could not be read; otherwise the lock or the save failed
    if not reached and self.gallery_module.generation(self.path) then
      fail(500, "cannot load gallery %s: %s", self.path, tostring(n))
    end
    fail(500, "cannot save gallery %s: %s", self.path, tostring(n))
  end
  self:after_change(g, ctx_of.generation)
  return n
end

-- A gallery in PostgreSQL: the changes pushed since the last request
-- (the replica reconnects while the database is away, at most every
-- gallery_pg.RETRY_EVERY seconds, and serves the gallery it has).
function App:refresh_replica()
  local r, log = self.replica, self.log or function() end
  local n = r:sync_telling(log, "serving")
  if n and n > 0 and self.threshold then r.gallery:set_threshold(self.threshold) end
  self.g, self.generation = r.gallery, "pg:" .. r.generation
end

-- After this process changed the gallery (g: the copy the change was
-- made on): the replica takes the change rows at once.
function App:after_change(g, generation)
  if not self.replica then
    self.g, self.generation = g, generation
    return
  end
  self.replica:catch_up()
  if self.threshold then self.replica.gallery:set_threshold(self.threshold) end
  self.g, self.generation = self.replica.gallery, "pg:" .. self.replica.generation
  if g ~= self.g then g:close() end
end

-- Loads the gallery again when another process changed its file (its
-- generation differs from the one loaded). A file that cannot be loaded
-- keeps the last good gallery (logged); a file removed gives an empty
-- gallery with the same settings, as a restart would.
function App:refresh()
  if self.replica then return self:refresh_replica() end
  local gallery = self.gallery_module
  local now = gallery.generation(self.path)
  if now == self.generation then return end
  local log = self.log or function() end
  if not now then
    if self.generation == nil then return end -- still no file
    log(("gallery %s was removed: serving an empty gallery"):format(self.path))
    self.g = gallery.new{dim = self.dim, metric = self.g:metric(), model = self.model,
                         threshold = self.g:threshold(), score = self.g:score_mode()}
    self.generation = nil
    return
  end
  local g, gen = gallery.load(self.path)
  if g and g:model() ~= self.model then
    local other = g:model()
    g:close()
    g, gen = nil, ("made with model '%s', the recognizer is '%s'"):format(other, self.model)
  end
  if not g then
    if self.failed_generation ~= now then -- log each bad version once
      log(("cannot reload gallery %s (keeping the last good one): %s"):format(self.path, tostring(gen)))
      self.failed_generation = now
    end
    return
  end
  if self.threshold then g:set_threshold(self.threshold) end
  self.g, self.generation, self.failed_generation = g, gen, nil
  log(("gallery %s changed on disk: reloaded (%d identities)"):format(self.path, g:count()))
end

local MODES = {new = true, add = true, replace = true}

function App:enroll(req, ctx)
  local fields = form_of(req)
  local name = check_name(field(fields, "name", "the person's name").data)
  ctx.name = name
  local mode = fields.mode and fields.mode.data or "new"
  if not MODES[mode] then fail(400, "field 'mode' must be new, add or replace, got '%s'", mode:sub(1, 32)) end
  local force = fields.force ~= nil and fields.force.data == "true"
  local img = self:decode(fields, "image")
  local f = self:main_face(img, "image")
  local n = self:enroll_descriptor(name, f.descriptor, mode, force)
  ctx.events[1] = {action = "enroll", name = name, accepted = true,
                   detail = ("mode %s%s; %d photo(s) enrolled"):format(mode, force and ", forced" or "", n)}
  return {
    name = name, templates = n, count = self.g:count(), box = box_json(f.box), score = number_json(f.score),
    quality = quality_json(f.quality),
    image = annotate.data_url(img, {{box = f.box, label = name, colour = annotate.BLUE}}),
  }
end

function App:identify(req, ctx)
  local fields = form_of(req)
  local img = self:decode(fields, "image")
  local d = assert(door.new{gallery = self.g, encoder = self.enc, k = 3})
  local found = d:identify(img)
  if #found == 0 then fail(422, "image: %s", self.enc.no_face) end
  local faces, marks = {}, {}
  for i, r in ipairs(found) do
    faces[i] = door.json(r)
    ctx.events[i] = {action = "identify", name = r.name, accepted = r.name ~= nil,
                     distance = r.distance and r.distance < math.huge and r.distance or nil,
                     threshold = self.g:threshold(), detail = r.reason}
    local label = r.name or (r.quality.ok and "UNKNOWN" or "REFUSED")
    marks[i] = {box = r.box, colour = r.name and annotate.GREEN or annotate.RED,
                label = label .. (r.distance and r.distance < math.huge and string.format(" %.2f", r.distance) or "")}
  end
  return {faces = json.array(faces), threshold = number_json(self.g:threshold()), count = self.g:count(),
          image = annotate.data_url(img, marks)}
end

-- Remove and rename: load-modify-save under the gallery's lock, as
-- enrolment. fn(g) changes g (or fails with an HttpError).
function App:change_gallery(fn)
  local reached = false
  local sok, res, g, ctx_of = self.gallery_module.update(self.path, function(g, ctx)
    reached = true
    if self.threshold then g:set_threshold(self.threshold) end
    local r = fn(g)
    return true, r, g, ctx
  end, {timeout = server.LOCK_TIMEOUT})
  if not sok then
    local msg = tostring(res)
    if not reached and msg:find("locked by another process", 1, true) then fail(503, "%s", msg) end
    if not reached and (msg:find("no such gallery", 1, true) or msg:find("no gallery in this database", 1, true)) then
      fail(404, "nobody is enrolled yet")
    end
    fail(500, "cannot update gallery %s: %s", self.path, msg)
  end
  self:after_change(g, ctx_of.generation)
  return res
end

function App:remove(req, ctx)
  local fields = form_of(req)
  local name = check_name(field(fields, "name", "the person's name").data)
  ctx.name = name
  local n = self:change_gallery(function(g)
    if not g:has(name) then
      local twin = names.same_as(name, g:names())
      if twin then fail(404, "'%s' is not enrolled (did you mean '%s'?)", name, twin) end
      fail(404, "'%s' is not enrolled", name)
    end
    local t = g:templates(name)
    g:remove(name)
    return t and t:size(1) or 0
  end)
  ctx.events[1] = {action = "remove", name = name, accepted = true, detail = ("%d photo(s) removed"):format(n)}
  return {removed = name, templates = n, count = self.g:count()}
end

function App:rename(req, ctx)
  local fields = form_of(req)
  local name = check_name(field(fields, "name", "the person's current name").data)
  ctx.name = name
  local new_name, err = names.check(field(fields, "new_name", "the new name").data, "field 'new_name'")
  if not new_name then fail(400, "%s", err) end
  self:change_gallery(function(g)
    if not g:has(name) then fail(404, "'%s' is not enrolled", name) end
    if new_name == name then fail(409, "'%s' already has that name", name) end
    if g:has(new_name) then fail(409, "'%s' is already enrolled", new_name) end
    local twin = names.same_as(new_name, g:names())
    if twin and names.key(twin) ~= names.key(name) then
      fail(409, "'%s' differs from the enrolled '%s' only by case", new_name, twin)
    end
    g:rename(name, new_name)
  end)
  ctx.events[1] = {action = "rename", name = name, accepted = true, detail = "renamed to " .. new_name}
  return {renamed = name, name = new_name, count = self.g:count()}
end

-- Each route's handler per method. The API routes' actions (what a token
-- must allow) are siamese.app.web.guard.ACTIONS.
local ROUTES = {
  ["/"] = {GET = function() return 200, page.html, "text/html; charset=utf-8" end},
  ["/api/people"] = {GET = App.people},
  ["/api/verify"] = {POST = App.verify},
  ["/api/enroll"] = {POST = App.enroll},
  ["/api/identify"] = {POST = App.identify},
  ["/api/remove"] = {POST = App.remove},
  ["/api/rename"] = {POST = App.rename},
}

--- The paths of the API routes that change the gallery or compute faces
-- (siamese.app.web.listener sends these to the worker processes).
server.WORKER_ROUTES = {["/api/verify"] = true, ["/api/identify"] = true, ["/api/enroll"] = true,
                        ["/api/remove"] = true, ["/api/rename"] = true}

local function encode(status, value)
  return status, json.encode(value), "application/json"
end

--- Handles one request {method, path, content_type, body}. Returns status,
-- body, content type, the allowed methods (for 405) and the request's
-- audit events: a list of {action, name, distance, threshold, accepted,
-- detail} (siamese.app.web.audit adds who and when): one per decision or
-- change, and one with accepted = false and the status and message when an
-- API request is refused. Never raises: a handler's bug becomes a 500 with
-- its message.
function App:handle(req)
  local path = (req.path or "/"):match("^[^?#]*")
  local route = ROUTES[path]
  if not route then return encode(404, {error = "not found: " .. path}) end
  if path ~= "/" then
    local rok, rerr = pcall(self.refresh, self)
    if not rok and self.log then self.log("gallery reload failed: " .. tostring(rerr)) end
  end
  local h = route[req.method]
  if not h then
    local allowed = {}
    for m in pairs(route) do allowed[#allowed + 1] = m end
    table.sort(allowed)
    local s, b, c = encode(405, {error = ("method %s not allowed on %s (use %s)"):format(
      tostring(req.method), path, table.concat(allowed, ", "))})
    return s, b, c, table.concat(allowed, ", ")
  end
  local ctx = {events = {}}
  local ok, a, b, c = xpcall(h, function(e)
    if getmetatable(e) == HttpError then return e end
    return setmetatable({status = 500, message = "internal error: " .. tostring(e), trace = debug.traceback(nil, 2)}, HttpError)
  end, self, req, ctx)
  local action = path:match("^/api/(.+)$")
  if not ok then
    if a.trace and self.log then self.log(a.message .. "\n" .. a.trace) end
    local body = {error = a.message}
    for k, v in pairs(a.fields or {}) do body[k] = v end
    local events = {}
    if action then
      events[1] = {action = action, name = ctx.name, accepted = false,
                   detail = ("%d %s"):format(a.status, a.message)}
    end
    local s, bd, ct = encode(a.status, body)
    return s, bd, ct, nil, events
  end
  if type(a) == "number" then return a, b, c, nil, ctx.events end
  local s, bd, ct = encode(200, a)
  return s, bd, ct, nil, ctx.events
end

--- An error response for the listener (e.g. an upload over the limit).
function server.error_response(status, message)
  return encode(status, {error = message})
end

return server
