--- siamese.nn: layers (Torch nn protocol), containers and weight initialisation.
local nn = {}

local modules = {
  "Module", "Sequential", "Concat", "Add", "Identity",
  "Conv2d", "MaxPool2d", "AvgPool2d", "GlobalAvgPool2d", "Linear",
  "ReLU", "ReLU6", "LeakyReLU", "PReLU", "Sigmoid", "Tanh", "Dropout",
  "BatchNorm1d", "BatchNorm2d", "Affine", "Flatten", "Reshape", "ZeroPad2d", "L2Normalize",
  "PairwiseDistance", "AbsDiff", "Siamese",
}
for _, name in ipairs(modules) do
  nn[name] = require("siamese.nn." .. name)
end
nn.init = require "siamese.nn.weight_init"
nn.jacobian = require "siamese.nn.jacobian"

return nn
