--- siamese audit: shows the audit log of a gallery, "<gallery>.audit"
-- (siamese.app.web.audit): what the web server decided and what was changed,
-- by whom and when.
--
-- Also the helpers with which the commands that change a gallery or its
-- tokens (enroll, gallery remove/rename, token add/revoke) record what
-- they did:
--
--   local audit_cli = require "siamese.app.cli.audit"
--   local log <close>, code = audit_cli.open_for_change(opts.gallery)
--   if not log then return code end          -- reported: nothing was changed
--   ... make the change ...
--   local ok, err = audit_cli.record(log, {{action = "remove", name = name, detail = "2 templates"}})
--   ... print what was done (with --json, add audit_error = err) ...
--   if not ok then return audit_cli.unrecorded("removed " .. name, err) end
--
-- The log is opened BEFORE the change, and a log that cannot be opened
-- (damaged, permissions too open, lua-sql-sqlite3 missing, no such
-- directory) stops the command with nothing changed: no change goes
-- unrecorded because of a bad log. The record is written after the change
-- (or the refusal); when that fails, the change has been made: the command
-- says so, and that it is not in the log, and exits with status 2.
local args = require "siamese.app.cli.args"
local json = require "siamese.json"

local audit_cmd = {
  summary = "show a gallery's audit log: who changed or asked what, and when",
  usage = [=[
usage: siamese audit --gallery FILE [--since TIME] [--action A] [--name N]
                     [--limit N] [--json]]=],
  description = [[
Prints the events of FILE.audit, oldest first: what the web server
(siamese serve) decided, and every change made to the gallery or its
tokens by the web API or the command line. Each event has an id, a time
(UTC), who (role: admin or door for a token of the web API, with the
token's id; local for a command run on this machine, with client
"cli:USER"; the client's address for the web), the action, the person,
the distance and threshold of a decision, accepted (yes, no, or - for
what is not a decision) and details.

The command line records: enroll (one event per person: enrolled, or
refused with the reasons), remove, rename (detail "renamed to NEW"),
token-add (detail "ID ROLE LABEL") and token-revoke (detail the ID). The
log is append-only (no event can be changed or deleted through it), mode
0600; one that group or others may read or write is refused.]],
  epilog = [[
A gallery without a log prints "FILE.audit: no audit log" (with --json, no
events) and creates nothing.

exit status: 0 shown (also when there is nothing to show), 2 error (usage,
a damaged log or one with too open permissions, lua-sql-sqlite3 missing).]],
}

local SPEC = {
  gallery = {kind = "string", arg = "FILE", help = "the gallery whose log to show (FILE.audit)"},
  since = {kind = "string",
           arg = "TIME", help = "events at or after TIME, in UTC as the log keeps it: YYYY-MM-DD or "
             .. "YYYY-MM-DDTHH:MM[:SS]Z"},
  action = {kind = "string",
            arg = "A", help = "only the events of that action (verify, identify, enroll, remove, rename, "
              .. "token-add, token-revoke, ...)"},
  name = {kind = "string", arg = "N", help = "only the events about that person (the exact name)"},
  limit = {kind = "number",
           arg = "N", help = "the N most recent events (a positive integer; still printed oldest first)"},
  json = {kind = "flag", default = false,
          help = 'print {"log", "events": [{"id", "at", "role", "token_id", "client", "action", "name", '
            .. '"distance", "threshold", "accepted", "detail"}]} (null where the event has no value; '
            .. "distances as stored; bytes that are not UTF-8 shown as U+FFFD)"},
}
audit_cmd.spec = SPEC

-- ------------------------------------------------ helpers for the commands

--- Opens the audit log of gallery before a change: the log, or nil and
-- the exit status (2) after reporting "cannot open the audit log FILE:
-- REASON; nothing was changed".
function audit_cmd.open_for_change(gallery)
  local cli = require "siamese.app.cli"
  local audit = require "siamese.app.web.audit"
  local path = audit.path_for(gallery)
  local log, err = audit.open(path)
  if log then return log end
  err = tostring(err)
  if err:sub(1, #path + 2) == path .. ": " then err = err:sub(#path + 3) end
  return nil, cli.fail(string.format("cannot open the audit log %s: %s; nothing was changed", path, err))
end

--- Appends events (tables for siamese.app.web.audit's Log:record; role and
-- client are set to audit.local_actor()'s, token_id cleared: the command
-- line presents no token) and closes the log. Returns true, or nil,
-- message (the events before the failing one are recorded).
function audit_cmd.record(log, events)
  local audit = require "siamese.app.web.audit"
  local who = audit.local_actor()
  for _, ev in ipairs(events) do
    ev.role, ev.client, ev.token_id = who.role, who.client, nil
    local ok, err = log:record(ev)
    if not ok then
      log:close()
      return nil, tostring(err)
    end
  end
  log:close()
  return true
end

--- Reports a change made but not recorded (done says what was done):
-- "siamese: DONE, but the audit log could not record it: MESSAGE" on
-- stderr. Returns the exit status, 2.
function audit_cmd.unrecorded(done, err)
  io.stdout:flush()
  io.stderr:write(string.format("siamese: %s, but the audit log could not record it: %s\n", done, tostring(err)))
  return 2
end

-- ------------------------------------------------------------- the command

-- Walks s by UTF-8 characters: calls each(char, codepoint) for a valid
-- one, each(byte, nil) for a byte that is not part of one.
local function each_char(s, each)
  local i, n = 1, #s
  while i <= n do
    local ok, cp = pcall(utf8.codepoint, s, i)
    if ok then
      local c = utf8.char(cp)
      each(c, cp)
      i = i + #c
    else
      each(s:sub(i, i), nil)
      i = i + 1
    end
  end
end

-- Characters that reorder or hide text on a terminal (bidirectional
-- controls, zero-width characters).
local function invisible(cp)
  return (cp >= 0x200B and cp <= 0x200F) or (cp >= 0x202A and cp <= 0x202E) or (cp >= 0x2066 and cp <= 0x2069)
    or cp == 0xFEFF
end

-- A value for a terminal: control characters and bytes that are not UTF-8
-- as \xNN, invisible and bidirectional characters as \u{NNNN} (a log may
-- hold any bytes a web client sent).
local function shown(s)
  local out = {}
  each_char(tostring(s), function(c, cp)
    if cp == nil or cp < 0x20 or cp == 0x7F then
      out[#out + 1] = string.format("\\x%02X", c:byte())
    elseif (cp >= 0x80 and cp < 0xA0) or invisible(cp) then
      out[#out + 1] = string.format("\\u{%04X}", cp)
    else
      out[#out + 1] = c
    end
  end)
  return table.concat(out)
end

-- Text for JSON: each byte that is not part of valid UTF-8 becomes U+FFFD.
local function utf8_text(s)
  if s == nil then return json.null end
  if utf8.len(s) then return s end
  local out = {}
  each_char(s, function(c, cp) out[#out + 1] = cp and c or "\u{FFFD}" end)
  return table.concat(out)
end

-- A UTC time for --since: "YYYY-MM-DD" or "YYYY-MM-DDTHH:MM[:SS]Z", the
-- fields in range. Returns the text the log compares with, or nil.
local function since_text(t)
  local y, mo, d, rest = t:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)(.*)$")
  if not y then return nil end
  y, mo, d = tonumber(y), tonumber(mo), tonumber(d)
  local days = {31, (y % 4 == 0 and (y % 100 ~= 0 or y % 400 == 0)) and 29 or 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31}
  if mo < 1 or mo > 12 or d < 1 or d > days[mo] then return nil end
  local date = string.format("%04d-%02d-%02d", y, mo, d)
  if rest == "" then return date end
  local h, mi, sec = rest:match("^T(%d%d):(%d%d):(%d%d)Z$")
  if not h then
    h, mi = rest:match("^T(%d%d):(%d%d)Z$")
    sec = "00"
  end
  if not h then return nil end
  h, mi, sec = tonumber(h), tonumber(mi), tonumber(sec)
  if h > 23 or mi > 59 or sec > 59 then return nil end
  return string.format("%sT%02d:%02d:%02dZ", date, h, mi, sec)
end

local COLUMNS = {
  {"id", function(e) return tostring(e.id) end},
  {"time", function(e) return e.at end},
  {"role", function(e) return e.role end},
  {"token", function(e) return e.token_id end},
  {"client", function(e) return e.client end},
  {"action", function(e) return e.action end},
  {"name", function(e) return e.name end},
  {"distance", function(e) return e.distance and string.format("%.4f", e.distance) end},
  {"threshold", function(e) return e.threshold and string.format("%.4f", e.threshold) end},
  {"accepted", function(e) if e.accepted == nil then return nil end return e.accepted and "yes" or "no" end},
  {"detail", function(e) return e.detail end},
}

local function width(s)
  return utf8.len(s) or #s
end

local function table_of(events)
  local rows = {}
  local widths = {}
  for c, col in ipairs(COLUMNS) do widths[c] = width(col[1]) end
  for r, e in ipairs(events) do
    local row = {}
    for c, col in ipairs(COLUMNS) do
      local v = col[2](e)
      row[c] = v == nil and "-" or shown(v)
      widths[c] = math.max(widths[c], width(row[c]))
    end
    rows[r] = row
  end
  local lines = {}
  local function line(cells)
    local parts = {}
    for c, cell in ipairs(cells) do
      parts[c] = c == #COLUMNS and cell or cell .. string.rep(" ", widths[c] - width(cell))
    end
    lines[#lines + 1] = "  " .. table.concat(parts, "  ")
  end
  local head = {}
  for c, col in ipairs(COLUMNS) do head[c] = col[1] end
  line(head)
  for _, row in ipairs(rows) do line(row) end
  return table.concat(lines, "\n")
end

local function event_json(e)
  local n = function(v) if v == nil then return json.null end return v end
  return {id = e.id, at = utf8_text(e.at), role = utf8_text(e.role), token_id = utf8_text(e.token_id),
          client = utf8_text(e.client), action = utf8_text(e.action), name = utf8_text(e.name),
          distance = n(e.distance), threshold = n(e.threshold), accepted = n(e.accepted), detail = utf8_text(e.detail)}
end

function audit_cmd.run(argv)
  local cli = require "siamese.app.cli"
  local opts, pos = args.parse(argv, SPEC)
  if not opts then return cli.fail(pos, audit_cmd.usage) end
  if #pos > 0 then
    return cli.fail(string.format("audit takes no argument, got %d argument%s", #pos, #pos == 1 and "" or "s"),
      audit_cmd.usage)
  end
  if not opts.gallery then return cli.fail("--gallery FILE is required", audit_cmd.usage) end
  local filter = {}
  if opts.since then
    filter.since = since_text(opts.since)
    if not filter.since then
      return cli.fail("--since must be a UTC date or time YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS]Z, got '"
        .. shown(opts.since) .. "'", audit_cmd.usage)
    end
  end
  for _, k in ipairs{"action", "name"} do
    if opts[k] ~= nil then
      if opts[k] == "" then return cli.fail("--" .. k .. " must not be empty", audit_cmd.usage) end
      filter[k] = opts[k]
    end
  end
  if opts.limit ~= nil then
    local limit = math.tointeger(opts.limit)
    if not limit or limit < 1 then
      return cli.fail("--limit must be a positive integer, got " .. tostring(opts.limit), audit_cmd.usage)
    end
    filter.limit = limit
  end

  local audit = require "siamese.app.web.audit"
  local path = audit.path_for(opts.gallery)
  -- Looking never creates a log: audit.open would.
  if not require("siamese.pg").is_url(path) and require("lfs").symlinkattributes(path, "mode") == nil then
    if opts.json then
      print(json.encode{log = path, events = json.array{}})
    else
      print(path .. ": no audit log")
    end
    return 0
  end
  local log <close>, err = audit.open(path)
  if not log then return cli.fail(err) end
  local events, eerr = log:events(filter)
  if not events then return cli.fail(eerr) end
  log:close()
  if opts.json then
    local list = {}
    for i, e in ipairs(events) do list[i] = event_json(e) end
    print(json.encode{log = path, events = json.array(list)})
    return 0
  end
  local filtered = next(filter) ~= nil
  if #events == 0 then
    print(string.format("%s: no events%s", path, filtered and " match" or ""))
    return 0
  end
  print(string.format("%s: %d event%s%s", path, #events, #events == 1 and "" or "s",
    filtered and " (filtered)" or ""))
  print(table_of(events))
  return 0
end

return audit_cmd
