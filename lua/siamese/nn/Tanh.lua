--- nn.Tanh(inplace = false): tanh(x).
local class = require "siamese.class"
local Pointwise = require "siamese.nn.Pointwise"

local Tanh = class("Tanh", Pointwise)

function Tanh:__init(inplace)
  Pointwise.__init(self, "tanh", 0, inplace)
end

return Tanh
