--- siamese.face.netfile: what the network definition files of models/
-- (models/NAME_encoder.lua, one network each, weights in NAME.safetensors
-- beside them) share: their loader and the two-class softmax of MTCNN.
--
--   -- at the end of models/mtcnn_rnet_encoder.lua
--   return netfile.loader{name = "mtcnn_rnet", label = "R-Net", build = build,
--                         source = debug.getinfo(1, "S").source}
--   -- a user of the file
--   local net, meta = assert(dofile(dir .. "/mtcnn_rnet_encoder.lua"){weights = true})
local class = require "siamese.class"
local Module = require "siamese.nn.Module"
local nn = require "siamese.nn"

local netfile = {}

--- The two-class softmax over channels 1-2 of [N,C,...]; the other
-- channels pass through. exp(l_i - max) / sum is computed as the sigmoid of
-- the difference of the two logits (the same function: one float32
-- subtraction, then the library's float32 sigmoid). Forward only.
netfile.Softmax2 = class("Softmax2", Module)
local Softmax2 = netfile.Softmax2

function Softmax2:__init()
  Module.__init(self)
  self.sigmoid = nn.Sigmoid()
end

function Softmax2:updateOutput(input)
  local x = input:contiguous()
  local d = (x:narrow(2, 1, 1) - x:narrow(2, 2, 1)):contiguous()
  self.output = x:clone()
  self.output:narrow(2, 1, 1):copy(self.sigmoid:forward(d))
  self.output:narrow(2, 2, 1):copy(self.sigmoid:forward(-d))
  return self.output
end

function Softmax2:__tostring()
  return "Softmax2 (channels 1-2)"
end

--- The function a definition file returns: build(opts) -> the network;
-- opts.weights (true: the bundled NAME.safetensors beside the file, or a
-- path) loads the weights and returns the network in evaluation mode and
-- the file's metadata, or nil, message for a missing, damaged or
-- mismatched file (its metadata's architecture must be
-- "models/NAME_encoder.lua"). Raises on misuse. spec: name, label (for
-- messages), build (function() -> the untrained network), source (the
-- definition file's debug source, "@path").
function netfile.loader(spec)
  local file = spec.name .. "_encoder.lua"
  local here = spec.source:match("^@(.*/)") or "./" -- models/ of the checkout; siamese/face/models/ when installed
  return function(opts)
    if opts ~= nil and type(opts) ~= "table" then
      error(string.format("bad argument #1 to '%s' (table of options expected, got %s)", file, type(opts)), 2)
    end
    local path = opts and opts.weights
    if path == true then path = here .. spec.name .. ".safetensors" end
    if path ~= nil and type(path) ~= "string" then
      error(string.format("bad argument #1 to '%s' (option 'weights' must be true or a path, got %s)", file,
        type(path)), 2)
    end
    local net = spec.build()
    if not path then return net end
    local ok, meta = net:load(path)
    if not ok then return nil, meta end
    if meta.architecture ~= "models/" .. file then
      return nil, string.format("%s: not a %s file (architecture %s)", path, spec.label, tostring(meta.architecture))
    end
    return net:evaluate(), meta
  end
end

--- Loads the network NAME of a models folder: DIR/NAME_encoder.lua built
-- with its weights DIR/NAME.safetensors (checked by the file's loader).
-- Returns the network in evaluation mode and the weights' metadata, or
-- nil and a message (a missing, damaged or mismatched file).
function netfile.load(dir, name)
  local def = dir .. "/" .. name .. "_encoder.lua"
  local chunk, err = loadfile(def, "t")
  if not chunk then return nil, err end
  local ok, build = pcall(chunk)
  if not ok or type(build) ~= "function" then return nil, def .. ": must return a function building the network" end
  local built, net, meta = pcall(build, {weights = dir .. "/" .. name .. ".safetensors"})
  if not built then return nil, def .. ": " .. tostring(net) end
  return net, meta
end

return netfile
