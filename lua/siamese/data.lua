--- siamese.data: face datasets in memory and seeded training samplers.
--
-- A dataset holds every image decoded once, preprocessed and kept as an
-- 8-bit siamese.Image, with a 1-based identity label per image:
--
--   local ds = assert(data.folder("att_faces", {width = 46, height = 56}))
--   local train, test = ds:split{seed = 1, identities = {30, 10}}
--   local left, right, same = data.balanced_pairs(train.labels, 7)
--   local x = train:batch(left, {flip = 0.5, seed = 3})   -- [N,C,H,W] floats
--
-- The samplers and batch assembly run in C (src/sampler.c, src/l_data.c)
-- with their own generator seeded by the given seed, independent of
-- siamese.manual_seed. Misuse raises naming the function and argument;
-- unreadable folders and images return nil, message.
local core = require "siamese.core"
local image = require "siamese.image"

local C = core.data
local data = {}

local Dataset = {}
Dataset.__index = Dataset

local function arg_error(fname, argn, msg, level)
  require("siamese.argcheck").raise((level or 2) + 1, fname, argn, msg)
end

local function check_table(fname, argn, v, optional)
  if (v == nil and optional) or type(v) == "table" then return end
  arg_error(fname, argn, "table expected, got " .. type(v), 2)
end

-- ---- construction ------------------------------------------------------------

local function new_dataset(images, labels, names)
  local first = images[1]
  return setmetatable({
    images = images, labels = labels, names = names, count = #images,
    width = first and first.width or 0, height = first and first.height or 0,
    channels = first and first.channels or 0,
  }, Dataset)
end

