--- siamese gallery: look after a gallery (a file or a PostgreSQL
-- database): list its people, describe it, remove or rename a person
-- (recorded in the audit log, siamese.app.cli.audit), export it to a file and
-- import a file into a database.
local args = require "siamese.app.cli.args"
local json = require "siamese.json"
local galleries = require "siamese.app.cli.galleries"
local inputs = require "siamese.app.cli.inputs"
local output = require "siamese.app.cli.output"
local audit_cli = require "siamese.app.cli.audit"

local gallery_cmd = {
  summary = "list, describe, remove or rename the people of a gallery; export and import it",
  usage = [=[
usage: siamese gallery list --gallery FILE [--json]
       siamese gallery info --gallery FILE [--json]
       siamese gallery remove --gallery FILE NAME [--json]
       siamese gallery rename --gallery FILE OLD NEW [--json]
       siamese gallery export --gallery FILE|URL OUT [--overwrite] [--json]
       siamese gallery import --gallery URL|FILE IN [--json]]=],
  description = [[
list: the enrolled people (in name order) with their number of templates.
info: the model the gallery was made with, the metric, the threshold, the
descriptor size, the numbers of identities and templates, the file size.
remove: forgets NAME and all of their templates.
rename: OLD is enrolled as NEW from now on (NEW is checked like an
enrolled name: trimmed; no control or invisible characters, at most 64
bytes; not another person's name, whatever the case).
remove and rename read the gallery again and save it atomically (a
temporary file renamed over it) under its lock (FILE.lock), so they never
undo a change another process made meanwhile: a failure leaves the file
as it was. Each removal or renaming is recorded in FILE.audit (siamese
audit shows it); the log is opened first, and when it cannot be (damaged,
permissions too open, lua-sql-sqlite3 missing) nothing is changed.
export: writes the gallery (a file, or a postgresql:// database) to the
gallery file OUT, bit for bit what a save of the same gallery writes (an
existing OUT only with --overwrite).
import: writes the gallery file IN into the gallery --gallery names: a
postgresql:// database whose gallery is absent or empty (one transaction,
the templates by one binary COPY; every door's replica reloads), or a new
file. Recorded in the destination's audit log. Together they move a
single door's gallery into an organisation's database, and back.]],
  epilog = [[
exit status: 0 done, 2 error (unknown NAME, a refused NEW name, a missing
or damaged gallery, an audit log that cannot be opened, or done but not
recorded in the audit log: the message says so, and --json adds
"audit_error").]],
}

local SPEC = {
  gallery = {kind = "string", arg = "FILE|URL", help = "the gallery (siamese enroll creates it)"},
  overwrite = {kind = "flag", default = false, help = "export: replace an existing OUT"},
  json = {kind = "flag", default = false,
          help = 'print one JSON object: list {"gallery", "people": [{"name", "templates"}]}; info '
            .. '{"gallery", "model", "metric", "threshold", "dim", "identities", "templates", "bytes", '
            .. '"score_mode"}; remove {"gallery", "removed", "templates", "identities"}; rename '
            .. '{"gallery", "renamed", "name"}; export and import {"gallery", "file", "identities", '
            .. '"templates"}'},
}
gallery_cmd.spec = SPEC

local ACTIONS = {list = 1, info = 1, remove = 2, rename = 3, export = 2, import = 2}

-- A name for a message: control bytes shown as \xNN.
local function shown(s)
  return "'" .. tostring(s):gsub("[%c]", function(c) return string.format("\\x%02X", c:byte()) end) .. "'"
end

local function unknown(g, name, path)
  local msg = string.format("unknown identity %s in %s (enrolled: %s)", shown(name), path,
    output.plural(g:count(), "identity", "identities"))
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
  print(string.format("%s: %s, %s", opts.gallery, output.plural(g:count(), "identity", "identities"),
    output.plural(g:size(), "template", "templates")))
  local width = 0
  for _, p in ipairs(people) do width = math.max(width, utf8.len(p.name) or #p.name) end
  for _, p in ipairs(people) do
    local pad = width - (utf8.len(p.name) or #p.name)
    print(string.format("  %s%s  %s", p.name, string.rep(" ", pad), output.plural(p.templates, "template", "templates")))
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
  print(string.format("%s: %s, %s", opts.gallery, output.plural(m.identities, "identity", "identities"),
    output.plural(m.templates, "template", "templates")))
  print(string.format("  model      %s", m.model))
  print(string.format("  metric     %s (identities scored by their %s template)", m.metric,
    m.score_mode == "mean" and "mean" or "nearest"))
  print(string.format("  threshold  %.4f", m.threshold))
  print(string.format("  dim        %d", m.dim))
  print(string.format("  file       %s", bytes and output.plural(bytes, "byte", "bytes") or "size unknown"))
  return 0
end

-- Read-modify-write of the gallery under its lock (siamese.gallery.update):
-- fn(g) returns true to save, or nil, exit code after reporting. Returns
-- true, or nil, exit code (a failure to load or save reported).
local function update(opts, fn)
  local cli = require "siamese.app.cli"
  local reached = false
  local ok, code = require("siamese.gallery").update(opts.gallery, function(g)
    reached = true
    return fn(g)
  end)
  if ok then return true end
  if type(code) == "number" then return nil, code end
  if reached then return nil, cli.fail("cannot save " .. opts.gallery .. ": " .. tostring(code)) end
  return nil, cli.fail(tostring(code)) -- gone or damaged since it was read
end

local function remove(opts, name)
  local cli = require "siamese.app.cli"
  local log <close>, lcode = audit_cli.open_for_change(opts.gallery)
  if not log then return lcode end
  local n, count
  local ok, code = update(opts, function(g)
    if not g:has(name) then return nil, cli.fail(unknown(g, name, opts.gallery)) end
    n = templates_of(g, name)
    g:remove(name)
    count = g:count()
    return true
  end)
  if not ok then return code end
  local rok, rerr = audit_cli.record(log, {{action = "remove", name = name, accepted = true,
                                            detail = output.plural(n, "template", "templates")}})
  if opts.json then
    print(json.encode{gallery = opts.gallery, removed = name, templates = n, identities = count,
                      audit_error = not rok and rerr or nil})
  else
    print(string.format("removed %s (%s); %s now holds %s", name, output.plural(n, "template", "templates"),
      opts.gallery, output.plural(count, "identity", "identities")))
  end
  if not rok then return audit_cli.unrecorded("removed " .. name .. " from " .. opts.gallery, rerr) end
  return 0
end

-- The reason of a name refused by gallery:rename, without its Lua wrapping
-- ("gallery:rename: bad argument #2 (name is empty)" -> "name is empty").
local function clean_reason(e)
  local msg = tostring(e):gsub("^[^\n]-:%d+: ", "")
  msg = msg:gsub("^gallery:rename: ", "")
  return msg:match("^bad argument #%d+ %((.*)%)$") or msg
end

local function rename(opts, old, new)
  local cli = require "siamese.app.cli"
  local log <close>, lcode = audit_cli.open_for_change(opts.gallery)
  if not log then return lcode end
  local ok, code = update(opts, function(g)
    if not g:has(old) then return nil, cli.fail(unknown(g, old, opts.gallery)) end
    local pok, rok, err = pcall(g.rename, g, old, new)
    if not pok then
      return nil, cli.fail(string.format("cannot rename %s to %s: %s", shown(old), shown(new), clean_reason(rok)),
        gallery_cmd.usage)
    end
    if not rok then return nil, cli.fail(string.format("cannot rename %s: %s", shown(old), tostring(err))) end
    return true
  end)
  if not ok then return code end
  local stored = require("siamese.names").check(new) or new
  local rok, rerr = audit_cli.record(log, {{action = "rename", name = old, accepted = true,
                                            detail = "renamed to " .. stored}})
  if opts.json then
    print(json.encode{gallery = opts.gallery, renamed = old, name = stored, audit_error = not rok and rerr or nil})
  else
    print(string.format("renamed %s to %s in %s", old, stored, opts.gallery))
  end
  if not rok then
    return audit_cli.unrecorded("renamed " .. old .. " to " .. stored .. " in " .. opts.gallery, rerr)
  end
  return 0
end

local function moved(opts, file, g, verb)
  local m = {gallery = opts.gallery, file = file, identities = g:count(), templates = g:size()}
  if opts.json then
    print(json.encode(m))
  else
    print(string.format("%s %s, %s %s %s", verb, output.plural(m.identities, "identity", "identities"),
      output.plural(m.templates, "template", "templates"), verb == "exported" and "to" or "from", file))
  end
end

-- export: the gallery (file or database) saved to the file out.
local function export(opts, out)
  local pg = require "siamese.pg"
  local cli = require "siamese.app.cli"
  if pg.is_url(out) then return cli.fail("export writes a gallery file; to fill a database use gallery import") end
  if inputs.exists(out) and not opts.overwrite then
    return cli.fail(out .. " exists (give --overwrite to replace it)")
  end
  local g, err = galleries.load_gallery(opts.gallery)
  if not g then return cli.fail(err) end
  local ok, serr = g:save(out)
  if not ok then return cli.fail("cannot write " .. out .. ": " .. tostring(serr)) end
  moved(opts, out, g, "exported")
  g:close()
  return 0
end

-- import: the gallery file into the destination (a database whose gallery
-- is absent or empty, or a new file), recorded in its audit log.
local function import(opts, file)
  local cli = require "siamese.app.cli"
  local pg = require "siamese.pg"
  local src, err = require("siamese.gallery").load(file)
  if not src then return cli.fail(err) end
  local dest = opts.gallery
  if not pg.is_url(dest) and inputs.exists(dest) then
    return cli.fail(dest .. " exists: import fills a new gallery file or an empty database")
  end
  local nopw, pwerr = galleries.no_password(dest)
  if not nopw then return cli.fail(pwerr) end
  local log, lcode = audit_cli.open_for_change(dest)
  if not log then return lcode end
  local ok, ierr
  if pg.is_url(dest) then
    ok, ierr = require("siamese.gallery_pg").import(dest, src)
  else
    ok, ierr = src:save(dest)
  end
  if not ok then
    log:close()
    return cli.fail(ierr)
  end
  local rok, rerr = audit_cli.record(log, {{action = "import", accepted = true,
    detail = string.format("%d identities, %d templates from %s", src:count(), src:size(), file)}})
  moved(opts, file, src, "imported")
  if not rok then return audit_cli.unrecorded("imported " .. file .. " into " .. dest, rerr) end
  return 0
end

function gallery_cmd.run(argv)
  local cli = require "siamese.app.cli"
  local opts, pos = args.parse(argv, SPEC)
  if not opts then return cli.fail(pos, gallery_cmd.usage) end
  local action = pos[1]
  if not action then
    return cli.fail("expected an action: list, info, remove, rename, export or import", gallery_cmd.usage)
  end
  local nargs = ACTIONS[action]
  if not nargs then
    return cli.fail("unknown action '" .. action .. "' (list, info, remove, rename, export or import)",
      gallery_cmd.usage)
  end
  if #pos ~= nargs then
    local want = ({list = "no argument", info = "no argument", remove = "one NAME", rename = "OLD NEW",
                   export = "one OUT file", import = "one IN file"})[action]
    return cli.fail(string.format("gallery %s takes %s, got %s", action, want,
      output.plural(#pos - 1, "argument", "arguments")), gallery_cmd.usage)
  end
  if not opts.gallery then return cli.fail("--gallery FILE is required", gallery_cmd.usage) end
  if opts.overwrite and action ~= "export" then return cli.fail("--overwrite is for gallery export", gallery_cmd.usage) end
  if action == "export" then return export(opts, pos[2]) end
  if action == "import" then return import(opts, pos[2]) end
  local g, err = galleries.load_gallery(opts.gallery)
  if not g then return cli.fail(err) end
  if action == "list" then return list(g, opts) end
  if action == "info" then return info(g, opts) end
  -- remove and rename read the file again under its lock (gallery.update)
  g:close()
  if action == "remove" then return remove(opts, pos[2]) end
  return rename(opts, pos[2], pos[3])
end

return gallery_cmd
