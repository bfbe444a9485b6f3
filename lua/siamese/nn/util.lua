--- Small helpers shared by the layer files.
local util = {}

--- "[2,3,4]" for messages (siamese.argcheck.shape).
util.shape_str = require("siamese.argcheck").shape

--- A number or a pair {a, b} as two numbers.
function util.pair(v, name)
  if type(v) == "number" then return v, v end
  if type(v) == "table" and #v == 2 then return v[1], v[2] end
  error(string.format("%s must be a number or a pair {a, b}, got %s", name, tostring(v)), 3)
end

--- Integer check for constructor arguments.
function util.check_int(v, name, min)
  if math.type(v) ~= "integer" or v < (min or 1) then
    error(string.format("%s must be an integer >= %d, got %s", name, min or 1, tostring(v)), 3)
  end
  return v
end

--- Contiguous version of a tensor (itself when already contiguous).
function util.contiguous(t)
  return t:is_contiguous() and t or t:contiguous()
end

return util
