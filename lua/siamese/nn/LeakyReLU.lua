--- nn.LeakyReLU(slope = 0.01, inplace = false): x > 0 ? x : slope * x.
local class = require "siamese.class"
local Pointwise = require "siamese.nn.Pointwise"

local LeakyReLU = class("LeakyReLU", Pointwise)

function LeakyReLU:__init(slope, inplace)
  Pointwise.__init(self, "leaky_relu", slope or 0.01, inplace)
end

function LeakyReLU:__tostring()
  return string.format("LeakyReLU(%g)", self.slope)
end

return LeakyReLU
