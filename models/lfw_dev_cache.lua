-- Detections of every photo of LFW's development pairs (pairsDevTrain.txt
-- and pairsDevTest.txt, 4,992 photos), computed once so that the alignment
-- and embedding experiments of models/tune_lfw.lua only re-align and embed.
--
-- Writes build/lfw_dev_faces.lua, a Lua table: key "Name/index" ->
--   {how = "detected" | "low_threshold" | "centre", box = {x, y, w, h},
--    score, landmarks = {68 {x, y}} (tiny net on that box, refined as
--    siamese.face.load's default; models/tune_lfw.lua re-predicts them),
--    variants = {...}}   (only for photos without a detection at 0.5:
--    the best detection, at 0.1, of the detector at input sizes 320, 512 and
--    608, on the photo padded by 25 % of its side (edge pixels), and on the
--    centre 60 % of the photo upscaled; boxes in photo pixels)
-- "how" follows lfw.find_face (Recognizer:main_face with fallback "centre"):
-- the detection nearest the centre at 0.5, else at 0.1, else the centred
-- region. Detecting once at 0.1 and keeping the boxes at or above 0.5 gives
-- the same boxes as detecting at 0.5 (greedy NMS keeps a box only by the
-- boxes scored above it).
--
--   nice -n 19 lua5.4 models/lfw_dev_cache.lua [LFW_ROOT]     (from the checkout)
package.path = "./lua/?.lua;./lua/?/init.lua;" .. package.path
package.cpath = "./build/?.so;" .. package.cpath
local siamese = require "siamese"
local lfw = require "siamese.face.lfw"

local root = arg[1] or "../shared/data/lfw"
local out_path = "build/lfw_dev_faces.lua"
-- One thread: the machine is shared (SIAMESE_THREADS=n to change it).
siamese.set_num_threads(math.tointeger(tonumber(os.getenv("SIAMESE_THREADS") or "1")))
local fr = assert(siamese.face.load())

local dev_pairs = {}
for _, file in ipairs{"pairsDevTrain.txt", "pairsDevTest.txt"} do
  local list = assert(lfw.read_pairs(root .. "/" .. file))
  table.move(list, 1, #list, #dev_pairs + 1, dev_pairs)
end
local keys, seen = lfw.photos(dev_pairs)

-- The detection nearest the image centre among those scored >= threshold.
local function nearest(faces, W, H, threshold)
  local best, bd
  for _, f in ipairs(faces) do
    if f.score >= threshold then
      local d = (f.box.x + f.box.width / 2 - W / 2) ^ 2 + (f.box.y + f.box.height / 2 - H / 2) ^ 2
      if not bd or d < bd then best, bd = f, d end
    end
  end
  return best
end

-- The best detection of a transformed photo, mapped back: photo = q * s + o.
local function variant(img, input_size, s, ox, oy)
  local faces = fr.detector:detect(img, {input_size = input_size, score_threshold = 0.1})
  local f = nearest(faces, img.width, img.height, 0.1)
  if not f then return false end
  local b = f.box
  return {box = {b.x * s + ox, b.y * s + oy, b.width * s, b.height * s}, score = f.score}
end

local function fmt(v)
  if type(v) == "number" then return (string.format("%.3f", v):gsub("%.?0+$", "")) end
  if type(v) == "string" then return string.format("%q", v) end
  if type(v) == "boolean" then return tostring(v) end
  local parts = {}
  if #v > 0 then
    for _, x in ipairs(v) do parts[#parts + 1] = fmt(x) end
  else
    local names = {}
    for k in pairs(v) do names[#names + 1] = k end
    table.sort(names)
    for _, k in ipairs(names) do parts[#parts + 1] = k .. "=" .. fmt(v[k]) end
  end
  return "{" .. table.concat(parts, ",") .. "}"
end

local out = assert(io.open(out_path .. ".tmp", "w"))
out:write("return {\n")
local start, counts = siamese.clock(), {detected = 0, low_threshold = 0, centre = 0}
for i, key in ipairs(keys) do
  local side = seen[key]
  local img = assert(siamese.image.load(lfw.image_path(root, side[1], side[2])))
  local W, H = img.width, img.height
  local faces = fr.detector:detect(img, {input_size = 416, score_threshold = 0.1})
  local f, how = nearest(faces, W, H, 0.5), "detected"
  if not f then f, how = nearest(faces, W, H, 0.1), "low_threshold" end
  local box
  if f then
    box = {f.box.x, f.box.y, f.box.width, f.box.height}
  else
    how = "centre"
    box = {W * 0.3, H * 0.28, W * 0.4, H * 0.44}
  end
  local points = assert(fr:landmarks_in(img, {x = box[1], y = box[2], width = box[3], height = box[4]}))
  local rec = {how = how, box = box, score = f and f.score or 0, landmarks = points}
  if how ~= "detected" then
    local pad = math.floor(W * 0.25 + 0.5)
    local padded = img:pad{left = pad, right = pad, top = pad, bottom = pad, mode = "edge"}
    local cw, ch = math.floor(W * 0.6 + 0.5), math.floor(H * 0.6 + 0.5)
    local cx, cy = (W - cw) // 2, (H - ch) // 2
    local zoomed = img:crop(cx, cy, cw, ch):resize(W, H)
    rec.variants = {
      s320 = variant(img, 320, 1, 0, 0),
      s512 = variant(img, 512, 1, 0, 0),
      s608 = variant(img, 608, 1, 0, 0),
      padded = variant(padded, 416, 1, -pad, -pad),
      zoomed = variant(zoomed, 416, cw / W, cx, cy),
    }
  end
  counts[how] = counts[how] + 1
  out:write(string.format("[%q]=%s,\n", key, fmt(rec)))
  if i % 200 == 0 or i == #keys then
    local rate = i / (siamese.clock() - start)
    io.stderr:write(string.format("\rcache: %d/%d photos, %.1f photos/s, ETA %ds   ", i, #keys, rate,
      math.floor((#keys - i) / rate)))
  end
end
out:write("}\n")
out:close()
assert(os.rename(out_path .. ".tmp", out_path))
io.stderr:write(string.format("\n%s: %d detected, %d at 0.1, %d centred\n", out_path,
  counts.detected, counts.low_threshold, counts.centre))
