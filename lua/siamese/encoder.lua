--- siamese.encoder: trained face encoders shipped as a safetensors file
-- plus the Lua definition of their network, ready to embed images.
--
--   local enc = assert(siamese.encoder.load("att"))   -- models/att_encoder.*
--   print(enc.name, enc.dim, enc.model_id)             -- "att", 64, "att:1f3a..."
--   local e = enc:embed(img)                           -- Tensor [dim]
--   local E = enc:embed_batch{img1, img2}              -- Tensor [2, dim]
--
-- load(name) finds NAME_encoder.safetensors and NAME_encoder.lua in the
-- models folder (SIAMESE_MODELS, the checkout's models/, or the installed
-- copy); load(path) takes a .safetensors file whose definition is the .lua
-- file of the same base name, or else the models folder's file named by
-- the metadata's "architecture" (e.g. "models/att_encoder.lua"). The file's __metadata__ says how to prepare
-- an image (preprocessing: channels, width, height, resize method, scale,
-- mean, std, and flip_average: the embedding is the L2-normalised mean of
-- the image's and its mirror image's) and the embedding size; the definition file returns a
-- function(opts) building the network (opts from the metadata's
-- definition_opts).
--
-- model_id = name .. ":" .. the first 16 hex digits of the SHA-256 of the
-- weights file when siamese.hash is available, else of its 64-bit FNV-1a
-- hash: galleries built with one file are refused with another.
local image = require "siamese.image"
local json = require "siamese.json"
local T = require "siamese.tensor"
local models = require "siamese.models"

local encoder = {}

local Encoder = {}
Encoder.__index = Encoder

local IMAGE_MT = getmetatable(image.new(1, 1, 1))

local function arg_error(fname, n, msg) require("siamese.argcheck").raise(3, fname, n, msg) end

