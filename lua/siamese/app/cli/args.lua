--- Command-line parsing for the siamese commands, on argparse (Debian's
-- lua-argparse), so that every command parses and prints its help alike.
--
-- A command's option spec maps each option to its description:
--   { name = {kind = "string" | "number" | "flag", default = ..., choices = {...},
--             arg = "FILE" (the value's name in the help), help = "what it does"} }
-- The option is --name with "_" written "-" (max_pixels: --max-pixels; the
-- spelling with "_" is accepted too). Values: --name value or --name=value;
-- "--" ends the options. The last of repeated options wins.
--
--   local opts, pos = args.parse(argv, SPEC)        -- or nil, message
--   print(args.help(cmd))                           -- cmd.usage, cmd.description, cmd.spec, cmd.epilog
local argparse = require "argparse"

local args = {}

-- Option descriptions are wrapped to fit 79 columns after their
-- 27-column margin; descriptions and epilogs are printed as written.
local MARGIN, WIDTH = 27, 79

-- text with its words wrapped at width columns.
local function wrap(text, width)
  local lines, line = {}, nil
  for word in text:gmatch("%S+") do
    if line and #line + 1 + #word > width then
      lines[#lines + 1], line = line, word
    else
      line = line and line .. " " .. word or word
    end
  end
  lines[#lines + 1] = line
  return table.concat(lines, "\n")
end

-- The spec's names, sorted: the order of the options in the help.
local function sorted_names(spec)
  local names = {}
  for name in pairs(spec) do names[#names + 1] = name end
  table.sort(names)
  return names
end

-- A number from an option's text, or nil and the message.
local function number_of(flag)
  return function(text)
    local n = tonumber(text)
    if not n then return nil, string.format("argument for option '%s' must be a number, got '%s'", flag, text) end
    return n
  end
end

-- The argparse parser of a spec (cmd: usage, description, epilog for the help).
local function parser_of(spec, cmd)
  cmd = cmd or {}
  local p = argparse("siamese", cmd.description, cmd.epilog)
    :add_help(false):usage_max_width(WIDTH):help_description_margin(MARGIN)
  if cmd.usage then p:usage(cmd.usage) end
  for _, name in ipairs(sorted_names(spec)) do
    local s = spec[name]
    if type(s) ~= "table" or (s.kind ~= "string" and s.kind ~= "number" and s.kind ~= "flag") then
      error(string.format("bad argument #2 to 'parse' (option %s: kind must be string, number or flag)", name), 3)
    end
    local flag = "--" .. name:gsub("_", "-")
    local o = p:option(flag, s.help and wrap(s.help, WIDTH - MARGIN))
    if flag ~= "--" .. name then o:hidden_name("--" .. name) end
    o:target(name)
    if s.kind == "flag" then
      o:args(0):action("store_true")
    else
      o:argname(s.arg or (s.choices and table.concat(s.choices, "|")) or "VALUE")
      if s.choices then o:choices(s.choices) end
      if s.kind == "number" then o:convert(number_of(flag)) end
    end
  end
  p:argument("positionals"):args("*"):hidden(true)
  return p
end

--- Parses argv (from index first, default 1) against an option spec.
-- Returns the options (each spec default where not given) and the list
-- of positional arguments; or nil and a one-line message ("unknown
-- option '--nope'", "option --k needs a number, got 'x'").
function args.parse(argv, spec, first)
  -- "--name value" becomes "--name=value", so that a value may start
  -- with "-" ("--threshold -1" is refused by the command, not as an option).
  local list, i = {}, first or 1
  while i <= #argv do
    local a = argv[i]
    local name = a:match("^%-%-([%w%-_]+)$")
    local s = name and spec[(name:gsub("%-", "_"))]
    if s and s.kind ~= "flag" and argv[i + 1] ~= nil then
      list[#list + 1], i = a .. "=" .. argv[i + 1], i + 2
    else
      list[#list + 1], i = a, i + 1
      if a == "--" then
        for j = i, #argv do list[#list + 1] = argv[j] end
        break
      end
    end
  end
  local ok, result = parser_of(spec):pparse(list)
  if not ok then return nil, (result:gsub("\n(%u)", function(c) return "; " .. c:lower() end)) end
  local opts = {}
  for name, s in pairs(spec) do
    local v = result[name]
    if v == nil then v = s.default end
    opts[name] = v
  end
  return opts, result.positionals
end

--- The help of a command (argparse's format): cmd.usage (its usage
-- lines), cmd.description, then every option of cmd.spec with its
-- description, then cmd.epilog.
function args.help(cmd)
  return parser_of(cmd.spec or {}, cmd):get_help()
end

return args
