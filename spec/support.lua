-- Helpers shared by the specs (files and folders). Load with
-- `local support = dofile("spec/support.lua")`.
local support = {}

--- A new empty directory under /tmp.
function support.temp_dir(tag)
  local p = assert(io.popen("mktemp -d /tmp/siamese_" .. (tag or "spec") .. ".XXXXXX"))
  local dir = p:read("l")
  p:close()
  return dir
end

--- Sorted names in a directory (hidden ones included).
function support.list_dir(dir)
  local p = assert(io.popen("ls -A '" .. dir .. "'"))
  local names = {}
  for line in p:lines() do names[#names + 1] = line end
  p:close()
  table.sort(names)
  return names
end

--- Removes a directory and the files in it.
function support.remove_dir(dir)
  for _, name in ipairs(support.list_dir(dir)) do os.remove(dir .. "/" .. name) end
  os.remove(dir)
end

--- The bytes of a file.
function support.read_file(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

--- Writes bytes to a file.
function support.write_file(path, bytes)
  local f = assert(io.open(path, "wb"))
  f:write(bytes)
  f:close()
end

--- Calls fn and checks it raises an error whose message contains every text.
function support.assert_error(fn, ...)
  local ok, err = pcall(fn)
  assert(not ok, "no error raised")
  for _, text in ipairs{...} do
    assert(tostring(err):find(text, 1, true), "error '" .. tostring(err) .. "' does not contain '" .. text .. "'")
  end
end

--- Checks |got - want| <= tol, naming `what` otherwise.
function support.near(got, want, tol, what)
  assert(math.abs(got - want) <= tol,
    string.format("%s: got %.9g, expected %.9g (tolerance %g)", what or "value", got, want, tol))
end

--- A JSON file decoded (fixtures).
function support.read_json(path)
  local json = require "siamese.json"
  return assert(json.decode(support.read_file(path)))
end

return support