-- 64-bit FNV-1a of a string, as 16 hex digits (integer arithmetic wraps).
local function fnv1a64(bytes)
  local h = -3750763034362895579 -- 0xcbf29ce484222325
  local prime = 1099511628211
  local byte = string.byte
  for i = 1, #bytes, 4096 do
    local chunk = {byte(bytes, i, math.min(i + 4095, #bytes))}
    for k = 1, #chunk do h = (h ~ chunk[k]) * prime end
  end
  return string.format("%016x", h)
end

--- The hex digest naming a weights file: sha256 through siamese.hash when
-- present, else FNV-1a 64. Returns hex, algorithm; or nil, message.
function encoder.file_digest(path)
  local ok, hash = pcall(require, "siamese.hash")
  if ok and type(hash) == "table" and hash.file_sha256 then
    local hex, err = hash.file_sha256(path)
    if not hex then return nil, err end
    return hex, "sha256"
  end
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local bytes = f:read("a")
  f:close()
  return fnv1a64(bytes), "fnv1a64"
end

-- Where load(name) looks.
local function paths_for(name_or_path)
  if name_or_path:match("%.safetensors$") then
    local base = name_or_path:gsub("%.safetensors$", "")
    local name = base:match("([^/]+)$"):gsub("_encoder$", "")
    return name_or_path, base .. ".lua", name
  end
  if not name_or_path:match("^[%w_%-]+$") then return nil end
  local base = models.dir() .. "/" .. name_or_path .. "_encoder"
  return base .. ".safetensors", base .. ".lua", name_or_path
end

local function decode_field(meta, key, path)
  local v = meta[key]
  if v == nil then return nil, string.format("%s: metadata has no '%s'", path, key) end
  local ok, decoded = pcall(json.decode, v)
  if not ok then return nil, string.format("%s: metadata '%s' is not JSON", path, key) end
  return decoded
end

-- Checks the preprocessing record of the metadata.
local function check_preprocessing(p, path)
  if type(p) ~= "table" then return nil, path .. ": metadata 'preprocessing' is not an object" end
  local ok = (p.channels == 1 or p.channels == 3) and math.type(p.width) == "integer" and p.width > 0
    and math.type(p.height) == "integer" and p.height > 0 and type(p.scale) == "number"
    and type(p.mean) == "table" and type(p.std) == "table" and #p.mean == p.channels and #p.std == p.channels
  if not ok then return nil, path .. ": metadata 'preprocessing' lacks channels, width, height, scale, mean or std" end
  return p
end

--- Loads an encoder by name ("att") or by path to its .safetensors file.
-- Returns the encoder (fields name, dim, model_id, path, metadata, net,
-- preprocessing; methods embed, embed_batch, preprocess), or nil and a
-- message when a file is missing, damaged or does not match its definition.
function encoder.load(name_or_path)
  if type(name_or_path) ~= "string" then
    arg_error("load", 1, "encoder name or path expected, got " .. type(name_or_path))
  end
  local path, def_path, name = paths_for(name_or_path)
  if not path then return nil, "unknown encoder name '" .. name_or_path .. "'" end
  local st = require "siamese.safetensors"
  local tensors, meta = st.load(path)
  if not tensors then return nil, meta end
  -- the definition: NAME.lua beside the weights, else the file of the
  -- models folder that the metadata's architecture names (an encoder
  -- exported by a training script elsewhere)
  local candidates = {def_path}
  local arch = meta.architecture
  if type(arch) == "string" and arch:match("%.lua$") then
    candidates[2] = models.dir() .. "/" .. arch:match("([^/]+)$")
  end
  local found
  for _, c in ipairs(candidates) do
    local f = io.open(c, "r")
    if f then f:close(); found = c; break end
  end
  if not found then return nil, def_path .. ": encoder definition not found" end
  def_path = found
  local chunk, lerr = loadfile(def_path, "t")
  if not chunk then return nil, lerr end
  local ok, build = pcall(chunk)
  if not ok or type(build) ~= "function" then
    return nil, def_path .. ": must return a function building the network"
  end
  local prep, perr = decode_field(meta, "preprocessing", path)
  if not prep then return nil, perr end
  prep, perr = check_preprocessing(prep, path)
  if not prep then return nil, perr end
  local dim = math.tointeger(tonumber(meta.embedding_size))
  if not dim or dim < 1 then return nil, path .. ": metadata has no valid 'embedding_size'" end
  local opts = meta.definition_opts and decode_field(meta, "definition_opts", path) or {}
  local built, net = pcall(build, opts)
  if not built then return nil, def_path .. ": " .. tostring(net) end
  local loaded, err = net:load(path)
  if not loaded then return nil, err end
  local digest, derr = encoder.file_digest(path)
  if not digest then return nil, derr end
  local enc = setmetatable({
    name = name, dim = dim, model_id = name .. ":" .. digest:sub(1, 16), path = path,
    metadata = meta, net = net:evaluate(), preprocessing = prep,
  }, Encoder)
  -- enc:embed(img) and enc.embed(img) both work
  enc.embed = function(a, b) return Encoder.embed(enc, a == enc and b or a) end
  enc.embed_batch = function(a, b) return Encoder.embed_batch(enc, a == enc and b or a) end
  return enc
end

--- The network's input for one image: [C,H,W] floats, converted to gray or
-- RGB, resized ("area" when shrinking, else bilinear, as siamese.data.folder
-- does) and normalised as in training.
function Encoder:preprocess(img)
  if getmetatable(img) ~= IMAGE_MT then arg_error("preprocess", 1, "siamese.Image expected, got " .. type(img)) end
  local p = self.preprocessing
  if img.channels ~= p.channels then img = p.channels == 1 and img:grayscale() or img:to_rgb() end
  if img.width ~= p.width or img.height ~= p.height then
    local shrinking = p.width <= img.width and p.height <= img.height
    img = img:resize(p.width, p.height, {method = shrinking and "area" or "bilinear"})
  end
  return img:to_tensor{scale = p.scale, mean = p.mean, std = p.std}
end

--- Embeddings [n, dim] of a list of images (one forward pass).
function Encoder:embed_batch(list)
  if type(list) ~= "table" or getmetatable(list) == IMAGE_MT then
    arg_error("embed_batch", 1, "list of siamese.Image expected, got " .. type(list))
  end
  if #list == 0 then return T.zeros{0, self.dim} end
  local p = self.preprocessing
  local x = T.zeros{#list, p.channels, p.height, p.width}
  for i, img in ipairs(list) do
    if getmetatable(img) ~= IMAGE_MT then
      arg_error("embed_batch", 1, string.format("element %d is not a siamese.Image", i))
    end
    x:select(1, i):copy(self:preprocess(img))
  end
  local E = self.net:forward(x):clone()
  if self.preprocessing.flip_average then
    -- mean with the mirror image's embedding, L2-normalised again
    local flipped = T.zeros{#list, p.channels, p.height, p.width}
    for i, img in ipairs(list) do flipped:select(1, i):copy(self:preprocess(img:flip())) end
    E:add_(self.net:forward(flipped))
    for i = 1, #list do
      local r = E:select(1, i)
      r:scale_(1 / math.max(r:norm(), 1e-12))
    end
  end
  return E
end

--- The embedding [dim] of one image.
function Encoder:embed(img)
  if getmetatable(img) ~= IMAGE_MT then arg_error("embed", 1, "siamese.Image expected, got " .. type(img)) end
  return self:embed_batch{img}:select(1, 1):clone()
end

function Encoder:__tostring()
  return string.format("siamese.encoder(%s, %d-D, %s)", self.name, self.dim, self.model_id)
end

encoder.Encoder = Encoder
return encoder