--- A dataset from lists already in memory: images (siamese.Image, all the
-- same size and channel count), labels (1-based indices into names) and
-- names (one per identity; default "1", "2", ...).
function data.from_images(images, labels, names)
  check_table("from_images", 1, images)
  check_table("from_images", 2, labels)
  check_table("from_images", 3, names, true)
  if #images ~= #labels then
    arg_error("from_images", 2, ("%d labels for %d images"):format(#labels, #images))
  end
  local max_label = 0
  for i, label in ipairs(labels) do
    if math.type(label) ~= "integer" or label < 1 then
      arg_error("from_images", 2, ("label %d must be a positive integer, got %s"):format(i, tostring(label)))
    end
    max_label = math.max(max_label, label)
  end
  if names == nil then
    names = {}
    for k = 1, max_label do names[k] = tostring(k) end
  elseif #names < max_label then
    arg_error("from_images", 3, ("%d names for labels up to %d"):format(#names, max_label))
  end
  local first = images[1]
  for i, img in ipairs(images) do
    if getmetatable(img) ~= getmetatable(first) or type(img.width) ~= "number" then
      arg_error("from_images", 1, ("image %d is not a siamese.Image"):format(i))
    end
    if img.width ~= first.width or img.height ~= first.height or img.channels ~= first.channels then
      arg_error("from_images", 1, ("image %d is %dx%dx%d, image 1 is %dx%dx%d"):format(
        i, img.width, img.height, img.channels, first.width, first.height, first.channels))
    end
  end
  return new_dataset(images, labels, names)
end

-- ---- folders -------------------------------------------------------------------

local image_extensions = { jpg = true, jpeg = true, png = true, pgm = true, ppm = true, pnm = true }

local function is_image_name(name)
  local ext = name:match("%.([%w]+)$")
  return ext ~= nil and image_extensions[ext:lower()] == true
end

-- Sorted names of the entries of dir for which keep(name, is_dir) is true.
local function sorted_entries(dir, keep)
  local names, is_dir = require("siamese.fs").list_dir(dir)
  if not names then return nil, is_dir end
  local out = {}
  for i, name in ipairs(names) do
    if keep(name, is_dir[i]) then out[#out + 1] = name end
  end
  return out
end

-- Gray or RGB, then resized to the target (area when shrinking).
local function preprocess(img, opts)
  if img.channels ~= opts.channels then
    img = opts.channels == 1 and img:grayscale() or img:to_rgb()
  end
  local w, h = opts.width or img.width, opts.height or img.height
  if w ~= img.width or h ~= img.height then
    local shrinking = w <= img.width and h <= img.height
    img = img:resize(w, h, {method = shrinking and "area" or "bilinear"})
  end
  return img
end

local function check_folder_opts(opts)
  check_table("folder", 2, opts, true)
  opts = opts or {}
  local o = {
    channels = opts.channels or 1, width = opts.width, height = opts.height,
    max_per_identity = opts.max_per_identity, min_per_identity = opts.min_per_identity or 1,
  }
  if o.channels ~= 1 and o.channels ~= 3 then
    arg_error("folder", 2, "channels must be 1 or 3, got " .. tostring(o.channels), 3)
  end
  for _, key in ipairs{"width", "height", "max_per_identity"} do
    local v = o[key]
    if v ~= nil and (math.type(v) ~= "integer" or v < 1) then
      arg_error("folder", 2, ("%s must be a positive integer, got %s"):format(key, tostring(v)), 3)
    end
  end
  if math.type(o.min_per_identity) ~= "integer" or o.min_per_identity < 1 then
    arg_error("folder", 2, "min_per_identity must be a positive integer, got " .. tostring(o.min_per_identity), 3)
  end
  return o
end

-- Loads one identity's images (at most max_per_identity) into images;
-- returns how many, or nil, message.
local function load_identity(dir, opts, images, ref)
  local files, err = sorted_entries(dir, function(name, is_dir) return not is_dir and is_image_name(name) end)
  if not files then return nil, err end
  local limit = math.min(#files, opts.max_per_identity or #files)
  if limit < opts.min_per_identity then return 0 end
  for i = 1, limit do
    local path = dir .. "/" .. files[i]
    local img, lerr = image.load(path)
    if not img then return nil, lerr end
    img = preprocess(img, opts)
    ref.first = ref.first or { path = path, img = img }
    if img.width ~= ref.first.img.width or img.height ~= ref.first.img.height then
      return nil, ("%s: size %dx%d differs from %dx%d of %s (set opts.width and opts.height)"):format(
        path, img.width, img.height, ref.first.img.width, ref.first.img.height, ref.first.path)
    end
    images[#images + 1] = img
  end
  return limit
end

--- A dataset from a folder with one sub-folder per identity (any JPEG, PNG
-- or PNM image inside; folders and files taken in name order).
-- opts: channels (1 gray, default, or 3 RGB), width and height (resize;
-- "area" when shrinking), max_per_identity (the first N files),
-- min_per_identity (default 1: identities with fewer images are skipped).
-- Returns the dataset, or nil, message.
function data.folder(root, opts)
  if type(root) ~= "string" then arg_error("folder", 1, "string expected, got " .. type(root)) end
  opts = check_folder_opts(opts)
  local dirs, err = sorted_entries(root, function(name, is_dir) return is_dir and name:sub(1, 1) ~= "." end)
  if not dirs then return nil, err end
  local images, labels, names, ref = {}, {}, {}, {}
  for _, name in ipairs(dirs) do
    local n, lerr = load_identity(root .. "/" .. name, opts, images, ref)
    if not n then return nil, lerr end
    if n > 0 then
      names[#names + 1] = name
      for _ = 1, n do labels[#labels + 1] = #names end
    end
  end
  if #images == 0 then return nil, root .. ": no images in identity sub-folders" end
  return new_dataset(images, labels, names)
end

-- ---- subsets and splits ----------------------------------------------------------

--- The images at the given 1-based indices, with identities renumbered in
-- order of first appearance (names follow).
function Dataset:subset(indices)
  check_table("subset", 1, indices)
  local images, labels, names, new_label = {}, {}, {}, {}
  for i, k in ipairs(indices) do
    if math.type(k) ~= "integer" or k < 1 or k > self.count then
      arg_error("subset", 1, ("index %d must be an integer 1..%d, got %s"):format(i, self.count, tostring(k)))
    end
    local old = self.labels[k]
    if not new_label[old] then
      names[#names + 1] = self.names[old]
      new_label[old] = #names
    end
    images[#images + 1] = self.images[k]
    labels[#labels + 1] = new_label[old]
  end
  local ds = new_dataset(images, labels, names)
  if #images == 0 then ds.width, ds.height, ds.channels = self.width, self.height, self.channels end
  return ds
end

-- Identity counts from fractions: rounded, the last part takes the rest.
local function counts_from_fractions(fractions, total)
  local counts, used, sum = {}, 0, 0
  for i, f in ipairs(fractions) do
    if type(f) ~= "number" or f < 0 then
      arg_error("split", 1, ("fractions[%d] must be a non-negative number"):format(i), 3)
    end
    sum = sum + f
  end
  if math.abs(sum - 1) > 1e-6 then arg_error("split", 1, "fractions must sum to 1", 3) end
  for i, f in ipairs(fractions) do
    counts[i] = i == #fractions and total - used or math.min(total - used, math.floor(f * total + 0.5))
    used = used + counts[i]
  end
  return counts
end

local function check_identity_counts(counts, total)
  local sum = 0
  for i, c in ipairs(counts) do
    if math.type(c) ~= "integer" or c < 0 then
      arg_error("split", 1, ("identities[%d] must be a non-negative integer"):format(i), 3)
    end
    sum = sum + c
  end
  if sum > total then
    arg_error("split", 1, ("identities ask for %d identities, the dataset has %d"):format(sum, total), 3)
  end
  return counts
end

--- Identity-disjoint parts: opts.fractions = {0.75, 0.25} (of identities)
-- or opts.identities = {30, 10} (counts), identities shuffled by opts.seed.
-- Returns one dataset per part.
function Dataset:split(opts)
  check_table("split", 1, opts)
  if math.type(opts.seed) ~= "integer" then
    arg_error("split", 1, "seed must be an integer, got " .. tostring(opts.seed))
  end
  local total = #self.names
  local counts
  if opts.identities then
    check_table("split", 1, opts.identities)
    counts = check_identity_counts(opts.identities, total)
  elseif opts.fractions then
    check_table("split", 1, opts.fractions)
    counts = counts_from_fractions(opts.fractions, total)
  else
    arg_error("split", 1, "fractions or identities expected")
  end
  local order = C.permutation(total, opts.seed)
  local part_of, next_id = {}, 0
  for part, c in ipairs(counts) do
    for _ = 1, c do
      next_id = next_id + 1
      part_of[order[next_id]] = part
    end
  end
  local indices = {}
  for part = 1, #counts do indices[part] = {} end
  for i, label in ipairs(self.labels) do
    local part = part_of[label]
    if part then table.insert(indices[part], i) end
  end
  local parts = {}
  for part = 1, #counts do parts[part] = self:subset(indices[part]) end
  return table.unpack(parts, 1, #counts)
end

--- A float tensor [N,C,H,W] of the images at the 1-based indices:
-- (pixel * scale - mean[c]) / std[c], opts.scale default 1/255, mean 0,
-- std 1 (numbers or one per channel). Augmentation per image, seeded by
-- opts.seed (default: drawn from the library RNG): opts.flip (probability
-- of a horizontal flip), opts.shift (max pixels of translation, zero
-- fill), opts.brightness / opts.contrast (max relative change).
function Dataset:batch(indices, opts)
  local x = C.batch(self.images, indices, opts)
  return x
end

-- ---- samplers ---------------------------------------------------------------------

--- For every image i, one positive pair (i, j): j another image of the same
-- identity, and one negative pair (i, k): k of another identity, in a
-- shuffled order. Identities with a single image get no positive pair.
-- Returns left, right (1-based indices) and same (1 or 0) sequences.
function data.balanced_pairs(labels, seed)
  local left, right, same = C.balanced_pairs(labels, seed)
  return left, right, same
end

--- P x K batches for one epoch: each a list of P*K image indices, K images
-- of each of P distinct identities (with replacement only for identities
-- with fewer than K images). Identities with fewer than 2 images are
-- skipped; every other one appears once per epoch, in a shuffled order (the
-- last batch is completed with identities from the start of that order).
function data.pk_batches(labels, P, K, seed)
  local batches = C.pk_batches(labels, P, K, seed)
  return batches
end

--- n triplets: anchor and positive two images of one identity (drawn
-- uniformly among identities with 2 or more images), negative an image of
-- another identity. Returns anchor, positive, negative sequences.
function data.random_triplets(labels, n, seed)
  local a, p, neg = C.random_triplets(labels, n, seed)
  return a, p, neg
end

data.Dataset = Dataset
return data
