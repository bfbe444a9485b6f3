-- Counts, over the distinct photos of LFW pairs files, how many have a face
-- found by each of three detectors:
--   tiny   face-api's tiny detector (input 416), score >= 0.5
--   ssd    face-api's SSD MobileNet v1 (siamese.face.ssd), score >= 0.5
--   mtcnn  MTCNN (siamese.face.mtcnn) with its defaults: min face 20 px,
--          thresholds 0.6 / 0.7 / 0.7 (the mobilefacenet pipeline's detector)
-- and names the photos each one misses. A photo counts as found when the
-- detector returns any face; "centred" counts the photos with a detection
-- whose box contains the photo's centre (LFW photos are centred on the
-- person named). Detection only (no landmarks); prints progress on stderr
-- (photos/s, ETA) and one JSON object on stdout.
--
--   nice -n 19 lua5.4 models/measure_detectors.lua [--dev] [--limit N] [--threads N]
--       [--detectors tiny,ssd,mtcnn] [--partial FILE] [LFW_ROOT [PAIRS_FILE...]]
--     (from the checkout, after make; default LFW_ROOT ../shared/data/lfw and
--     its pairs.txt; --dev: pairsDevTrain.txt and pairsDevTest.txt instead;
--     PAIRS_FILE...: those files; --partial FILE: the JSON so far rewritten
--     there at every progress line; SIAMESE_BUILD=DIR for another build folder)
package.path = "./lua/?.lua;./lua/?/init.lua;" .. package.path
package.cpath = "./" .. (os.getenv("SIAMESE_BUILD") or "build") .. "/?.so;" .. package.cpath
local siamese = require "siamese"
local json = require "siamese.json"
local lfw = require "siamese.face.lfw"

local function usage(msg)
  io.stderr:write("measure_detectors: " .. msg .. "\n",
    "usage: lua5.4 models/measure_detectors.lua [--dev] [--limit N] [--threads N] [--detectors tiny,ssd,mtcnn]",
    " [--partial FILE] [LFW_ROOT [PAIRS_FILE...]]\n")
  os.exit(2)
end

