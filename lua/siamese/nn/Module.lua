--- nn.Module: the protocol every layer follows (Torch nn style).
--   forward(x) = updateOutput(x)
--   backward(x, gradOutput[, scale]) = updateGradInput + accGradParameters
-- Parameter gradients accumulate; zeroGradParameters() clears them.
-- Layers with parameters set self.weight/self.gradWeight (and bias) or
-- override parameters(); containers override parameters/children.
local class = require "siamese.class"
local T = require "siamese.tensor"

local Module = class("Module")

function Module:__init()
  self.train = true
  self.frozen = false
end

function Module:updateOutput(input)
  error(self.__name .. ": updateOutput is not implemented", 2)
end

function Module:updateGradInput(input, gradOutput)
  error(self.__name .. ": updateGradInput is not implemented", 2)
end

function Module:accGradParameters(input, gradOutput, scale) end

function Module:forward(input)
  return self:updateOutput(input)
end

function Module:backward(input, gradOutput, scale)
  scale = scale or 1
  if self.skip_input_grad then
    -- nobody reads it (set on the first layer of a net fed with data,
    -- as PyTorch skips inputs that do not require gradients)
    self.gradInput = nil
  else
    self:updateGradInput(input, gradOutput)
  end
  if not self.frozen then
    self:accGradParameters(input, gradOutput, scale)
  end
  return self.gradInput
end

--- skip_input_grad(flag = true): backward stops computing the gradient
-- with respect to this module's input (gradInput is then nil), which saves
-- a pass when the input is data, e.g. the encoder of a network being
-- trained. Containers pass it to their first module.
function Module:skipInputGrad(flag)
  if flag == nil then flag = true end
  self.skip_input_grad = flag or nil
  return self
end

--- Lists of parameter tensors and of their gradients (same order).
-- Frozen modules report none, so optimisers leave them alone.
function Module:parameters()
  if self.frozen then return {}, {} end
  local p, g = {}, {}
  if self.weight then p[#p + 1], g[#g + 1] = self.weight, self.gradWeight end
  if self.bias then p[#p + 1], g[#g + 1] = self.bias, self.gradBias end
  return p, g
end

--- Named tensors to save: parameters plus buffers such as running statistics.
-- Keys are relative to this module ("weight", "1.bias", ...).
function Module:state()
  local s = {}
  if self.weight then s.weight = self.weight end
  if self.bias then s.bias = self.bias end
  return s
end

function Module:zeroGradParameters()
  local _, grads = self:parameters()
  for _, g in ipairs(grads) do g:zero() end
end

function Module:children()
  return {}
end

function Module:training()
  self.train = true
  for _, c in ipairs(self:children()) do c:training() end
  return self
end

function Module:evaluate()
  self.train = false
  for _, c in ipairs(self:children()) do c:evaluate() end
  return self
end

--- Frozen modules keep their weights: backward skips the weight-gradient
-- work and parameters() reports nothing (fine-tuning the last layers).
function Module:freeze(flag)
  if flag == nil then flag = true end
  self.frozen = flag
  for _, c in ipairs(self:children()) do c:freeze(flag) end
  return self
end

--- Number of scalar parameters.
function Module:nparameters()
  local p = self:parameters()
  local n = 0
  for _, t in ipairs(p) do n = n + t:numel() end
  return n
end

--- Saves the state (parameters and buffers) as a safetensors file whose
-- __metadata__ describes the model: metadata fields (architecture,
-- input_size, preprocessing, embedding_size, ...) are stored as strings,
-- non-strings JSON-encoded; "architecture" defaults to the printed model.
-- Written atomically. Returns true, or nil and a message.
function Module:save(path, metadata)
  local json = require "siamese.json"
  local safetensors = require "siamese.safetensors"
  local meta = {format = "siamese", parameters = tostring(self:nparameters())}
  for k, v in pairs(metadata or {}) do
    meta[k] = type(v) == "string" and v or json.encode(v)
  end
  meta.architecture = meta.architecture or tostring(self)
  return safetensors.save(path, self:state(), meta)
end

-- Buffers PyTorch saves that have no counterpart here.
local ignorable = {num_batches_tracked = true}

--- Loads a state saved by save() (or by PyTorch for the same architecture:
-- keys are PyTorch's, "0.weight", "3.running_mean", ...). Every tensor is
-- checked before any is copied, so a mismatched file changes nothing.
-- opts.strict (default true) also refuses tensors the model does not have.
-- Returns self and the metadata, or nil and a message.
function Module:load(path, opts)
  local safetensors = require "siamese.safetensors"
  local tensors, meta = safetensors.load(path)
  if not tensors then return nil, meta end
  local strict = not (opts and opts.strict == false)
  local state = self:state()
  local shape_str = require("siamese.argcheck").shape
  local function sorted(tbl) -- deterministic order, so messages are too
    local keys = {}
    for k in pairs(tbl) do keys[#keys + 1] = k end
    table.sort(keys)
    return keys
  end
  for _, name in ipairs(sorted(state)) do
    local t, src = state[name], tensors[name]
    if not src then
      return nil, string.format("%s: missing tensor '%s' %s", path, name, shape_str(t))
    end
    if shape_str(src) ~= shape_str(t) then
      return nil, string.format("%s: tensor '%s' has shape %s, the model expects %s", path, name,
        shape_str(src), shape_str(t))
    end
  end
  if strict then
    for _, name in ipairs(sorted(tensors)) do
      if not state[name] and not ignorable[name:match("([^.]+)$")] then
        return nil, string.format("%s: unexpected tensor '%s' (not in this model)", path, name)
      end
    end
  end
  for name, t in pairs(state) do t:copy(tensors[name]) end
  return self, meta
end

--- Returns buf when it already has this shape, else a new zero tensor.
function Module.buffer(buf, shape)
  if buf then
    local s = buf:shape()
    if #s == #shape then
      local same = true
      for i = 1, #s do if s[i] ~= shape[i] then same = false break end end
      if same then return buf end
    end
  end
  return T.zeros(shape)
end

--- Raises a misuse error naming the layer and the shapes.
function Module:fail(fmt, ...)
  error(string.format("%s: " .. fmt, self.__name, ...), 3)
end

function Module:__tostring()
  return self.__name
end

return Module
