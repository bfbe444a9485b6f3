--- nn.Identity(): passes its input through (a residual shortcut).
local class = require "siamese.class"
local Module = require "siamese.nn.Module"

local Identity = class("Identity", Module)

function Identity:updateOutput(input)
  self.output = input
  return input
end

function Identity:updateGradInput(_, gradOutput)
  self.gradInput = gradOutput
  return gradOutput
end

return Identity
