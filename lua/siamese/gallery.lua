--- siamese.gallery: enrolled identities and exact nearest-neighbour search.
--
--   local gallery = require "siamese.gallery"
--   local g = gallery.new{dim = 128, metric = "euclidean", threshold = 0.6,
--                         model = fr.model_id, score = "nearest"}
--   g:add("alice", emb)                      -- Tensor [128] or [n,128]
--   local name, d, candidates = g:identify(probe, {k = 5})
--   assert(g:save("people.gallery"))
--
-- The store, the search and the file format are C (src/gallery.c); this
-- file adds the result tables. Distances: euclidean (not squared), or
-- cosine = 1 - cosine similarity; an identity is scored by its nearest
-- template ("nearest") or by its mean template ("mean"; for cosine the mean
-- of the L2-normalised templates). k-NN computes |q|^2 - 2 q.t + |t|^2 with
-- one sgemm per block (clamped at 0 before the square root); verify
-- computes the distance directly in double precision.
local core = require "siamese.core"

local gallery = {
  new = core.gallery.new,
  load = core.gallery.load,
  Gallery = core.gallery.Gallery,
}
local Gallery = core.gallery.Gallery
local is_tensor = core.tensor.is_tensor

local function check_k(opts, fname)
  if opts ~= nil and type(opts) ~= "table" then
    error(string.format("gallery:%s: options must be a table, got %s", fname, type(opts)), 3)
  end
  local k = opts and opts.k or 5
  if math.type(k) ~= "integer" or k < 1 then
    error(string.format("gallery:%s: option k must be a positive integer, got %s", fname, tostring(k)), 3)
  end
  local threshold = opts and opts.threshold
  if threshold ~= nil and type(threshold) ~= "number" then
    error(string.format("gallery:%s: option threshold must be a number, got %s", fname, type(threshold)), 3)
  end
  return k, threshold
end

--- Accepts or rejects a claimed identity: accepted (distance <= threshold),
-- distance, threshold; nil, "unknown identity 'bob'" when name is not
-- enrolled. model (optional): the id of the model that made emb.
function Gallery:verify(name, emb, model)
  local d = self:_distance(name, emb, model)
  if d == nil then return nil, string.format("unknown identity '%s'", name) end
  local t = self:threshold()
  return d <= t, d, t
end

local function result(dist, names, i, threshold)
  local candidates = {}
  for j = 1, #names do
    candidates[j] = {name = names[j], distance = dist:get(i, j)}
  end
  local best = candidates[1]
  if not best then return {name = nil, distance = math.huge, candidates = candidates} end
  return {name = best.distance <= threshold and best.name or nil, distance = best.distance,
          candidates = candidates}
end

--- Identifies one embedding: name (nil when unknown: the best distance is
-- above the threshold, or the gallery is empty), best distance (math.huge
-- when empty), and the top-k identities {{name =, distance =}, ...} by
-- ascending distance. opts: k (default 5), threshold (overrides the
-- gallery's).
function Gallery:identify(emb, opts, model)
  local k, threshold = check_k(opts, "identify")
  local shape = is_tensor(emb) and emb:shape() or {self:dim()}
  if #shape ~= 1 and not (#shape == 2 and shape[1] == 1) then
    error(string.format("gallery:identify: expected one embedding [%d], got [%s] (use identify_batch)",
      self:dim(), table.concat(shape, ",")), 2)
  end
  local dist, _, names = self:_knn(emb, k, true, model, "identify")
  local r = result(dist, names[1], 1, threshold or self:threshold())
  return r.name, r.distance, r.candidates
end

--- Identifies each row of embs [n, dim]: a list of n tables {name = ...
-- or nil, distance =, candidates = {...}}. opts as for identify.
function Gallery:identify_batch(embs, opts, model)
  local k, threshold = check_k(opts, "identify_batch")
  local dist, _, names = self:_knn(embs, k, true, model, "identify_batch")
  threshold = threshold or self:threshold()
  local out = {}
  for i = 1, #names do
    out[i] = result(dist, names[i], i, threshold)
  end
  return out
end

--- Template-level exact k-NN: distances Tensor [n, k'], indices (n lists
-- of k' 1-based template indices), names (the owners, same shape), where
-- k' = min(k, number of templates).
function Gallery:search(queries, k, model)
  if math.type(k) ~= "integer" or k < 1 then
    error(string.format("gallery:search: k must be a positive integer, got %s", tostring(k)), 2)
  end
  return self:_knn(queries, k, false, model, "search")
end

return gallery
