--- nn.Add{branch1, branch2, ...}: the sum of the branches' outputs, each
-- applied to the same input — residual blocks are
-- Add{Sequential{conv, bn, relu, conv, bn}, Identity()} followed by ReLU.
-- In evaluation mode, Add{Sequential{..., conv}, Identity()} whose last
-- convolution takes the blocked forward (nn.Conv2d:pack) adds the input
-- inside that convolution (Conv2d:residual_forward), the same sum without
-- a pass over the output.
local class = require "siamese.class"
local Branches = require "siamese.nn.Branches"
local Module = require "siamese.nn.Module"
local util = require "siamese.nn.util"

local Add = class("Add", Branches)

-- Branch 1 and its last module when branch 2 is the identity and that
-- module can add a residual, else nil.
local function residual_body(self)
  local body, shortcut = self.modules[1], self.modules[2]
  if #self.modules ~= 2 or not shortcut or shortcut.__name ~= "Identity" or not body.modules then return nil end
  local last = body.modules[#body.modules]
  if last and last.residual_forward then return body, last end
  return nil
end

function Add:updateOutput(input)
  if not self.train then
    local body, last = residual_body(self)
    if body then
      local h = input
      for i = 1, #body.modules - 1 do h = body.modules[i]:forward(h) end
      local y = last:residual_forward(h, input, self.output)
      if y then
        self.output = y
        return y
      end
      -- not fused: the rest of the branch, then the sum
      y = last:forward(h)
      body.output = y
      local z = self.modules[2]:forward(input)
      if y:numel() ~= z:numel() or #y:shape() ~= #z:shape() then
        self:fail("branch 2 gives %s, branch 1 gave %s", util.shape_str(z), util.shape_str(y))
      end
      self.output = Module.buffer(self.output, y:shape())
      self.output:copy(y)
      return self.output:add_(z)
    end
  end
  for i, m in ipairs(self.modules) do
    local y = m:forward(input)
    if i == 1 then
      self.output = Module.buffer(self.output, y:shape())
      self.output:copy(y)
    else
      if y:numel() ~= self.output:numel() or #y:shape() ~= #self.output:shape() then
        self:fail("branch %d gives %s, branch 1 gave %s", i, util.shape_str(y), util.shape_str(self.output))
      end
      self.output:add_(y)
    end
  end
  return self.output
end

function Add:part(_, gradOutput)
  return gradOutput
end

return Add
