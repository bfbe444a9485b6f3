--- Shared parts of containers: children, parameters and state gathered
-- from them. State keys are prefixed with the child's 0-based position
-- ("0.weight", "1.running_mean"), as PyTorch names an nn.Sequential's, so
-- its files load directly.
local class = require "siamese.class"
local Module = require "siamese.nn.Module"

local Container = class("Container", Module)

function Container:__init(modules)
  Module.__init(self)
  self.modules = {}
  for _, m in ipairs(modules or {}) do self:add(m) end
end

function Container:add(m)
  if type(m) ~= "table" or not m.updateOutput then
    error(self.__name .. ":add expects a module, got " .. tostring(m), 2)
  end
  self.modules[#self.modules + 1] = m
  return self
end

function Container:children()
  return self.modules
end

function Container:parameters()
  local p, g = {}, {}
  for _, m in ipairs(self.modules) do
    local mp, mg = m:parameters()
    for i = 1, #mp do p[#p + 1], g[#g + 1] = mp[i], mg[i] end
  end
  return p, g
end

function Container:state()
  local s = {}
  for i, m in ipairs(self.modules) do
    for k, v in pairs(m:state()) do s[(i - 1) .. "." .. k] = v end
  end
  return s
end

function Container:__tostring()
  local lines = {self.__name .. " {"}
  for i, m in ipairs(self.modules) do
    lines[#lines + 1] = string.format("  (%d) %s", i, tostring(m):gsub("\n", "\n  "))
  end
  lines[#lines + 1] = "}"
  return table.concat(lines, "\n")
end

return Container
