-- The Lua tiers, read from the sources' require calls: the library
-- (lua/siamese outside app/) never requires the applications
-- (lua/siamese/app: the command line, the web server, the attendance
-- register) nor the siamese facade, and no module takes part in a require
-- cycle, so each can be loaded and understood from the ones below it.
local support = dofile("spec/support.lua")

local ROOT = "lua/"

-- The .lua files below dir (a path under ROOT), in name order.
local function lua_files(dir, out)
  local names, is_dir = assert(require("siamese.fs").list_dir(ROOT .. dir))
  for i, name in ipairs(names) do
    local path = dir .. "/" .. name
    if is_dir[i] then lua_files(path, out) elseif name:match("%.lua$") then out[#out + 1] = path end
  end
  return out
end

-- Every module under lua/siamese: name -> {path, requires = {names}}.
local function read_modules()
  local modules = {}
  for _, path in ipairs(lua_files("siamese", {})) do
    local name = path:gsub("%.lua$", ""):gsub("/init$", ""):gsub("/", ".")
    -- the code without its comments (a usage line in a comment is not a require)
    local src = support.read_file(ROOT .. path):gsub("%-%-%[(=*)%[.-%]%1%]", ""):gsub("%-%-[^\n]*", "")
    local requires, seen = {}, {}
    for dep in src:gmatch("require%s*%(?%s*[\"']([%w_.]+)[\"']") do
      if dep:match("^siamese") and not seen[dep] then
        seen[dep] = true
        requires[#requires + 1] = dep
      end
    end
    modules[name] = {path = ROOT .. path, requires = requires}
  end
  return modules
end

local function is_app(name) return name:match("^siamese%.app%.") or name == "siamese.app" end

describe("the Lua tiers", function()
  local modules = read_modules()

  it("finds the library and the applications", function()
    for _, m in ipairs{"siamese", "siamese.tensor", "siamese.face", "siamese.gallery", "siamese.app.cli",
                       "siamese.app.web.server", "siamese.app.attendance"} do
      assert.truthy(modules[m], "no module " .. m)
    end
  end)

  it("keeps the library free of the applications and of the facade", function()
    for name, m in pairs(modules) do
      if not is_app(name) and name ~= "siamese" then
        for _, dep in ipairs(m.requires) do
          assert.falsy(is_app(dep), m.path .. " (library) requires " .. dep .. " (an application)")
          assert.are_not.equal("siamese", dep, m.path .. " requires the siamese facade; require the module it uses")
        end
      end
    end
  end)

  it("has no require cycle", function()
    local state = {}                      -- nil: unseen, 1: on the path, 2: done
    local function visit(name, path)
      state[name] = 1
      path[#path + 1] = name
      for _, dep in ipairs(modules[name] and modules[name].requires or {}) do
        if modules[dep] then
          if state[dep] == 1 then
            local from
            for i, n in ipairs(path) do if n == dep then from = i end end
            error("require cycle: " .. table.concat(path, " -> ", from) .. " -> " .. dep, 0)
          elseif state[dep] == nil then
            visit(dep, path)
          end
        end
      end
      path[#path] = nil
      state[name] = 2
    end
    local names = {}
    for name in pairs(modules) do names[#names + 1] = name end
    table.sort(names)
    for _, name in ipairs(names) do if state[name] == nil then visit(name, {}) end end
  end)

  it("gives the trained encoders the models folder without the face pipeline", function()
    for _, dep in ipairs(modules["siamese.encoder"].requires) do
      assert.falsy(dep:match("^siamese%.face"), "siamese.encoder requires " .. dep)
    end
  end)
end)
