--- siamese.face.weights: reads the face-api networks converted by
-- models/convert_faceapi.lua. Quantised tensors are stored as their uint8
-- codes with scale and min in the metadata; load() returns float32
-- tensors, dequantised bit-for-bit as tfjs does ((float)(q*scale + min),
-- then Math.round for tensors that were int32),
-- in face-api's own layouts (conv filters HWIO [kh,kw,in,out], depthwise
-- [kh,kw,c,1], dense [in,out]).
local core = require "siamese.core"
local json = require "siamese.json"
local safetensors = require "siamese.safetensors"

local weights = {}

--- Loads a converted network: tensors by face-api name and the metadata.
-- Returns nil, message for a missing or damaged file.
function weights.load(path)
  local tensors, meta = safetensors.load(path)
  if not tensors then return nil, meta end
  if not meta or meta.format ~= "faceapi-tfjs" then
    return nil, path .. ": not a converted face-api network (metadata format is not faceapi-tfjs)"
  end
  local quant = json.decode(meta.quantization or "{}")
  if type(quant) ~= "table" then return nil, path .. ": bad quantization metadata" end
  for name, q in pairs(quant) do
    local t = tensors[name]
    if not t or type(q.scale) ~= "number" or type(q.min) ~= "number" then
      return nil, path .. ": bad quantization entry for " .. tostring(name)
    end
    core.dequantize(t, q.scale, q.min)
    if q.original_dtype == "int32" then
      -- tfjs Math.rounds dequantised int32 tensors (the SSD net's few graph
      -- constants, a handful of values each); they stay float tensors here.
      local flat = t:view(-1)
      for i = 1, flat:numel() do flat:set(i, math.floor(flat:get(i) + 0.5)) end
    end
  end
  return tensors, meta
end

--- The body of each network's load(path): path must be nil (the bundled
-- siamese.models.dir()/default_file) or a string, raising as the caller's 'load'
-- otherwise. Returns the tensors, the metadata and the path; or nil, message.
function weights.open(path, default_file)
  if path ~= nil and type(path) ~= "string" then
    error(string.format("bad argument #1 to 'load' (string expected, got %s)", type(path)), 3)
  end
  path = path or (require("siamese.models").dir() .. "/" .. default_file)
  local tensors, meta = weights.load(path)
  if not tensors then return nil, meta end
  return tensors, meta, path
end

--- Fills every layer of a built network (named: name -> layer) with
-- load_layer(layer, tensors, name, path). Returns true, or nil, message.
function weights.load_layers(named, tensors, path, load_layer)
  for name, layer in pairs(named) do
    local ok, err = load_layer(layer, tensors, name, path)
    if not ok then return nil, err end
  end
  return true
end

return weights
