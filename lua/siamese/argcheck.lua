--- siamese.argcheck: the argument checks Lua functions of the library
-- share, so that every misuse raises the same kind of message:
-- "bad argument #2 to 'chip' (expected 5 points {x, y}, got 4)".
--
--   local argcheck = require "siamese.argcheck"
--   if not argcheck.is_image(img) then
--     argcheck.error("chip", 1, "image expected, got %s", argcheck.typename(img))
--   end
local argcheck = {}

--- Raises "bad argument #argn to 'fname' (message)", blaming the caller of
-- the function that called argcheck.error (level 3).
function argcheck.error(fname, argn, fmt, ...)
  error(string.format("bad argument #%d to '%s' (" .. fmt .. ")", argn, fname, ...), 3)
end

--- Raises "bad argument #argn to 'fname' (msg)" as error(msg, level)
-- would from the function that calls raise: level 1 blames that
-- function, 2 its caller, and so on.
function argcheck.raise(level, fname, argn, msg)
  error(string.format("bad argument #%d to '%s' (%s)", argn, fname, msg), level + 1)
end

--- A tensor's shape for messages: "[2,3,4]".
function argcheck.shape(t)
  return "[" .. table.concat(t:shape(), ",") .. "]"
end

--- True for a siamese.image image.
function argcheck.is_image(v)
  local mt = type(v) == "userdata" and getmetatable(v)
  return type(mt) == "table" and mt.__name == "siamese.Image"
end

--- Raises "bad argument #argn to 'fname' (siamese.Image expected, got
-- TYPE)" unless v is an image, blaming the caller of the function that
-- called argcheck.image.
function argcheck.image(v, fname, argn)
  if not argcheck.is_image(v) then
    error(string.format("bad argument #%d to '%s' (siamese.Image expected, got %s)", argn, fname,
      argcheck.typename(v)), 3)
  end
end

--- The __name of v's metatable (e.g. "siamese.Image"), else type(v).
function argcheck.typename(v)
  local mt = getmetatable(v)
  return type(mt) == "table" and type(mt.__name) == "string" and mt.__name or type(v)
end

--- True for a finite number.
function argcheck.is_number(v)
  return type(v) == "number" and v == v and v > -math.huge and v < math.huge
end

return argcheck
