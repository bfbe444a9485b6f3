-- Specs of siamese.data: folder datasets (the bundled AT&T faces), splits
-- and subsets, batch values and augmentation on tiny synthetic images, the
-- seeded samplers' structure and determinism, and misuse messages.
local siamese = require "siamese"
local data = require "siamese.data"
local support = dofile("spec/support.lua")
local image = siamese.image

local ATT = "examples/data/att_faces"

local function same_list(a, b)
  if #a ~= #b then return false end
  for i = 1, #a do if a[i] ~= b[i] then return false end end
  return true
end

local function flat(batches)
  local out = {}
  for _, b in ipairs(batches) do for _, i in ipairs(b) do out[#out + 1] = i end end
  return out
end

-- A gray image whose pixel (x, y) is f(x, y).
local function gray(w, h, f)
  local img = image.new(w, h, 1)
  for y = 0, h - 1 do for x = 0, w - 1 do img:set(x, y, f(x, y)) end end
  return img
end

-- 6 identities: label k has k images (k = 1..6) → 21 images.
local function staircase_labels()
  local labels = {}
  for k = 1, 6 do for _ = 1, k do labels[#labels + 1] = k end end
  return labels
end

local att, att_half
setup(function()
  att = assert(data.folder(ATT))
  att_half = assert(data.folder(ATT, {width = 46, height = 56}))
end)

describe("siamese.data.folder", function()
  it("loads the bundled AT&T faces: 10 identities x 10 gray 92x112 images", function()
    assert.are.equal(100, att.count)
    assert.are.equal(100, #att.images)
    assert.are.same({92, 112, 1}, {att.width, att.height, att.channels})
    assert.are.same({"s1", "s10", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9"}, att.names)
    for i = 1, 100 do assert.are.equal((i - 1) // 10 + 1, att.labels[i]) end
    -- files in name order: s1/1.pgm, s1/10.pgm, s1/2.pgm ...
    local second = assert(image.load(ATT .. "/s1/10.pgm"))
    assert.are.equal(second:get(40, 50), att.images[2]:get(40, 50))
  end)

  it("halves the images with width/height and reads RGB with channels = 3", function()
    assert.are.same({46, 56, 1}, {att_half.width, att_half.height, att_half.channels})
    assert.are.equal(46, att_half.images[100].width)
    local rgb = assert(data.folder(ATT, {channels = 3, max_per_identity = 2}))
    assert.are.same({20, 3}, {rgb.count, rgb.channels})
  end)

  it("honours max_per_identity and min_per_identity", function()
    local few = assert(data.folder(ATT, {max_per_identity = 3, width = 23, height = 28}))
    assert.are.equal(30, few.count)
    local dir = support.temp_dir("data")
    for _, who in ipairs{"a", "b"} do os.execute("mkdir '" .. dir .. "/" .. who .. "'") end
    local img = gray(4, 3, function(x, y) return x + 10 * y end)
    assert(img:save(dir .. "/a/1.png"))
    assert(img:save(dir .. "/a/2.pgm"))
    assert(img:save(dir .. "/b/1.png"))
    local ds = assert(data.folder(dir, {min_per_identity = 2}))
    assert.are.same({"a"}, ds.names)
    assert.are.equal(2, ds.count)
    -- a different size is an error naming the file
    assert(gray(5, 3, function() return 0 end):save(dir .. "/b/2.png"))
    local none, msg = data.folder(dir)
    assert.is_nil(none)
    assert.matches("b/2.png", msg, 1, true)
    for _, f in ipairs{"a/1.png", "a/2.pgm", "b/1.png", "b/2.png"} do os.remove(dir .. "/" .. f) end
    os.remove(dir .. "/a"); os.remove(dir .. "/b")
    local empty, emsg = data.folder(dir)
    assert.is_nil(empty)
    assert.matches("no images", emsg)
    support.remove_dir(dir)
  end)

  it("returns nil, message for a missing folder and raises on misuse", function()
    local ds, msg = data.folder("/nonexistent/siamese")
    assert.is_nil(ds)
    assert.matches("nonexistent", msg)
    assert.has_error(function() data.folder(42) end, "bad argument #1 to 'folder' (string expected, got number)")
    assert.error_matches(function() data.folder(ATT, {channels = 2}) end, "bad argument #2 to 'folder' %(channels")
  end)
end)

describe("dataset:split and dataset:subset", function()
  it("splits identities disjointly by seed, with the asked sizes", function()
    local a, b = att:split{seed = 1, identities = {7, 3}}
    assert.are.same({70, 30}, {a.count, b.count})
    assert.are.same({7, 3}, {#a.names, #b.names})
    local in_a = {}
    for _, n in ipairs(a.names) do in_a[n] = true end
    for _, n in ipairs(b.names) do assert.is_nil(in_a[n]) end
    local a2 = att:split{seed = 1, identities = {7, 3}}
    assert.are.same(a.names, a2.names)
    local a3 = att:split{seed = 2, identities = {7, 3}}
    assert.is_false(same_list(a.names, a3.names))
    local f1, f2 = att:split{seed = 1, fractions = {0.75, 0.25}}
    assert.are.same({8, 2}, {#f1.names, #f2.names})
  end)

  it("subset renumbers identities in order of first appearance", function()
    local s = att:subset{95, 3, 96}
    assert.are.same({"s9", "s1"}, s.names)
    assert.are.same({1, 2, 1}, s.labels)
    assert.are.equal(att.images[95], s.images[1])
    assert.error_matches(function() att:subset{0} end, "bad argument #1 to 'subset'")
    assert.error_matches(function() att:split{seed = 1, identities = {8, 8}} end, "bad argument #1 to 'split'")
    assert.error_matches(function() att:split{identities = {1}} end, "seed")
  end)
end)

describe("dataset:batch", function()
  local ds
  setup(function()
    ds = data.from_images({
      gray(3, 2, function(x, y) return 10 * (x + 1) + 100 * y end),
      gray(3, 2, function(x, y) return 200 - 20 * x - 50 * y end),
    }, {1, 2}, {"p", "q"})
  end)

  it("normalises (pixel * scale - mean) / std", function()
    local x = ds:batch({2, 1}, {scale = 1, mean = 100, std = {50}})
    assert.are.same({2, 1, 2, 3}, {x:size(1), x:size(2), x:size(3), x:size(4)})
    local t = x:totable()
    -- (p * 1 - 100) / 50: an exact subtraction and one rounded division
    -- (u |result|, in float32 or double, then rounded to float32: 2u)
    local u2 = 2 ^ -23
    for y = 0, 1 do for px = 0, 2 do
      local a, b = (200 - 20 * px - 50 * y - 100) / 50, (10 * (px + 1) + 100 * y - 100) / 50
      assert.near(a, t[1][1][y + 1][px + 1], u2 * math.abs(a))
      assert.near(b, t[2][1][y + 1][px + 1], u2 * math.abs(b))
    end end
    local d = ds:batch({1}):totable()
    assert.near(10 / 255, d[1][1][1][1], 2 * u2 * 10 / 255) -- p * (1/255) or p / 255: <= 2 roundings each
  end)

  it("flip = 1 mirrors exactly; augmentation is deterministic for a seed", function()
    local plain, flipped = ds:batch({1, 2}):totable(), ds:batch({1, 2}, {flip = 1}):totable()
    for n = 1, 2 do for y = 1, 2 do for px = 1, 3 do
      assert.are.equal(plain[n][1][y][4 - px], flipped[n][1][y][px])
    end end end
    local opts = {flip = 0.5, shift = 1, brightness = 0.3, contrast = 0.3, seed = 9}
    local a, b = ds:batch({1, 2, 1, 2}, opts):totable(), ds:batch({1, 2, 1, 2}, opts):totable()
    assert.are.same(a, b)
    opts.seed = 10
    assert.are_not.same(a, ds:batch({1, 2, 1, 2}, opts):totable())
  end)

  it("shift fills with zero pixels and brightness changes values", function()
    local big = data.from_images({gray(8, 8, function() return 100 end)}, {1})
    local seen_zero = false
    for seed = 1, 10 do
      local t = big:batch({1}, {shift = 2, seed = seed, scale = 1}):totable()
      for y = 1, 8 do for px = 1, 8 do
        local v = t[1][1][y][px]
        assert.is_true(v == 0 or v == 100)
        seen_zero = seen_zero or v == 0
      end end
    end
    assert.is_true(seen_zero)
    local bright = big:batch({1}, {brightness = 0.5, seed = 3, scale = 1}):totable()
    assert.are_not.equal(100, bright[1][1][1][1])
  end)

  it("raises on misuse", function()
    assert.error_matches(function() ds:batch({3}) end, "bad argument #1 to 'batch' %(index 1")
    assert.error_matches(function() ds:batch({}) end, "bad argument #1 to 'batch'")
    assert.error_matches(function() ds:batch({1}, {flip = 2}) end, "bad argument #2 to 'batch' %(flip")
    assert.error_matches(function() ds:batch({1}, {std = 0}) end, "std")
    assert.error_matches(function() ds:batch({1}, {mean = {1, 2}}) end, "one per channel")
    assert.error_matches(function() data.from_images({ds.images[1]}, {0}) end, "bad argument #2 to 'from_images'")
    local odd = gray(2, 2, function() return 0 end)
    assert.error_matches(function() data.from_images({ds.images[1], odd}, {1, 1}) end, "image 2 is 2x2x1")
  end)
end)

describe("siamese.data.balanced_pairs", function()
  it("gives each image one positive and one negative partner, shuffled", function()
    local left, right, same = data.balanced_pairs(att.labels, 1)
    assert.are.same({200, 200, 200}, {#left, #right, #same})
    local as_left, positives = {}, 0
    for k = 1, #left do
      as_left[left[k]] = (as_left[left[k]] or 0) + 1
      assert.are_not.equal(left[k], right[k])
      assert.are.equal(same[k] == 1, att.labels[left[k]] == att.labels[right[k]])
      positives = positives + same[k]
    end
    for i = 1, 100 do assert.are.equal(2, as_left[i]) end
    assert.are.equal(100, positives)
  end)

  it("is deterministic for a seed and differs for another", function()
    local l1, r1 = data.balanced_pairs(att.labels, 5)
    local l2, r2 = data.balanced_pairs(att.labels, 5)
    local l3 = data.balanced_pairs(att.labels, 6)
    assert.is_true(same_list(l1, l2) and same_list(r1, r2))
    assert.is_false(same_list(l1, l3))
  end)

  it("gives single-image identities no positive pair; raises on misuse", function()
    local left, _, same = data.balanced_pairs({1, 2, 2}, 1)
    assert.are.equal(5, #left)
    local sum = 0
    for _, s in ipairs(same) do sum = sum + s end
    assert.are.equal(2, sum)
    assert.error_matches(function() data.balanced_pairs({1, 1}, 1) end, "bad argument #1 to 'balanced_pairs' %(need")
    assert.error_matches(function() data.balanced_pairs({1, 0.5}, 1) end, "label 2 must be a positive integer")
    assert.error_matches(function() data.balanced_pairs({}, 1) end, "non%-empty")
    assert.error_matches(function() data.balanced_pairs({1, 2}) end, "bad argument #2 to 'balanced_pairs' %(seed")
  end)
end)

describe("siamese.data.pk_batches", function()
  it("builds batches of P distinct identities x K images, covering the identities", function()
    local batches = data.pk_batches(att.labels, 4, 3, 1)
    assert.are.equal(3, #batches) -- ceil(10 / 4)
    local covered = {}
    for _, b in ipairs(batches) do
      assert.are.equal(12, #b)
      local ids = {}
      for p = 0, 3 do
        local label = att.labels[b[p * 3 + 1]]
        assert.is_nil(ids[label])
        ids[label] = true
        covered[label] = true
        local used = {}
        for k = 1, 3 do
          local i = b[p * 3 + k]
          assert.are.equal(label, att.labels[i])
          assert.is_nil(used[i]) -- 10 images each: no replacement
          used[i] = true
        end
      end
    end
    for label = 1, 10 do assert.is_true(covered[label]) end
  end)

  it("skips identities with one image and repeats images only when short", function()
    local labels = staircase_labels()
    local batches = data.pk_batches(labels, 5, 4, 2)
    assert.are.equal(1, #batches)
    local counts = {}
    for _, i in ipairs(batches[1]) do counts[labels[i]] = (counts[labels[i]] or 0) + 1 end
    assert.is_nil(counts[1])
    for label = 2, 6 do assert.are.equal(4, counts[label]) end
  end)

  it("is deterministic for a seed and differs for another; raises on misuse", function()
    local a, b = flat(data.pk_batches(att.labels, 2, 2, 3)), flat(data.pk_batches(att.labels, 2, 2, 3))
    assert.is_true(same_list(a, b))
    assert.is_false(same_list(a, flat(data.pk_batches(att.labels, 2, 2, 4))))
    assert.error_matches(function() data.pk_batches(att.labels, 1, 2, 1) end, "bad argument #2 to 'pk_batches' %(P")
    assert.error_matches(function() data.pk_batches(att.labels, 2, 1, 1) end, "bad argument #3 to 'pk_batches' %(K")
    assert.error_matches(function() data.pk_batches(att.labels, 11, 2, 1) end, "only 10")
    assert.error_matches(function() data.pk_batches(att.labels, 2, 2) end, "bad argument #4 to 'pk_batches'")
  end)
end)

describe("siamese.data.random_triplets", function()
  it("gives valid triplets, deterministic for a seed", function()
    local labels = staircase_labels()
    local a, p, n = data.random_triplets(labels, 200, 1)
    assert.are.same({200, 200, 200}, {#a, #p, #n})
    for t = 1, 200 do
      assert.are_not.equal(a[t], p[t])
      assert.are.equal(labels[a[t]], labels[p[t]])
      assert.are_not.equal(labels[a[t]], labels[n[t]])
      assert.are_not.equal(1, labels[a[t]])
    end
    local a2, p2, n2 = data.random_triplets(labels, 200, 1)
    assert.is_true(same_list(a, a2) and same_list(p, p2) and same_list(n, n2))
    assert.is_false(same_list(a, (data.random_triplets(labels, 200, 2))))
    assert.error_matches(function() data.random_triplets({1, 2}, 5, 1) end, "2 or more images")
    assert.error_matches(function() data.random_triplets(labels, -1, 1) end, "bad argument #2 to 'random_triplets'")
  end)
end)
