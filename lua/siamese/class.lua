--- siamese.class: minimal single-inheritance classes.
--   local Conv2d = class("Conv2d", Module)
--   function Conv2d:__init(...) Module.__init(self) ... end
--   local layer = Conv2d(3, 16, 3)      -- calling the class makes an instance
local function class(name, parent)
  local cls = {}
  cls.__index = cls
  cls.__name = name
  cls.__tostring = parent and parent.__tostring or function(self) return self.__name end
  cls.super = parent
  setmetatable(cls, {
    __index = parent,
    __call = function(c, ...)
      local obj = setmetatable({}, c)
      obj:__init(...)
      return obj
    end,
    __tostring = function() return "class " .. name end,
  })
  if not parent then
    function cls.__init() end
  end
  return cls
end

return class
