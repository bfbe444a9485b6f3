--- siamese.fs: the few file-system operations the commands need, through
-- LuaFileSystem (Debian's lua-filesystem, module "lfs") — never a shell
-- command, so no path is ever parsed by a shell.
--
--   local fs = require "siamese.fs"
--   assert(fs.mkdir_p("build/lfw/run 1"))   -- creates the parents too
--   fs.kind("build/lfw")                     --> "directory"
--   fs.size("office.gallery")                --> bytes, or nil, message
--   local names, is_dir = fs.list_dir("photos") -- {"a.jpg", "bob"}, {false, true}
local lfs = require "lfs"
local argcheck = require "siamese.argcheck"

local fs = {}

--- What a path is: "file", "directory", another lfs mode ("link" is
-- followed), or nil when nothing is there.
function fs.kind(path)
  return lfs.attributes(path, "mode")
end

--- The size of a file in bytes; nil, message when it cannot be read.
function fs.size(path)
  local size, err = lfs.attributes(path, "size")
  if not size then return nil, path .. ": " .. tostring(err) end
  return size
end

--- The entries of a directory: names (every entry but "." and "..",
-- hidden ones included, in byte order) and is_dir, a parallel list of
-- booleans, true where the entry is a directory or a link to one (links
-- are followed; a broken link is not a directory). Returns nil and
-- "path: reason" when the directory cannot be read.
function fs.list_dir(path)
  if type(path) ~= "string" then argcheck.error("list_dir", 1, "string expected, got %s", type(path)) end
  if path:find("\0", 1, true) then return nil, "list_dir: the path contains a zero byte" end
  local ok, iter, state = pcall(lfs.dir, path)
  if not ok then return nil, (tostring(iter):gsub("^cannot open ", "")) end
  local names = {}
  for name in iter, state do
    if name ~= "." and name ~= ".." then names[#names + 1] = name end
  end
  table.sort(names)
  local is_dir = {}
  for i, name in ipairs(names) do
    is_dir[i] = lfs.attributes(path .. "/" .. name, "mode") == "directory"
  end
  return names, is_dir
end

--- Creates a directory and its missing parents (like mkdir -p). Returns
-- true (also when it already exists), or nil and a message naming the
-- part of the path that could not be made.
function fs.mkdir_p(path)
  if type(path) ~= "string" or path == "" then
    return nil, "mkdir: the path is empty"
  end
  if path:find("\0", 1, true) then return nil, "mkdir: the path contains a zero byte" end
  local prefix = path:sub(1, 1) == "/" and "/" or ""
  local sofar = prefix
  for part in path:gmatch("[^/]+") do
    sofar = (sofar == "" or sofar == "/") and sofar .. part or sofar .. "/" .. part
    local mode = lfs.attributes(sofar, "mode")
    if mode == nil then
      local ok, err = lfs.mkdir(sofar)
      -- another process may have made it meanwhile
      if not ok and lfs.attributes(sofar, "mode") ~= "directory" then
        return nil, sofar .. ": " .. tostring(err)
      end
    elseif mode ~= "directory" then
      return nil, sofar .. ": exists and is not a directory"
    end
  end
  return true
end

return fs
