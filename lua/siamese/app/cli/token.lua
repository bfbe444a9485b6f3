--- siamese token: the bearer tokens of the web server (siamese.app.web.tokens),
-- kept in "<gallery>.tokens": add one, list them, revoke one. add and
-- revoke are recorded in the gallery's audit log (siamese.app.cli.audit).
local args = require "siamese.app.cli.args"
local json = require "siamese.json"
local audit_cli = require "siamese.app.cli.audit"

local token_cmd = {
  summary = "add, list or revoke the web server's access tokens",
  usage = [=[
usage: siamese token add --gallery FILE --role admin|door [--label TEXT] [--json]
       siamese token list --gallery FILE [--json]
       siamese token revoke --gallery FILE ID [--json]]=],
  description = [[
The tokens of the web server (siamese serve) live in FILE.tokens, next to
the gallery, mode 0600 (a store group or others may read or write is
refused). A client sends one as "Authorization: Bearer TOKEN".

add: makes a token of the role and prints it. This is the only time it is
shown: the store keeps its SHA-256 hash, never the token itself. admin
tokens may enrol, remove, rename and list people; door tokens may verify
and identify.
list: the tokens' ids, roles, labels and creation times (never secrets).
revoke: forgets the token with that ID (as list shows it); the server
refuses it from its next request on.
add and revoke are recorded in FILE.audit (siamese audit shows them:
token-add with "ID ROLE LABEL", token-revoke with the ID; never the
token). The log is opened first: when it cannot be (damaged, permissions
too open, lua-sql-sqlite3 missing), nothing is changed.]],
  epilog = [[
exit status: 0 done, 2 error (usage, unknown ID, a damaged store or one
with too open permissions, an audit log that cannot be opened, or done but
not recorded in the audit log: the message says so, and --json adds
"audit_error").]],
}

local SPEC = {
  gallery = {kind = "string", arg = "FILE", help = "the gallery whose tokens these are (FILE.tokens)"},
  role = {kind = "string", choices = {"admin", "door"},
          arg = "admin|door", help = "add: the role of the new token"},
  label = {kind = "string",
           arg = "TEXT", help = "add: a note for people (who or what holds it; at most 100 bytes, no "
             .. "control characters)"},
  json = {kind = "flag", default = false,
          help = 'print one JSON object: add {"store", "id", "role", "label", "created", "token"}; list '
            .. '{"store", "tokens": [{"id", "role", "label", "created"}]}; revoke {"store", "revoked"}'},
}
token_cmd.spec = SPEC

local ACTIONS = {add = 1, list = 1, revoke = 2}

local function shown(s)
  return "'" .. tostring(s):gsub("[%c]", function(c) return string.format("\\x%02X", c:byte()) end) .. "'"
end

-- The problem of a --label, or nil: the rules store:add applies (checked
-- here too, so that a bad label is refused before the audit log is opened).
local function label_problem(label)
  local tokens = require "siamese.app.web.tokens"
  label = label:match("^%s*(.-)%s*$")
  if label == "" then return nil end
  if #label > tokens.MAX_LABEL then return string.format("the label is longer than %d bytes", tokens.MAX_LABEL) end
  if not utf8.len(label) then return "the label is not valid UTF-8" end
  if label:find("%c") then return "the label holds control characters" end
  return nil
end

local function add(store, opts, log)
  local cli = require "siamese.app.cli"
  local tok, e = store:add(opts.role, opts.label)
  if not tok then
    local usage_error = e:match("^the label") or e:match("^unknown role")
    return cli.fail((e:match("^the label") and "--label: " or "") .. e, usage_error and token_cmd.usage or nil)
  end
  local rok, rerr = audit_cli.record(log, {{action = "token-add", accepted = true,
                                            detail = e.id .. " " .. e.role .. (e.label and " " .. e.label or "")}})
  local function finish(code)
    if not rok then return audit_cli.unrecorded("added token " .. e.id .. " to " .. store.path, rerr) end
    return code
  end
  if opts.json then
    print(json.encode{store = store.path, id = e.id, role = e.role, label = e.label or json.null,
                      created = e.created, token = tok, audit_error = not rok and rerr or nil})
    return finish(0)
  end
  print(string.format("added %s token %s%s to %s:", e.role, e.id, e.label and " (" .. e.label .. ")" or "",
    store.path))
  print("")
  print("  " .. tok)
  print("")
  print("Copy it now: it is shown only this once. The store keeps only its SHA-256 hash, not the token in clear,")
  print("so a lost token cannot be shown again: revoke it (siamese token revoke) and add another.")
  return finish(0)
