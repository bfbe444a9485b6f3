--- nn.ZeroPad2d(left, right, top, bottom): pads [N,C,H,W] with zeros
-- (one number pads all four sides).
local class = require "siamese.class"
local Module = require "siamese.nn.Module"
local util = require "siamese.nn.util"

local ZeroPad2d = class("ZeroPad2d", Module)

function ZeroPad2d:__init(left, right, top, bottom)
  Module.__init(self)
  self.left = util.check_int(left, "ZeroPad2d: left", 0)
  self.right = util.check_int(right or left, "ZeroPad2d: right", 0)
  self.top = util.check_int(top or left, "ZeroPad2d: top", 0)
  self.bottom = util.check_int(bottom or left, "ZeroPad2d: bottom", 0)
end

-- The view of a padded tensor that holds the original pixels.
function ZeroPad2d:inner(t, s)
  return t:narrow(3, self.top + 1, s[3]):narrow(4, self.left + 1, s[4])
end

function ZeroPad2d:updateOutput(input)
  local s = input:shape()
  if #s ~= 4 then self:fail("expected input [N,C,H,W], got %s", util.shape_str(input)) end
  self.output = Module.buffer(self.output, {s[1], s[2], s[3] + self.top + self.bottom, s[4] + self.left + self.right})
  self.output:zero()
  self:inner(self.output, s):copy(input)
  return self.output
end

function ZeroPad2d:updateGradInput(input, gradOutput)
  self.gradInput = self:inner(gradOutput, input:shape()):contiguous()
  return self.gradInput
end

function ZeroPad2d:__tostring()
  return string.format("ZeroPad2d(l %d, r %d, t %d, b %d)", self.left, self.right, self.top, self.bottom)
end

return ZeroPad2d
