--- One scratch tensor shared by every layer (forward and backward run one
-- at a time), grown on demand: the convolutions' caller-owned workspace.
local T = require "siamese.tensor"

local workspace = {tensor = T.zeros{1}}

--- Returns a tensor of at least n floats (contents unspecified).
function workspace.get(n)
  if workspace.tensor:numel() < n then
    workspace.tensor = nil
    collectgarbage("step", 0) -- let an old buffer go before allocating the new one
    workspace.tensor = T.zeros{math.max(n, 1)}
  end
  return workspace.tensor
end

return workspace
