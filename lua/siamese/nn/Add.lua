--- nn.Add({branch1, branch2, ...} [, {relu = false}]): the sum of the
-- branches' outputs, each applied to the same input, then max(., 0) with
-- relu — a residual block is Add({Sequential{conv, bn, relu, conv, bn},
-- Identity()}, {relu = true}).
-- In evaluation mode, Add{Sequential{..., conv}, other} whose last
-- convolution takes the blocked forward (nn.Conv2d:pack) has that
-- convolution add the other branch's output (and apply the ReLU) as it
-- writes its own (Conv2d:residual_forward): the same sum, without passes
-- over the output.
local class = require "siamese.class"
local Branches = require "siamese.nn.Branches"
local Module = require "siamese.nn.Module"
local util = require "siamese.nn.util"
local K = require("siamese.core").nn

local Add = class("Add", Branches)

function Add:__init(modules, opts)
  Branches.__init(self, modules)
  if opts ~= nil and type(opts) ~= "table" then
    error(string.format("nn.Add: options table expected, got %s", type(opts)), 3)
  end
  local relu = opts and opts.relu
  if relu ~= nil and type(relu) ~= "boolean" then
    error(string.format("nn.Add: option 'relu' must be a boolean, got %s", type(relu)), 3)
  end
  self.relu = relu == true
end

-- Branch 1 and its last module when there are two branches and that
-- module can add a residual, else nil.
local function residual_body(self)
  local body = self.modules[1]
  if #self.modules ~= 2 or not body.modules then return nil end
  local last = body.modules[#body.modules]
  if last and last.residual_forward then return body, last end
  return nil
end

local function check_same(self, i, y, first)
  if y:numel() ~= first:numel() or #y:shape() ~= #first:shape() then
    self:fail("branch %d gives %s, branch 1 gave %s", i, util.shape_str(y), util.shape_str(first))
  end
end

-- Evaluation mode, two branches, branch 1 ending in a convolution: the
-- other branch first, then branch 1 with its last convolution adding it.
-- Falls back to the plain sum when that convolution declines.
function Add:fused_forward(input, body, last)
  local z = self.modules[2]:forward(input)
  local h = input
  for i = 1, #body.modules - 1 do h = body.modules[i]:forward(h) end
  local y = last:residual_forward(h, z, self.output, self.relu)
  if y then
    self.output = y
    return y
  end
  y = last:forward(h)
  body.output = y
  check_same(self, 2, z, y)
  self.output = Module.buffer(self.output, y:shape())
  self.output:copy(y):add_(z)
  if self.relu then K.activation_forward(self.output, self.output, "relu") end
  return self.output
end

function Add:updateOutput(input)
  if not self.train then
    local body, last = residual_body(self)
    if body then return self:fused_forward(input, body, last) end
  end
  for i, m in ipairs(self.modules) do
    local y = m:forward(input)
    if i == 1 then
      self.output = Module.buffer(self.output, y:shape())
      self.output:copy(y)
    else
      check_same(self, i, y, self.output)
      self.output:add_(y)
    end
  end
  if self.relu then K.activation_forward(self.output, self.output, "relu") end
  return self.output
end

-- Every branch gets the output gradient, or with relu the output
-- gradient where the output is positive (0 elsewhere).
function Add:part(_, gradOutput)
  if not self.relu then return gradOutput end
  local go = util.contiguous(gradOutput)
  self.relu_grad = Module.buffer(self.relu_grad, self.output:shape())
  K.activation_grad(self.relu_grad, go:view(self.output:shape()), self.output, self.output, "relu")
  return self.relu_grad
end

function Add:__tostring()
  local s = Branches.__tostring(self)
  return self.relu and (s:gsub("^Add", "Add(relu)", 1)) or s
end

return Add
