--- Shared parts of MaxPool2d and AvgPool2d: window, stride and padding.
-- padding: a number or {ph, pw}, "valid" or "same" (TensorFlow's rule).
local class = require "siamese.class"
local Module = require "siamese.nn.Module"
local core = require "siamese.core"
local util = require "siamese.nn.util"
local K = core.nn

local Pool2d = class("Pool2d", Module)

function Pool2d:__init(kernel, opts)
  Module.__init(self)
  opts = opts or {}
  self.kh, self.kw = util.pair(kernel, self.__name .. ": kernel")
  self.sh, self.sw = util.pair(opts.stride or kernel, self.__name .. ": stride")
  for _, v in ipairs{self.kh, self.kw, self.sh, self.sw} do util.check_int(v, self.__name .. ": kernel and stride") end
  local pad = opts.padding or 0
  if pad == "same" or pad == "valid" then
    self.padding = pad
  else
    local ph, pw = util.pair(pad, self.__name .. ": padding")
    if ph >= self.kh or pw >= self.kw then
      error(string.format("%s: padding (%d,%d) must be smaller than the %dx%d window", self.__name, ph, pw, self.kh, self.kw), 3)
    end
    self.padding = {ph, pw, ph, pw}
  end
  -- Average pooling counts padded positions only when asked (torch's
  -- default for explicit padding); with "same" it never does (TensorFlow).
  local include = opts.count_include_pad
  if include == nil then include = self.padding ~= "same" end
  self.count_pad = include and 1 or 0
end

function Pool2d:params(H, W)
  local pt, pl, pb, pr
  if self.padding == "valid" then
    pt, pl, pb, pr = 0, 0, 0, 0
  elseif self.padding == "same" then
    pt, pb = core.conv.same_padding(H, self.kh, self.sh)
    pl, pr = core.conv.same_padding(W, self.kw, self.sw)
  else
    pt, pl, pb, pr = table.unpack(self.padding)
  end
  return {self.kh, self.kw, self.sh, self.sw, pt, pl, pb, pr, self.count_pad}
end

--- Checks the input and returns its shape, the params and the output shape.
function Pool2d:geometry(input)
  local s = input:shape()
  if #s ~= 4 then self:fail("expected input [N,C,H,W], got %s", util.shape_str(input)) end
  local p = self:params(s[3], s[4])
  local ho = core.conv.out_size(s[3], p[1], p[3], 1, p[5], p[7])
  local wo = core.conv.out_size(s[4], p[2], p[4], 1, p[6], p[8])
  if ho <= 0 or wo <= 0 then
    self:fail("input %s is smaller than the %dx%d window", util.shape_str(input), self.kh, self.kw)
  end
  return s, p, {s[1], s[2], ho, wo}
end

function Pool2d:__tostring()
  local pad = type(self.padding) == "string" and self.padding or table.concat(self.padding, ",")
  return string.format("%s(%dx%d, stride %d,%d, pad %s)", self.__name, self.kh, self.kw, self.sh, self.sw, pad)
end

return Pool2d
