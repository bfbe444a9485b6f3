-- Counts, over the distinct photos of LFW pairs files, how many have a face
-- found at score 0.5 by face-api's tiny detector (input 416) and by its SSD
-- MobileNet v1 (siamese.face.ssd), and the photos only one of them finds a
-- face in. Detection only (no landmarks); prints progress on stderr and one
-- JSON object on stdout.
--
--   nice -n 19 lua5.4 models/measure_detectors.lua [LFW_ROOT [PAIRS_FILE...]]
--     (from the checkout; default ../shared/data/lfw, pairsDevTrain.txt and
--     pairsDevTest.txt)
package.path = "./lua/?.lua;./lua/?/init.lua;" .. package.path
package.cpath = "./build/?.so;" .. package.cpath
local siamese = require "siamese"
local json = require "siamese.json"
local lfw = require "siamese.face.lfw"
local detector = require "siamese.face.detector"
local ssd = require "siamese.face.ssd"

local root = arg[1] or "../shared/data/lfw"
local files = {table.unpack(arg, 2)}
if #files == 0 then files = {root .. "/pairsDevTrain.txt", root .. "/pairsDevTest.txt"} end

local all_pairs = {}
for _, file in ipairs(files) do
  local list = assert(lfw.read_pairs(file))
  table.move(list, 1, #list, #all_pairs + 1, all_pairs)
end
local keys, side_of = lfw.photos(all_pairs)
local photos = {}
for i, key in ipairs(keys) do photos[i] = side_of[key] end

local tiny = assert(detector.load())
local big = assert(ssd.load())
local counts = {photos = #photos, tiny = 0, ssd = 0, both = 0, only_tiny = 0, only_ssd = 0, neither = 0}
local only_tiny = {}
local start, last = siamese.clock(), 0
for i, side in ipairs(photos) do
  local img = assert(siamese.image.load(lfw.image_path(root, side[1], side[2])))
  local t = #tiny:detect(img, {score_threshold = 0.5}) > 0
  local s = #big:detect(img, {min_score = 0.5}) > 0
  counts.tiny = counts.tiny + (t and 1 or 0)
  counts.ssd = counts.ssd + (s and 1 or 0)
  local name = string.format("%s_%04d", side[1], side[2])
  if t and s then
    counts.both = counts.both + 1
  elseif t then
    counts.only_tiny = counts.only_tiny + 1
    only_tiny[#only_tiny + 1] = name
  elseif s then
    counts.only_ssd = counts.only_ssd + 1
  else
    counts.neither = counts.neither + 1
  end
  local now = siamese.clock()
  if now - last >= 5 or i == #photos then
    last = now
    local rate = i / (now - start)
    io.stderr:write(string.format("\rmeasure_detectors: %d/%d photos, %.1f photos/s, tiny %d, ssd %d, ETA %ds   ",
      i, #photos, rate, counts.tiny, counts.ssd, math.floor((#photos - i) / rate)))
  end
end
io.stderr:write("\n")
counts.seconds = siamese.clock() - start
counts.pairs_files = json.array(files)
table.sort(only_tiny)
counts.only_tiny_photos = json.array(only_tiny)
print(json.encode(counts))
