--- Command-line parsing for the siamese commands.
-- spec: { name = {kind = "string" | "number" | "flag", default = ..., choices = {...}} }
-- Accepts --name value, --name=value and flags (--json); "--" ends options.
-- Returns options, positionals; or nil, message.
local args = {}

function args.parse(argv, spec, first)
  local opts, pos = {}, {}
  for name, s in pairs(spec) do opts[name] = s.default end
  local i = first or 1
  while i <= #argv do
    local a = argv[i]
    if a == "--" then
      for j = i + 1, #argv do pos[#pos + 1] = argv[j] end
      break
    end
    local name, value = a:match("^%-%-([%w%-_]+)=(.*)$")
    if not name then name = a:match("^%-%-([%w%-_]+)$") end
    if name then
      local key = name:gsub("%-", "_")
      local s = spec[key]
      if not s then return nil, "unknown option --" .. name end
      if s.kind == "flag" then
        if value then return nil, "option --" .. name .. " takes no value" end
        opts[key] = true
      else
        if not value then
          i = i + 1
          value = argv[i]
          if value == nil then return nil, "option --" .. name .. " needs a value" end
        end
        if s.kind == "number" then
          local n = tonumber(value)
          if not n then return nil, "option --" .. name .. " needs a number, got '" .. value .. "'" end
          value = n
        end
        if s.choices then
          local ok = false
          for _, c in ipairs(s.choices) do if c == value then ok = true end end
          if not ok then
            return nil, string.format("option --%s must be one of %s, got '%s'", name, table.concat(s.choices, ", "), value)
          end
        end
        opts[key] = value
      end
    elseif a:match("^%-%-") or (a:match("^%-%a") and a ~= "-") then
      return nil, "unknown option " .. a
    else
      pos[#pos + 1] = a
    end
    i = i + 1
  end
  return opts, pos
end

return args
