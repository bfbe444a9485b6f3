--- siamese.face.lfw: the Labeled Faces in the Wild verification protocol.
--
-- Pairs files: pairs.txt starts with "10 300" (10 folds, each 300 genuine
-- then 300 impostor pairs, View 2); pairsDevTrain/DevTest.txt start with
-- "N" (N genuine then N impostor pairs, View 1), split here into 10
-- interleaved folds. Lines are "Name i j" (same person) or "Name1 i Name2 j".
-- Accuracy follows the standard protocol: per fold, the threshold that is
-- best on the other nine folds is applied to it; mean and standard
-- deviation over folds. Every image is embedded once.
local eval = require "siamese.eval"

local lfw = {}

--- The distinct photos of a list of pairs (as read_pairs gives): their
-- keys "Name/i" in order of first appearance, and a table key -> {name, i}.
function lfw.photos(pairs_)
  if type(pairs_) ~= "table" then
    error(string.format("bad argument #1 to 'photos' (list of pairs expected, got %s)", type(pairs_)), 2)
  end
  local keys, side_of = {}, {}
  for _, p in ipairs(pairs_) do
    for _, side in ipairs{p.a, p.b} do
      local key = side[1] .. "/" .. side[2]
      if not side_of[key] then side_of[key] = side; keys[#keys + 1] = key end
    end
  end
  return keys, side_of
end

--- Reads a pairs file: list of {a = {name, i}, b = {name, j}, same, fold}.
function lfw.read_pairs(path)
  local f, err = io.open(path, "r")
  if not f then return nil, err end
  local header = f:read("l")
  local folds, per = (header or ""):match("^%s*(%d+)%s+(%d+)%s*$")
  local single = (header or ""):match("^%s*(%d+)%s*$")
  if not folds and not single then
    f:close()
    return nil, path .. ": first line must be 'FOLDS N' or 'N'"
  end
  folds, per = tonumber(folds or 1), tonumber(per or single)
  local pairs_, lineno = {}, 1
  for line in f:lines() do
    lineno = lineno + 1
    local p = {}
    for field in line:gmatch("[^\t ]+") do p[#p + 1] = field end
    if #p == 3 then
      pairs_[#pairs_ + 1] = {a = {p[1], tonumber(p[2])}, b = {p[1], tonumber(p[3])}, same = true}
    elseif #p == 4 then
      pairs_[#pairs_ + 1] = {a = {p[1], tonumber(p[2])}, b = {p[3], tonumber(p[4])}, same = false}
    elseif #p > 0 then
      f:close()
      return nil, string.format("%s:%d: expected 3 or 4 fields", path, lineno)
    end
  end
  f:close()
  if #pairs_ ~= folds * per * 2 then
    return nil, string.format("%s: %d pairs, the header announces %d", path, #pairs_, folds * per * 2)
  end
  for i, p in ipairs(pairs_) do
    if folds > 1 then
      p.fold = (i - 1) // (2 * per) + 1
    else -- View 1: interleave the genuine and the impostor halves into 10 folds
      p.fold = ((i - 1) % per) % 10 + 1
    end
  end
  return pairs_
end

--- The image file of (name, index) under root (the folder holding
-- lfw-deepfunneled/, or that folder itself).
function lfw.image_path(root, name, index)
  local sub = root .. "/lfw-deepfunneled"
  local f = io.open(sub .. "/" .. name, "r")
  local base = f and sub or root
  if f then f:close() end
  return string.format("%s/%s/%s_%04d.jpg", base, name, name, index)
end

--- The face of an LFW photo. LFW photos are framed around their subject,
-- so the face is the best detection (down to score 0.1) whose box contains
-- the photo's centre; failing that, the centred region (Recognizer:main_face
-- with central = true). Taking the detection nearest the centre instead
-- picked a bystander's face whenever the subject's own score was below 0.5
-- (36 of the 4,992 development photos, a quarter of the development
-- errors). Returns the face (with landmarks) and how it was found.
function lfw.find_face(fr, img)
  return fr:main_face(img, {fallback = "centre", central = true})
end

--- Embeds every image the pairs use; progress(i, n) is called as it goes.
-- opts.jitter = N averages the descriptors of the chip and N jittered
-- copies (Recognizer:embed_jittered, drawn from a fixed-seed generator so
-- runs repeat); opts.l2 = true L2-normalises each descriptor.
-- Returns descriptors by "name/index", counts by how faces were found.
function lfw.embed_images(fr, root, pairs_, progress, opts)
  opts = opts or {}
  local jitter = opts.jitter or 0
  if math.type(jitter) ~= "integer" or jitter < 0 then
    error("embed_images: jitter must be a non-negative integer, got " .. tostring(jitter), 2)
  end
  local seed = 1
  local function rand() -- a fixed LCG: the same jitter whatever math.random does
    seed = (seed * 1103515245 + 12345) % 2147483648
    return seed / 2147483648
  end
  local keys, seen = lfw.photos(pairs_)
  local descriptors, how = {}, {detected = 0, low_threshold = 0, centre = 0}
  for i, key in ipairs(keys) do
    local side = seen[key]
    local path = lfw.image_path(root, side[1], side[2])
    local img, err = require("siamese.image").load(path)
    if not img then error(err, 0) end
    local f, found = lfw.find_face(fr, img)
    how[found] = how[found] + 1
    local d = jitter > 0 and fr:embed_jittered(img, f, jitter, nil, rand) or fr:embed(fr:align(img, f))
    if opts.l2 then d = d:scale(1 / d:norm()) end
    descriptors[key] = d
    if progress then progress(i, #keys) end
  end
  return descriptors, how
end

--- Distances, labels and folds of the pairs from the descriptors.
function lfw.distances(pairs_, descriptors)
  local d, same, folds = {}, {}, {}
  for i, p in ipairs(pairs_) do
    local x = descriptors[p.a[1] .. "/" .. p.a[2]]
    local y = descriptors[p.b[1] .. "/" .. p.b[2]]
    d[i] = x:clone():sub(y):norm()
    same[i], folds[i] = p.same, p.fold
  end
  return d, same, folds
end

--- The protocol's figures from distances.
function lfw.metrics(d, same, folds)
  local mean, std = eval.kfold_accuracy(d, same, folds)
  local roc = eval.roc(d, same)
  local eer, eer_t = eval.eer(roc)
  local tar, tar_t = eval.tar_at_far(roc, 1e-3)
  return {accuracy = mean, accuracy_std = std, auc = eval.auc(roc), eer = eer, eer_threshold = eer_t,
          tar_at_far_1e3 = tar, tar_threshold = tar_t, pairs = #d}, roc
end

return lfw
