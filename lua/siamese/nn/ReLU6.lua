--- nn.ReLU6(inplace = false): min(max(x, 0), 6), TensorFlow's relu6 /
-- clipByValue(x, 0, 6) (MobileNet); gradient 1 strictly inside (0, 6).
local class = require "siamese.class"
local Pointwise = require "siamese.nn.Pointwise"

local ReLU6 = class("ReLU6", Pointwise)

function ReLU6:__init(inplace)
  Pointwise.__init(self, "relu6", 0, inplace)
end

return ReLU6
