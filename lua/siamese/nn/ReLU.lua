--- nn.ReLU(inplace = false): max(x, 0).
local class = require "siamese.class"
local Pointwise = require "siamese.nn.Pointwise"

local ReLU = class("ReLU", Pointwise)

function ReLU:__init(inplace)
  Pointwise.__init(self, "relu", 0, inplace)
end

return ReLU