end

local function list(store, opts)
  local cli = require "siamese.app.cli"
  local items, err = store:list()
  if not items then return cli.fail(err) end
  if opts.json then
    local out = {}
    for i, t in ipairs(items) do
      out[i] = {id = t.id, role = t.role, label = t.label or json.null, created = t.created}
    end
    print(json.encode{store = store.path, tokens = json.array(out)})
    return 0
  end
  if #items == 0 then
    print(store.path .. ": no tokens")
    return 0
  end
  print(string.format("%s: %d token%s", store.path, #items, #items == 1 and "" or "s"))
  for _, t in ipairs(items) do
    print(string.format("  %s  %-5s  %s%s", t.id, t.role, t.created, t.label and "  " .. t.label or ""))
  end
  return 0
end

local function revoke(store, opts, id, log)
  local cli = require "siamese.app.cli"
  local ok, err = store:revoke(id)
  if not ok then return cli.fail(err) end
  id = id:lower()
  local rok, rerr = audit_cli.record(log, {{action = "token-revoke", accepted = true, detail = id}})
  if opts.json then
    print(json.encode{store = store.path, revoked = id, audit_error = not rok and rerr or nil})
  else
    print(string.format("revoked token %s in %s", id, store.path))
  end
  if not rok then return audit_cli.unrecorded("revoked token " .. id .. " in " .. store.path, rerr) end
  return 0
end

function token_cmd.run(argv)
  local cli = require "siamese.app.cli"
  local opts, pos = args.parse(argv, SPEC)
  if not opts then return cli.fail(pos, token_cmd.usage) end
  local action = pos[1]
  if not action then return cli.fail("expected an action: add, list or revoke", token_cmd.usage) end
  local nargs = ACTIONS[action]
  if not nargs then
    return cli.fail("unknown action " .. shown(action) .. " (add, list or revoke)", token_cmd.usage)
  end
  if #pos ~= nargs then
    local want = ({add = "no argument", list = "no argument", revoke = "one ID"})[action]
    local got = #pos - 1
    return cli.fail(string.format("token %s takes %s, got %d argument%s", action, want, got, got == 1 and "" or "s"),
      token_cmd.usage)
  end
  if not opts.gallery then return cli.fail("--gallery FILE is required", token_cmd.usage) end
  if action == "add" and not opts.role then return cli.fail("--role admin|door is required", token_cmd.usage) end
  if action ~= "add" then
    if opts.role then return cli.fail("--role only applies to token add", token_cmd.usage) end
    if opts.label then return cli.fail("--label only applies to token add", token_cmd.usage) end
  end
  if action == "add" and opts.label then
    local why = label_problem(opts.label)
    if why then return cli.fail("--label: " .. why, token_cmd.usage) end
  end
  if action == "revoke" and not pos[2]:match("^%x%x%x%x%x%x%x%x$") then
    return cli.fail("ID must be 8 hex digits as siamese token list shows, got " .. shown(pos[2]), token_cmd.usage)
  end
  local nopw, pwerr = require("siamese.app.cli.galleries").no_password(opts.gallery)
  if not nopw then return cli.fail(pwerr) end
  local tokens = require "siamese.app.web.tokens"
  local store, err = tokens.open(tokens.path_for(opts.gallery))
  if not store then return cli.fail(err) end
  if action == "list" then return list(store, opts) end
  -- a change: the audit log is opened first (no unrecorded change)
  local log <close>, lcode = audit_cli.open_for_change(opts.gallery)
  if not log then return lcode end
  if action == "add" then return add(store, opts, log) end
  return revoke(store, opts, pos[2], log)
end

return token_cmd
