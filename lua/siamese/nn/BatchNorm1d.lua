--- nn.BatchNorm1d(channels, {eps = 1e-5, momentum = 0.1, affine = true}) over [N,C] or [N,C,L].
local class = require "siamese.class"
local BatchNorm = require "siamese.nn.BatchNorm"

local BatchNorm1d = class("BatchNorm1d", BatchNorm)

function BatchNorm1d:__init(channels, opts)
  BatchNorm.__init(self, channels, opts, {2, 3})
end

return BatchNorm1d
