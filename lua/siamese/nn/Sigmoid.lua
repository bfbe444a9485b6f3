--- nn.Sigmoid(): 1 / (1 + exp(-x)).
local class = require "siamese.class"
local Pointwise = require "siamese.nn.Pointwise"

local Sigmoid = class("Sigmoid", Pointwise)

function Sigmoid:__init()
  Pointwise.__init(self, "sigmoid")
end

return Sigmoid
