--- siamese.app.cli.galleries: the gallery a --gallery option names, a file or
-- a postgresql:// URL (never with a password in it: a command line is
-- visible to every user of the machine).
local inputs = require "siamese.app.cli.inputs"

local galleries = {}

--- nil, message when value is a database URL with a password in it: a
-- command line is visible to every user of the machine (ps). true
-- otherwise.
function galleries.no_password(value)
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
function galleries.gallery_exists(path)
  local pg = require "siamese.pg"
  local ok, perr = galleries.no_password(path)
  if not ok then return nil, perr end
  if pg.is_url(path) then
    local gen, err = require("siamese.gallery").generation(path)
    if gen then return true end
    if tostring(err):find("no gallery in this database", 1, true) then return false end
    return nil, err
  end
  return inputs.exists(path)
end

--- Loads an existing gallery; nil, message when missing or damaged.
function galleries.load_gallery(path)
  if not path then return nil, "--gallery FILE is required" end
  local exists, xerr = galleries.gallery_exists(path)
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
function galleries.open_or_create_gallery(path, enc, opts)
  local door = require "siamese.door"
  local exists, xerr = galleries.gallery_exists(path)
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

return galleries
