--- siamese.app.cli.pair_sets: labelled pairs and their distances, for
-- calibrate and eval: a folder dataset embedded, every pair of an embedded
-- set, the pairs of an LFW-style pairs file.
local pair_sets = {}

--- Embeds the photos of a folder dataset (inputs.people) with enc.main.
-- Returns {descriptors = {Tensor [dim], ...}, labels = {person index},
-- paths, names (person names)}, and the skipped photos {{photo, reason}}.
-- progress(i, n) is called after each photo.
function pair_sets.embed_people(enc, people, progress)
  local image = require "siamese.image"
  local total = 0
  for _, p in ipairs(people) do total = total + #p.photos end
  local set, skipped, done = {descriptors = {}, labels = {}, paths = {}, names = {}}, {}, 0
  for label, p in ipairs(people) do
    set.names[label] = p.name
    for _, path in ipairs(p.photos) do
      local img, err = image.load(path)
      local f = img and enc.main(img, true)
      if f and f.descriptor then
        local k = #set.descriptors + 1
        set.descriptors[k], set.labels[k], set.paths[k] = f.descriptor, label, path
      else
        skipped[#skipped + 1] = {photo = path, reason = err or "no face found"}
      end
      done = done + 1
      if progress then progress(done, total) end
    end
  end
  return set, skipped
end

--- Distance between two descriptors for a metric: euclidean, or cosine
-- (1 - cosine similarity), as the gallery computes them.
function pair_sets.distance(a, b, metric)
  if metric == "cosine" then
    local na, nb = a:norm(), b:norm()
    if na == 0 or nb == 0 then return 1 end
    local dot = a:view(1, -1):matmul(b:view(-1, 1)):get(1, 1)
    return 1 - dot / (na * nb)
  end
  return a:sub(b):norm()
end

--- Every pair of an embedded set: distances and labels (true: same
-- person). Past max_pairs (default 300000) the impostor pairs are a
-- seeded sample (every genuine pair is kept).
function pair_sets.all_pairs(set, metric, max_pairs)
  local d, same = {}, {}
  local n = #set.descriptors
  max_pairs = max_pairs or 300000
  local total = n * (n - 1) // 2
  local genuine = 0
  local count = {}
  for _, l in ipairs(set.labels) do count[l] = (count[l] or 0) + 1 end
  for _, c in pairs(count) do genuine = genuine + c * (c - 1) // 2 end
  -- keep each impostor pair with probability p (a fixed LCG: reproducible)
  local p = total <= max_pairs and 1 or math.max(0, (max_pairs - genuine) / (total - genuine))
  local state = 12345
  local function coin()
    state = (state * 1103515245 + 12345) % 2147483648
    return state / 2147483648 < p
  end
  for i = 1, n do
    for j = i + 1, n do
      local s = set.labels[i] == set.labels[j]
      if s or p >= 1 or coin() then
        d[#d + 1] = pair_sets.distance(set.descriptors[i], set.descriptors[j], metric)
        same[#same + 1] = s
      end
    end
  end
  return d, same
end

--- Distances of an LFW-style pairs file (siamese.face.lfw.read_pairs;
-- photos root/NAME/NAME_0001.jpg). Returns distances, labels, folds and
-- the count of photos by how their face was found; or nil, message.
function pair_sets.pair_distances(enc, pairs_path, root, metric, progress)
  local lfw = require "siamese.face.lfw"
  local image = require "siamese.image"
  local list, err = lfw.read_pairs(pairs_path)
  if not list then return nil, err end
  local keys, seen = lfw.photos(list)
  local desc, how = {}, {}
  for i, key in ipairs(keys) do
    local path = lfw.image_path(root, seen[key][1], seen[key][2])
    local img, lerr = image.load(path)
    if not img then return nil, lerr end
    local f = enc.main(img, true)
    if not (f and f.descriptor) then return nil, path .. ": no face found (try --fallback centre)" end
    desc[key] = f.descriptor
    how[f.how] = (how[f.how] or 0) + 1
    if progress then progress(i, #keys) end
  end
  local d, same, folds = {}, {}, {}
  for i, p in ipairs(list) do
    d[i] = pair_sets.distance(desc[p.a[1] .. "/" .. p.a[2]], desc[p.b[1] .. "/" .. p.b[2]], metric)
    same[i], folds[i] = p.same, p.fold
  end
  return d, same, folds, how
end

return pair_sets
