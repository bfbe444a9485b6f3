--- Weight initialisation (seeded through siamese.manual_seed).
-- fan_in / fan_out of a weight [out, in, k...] are in*prod(k) and out*prod(k).
local init = {}

local function fans(w)
  local s = w:shape()
  assert(#s >= 2, "init: weight must have at least 2 dimensions")
  local field = 1
  for i = 3, #s do field = field * s[i] end
  return s[2] * field, s[1] * field
end

--- He et al.: normal with std = gain / sqrt(fan_in), gain sqrt(2) for ReLU.
function init.kaiming_normal(w, gain)
  local fan_in = fans(w)
  return w:normal_(0, (gain or math.sqrt(2)) / math.sqrt(fan_in))
end

--- He et al., uniform: bound = gain * sqrt(3 / fan_in).
function init.kaiming_uniform(w, gain)
  local fan_in = fans(w)
  local b = (gain or math.sqrt(2)) * math.sqrt(3 / fan_in)
  return w:uniform_(-b, b)
end

--- Glorot & Bengio: uniform with bound = gain * sqrt(6 / (fan_in + fan_out)).
function init.xavier_uniform(w, gain)
  local fan_in, fan_out = fans(w)
  local b = (gain or 1) * math.sqrt(6 / (fan_in + fan_out))
  return w:uniform_(-b, b)
end

--- Glorot & Bengio, normal: std = gain * sqrt(2 / (fan_in + fan_out)).
function init.xavier_normal(w, gain)
  local fan_in, fan_out = fans(w)
  return w:normal_(0, (gain or 1) * math.sqrt(2 / (fan_in + fan_out)))
end

--- torch's default for Conv/Linear: weight and bias uniform in +-1/sqrt(fan_in).
function init.torch_default(w, b)
  local fan_in = fans(w)
  local bound = 1 / math.sqrt(fan_in)
  w:uniform_(-bound, bound)
  if b then b:uniform_(-bound, bound) end
end

return init
