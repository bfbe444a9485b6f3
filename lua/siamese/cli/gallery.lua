--- siamese gallery: look after a gallery file: list its people, describe
-- it, remove or rename a person.
local args = require "siamese.cli.args"
local json = require "siamese.json"
local common = require "siamese.cli.common"

local gallery_cmd = {
  summary = "list, describe, remove or rename the people of a gallery",
  usage = [[
usage: siamese gallery list --gallery FILE [--json]
       siamese gallery info --gallery FILE [--json]
       siamese gallery remove --gallery FILE NAME [--json]
       siamese gallery rename --gallery FILE OLD NEW [--json]

list: the enrolled people (in name order) with their number of templates.
info: the model the gallery was made with, the metric, the threshold, the
descriptor size, the numbers of identities and templates, the file size.
remove: forgets NAME and all of their templates.
rename: OLD is enrolled as NEW from now on (NEW is checked like an
enrolled name: trimmed; no control or invisible characters, at most 64
bytes; not another person's name, whatever the case).
remove and rename save the gallery atomically (a temporary file renamed
over it): a failure leaves the file as it was.

options:
  --gallery FILE       the gallery (siamese enroll creates it)
  --json               print one JSON object: list {"gallery", "people":
                       [{"name", "templates"}]}; info {"gallery", "model",
                       "metric", "threshold", "dim", "identities",
                       "templates", "bytes", "score_mode"}; remove
                       {"gallery", "removed", "templates", "identities"};
                       rename {"gallery", "renamed", "name"}

exit status: 0 done, 2 error (unknown NAME, a refused NEW name, a missing
or damaged gallery).]],
}

local SPEC = {
  gallery = {kind = "string"},
  json = {kind = "flag", default = false},
}

local ACTIONS = {list = 1, info = 1, remove = 2, rename = 3}

-- A name for a message: control bytes shown as \xNN.
local function shown(s)
  return "'" .. tostring(s):gsub("[%c]", function(c) return string.format("\\x%02X", c:byte()) end) .. "'"
end

local function unknown(g, name, path)
  local msg = string.format("unknown identity %s in %s (enrolled: %s)", shown(name), path,
    common.plural(g:count(), "identity", "identities"))
  local twin = require("siamese.names").same_as(name, g:names())
  if twin then msg = msg .. string.format("; did you mean %s?", shown(twin)) end
  return msg
end

local function templates_of(g, name)
  return g:templates(name):size(1)
end

local function list(g, opts)
  local names = g:names()
  table.sort(names)
  local people = {}
  for i, name in ipairs(names) do people[i] = {name = name, templates = templates_of(g, name)} end
  if opts.json then
    print(json.encode{gallery = opts.gallery, people = json.array(people)})
    return 0
  end
  print(string.format("%s: %s, %s", opts.gallery, common.plural(g:count(), "identity", "identities"),
    common.plural(g:size(), "template", "templates")))
  local width = 0
  for _, p in ipairs(people) do width = math.max(width, utf8.len(p.name) or #p.name) end
  for _, p in ipairs(people) do
    local pad = width - (utf8.len(p.name) or #p.name)
    print(string.format("  %s%s  %s", p.name, string.rep(" ", pad), common.plural(p.templates, "template", "templates")))
  end
  return 0
end

local function info(g, opts)
  local fs = require "siamese.fs"
  local bytes = fs.size(opts.gallery)
  local m = {gallery = opts.gallery, model = g:model(), metric = g:metric(), threshold = g:threshold(), dim = g:dim(),
             identities = g:count(), templates = g:size(), bytes = bytes or json.null, score_mode = g:score_mode()}
  if opts.json then
    print(json.encode(m))
    return 0
  end
  print(string.format("%s: %s, %s", opts.gallery, common.plural(m.identities, "identity", "identities"),
    common.plural(m.templates, "template", "templates")))
  print(string.format("  model      %s", m.model))
  print(string.format("  metric     %s (identities scored by their %s template)", m.metric,
    m.score_mode == "mean" and "mean" or "nearest"))
  print(string.format("  threshold  %.4f", m.threshold))
  print(string.format("  dim        %d", m.dim))
  print(string.format("  file       %s", bytes and common.plural(bytes, "byte", "bytes") or "size unknown"))
  return 0
end

local function save(g, path)
  local ok, err = g:save(path)
  if not ok then return nil, "cannot save " .. path .. ": " .. tostring(err) end
  return true
end

local function remove(g, opts, name)
  local cli = require "siamese.cli"
  if not g:has(name) then return cli.fail(unknown(g, name, opts.gallery)) end
  local n = templates_of(g, name)
  g:remove(name)
  local ok, err = save(g, opts.gallery)
  if not ok then return cli.fail(err) end
  if opts.json then
    print(json.encode{gallery = opts.gallery, removed = name, templates = n, identities = g:count()})
  else
    print(string.format("removed %s (%s); %s now holds %s", name, common.plural(n, "template", "templates"),
      opts.gallery, common.plural(g:count(), "identity", "identities")))
  end
  return 0
end

-- The reason of a name refused by gallery:rename, without its Lua wrapping
-- ("gallery:rename: bad argument #2 (name is empty)" -> "name is empty").
local function clean_reason(e)
  local msg = tostring(e):gsub("^[^\n]-:%d+: ", "")
  msg = msg:gsub("^gallery:rename: ", "")
  return msg:match("^bad argument #%d+ %((.*)%)$") or msg
end

local function rename(g, opts, old, new)
  local cli = require "siamese.cli"
  if not g:has(old) then return cli.fail(unknown(g, old, opts.gallery)) end
  local pok, ok, err = pcall(g.rename, g, old, new)
  if not pok then
    return cli.fail(string.format("cannot rename %s to %s: %s", shown(old), shown(new), clean_reason(ok)),
      gallery_cmd.usage)
  end
  if not ok then return cli.fail(string.format("cannot rename %s: %s", shown(old), tostring(err))) end
  local stored = require("siamese.names").check(new) or new
  local sok, serr = save(g, opts.gallery)
  if not sok then return cli.fail(serr) end
  if opts.json then
    print(json.encode{gallery = opts.gallery, renamed = old, name = stored})
  else
    print(string.format("renamed %s to %s in %s", old, stored, opts.gallery))
  end
  return 0
end

function gallery_cmd.run(argv)
  local cli = require "siamese.cli"
  local opts, pos = args.parse(argv, SPEC)
  if not opts then return cli.fail(pos, gallery_cmd.usage) end
  local action = pos[1]
  if not action then return cli.fail("expected an action: list, info, remove or rename", gallery_cmd.usage) end
  local nargs = ACTIONS[action]
  if not nargs then
    return cli.fail("unknown action '" .. action .. "' (list, info, remove or rename)", gallery_cmd.usage)
  end
  if #pos ~= nargs then
    local want = ({list = "no argument", info = "no argument", remove = "one NAME", rename = "OLD NEW"})[action]
    return cli.fail(string.format("gallery %s takes %s, got %s", action, want,
      common.plural(#pos - 1, "argument", "arguments")), gallery_cmd.usage)
  end
  if not opts.gallery then return cli.fail("--gallery FILE is required", gallery_cmd.usage) end
  local g, err = common.load_gallery(opts.gallery)
  if not g then return cli.fail(err) end
  if action == "list" then return list(g, opts) end
  if action == "info" then return info(g, opts) end
  if action == "remove" then return remove(g, opts, pos[2]) end
  return rename(g, opts, pos[2], pos[3])
end

return gallery_cmd
