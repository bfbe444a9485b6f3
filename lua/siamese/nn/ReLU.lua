--- nn.ReLU(): max(x, 0).
local class = require "siamese.class"
local Pointwise = require "siamese.nn.Pointwise"

local ReLU = class("ReLU", Pointwise)

function ReLU:__init()
  Pointwise.__init(self, "relu")
end

return ReLU
