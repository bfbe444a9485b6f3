--- nn.Flatten(): [N, d1, d2, ...] → [N, d1*d2*...].
local class = require "siamese.class"
local Reshape = require "siamese.nn.Reshape"

local Flatten = class("Flatten", Reshape)

function Flatten:__init()
  Reshape.__init(self, -1)
end

function Flatten:__tostring()
  return "Flatten"
end

return Flatten
