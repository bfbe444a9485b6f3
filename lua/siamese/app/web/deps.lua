--- siamese.app.web.deps: makes the HTTP stack loadable under lua5.4.
--
-- The server runs on lua-cqueues (its event loop and sockets; the HTTP/1.1
-- framing is siamese.app.web.http1); the specs and the end-to-end test talk to
-- it with lua-http's client (https://github.com/daurnimator/lua-http).
-- Debian 12 packages lua-http for Lua 5.1-5.3 only, but it is pure Lua and its C
-- dependencies (lua-cqueues, lua-luaossl, lua-lpeg) are built for 5.4 too,
-- in /usr/lib/<triple>/lua/5.4 (`dpkg -L lua-cqueues`), which is already on
-- lua5.4's default package.cpath. What lua5.4 cannot see are the pure-Lua
-- modules installed for the older versions: http.* (/usr/share/lua/5.3 and
-- 5.1), and basexx, fifo, binaryheap, lpeg_patterns, compat53 (5.1). This
-- module appends those directories to package.path, after every 5.4 one,
-- so nothing already loadable under 5.4 is shadowed.
local deps = {}

local SHARE = {"/usr/share/lua/5.3", "/usr/share/lua/5.1"}
local LIB = {"/usr/local/lib/lua/5.4", "/usr/lib/x86_64-linux-gnu/lua/5.4",
             "/usr/lib/aarch64-linux-gnu/lua/5.4", "/usr/lib/lua/5.4"}

local function append(list, entry)
  for item in list:gmatch("[^;]+") do
    if item == entry then return list end
  end
  if list == "" then return entry end
  return list .. ";" .. entry
end

--- Extends package.path/cpath (once; idempotent) and loads cqueues (what
-- the server needs) and lua-http (what its clients in the specs use).
-- Returns true, or nil and a message saying which Debian package is missing.
function deps.setup()
  for _, dir in ipairs(SHARE) do
    package.path = append(package.path, dir .. "/?.lua")
    package.path = append(package.path, dir .. "/?/init.lua")
  end
  for _, dir in ipairs(LIB) do
    package.cpath = append(package.cpath, dir .. "/?.so")
  end
  local ok, err = pcall(require, "cqueues.socket")
  if ok then ok, err = pcall(require, "http.request") end
  if not ok then
    return nil, "siamese serve needs lua-http and lua-cqueues (Debian: apt-get install lua-http): "
      .. tostring(err):match("^[^\n]*")
  end
  return true
end

return deps
