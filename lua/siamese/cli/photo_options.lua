--- The options of every command that reads photos: --detector, --threads,
-- --max-pixels, --ignore-exif.
--
--   local photo_options = require "siamese.cli.photo_options"
--   photo_options.merge(SPEC)                       -- adds the three options
--   local opts, pos = args.parse(argv, SPEC)
--   local ok, err = photo_options.apply(opts)       -- checks and applies them
--   if not ok then return cli.fail(err, usage) end  -- err names the flag
--
-- photo_options.USAGE is the lines to put in a command's --help.
local photo_options = {}

photo_options.DETECTORS = {"tiny", "ssd"}
photo_options.MAX_THREADS = 1024

--- The option spec fragment (siamese.cli.args): detector (no default: the
-- face pipeline's, tiny), threads and max_pixels (no default: all cores,
-- the decoder's limit).
photo_options.SPEC = {
  ignore_exif = {kind = "flag", default = false},
  detector = {kind = "string", choices = photo_options.DETECTORS},
  threads = {kind = "number"},
  max_pixels = {kind = "number"},
}

photo_options.USAGE = [[
  --detector tiny|ssd  the face detector (default tiny; ssd: SSD MobileNet v1,
                       slower and more sensitive)
  --threads N          threads for the networks (1..1024; default all cores)
  --max-pixels N       refuse images with more pixels (default the decoder's
                       limit)
  --ignore-exif        keep JPEG pixels as stored (by default a photo's EXIF
                       orientation is applied, so a phone photo comes upright)]]

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

--- Checks parsed options: --detector (tiny or ssd), --threads (an integer
-- 1..1024), --max-pixels (a positive integer). Returns true, or nil and a
-- message naming the flag; nothing is applied then.
function photo_options.check(opts)
  if opts.detector ~= nil and opts.detector ~= "tiny" and opts.detector ~= "ssd" then
    return nil, "--detector must be tiny or ssd, got '" .. tostring(opts.detector) .. "'"
  end
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
-- in opts as integers. --detector is for the encoder (opts.detector).
-- Returns true, or nil and a message naming the flag.
function photo_options.apply(opts)
  local ok, err = photo_options.check(opts)
  if not ok then return nil, err end
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
