--- nn.Linear(in, out, {bias = true}): [N,in] → [N,out], y = x W^T + b,
-- weight [out, in] (torch layout). A 1-D input [in] is treated as [1,in].
local class = require "siamese.class"
local Module = require "siamese.nn.Module"
local T = require "siamese.tensor"
local util = require "siamese.nn.util"
local init = require "siamese.nn.weight_init"
local K = require("siamese.core").nn

local Linear = class("Linear", Module)

function Linear:__init(nin, nout, opts)
  Module.__init(self)
  self.nin = util.check_int(nin, "Linear: in features")
  self.nout = util.check_int(nout, "Linear: out features")
  self.weight, self.gradWeight = T.zeros{nout, nin}, T.zeros{nout, nin}
  if not (opts and opts.bias == false) then
    self.bias, self.gradBias = T.zeros{nout}, T.zeros{nout}
  end
  init.torch_default(self.weight, self.bias)
end

function Linear:as2d(x)
  local s = x:shape()
  if #s == 1 and s[1] == self.nin then return util.contiguous(x):view(1, self.nin) end
  if #s ~= 2 or s[2] ~= self.nin then
    self:fail("expected input [N,%d], got %s", self.nin, util.shape_str(x))
  end
  return util.contiguous(x)
end

function Linear:updateOutput(input)
  local x = self:as2d(input)
  self.output = Module.buffer(self.output, {x:shape(1), self.nout})
  K.linear_forward(self.output, x, self.weight, self.bias)
  if input:dim() == 1 then return self.output:view(self.nout) end
  return self.output
end

function Linear:updateGradInput(input, gradOutput)
  local x = self:as2d(input)
  self.gradInput = Module.buffer(self.gradInput, x:shape())
  self.gradInput:zero()
  K.linear_backward_input(self.gradInput, util.contiguous(gradOutput):view(x:shape(1), self.nout), self.weight)
  if input:dim() == 1 then return self.gradInput:view(self.nin) end
  return self.gradInput
end

function Linear:accGradParameters(input, gradOutput, scale)
  local x = self:as2d(input)
  K.linear_backward_params(self.gradWeight, self.gradBias,
    util.contiguous(gradOutput):view(x:shape(1), self.nout), x, scale or 1)
end

function Linear:__tostring()
  return string.format("Linear(%d -> %d%s)", self.nin, self.nout, self.bias and "" or ", no bias")
end

return Linear
