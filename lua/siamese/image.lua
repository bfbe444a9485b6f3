--- siamese.image: 8-bit images (1 gray, 2 gray+alpha, 3 RGB, 4 RGBA channels).
-- Decoding, geometry and conversions are in C (src/l_image.c); this file adds
-- the file-system parts: `image.load` and `img:save`.
--
-- Coordinates are 0-based pixel positions; pixel (x, y) has its centre at
-- (x, y). Bad data and I/O failures return nil, message; misuse raises.
local core = require "siamese.core"

local C = core.image
local methods = C.methods

-- Whether a JPEG's EXIF orientation is applied when opts.exif is not
-- given (image.set_exif; the commands' --ignore-exif turns it off).
local exif_default = true

-- opts with exif filled in from the default (a copy; nil stays nil when
-- the default is on, as the C decoder's default is to apply it).
local function with_exif(opts)
  if exif_default or (opts and opts.exif ~= nil) then return opts end
  local o = {exif = false}
  for k, v in pairs(opts or {}) do o[k] = v end
  return o
end

local image = {
  decode = function(data, opts) return C.decode(data, with_exif(opts)) end,
  probe = C.probe,
  new = C.new,
  set_max_pixels = C.set_max_pixels,
  get_max_pixels = C.get_max_pixels,
  from_tensor = C.from_tensor,
  resize_tensor = C.resize_tensor,
}

local function check_opts(fname, argn, opts)
  if opts ~= nil and type(opts) ~= "table" then
    error(("bad argument #%d to '%s' (table expected, got %s)"):format(argn, fname, type(opts)), 3)
  end
end

--- Reads and decodes the file at `path` (JPEG, PNG or PNM, told by content).
-- opts.max_pixels overrides the pixel limit for this call;
-- opts.jpeg_decoder = "jpeg-js" decodes colour JPEGs as jpeg-js does
-- (face-api's decoder in Node: chroma replicated, colour conversion
-- truncated) instead of libjpeg's default "libjpeg" (smooth upsampling);
-- a JPEG's EXIF Orientation (1..8) is applied, so a phone photo stored
-- sideways comes out upright (width and height swapped for 5..8), unless
-- opts.exif is false. img.orientation is the orientation applied (1: none).
-- decode(bytes, opts) takes the same options; probe(bytes, {exif}) gives
-- the size decode would.
-- Returns the image, or nil and a message naming the path.
function image.load(path, opts)
  if type(path) ~= "string" then
    error(("bad argument #1 to 'load' (string expected, got %s)"):format(type(path)), 2)
  end
  check_opts("load", 2, opts)
  if opts and opts.exif ~= nil and type(opts.exif) ~= "boolean" then
    error(("bad argument #2 to 'load' (option 'exif' must be a boolean, got %s)"):format(type(opts.exif)), 2)
  end
  local f <close>, err = io.open(path, "rb")
  if not f then
    return nil, err
  end
  local data, rerr = f:read("a")
  if not data then
    return nil, path .. ": " .. tostring(rerr or "read error")
  end
  local img, msg = C.decode(data, with_exif(opts))
  if not img then
    return nil, path .. ": " .. msg
  end
  return img
end

--- Sets whether load and decode apply a JPEG's EXIF orientation when
-- their opts.exif is not given (default true).
function image.set_exif(on)
  if type(on) ~= "boolean" then
    error(("bad argument #1 to 'set_exif' (boolean expected, got %s)"):format(type(on)), 2)
  end
  exif_default = on
end

--- Whether EXIF orientation is applied by default.
function image.get_exif()
  return exif_default
end

local format_by_extension = {
  png = "png", jpg = "jpeg", jpeg = "jpeg", pgm = "pgm", ppm = "ppm", pnm = "pnm",
}

--- Encodes the image and writes it to `path`, atomically: the data goes to
-- a temporary file beside it, which is renamed over `path` only once fully
-- written and synced (core.write_atomic).
-- The format comes from opts.format or the extension (.png .jpg .jpeg .pgm
-- .ppm .pnm); opts.quality (1..100, default 90) applies to JPEG.
-- Returns true, or nil and a message.
function methods.save(img, path, opts)
  if type(path) ~= "string" then
    error(("bad argument #1 to 'save' (string expected, got %s)"):format(type(path)), 2)
  end
  check_opts("save", 2, opts)
  local format = opts and opts.format
  if format == nil then
    local ext = path:match("%.([%w]+)$")
    format = ext and format_by_extension[ext:lower()]
    if not format then
      error(("bad argument #1 to 'save' (cannot tell the format from '%s'; use a .png, .jpg, .jpeg, "
        .. ".pgm, .ppm or .pnm name, or opts.format)"):format(path), 2)
    end
  end
  local data, err = img:encode(format, opts)
  if not data then
    return nil, err
  end
  return core.write_atomic(path, data)
end

return image
