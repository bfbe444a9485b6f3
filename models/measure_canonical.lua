-- Measures the canonical eye and mouth positions used by the similarity
-- alignment (siamese.face.align.CANONICAL): the average positions, as
-- fractions of face-api's own square crop, of the eye and mouth centres of
-- the faces in LFW's development training pairs (pairsDevTrain.txt), each
-- face first rotated about its centroid so that its eyes are level.
--
--   lua5.4 models/measure_canonical.lua [LFW_ROOT]    (from the checkout)
package.path = "./lua/?.lua;./lua/?/init.lua;" .. package.path
package.cpath = "./build/?.so;" .. package.cpath
local siamese = require "siamese"
local lfw = require "siamese.face.lfw"
local align = require "siamese.face.align"
local landmarks = require "siamese.face.landmarks"

local root = arg[1] or "../shared/data/lfw"
local pairs_ = assert(lfw.read_pairs(root .. "/pairsDevTrain.txt"))
local fr = assert(siamese.face.load())
local seen, sum, n = {}, {0, 0, 0}, 0
for _, p in ipairs(pairs_) do
  for _, side in ipairs{p.a, p.b} do
    local key = side[1] .. "/" .. side[2]
    if not seen[key] then
      seen[key] = true
      local img = assert(siamese.image.load(lfw.image_path(root, side[1], side[2])))
      local f, how = lfw.find_face(fr, img)
      local r = how == "detected" and landmarks.descriptor_rect(f.landmarks, img.width, img.height)
      if r and r.width == r.height then
        local le, re, mo = align.centres(f.landmarks)
        -- level the eyes: rotate about the centroid by minus the eye angle
        local cx, cy = (le[1] + re[1] + mo[1]) / 3, (le[2] + re[2] + mo[2]) / 3
        local a = -math.atan(re[2] - le[2], re[1] - le[1])
        local function level(q)
          local x, y = q[1] - cx, q[2] - cy
          return {cx + x * math.cos(a) - y * math.sin(a), cy + x * math.sin(a) + y * math.cos(a)}
        end
        le, re, mo = level(le), level(re), level(mo)
        local s = r.width
        sum[1] = sum[1] + (re[1] - le[1]) / 2 / s
        sum[2] = sum[2] + ((le[2] + re[2]) / 2 - r.y) / s
        sum[3] = sum[3] + (mo[2] - r.y) / s
        n = n + 1
      end
    end
  end
end
print(string.format("%d faces: half eye distance %.4f, eye height %.4f, mouth height %.4f (fractions of the crop side)",
  n, sum[1] / n, sum[2] / n, sum[3] / n))
