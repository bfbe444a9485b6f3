--- siamese command line: `siamese COMMAND [options]`. Each command is a
-- module siamese.cli.<command> with fields `summary`, `usage` and
-- `run(argv) -> exit code`. Errors: message on stderr, exit code 2.
local cli = {}

local COMMANDS = {"embed", "enroll", "verify", "identify", "attendance", "calibrate", "eval", "serve"}

local function usage()
  local lines = {"usage: siamese COMMAND [options] ...", "", "commands:"}
  for _, name in ipairs(COMMANDS) do
    lines[#lines + 1] = string.format("  %-11s %s", name, require("siamese.cli." .. name).summary)
  end
  lines[#lines + 1] = ""
  lines[#lines + 1] = "siamese COMMAND --help shows a command's options."
  return table.concat(lines, "\n")
end

--- Prints a usage error and returns the error exit code.
function cli.fail(msg, usage_text)
  io.stderr:write("siamese: ", msg, "\n")
  if usage_text then io.stderr:write(usage_text, "\n") end
  return 2
end

--- True when argv asks for help.
function cli.wants_help(argv)
  for _, a in ipairs(argv) do
    if a == "--help" or a == "-h" then return true end
  end
  return false
end

function cli.main(argv)
  local name = argv[1]
  if name == nil or name == "--help" or name == "-h" or name == "help" then
    print(usage())
    return name and 0 or 2
  end
  local known = false
  for _, c in ipairs(COMMANDS) do if c == name then known = true end end
  if not known then return cli.fail("unknown command '" .. name .. "'", usage()) end
  local cmd = require("siamese.cli." .. name)
  local rest = {}
  for i = 2, #argv do rest[#rest + 1] = argv[i] end
  if cli.wants_help(rest) then
    print(cmd.usage)
    return 0
  end
  local ok, code = pcall(cmd.run, rest)
  if not ok then return cli.fail(tostring(code)) end
  return code
end

return cli