local dev, limit, threads, which, partial = false, nil, nil, "tiny,ssd,mtcnn", nil
local positional = {}
do
  local i = 1
  while i <= #arg do
    local a = arg[i]
    if a == "--dev" then
      dev = true
    elseif a == "--limit" or a == "--threads" or a == "--detectors" or a == "--partial" then
      local v = arg[i + 1] or usage(a .. " needs a value")
      i = i + 1
      if a == "--detectors" then
        which = v
      elseif a == "--partial" then
        partial = v
      else
        local n = math.tointeger(tonumber(v))
        if not n or n < 1 then usage(a .. " must be a positive integer, got " .. v) end
        if a == "--limit" then limit = n else threads = n end
      end
    elseif a:sub(1, 2) == "--" then
      usage("unknown option " .. a)
    else
      positional[#positional + 1] = a
    end
    i = i + 1
  end
end
if threads then siamese.set_num_threads(threads) end

local root = positional[1] or "../shared/data/lfw"
local files = {table.unpack(positional, 2)}
if #files > 0 and dev then usage("--dev and PAIRS_FILE... are exclusive") end
if #files == 0 then
  files = dev and {root .. "/pairsDevTrain.txt", root .. "/pairsDevTest.txt"} or {root .. "/pairs.txt"}
end

-- The detectors, in report order: name -> load(), detect(img) -> faces.
local LOADERS = {
  tiny = function()
    local d = assert(require("siamese.face.detector").load())
    return function(img) return d:detect(img, {score_threshold = 0.5}) end
  end,
  ssd = function()
    local d = assert(require("siamese.face.ssd").load())
    return function(img) return d:detect(img, {min_score = 0.5}) end
  end,
  mtcnn = function()
    local d = assert(require("siamese.face.mtcnn").load(nil, {min_face = 20}))
    return function(img) return d:detect(img) end
  end,
}
local names, detect = {}, {}
for name in which:gmatch("[^,]+") do
  if not LOADERS[name] then usage("unknown detector " .. name .. " (tiny, ssd, mtcnn)") end
  names[#names + 1] = name
  detect[name] = LOADERS[name]()
end
if #names == 0 then usage("no detector") end

local all_pairs = {}
for _, file in ipairs(files) do
  local list = assert(lfw.read_pairs(file))
  table.move(list, 1, #list, #all_pairs + 1, all_pairs)
end
local keys, side_of = lfw.photos(all_pairs)
local photos = {}
for i, key in ipairs(keys) do photos[i] = side_of[key] end
local total = #photos
if limit and limit < total then
  for i = total, limit + 1, -1 do photos[i] = nil end
  total = limit
end

local function contains_centre(box, cx, cy)
  return box.x <= cx and box.x + box.width >= cx and box.y <= cy and box.y + box.height >= cy
end

local found, centred, faces, missed, not_centred, seconds = {}, {}, {}, {}, {}, {}
for _, n in ipairs(names) do
  found[n], centred[n], faces[n], missed[n], not_centred[n], seconds[n] = 0, 0, 0, {}, {}, 0
end
local combos = {} -- "tiny+ssd" (the detectors that found a face, in report order; "none") -> photos
local start, last = siamese.clock(), 0
-- The JSON object after done photos.
local function result(done)
  local out = {photos = done, pairs_files = json.array(files), detectors = json.array(names),
               seconds = siamese.clock() - start, threads = siamese.get_num_threads(),
               found = {}, centred = {}, faces = {}, missed = {}, not_centred = {}, detector_seconds = {},
               combinations = combos,
               settings = {tiny = "score >= 0.5 (input 416)", ssd = "score >= 0.5",
                           mtcnn = "min_face 20, thresholds 0.6/0.7/0.7 (defaults)"}}
  if done < total then out.photos_total = total end
  for _, n in ipairs(names) do
    local m, c = {table.unpack(missed[n])}, {table.unpack(not_centred[n])}
    table.sort(m)
    table.sort(c)
    out.found[n], out.centred[n], out.faces[n] = found[n], centred[n], faces[n]
    out.missed[n], out.not_centred[n] = json.array(m), json.array(c)
    out.detector_seconds[n] = seconds[n]
  end
  -- The earlier tiny-vs-SSD fields, kept for comparison with older runs.
  if found.tiny and found.ssd then out.tiny, out.ssd = found.tiny, found.ssd end
  return out
end

for i, side in ipairs(photos) do
  local img = assert(siamese.image.load(lfw.image_path(root, side[1], side[2])))
  local cx, cy = img.width / 2, img.height / 2
  local name = string.format("%s_%04d", side[1], side[2])
  local hit = {}
  for _, n in ipairs(names) do
    local t0 = siamese.clock()
    local list = detect[n](img)
    seconds[n] = seconds[n] + (siamese.clock() - t0)
    faces[n] = faces[n] + #list
    if #list > 0 then
      found[n] = found[n] + 1
      hit[#hit + 1] = n
      local c = false
      for _, f in ipairs(list) do c = c or contains_centre(f.box, cx, cy) end
      if c then centred[n] = centred[n] + 1 else not_centred[n][#not_centred[n] + 1] = name end
    else
      missed[n][#missed[n] + 1] = name
    end
  end
  local key = #hit > 0 and table.concat(hit, "+") or "none"
  combos[key] = (combos[key] or 0) + 1
  local now = siamese.clock()
  if now - last >= 5 or i == total then
    last = now
    local rate = i / (now - start)
    local parts = {}
    for _, n in ipairs(names) do parts[#parts + 1] = string.format("%s %d", n, found[n]) end
    io.stderr:write(string.format("\rmeasure_detectors: %d/%d photos, %.2f photos/s, %s, ETA %ds   ",
      i, total, rate, table.concat(parts, ", "), math.floor((total - i) / rate)))
    if partial and i < total then
      local f = io.open(partial .. ".tmp", "w")
      if f then
        f:write(json.encode(result(i)), "\n")
        f:close()
        os.rename(partial .. ".tmp", partial)
      end
    end
  end
end
io.stderr:write("\n")
print(json.encode(result(total)))
