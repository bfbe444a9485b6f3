--- nn.BatchNorm2d(channels, {eps = 1e-5, momentum = 0.1, affine = true}) over [N,C,H,W].
local class = require "siamese.class"
local BatchNorm = require "siamese.nn.BatchNorm"

local BatchNorm2d = class("BatchNorm2d", BatchNorm)

function BatchNorm2d:__init(channels, opts)
  BatchNorm.__init(self, channels, opts, {4, 4})
end

return BatchNorm2d
