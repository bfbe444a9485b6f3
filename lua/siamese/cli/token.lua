--- siamese token: the bearer tokens of the web server (siamese.web.tokens),
-- kept in "<gallery>.tokens": add one, list them, revoke one.
local args = require "siamese.cli.args"
local json = require "siamese.json"

local token_cmd = {
  summary = "add, list or revoke the web server's access tokens",
  usage = [[
usage: siamese token add --gallery FILE --role admin|door [--label TEXT] [--json]
       siamese token list --gallery FILE [--json]
       siamese token revoke --gallery FILE ID [--json]

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

options:
  --gallery FILE       the gallery whose tokens these are (FILE.tokens)
  --role admin|door    add: the role of the new token
  --label TEXT         add: a note for people (who or what holds it; at
                       most 100 bytes, no control characters)
  --json               print one JSON object: add {"store", "id", "role",
                       "label", "created", "token"}; list {"store",
                       "tokens": [{"id", "role", "label", "created"}]};
                       revoke {"store", "revoked"}

exit status: 0 done, 2 error (usage, unknown ID, a damaged store or one
with too open permissions).]],
}

local SPEC = {
  gallery = {kind = "string"},
  role = {kind = "string", choices = {"admin", "door"}},
  label = {kind = "string"},
  json = {kind = "flag", default = false},
}

local ACTIONS = {add = 1, list = 1, revoke = 2}

local function shown(s)
  return "'" .. tostring(s):gsub("[%c]", function(c) return string.format("\\x%02X", c:byte()) end) .. "'"
end

local function add(store, opts)
  local cli = require "siamese.cli"
  local tok, e = store:add(opts.role, opts.label)
  if not tok then
    local usage_error = e:match("^the label") or e:match("^unknown role")
    return cli.fail((e:match("^the label") and "--label: " or "") .. e, usage_error and token_cmd.usage or nil)
  end
  if opts.json then
    print(json.encode{store = store.path, id = e.id, role = e.role, label = e.label or json.null,
                      created = e.created, token = tok})
    return 0
  end
  print(string.format("added %s token %s%s to %s:", e.role, e.id, e.label and " (" .. e.label .. ")" or "",
    store.path))
  print("")
  print("  " .. tok)
  print("")
  print("Copy it now: it is shown only this once. The store keeps only its SHA-256 hash, not the token in clear,")
  print("so a lost token cannot be shown again: revoke it (siamese token revoke) and add another.")
  return 0
end

local function list(store, opts)
  local cli = require "siamese.cli"
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

local function revoke(store, opts, id)
  local cli = require "siamese.cli"
  local ok, err = store:revoke(id)
  if not ok then return cli.fail(err) end
  if opts.json then
    print(json.encode{store = store.path, revoked = id:lower()})
  else
    print(string.format("revoked token %s in %s", id:lower(), store.path))
  end
  return 0
end

function token_cmd.run(argv)
  local cli = require "siamese.cli"
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
  if action == "revoke" and not pos[2]:match("^%x%x%x%x%x%x%x%x$") then
    return cli.fail("ID must be 8 hex digits as siamese token list shows, got " .. shown(pos[2]), token_cmd.usage)
  end
  local tokens = require "siamese.web.tokens"
  local store, err = tokens.open(tokens.path_for(opts.gallery))
  if not store then return cli.fail(err) end
  if action == "add" then return add(store, opts) end
  if action == "list" then return list(store, opts) end
  return revoke(store, opts, pos[2])
end

return token_cmd
