-- Chooses the MTCNN + MobileFaceNet pipeline's defaults on LFW's
-- development pairs only (pairsDevTrain.txt and pairsDevTest.txt, each
-- split into 10 interleaved folds, folds merged): MTCNN's box conventions
-- ("standard", facenet's, or "android", the port the reference outputs
-- follow; siamese.face.mtcnn) and flip averaging (the descriptor of the
-- chip plus its mirror's: the chip mirrored, or the mirrored photo aligned
-- again from its own mirrored five points). Every photo is detected once
-- per convention; every descriptor comes from that detection.
--
--   lua5.4 models/tune_mobilefacenet.lua [LFW_ROOT [CONVENTION...]]     (from the checkout)
--
-- Prints 10-fold accuracy, AUC and TAR at FAR = 1e-3 per variant; the
-- results are in models/README.md ("MTCNN and MobileFaceNet").
package.path = "./lua/?.lua;./lua/?/init.lua;" .. package.path
package.cpath = "./build/?.so;" .. package.cpath
local siamese = require "siamese"
local lfw = require "siamese.face.lfw"
local arcface = require "siamese.face.arcface"
local mfn = require "siamese.face.mobilefacenet"

local root = arg[1] or "../shared/data/lfw"
local conventions = {table.unpack(arg, 2)}
if #conventions == 0 then conventions = {"standard", "android"} end
local pairs_ = {}
for _, f in ipairs{"pairsDevTrain.txt", "pairsDevTest.txt"} do
  for _, p in ipairs(assert(lfw.read_pairs(root .. "/" .. f))) do pairs_[#pairs_ + 1] = p end
end
local keys, side_of = lfw.photos(pairs_)

local function unit(v) return v:clone():scale(1 / v:norm()) end

for _, convention in ipairs(conventions) do
  local fr = assert(mfn.load{convention = convention, flip = false})
  local plain, flipped, realigned, how = {}, {}, {}, {}
  local start = siamese.clock()
  for i, key in ipairs(keys) do
    local side = side_of[key]
    local img = assert(siamese.image.load(lfw.image_path(root, side[1], side[2])))
    local f, found = lfw.find_face(fr, img)
    how[found] = (how[found] or 0) + 1
    local chip = fr:align(img, f)
    local e = arcface.embed(fr.net, {chip, chip:flip(), arcface.mirror_chip(img, f.points)})
    local a, b, c = e:select(1, 1):clone(), e:select(1, 2):clone(), e:select(1, 3):clone()
    plain[key], flipped[key], realigned[key] = unit(a), unit(a:clone():add(b)), unit(a:add(c))
    if i % 100 == 0 or i == #keys then
      local rate = i / (siamese.clock() - start)
      io.stderr:write(string.format("\r%s: %d/%d photos, %.1f/s, ETA %ds   ", convention, i, #keys, rate,
        math.floor((#keys - i) / rate)))
    end
  end
  io.stderr:write("\n")
  for _, v in ipairs{{"no flip", plain}, {"flip", flipped}, {"flip re-aligned", realigned}} do
    local m = lfw.metrics(lfw.distances(pairs_, v[2]))
    print(string.format("%-8s %-15s: accuracy %.2f %% +- %.2f, AUC %.4f, TAR@FAR=1e-3 %.2f %% (%d pairs; faces: %d detected, %d low threshold, %d centre)",
      convention, v[1], 100 * m.accuracy, 100 * m.accuracy_std, m.auc, 100 * m.tar_at_far_1e3, m.pairs,
      how.detected or 0, how.low_threshold or 0, how.centre or 0))
  end
end
