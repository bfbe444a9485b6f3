--- siamese.gallery_object: the Lua methods of the gallery object (the
-- store and the search are C, src/gallery.c). Requiring this module (once:
-- require runs it once) gives core.gallery.Gallery
--   add, add_many, rename: names checked by siamese.names (trimmed; no
--     control, format or bidirectional character; no name that differs
--     from an enrolled one only by case);
--   verify, identify, identify_batch, search: the result tables.
-- siamese.gallery and siamese.gallery_pg require it, so every gallery
-- object has them whichever module made it.
local core = require "siamese.core"
local names = require "siamese.names"

local Gallery = core.gallery.Gallery
local is_tensor = core.tensor.is_tensor
local c_add, c_add_many, c_rename = Gallery.add, Gallery.add_many, Gallery.rename

-- The checked name, or a raised error naming the method and argument.
local function checked_name(fname, argn, raw)
  local name, err = names.check(raw)
  if not name then error(string.format("gallery:%s: bad argument #%d (%s)", fname, argn, err), 3) end
  return name
end

-- Keys of the enrolled names: key -> name.
local function keys_of(g)
  local keys = {}
  for _, n in ipairs(g:names()) do keys[names.key(n)] = n end
  return keys
end

local function refuse_case_twin(fname, name, keys)
  local other = keys[names.key(name)]
  if other and other ~= name then
    error(string.format("gallery:%s: '%s' differs from the enrolled '%s' only by case", fname, name, other), 3)
  end
end

--- Adds templates under name (checked and trimmed: siamese.names).
function Gallery:add(name, emb, model)
  name = checked_name("add", 1, name)
  refuse_case_twin("add", name, keys_of(self))
  return c_add(self, name, emb, model)
end

--- Adds one template per row of embs under names[i] (each checked).
function Gallery:add_many(list, embs, model)
  if type(list) ~= "table" then
    error("gallery:add_many: bad argument #1 (table of names expected, got " .. type(list) .. ")", 2)
  end
  local keys, clean = keys_of(self), {}
  for i = 1, #list do
    local name, err = names.check(list[i], "names[" .. i .. "]")
    if not name then error("gallery:add_many: bad argument #1 (" .. err .. ")", 2) end
    refuse_case_twin("add_many", name, keys)
    keys[names.key(name)] = name
    clean[i] = name
  end
  return c_add_many(self, clean, embs, model)
end

--- Renames an identity (the new name checked; a change of case only is
-- allowed, a name another identity has but for case is not).
function Gallery:rename(old, new_name)
  new_name = checked_name("rename", 2, new_name)
  local keys = keys_of(self)
  local other = keys[names.key(new_name)]
  if other and other ~= new_name and names.key(other) ~= names.key(old) then
    error(string.format("gallery:rename: '%s' differs from the enrolled '%s' only by case", new_name, other), 2)
  end
  return c_rename(self, old, new_name)
end

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

return Gallery
