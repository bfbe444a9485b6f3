--- nn.Sigmoid(inplace = false): 1 / (1 + exp(-x)).
local class = require "siamese.class"
local Pointwise = require "siamese.nn.Pointwise"

local Sigmoid = class("Sigmoid", Pointwise)

function Sigmoid:__init(inplace)
  Pointwise.__init(self, "sigmoid", 0, inplace)
end

return Sigmoid
