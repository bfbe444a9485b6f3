--- siamese command line: `siamese COMMAND [options]`. Each command is a
-- module siamese.app.cli.<command> with fields `summary`, `usage` (its usage
-- lines), `description`, `epilog`, `spec` (its options, siamese.app.cli.args)
-- and `run(argv) -> exit code`.
--
-- Conventions shared by every command (cli.main, cli.fail):
--   * errors: one line "siamese: MESSAGE" on stderr and exit status 2. A
--     usage error (cli.fail given the command's usage text) ends that line
--     with "(see siamese CMD --help)" instead of printing the usage text.
--   * --json anywhere before "--": errors are also printed on stdout as one
--     JSON object {"error": "MESSAGE"} (stderr still gets the line above, for
--     people watching a terminal; scripts read stdout). Exit status unchanged.
--   * --help / -h prints the command's help (siamese.app.cli.args.help: usage,
--     description, every option with its description), --version
--     "siamese 0.1.0".
--   * Ctrl-C (SIGINT): "siamese: interrupted" on stderr (and {"error":
--     "interrupted"} on stdout with --json), exit status 130, no traceback.
local cli = {}

local COMMANDS = {"embed", "compare", "enroll", "verify", "identify", "attendance", "gallery", "calibrate", "eval",
                  "serve", "token", "audit", "watch"}
local KNOWN = {}
for _, c in ipairs(COMMANDS) do KNOWN[c] = true end

-- The invocation being run: json (--json given), command (its name).
cli.json = false
cli.command = nil

local function usage()
  local lines = {"usage: siamese COMMAND [options] ...", "", "commands:"}
  for _, name in ipairs(COMMANDS) do
    lines[#lines + 1] = string.format("  %-11s %s", name, require("siamese.app.cli." .. name).summary)
  end
  lines[#lines + 1] = ""
  lines[#lines + 1] = "siamese COMMAND --help shows a command's options; siamese --version the version."
  return table.concat(lines, "\n")
end

--- The version line: "siamese 0.1.0".
function cli.version()
  return require("siamese")._VERSION
end

-- "see siamese CMD --help" for a usage text (its first line names the
-- command) or, without one, the command being run.
local function help_hint(usage_text)
  local cmd = type(usage_text) == "string" and usage_text:match("^%s*usage: siamese ([%w_]+)") or nil
  if not KNOWN[cmd] then cmd = KNOWN[cli.command] and cli.command or nil end
  return cmd and ("see siamese " .. cmd .. " --help") or "see siamese --help"
end

local function print_json_error(msg)
  local json = require "siamese.json"
  io.stdout:write(json.encode{error = msg}, "\n")
  io.stdout:flush()
end

-- True when an error message is Lua's SIGINT error (lua.c's hook raises
-- "interrupted!", with the position of the code it stopped).
local function is_interrupt(msg)
  return type(msg) == "string" and msg:match("interrupted!$") ~= nil
end

-- True while a progress line ("\rlabel: i/n ...") is left open on stderr.
cli.line_open = false

--- Wraps a progress printer p(i, n) (siamese.app.cli.output.progress) so that
-- an interruption starts its message on a new line.
function cli.track_progress(p)
  return function(i, n)
    p(i, n)
    cli.line_open = i < n
  end
end

--- Reports an interruption (Ctrl-C) and returns its exit status, 130.
function cli.interrupted()
  io.stdout:flush()
  if cli.line_open then io.stderr:write("\n") end
  cli.line_open = false
  if cli.json then print_json_error("interrupted") end
  io.stderr:write("siamese: interrupted\n")
  return 130
end

--- Prints an error and returns the error exit status (2). usage_text
-- (the command's usage, or true) marks a usage error: the line then ends
-- with "(see siamese CMD --help)". With --json the error is also printed
-- on stdout as {"error": msg}. An interruption caught on its way (a
-- command that reports the message of a failed pcall) is reported as one.
function cli.fail(msg, usage_text)
  msg = tostring(msg)
  if is_interrupt(msg) then return cli.interrupted() end
  local line = msg
  if usage_text then line = msg .. " (" .. help_hint(usage_text) .. ")" end
  if cli.json then print_json_error(msg) end
  if cli.line_open then io.stderr:write("\n") end
  cli.line_open = false
  io.stderr:write("siamese: ", line, "\n")
  return 2
end

-- True when argv has the flag (or one of its spellings) before "--".
local function has_flag(argv, a, b)
  for _, x in ipairs(argv) do
    if x == "--" then return false end
    if x == a or (b and x == b) then return true end
  end
  return false
end

--- True when argv asks for help.
function cli.wants_help(argv)
  return has_flag(argv, "--help", "-h")
end

local function dispatch(argv)
  local name = argv[1]
  if name == nil or name == "--help" or name == "-h" or name == "help" then
    print(usage())
    return name and 0 or 2
  end
  if name == "--version" or name == "version" then
    print(cli.version())
    return 0
  end
  if name:match("^%-") then return cli.fail("unknown option '" .. name .. "'", true) end
  if not KNOWN[name] then return cli.fail("unknown command '" .. name .. "'", true) end
  cli.command = name
  local cmd = require("siamese.app.cli." .. name)
  local rest = {}
  for i = 2, #argv do rest[#rest + 1] = argv[i] end
  if cli.wants_help(rest) then
    print(require("siamese.app.cli.args").help(cmd.help_for and cmd.help_for(rest) or cmd))
    return 0
  end
  if has_flag(rest, "--version") then
    print(cli.version())
    return 0
  end
  return cmd.run(rest)
end

--- Runs a command line (argv without the program name); returns the exit
-- status. Nothing raised escapes: errors are reported by cli.fail, Ctrl-C
-- by cli.interrupted.
function cli.main(argv)
  cli.json, cli.command = has_flag(argv, "--json"), nil
  local ok, code = xpcall(dispatch, function(e)
    if is_interrupt(e) then return {interrupted = true} end
    return e
  end, argv)
  if ok then return code end
  if type(code) == "table" and code.interrupted then return cli.interrupted() end
  return cli.fail(tostring(code))
end

return cli
