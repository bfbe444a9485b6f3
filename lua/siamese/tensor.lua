--- siamese.tensor: float32 tensors (up to 8 dimensions) in C.
-- Constructors live here; methods are on the tensors themselves
-- (`t:narrow(1, 2, 3)`, `t:add(u)`, ...). Indices and dimensions are 1-based.
local core = require "siamese.core"

local tensor = {}
for name, fn in pairs(core.tensor) do
  tensor[name] = fn
end

--- Concatenates tensors along dimension dim (default 1); all other sizes
-- must agree.
function tensor.cat(list, dim)
  dim = dim or 1
  assert(type(list) == "table" and #list > 0, "cat: expects a non-empty list of tensors")
  local shape = list[1]:shape()
  if dim < 1 or dim > #shape then
    error(string.format("cat: dimension %d out of range for %d-D tensors", dim, #shape), 2)
  end
  local total = 0
  for i, t in ipairs(list) do
    local s = t:shape()
    for d = 1, #shape do
      if #s ~= #shape or (d ~= dim and s[d] ~= shape[d]) then
        error(string.format("cat: tensor %d has shape [%s], expected [%s] apart from dimension %d",
          i, table.concat(s, ","), table.concat(shape, ","), dim), 2)
      end
    end
    total = total + s[dim]
  end
  shape[dim] = total
  local out = tensor.zeros(shape)
  local at = 1
  for _, t in ipairs(list) do
    local n = t:shape(dim)
    out:narrow(dim, at, n):copy(t)
    at = at + n
  end
  return out
end

return tensor
