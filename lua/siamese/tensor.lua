--- siamese.tensor: float32 tensors (up to 8 dimensions) in C.
-- Constructors live here; methods are on the tensors themselves
-- (`t:narrow(1, 2, 3)`, `t:add(u)`, ...). Indices and dimensions are 1-based.
local core = require "siamese.core"

local tensor = {}
for name, fn in pairs(core.tensor) do
  tensor[name] = fn
end

return tensor
