--- nn.Tanh(): tanh(x).
local class = require "siamese.class"
local Pointwise = require "siamese.nn.Pointwise"

local Tanh = class("Tanh", Pointwise)

function Tanh:__init()
  Pointwise.__init(self, "tanh")
end

return Tanh
