-- Specs of the audit trail of the command line (run as processes): every
-- change `siamese enroll`, `gallery remove/rename` and `token add/revoke`
-- make is recorded in "<gallery>.audit" (refused enrolments too), a log
-- that cannot be opened stops the change, a record that cannot be written
-- is reported; and `siamese audit`, which shows the log.
local json = require "siamese.json"
local lfs = require "lfs"
local support = dofile("spec/support.lua")

local q, run = support.q, support.siamese
local has_sqlite = pcall(require, "luasql.sqlite3")

local FACES = "examples/data/faces"

local function photo(name, i)
  return string.format("%s/%s/%s_%04d.jpg", FACES, name, name, i)
end

-- The name of the account running the specs, as the log should give it.
local function user_name()
  local p = assert(io.popen("id -un"))
  local name = p:read("l")
  p:close()
  return name
end

-- Runs bin/siamese with a Lua prologue (LUA_INIT_5_4) that makes every
-- audit record fail: stdout, stderr, exit status.
local function run_unrecordable(args)
  local init = string.format([[
    package.path = %q .. ";" .. package.path
    package.cpath = %q .. ";" .. package.cpath
    local audit = require "siamese.app.web.audit"
    local open = audit.open
    audit.open = function(...)
      local log, err = open(...)
      if log then log.record = function(self) return nil, self.path .. ": disk I/O error (injected)" end end
      return log, err
    end]], package.path, package.cpath)
  local errfile = os.tmpname()
  local p = assert(io.popen("LUA_INIT_5_4=" .. q(init) .. " bin/siamese " .. args .. " 2>" .. errfile))
  local out = p:read("a")
  local _, _, code = p:close()
  local err = support.read_file(errfile)
  os.remove(errfile)
  return out, err, code
end

describe("siamese audit trail", function()
  if not has_sqlite then
    pending("lua-sql-sqlite3 is not installed (apt-get install lua-sql-sqlite3)")
    return
  end

  local dir, gallery, log_path
  before_each(function()
    dir = support.temp_dir("cli_audit")
    gallery = dir .. "/office.gallery"
    log_path = gallery .. ".audit"
  end)
  after_each(function() os.execute("rm -rf " .. q(dir)) end)

  -- The events of the log as `siamese audit --json` gives them.
  local function events(extra)
    local out, err, code = run("audit --gallery " .. q(gallery) .. " --json " .. (extra or ""))
    assert.are.equal(0, code, err)
    local doc = assert(json.decode(out))
    assert.are.equal(log_path, doc.log)
    return doc.events
  end

  local function enroll(args)
    return run("enroll --gallery " .. q(gallery) .. " " .. args)
  end

  it("records enrolments, accepted and refused, with the mode, the photos and the reasons", function()
    local who = "cli:" .. user_name()
    local out, err, code = enroll("Tony_Blair " .. q(photo("Tony_Blair", 1)))
    assert.are.equal(0, code, err)
    assert.are.equal("rw-------", lfs.attributes(log_path, "permissions"))
    -- an enrolled name without --add: refused (exit 2), recorded
    _, err, code = enroll("Tony_Blair " .. q(photo("Tony_Blair", 2)))
    assert.are.equal(2, code)
    -- his photo under another name: a look-alike, refused (exit 1), recorded
    _, err, code = enroll("Bill_Gates " .. q(photo("Tony_Blair", 3)))
    assert.are.equal(1, code, err)
    -- --add: one photo enrolled, the same photo again and a photo without a face refused
    _, err, code = enroll("--add Tony_Blair " .. q(photo("Tony_Blair", 2)) .. " " .. q(photo("Tony_Blair", 2)) .. " "
      .. q("spec/fixtures/images/gray8.png"))
    assert.are.equal(0, code, err)
    -- forced, and two people at once from a folder
    _, err, code = enroll("--force Bill_Gates " .. q(photo("Tony_Blair", 3)))
    assert.are.equal(0, code, err)
    local people = dir .. "/people"
    assert(lfs.mkdir(people))
    for name, i in pairs{Serena_Williams = 2, Junichiro_Koizumi = 1} do
      assert(lfs.mkdir(people .. "/" .. name))
      assert(os.execute(string.format("cp %s %s", q(photo(name, i)), q(people .. "/" .. name .. "/"))))
    end
    out, err, code = enroll("--json --from-folder " .. q(people))
    assert.are.equal(0, code, err)
    assert.is_nil(assert(json.decode(out)).audit_error)

    local ev = events()
    assert.are.equal(7, #ev)
    local function check(e, id, name, accepted, detail)
      assert.are.equal(id, e.id)
      assert.are.equal("enroll", e.action)
      assert.are.equal(name, e.name)
      assert.are.equal(accepted, e.accepted)
      assert.are.equal("local", e.role)
      assert.are.equal(who, e.client)
      assert.are.equal(json.null, e.token_id)
      assert.are.equal(json.null, e.distance)
      assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%dZ$", e.at)
      assert.are.equal(detail, e.detail:sub(1, #detail), e.detail)
    end
    check(ev[1], 1, "Tony_Blair", true, "mode new, 1 photo")
    assert.are.equal("mode new, 1 photo", ev[1].detail)
    check(ev[2], 2, "Tony_Blair", false, "'Tony_Blair' is already enrolled (1 template): use --add")
    check(ev[3], 3, "Bill_Gates", false, "mode new, not enrolled: " .. photo("Tony_Blair", 3)
      .. ": the face is within the threshold 0.549 of Tony_Blair at 0.")
    check(ev[4], 4, "Tony_Blair", true, "mode add, 1 photo; not enrolled: " .. photo("Tony_Blair", 2)
      .. ": this photo is already enrolled as 'Tony_Blair'; spec/fixtures/images/gray8.png: no face at score >= 0.5")
    check(ev[5], 5, "Bill_Gates", true, "mode new, forced, 1 photo")
    -- one event per person, in the folder's order
    check(ev[6], 6, "Junichiro_Koizumi", true, "mode new, 1 photo")
    check(ev[7], 7, "Serena_Williams", true, "mode new, 1 photo")

    -- --replace: recorded as such
    _, err, code = enroll("--replace Serena_Williams " .. q(photo("Serena_Williams", 3)))
    assert.are.equal(0, code, err)
    ev = events("--limit 1")
    check(ev[1], 8, "Serena_Williams", true, "mode replace, 1 photo")
  end)

  it("a replacement refused for one person keeps their templates while another person's lands", function()
    assert.are.equal(0, select(3, enroll("Tony_Blair " .. q(photo("Tony_Blair", 1)))))
    assert.are.equal(0, select(3, enroll("Serena_Williams " .. q(photo("Serena_Williams", 1)))))
    -- Tony's "new" photo is Serena's: refused as her look-alike; Serena's is fine
    local people = dir .. "/people"
    assert(lfs.mkdir(people))
    for name, src in pairs{Tony_Blair = photo("Serena_Williams", 2), Serena_Williams = photo("Serena_Williams", 3)} do
      assert(lfs.mkdir(people .. "/" .. name))
      assert(os.execute(string.format("cp %s %s", q(src), q(people .. "/" .. name .. "/x.jpg"))))
    end
    local out, err, code = enroll("--json --replace --from-folder " .. q(people))
    assert.are.equal(0, code, err)
    local doc = assert(json.decode(out))
    assert.are.equal(1, #doc.enrolled)
    assert.are.equal("Serena_Williams", doc.enrolled[1].name)
    assert.are.equal(2, doc.identities)       -- Tony is still there ...
    assert.are.equal(2, doc.templates)        -- ... with his one template
    out = run("gallery list --json --gallery " .. q(gallery))
    assert.are.same({{name = "Serena_Williams", templates = 1}, {name = "Tony_Blair", templates = 1}},
      assert(json.decode(out)).people)
    local ev = events("--limit 2")
    assert.are.same({"Serena_Williams", true}, {ev[1].name, ev[1].accepted})
    assert.are.same({"Tony_Blair", false}, {ev[2].name, ev[2].accepted})
    assert.matches("^mode replace, not enrolled: .*within the threshold", ev[2].detail)
  end)

  it("records gallery remove and rename, and token add and revoke (never the token)", function()
    assert.are.equal(0, select(3, enroll("Tony_Blair " .. q(photo("Tony_Blair", 1)))))
    local out, err, code = run("gallery rename --gallery " .. q(gallery) .. " Tony_Blair " .. q("  Tony Blair "))
    assert.are.equal(0, code, err)
    -- failures change nothing and record nothing
    _, err, code = run("gallery rename --gallery " .. q(gallery) .. " Nobody Somebody")
    assert.are.equal(2, code)
    _, err, code = run("gallery remove --gallery " .. q(gallery) .. " Nobody")
    assert.are.equal(2, code)
    out, err, code = run("gallery remove --json --gallery " .. q(gallery) .. " " .. q("Tony Blair"))
    assert.are.equal(0, code, err)
    assert.is_nil(assert(json.decode(out)).audit_error)

    out, err, code = run("token add --json --gallery " .. q(gallery) .. " --role door --label " .. q("front door"))
    assert.are.equal(0, code, err)
    local tok = assert(json.decode(out))
    out, err, code = run("token add --gallery " .. q(gallery) .. " --role admin")
    assert.are.equal(0, code, err)
    local admin_id = out:match("sm_(%x+)_")
    _, err, code = run("token revoke --gallery " .. q(gallery) .. " " .. tok.id:upper())
    assert.are.equal(0, code, err)
    _, err, code = run("token revoke --gallery " .. q(gallery) .. " " .. tok.id) -- gone: an error, not recorded
    assert.are.equal(2, code)
    run("token list --gallery " .. q(gallery))                                    -- looking: not recorded

    local ev = events()
    local got = {}
    for i, e in ipairs(ev) do
      got[i] = {e.action, e.name == json.null and "-" or e.name, e.accepted, e.detail}
      assert.are.equal("local", e.role)
      assert.are.equal("cli:" .. user_name(), e.client)
      assert.are.equal(json.null, e.token_id)
    end
    assert.are.same({
      {"enroll", "Tony_Blair", true, "mode new, 1 photo"},
      {"rename", "Tony_Blair", true, "renamed to Tony Blair"},
      {"remove", "Tony Blair", true, "1 template"},
      {"token-add", "-", true, tok.id .. " door front door"},
      {"token-add", "-", true, admin_id .. " admin"},
      {"token-revoke", "-", true, tok.id},
    }, got)
    assert.is_nil(support.read_file(log_path):find(tok.token:match("^sm_%x+_(.+)$"), 1, true))
  end)

  it("refuses to change anything when the audit log cannot be opened", function()
    assert.are.equal(0, select(3, enroll("Tony_Blair " .. q(photo("Tony_Blair", 1)))))
    assert.are.equal(0, select(3, run("token add --gallery " .. q(gallery) .. " --role door")))
    local before_g = support.read_file(gallery)
    local before_t = support.read_file(gallery .. ".tokens")
    local store = assert(require("siamese.app.web.tokens").open(gallery .. ".tokens"))
    local id = store:list()[1].id
    local function refused(args, reason)
      local out, err, code = run(args)
      assert.are.equal(2, code, args)
      assert.matches("^siamese: cannot open the audit log " .. log_path:gsub("%p", "%%%0") .. ": ", err)
      assert.matches(reason, err, 1, true)
      assert.matches("; nothing was changed\n$", err)
      assert.are.equal(1, select(2, err:gsub("\n", "")), err)
      assert.are.equal(before_g, support.read_file(gallery), args)
      assert.are.equal(before_t, support.read_file(gallery .. ".tokens"), args)
      return out
    end
    local changes = {
      "enroll --gallery " .. q(gallery) .. " Serena_Williams " .. q(photo("Serena_Williams", 1)),
      "enroll --gallery " .. q(gallery) .. " Tony_Blair " .. q(photo("Tony_Blair", 2)), -- a refusal is not made either
      "gallery remove --gallery " .. q(gallery) .. " Tony_Blair",
      "gallery rename --gallery " .. q(gallery) .. " Tony_Blair Tony",
      "token add --gallery " .. q(gallery) .. " --role admin",
      "token revoke --gallery " .. q(gallery) .. " " .. id,
    }
    -- permissions too open
    assert(os.execute("chmod 644 " .. q(log_path)))
    for _, c in ipairs(changes) do refused(c, "permissions 0644 are too open") end
    local out = refused(changes[3] .. " --json", "permissions 0644 are too open")
    assert.matches("cannot open the audit log", assert(json.decode(out)).error, 1, true)
    -- damaged
    support.write_file(log_path, string.rep("not a database\n", 200))
    assert(os.execute("chmod 600 " .. q(log_path)))
    for _, c in ipairs(changes) do refused(c, "") end
    assert.are.equal(string.rep("not a database\n", 200), support.read_file(log_path))
    -- a new gallery whose log cannot be made: no gallery either
    local elsewhere = dir .. "/new.gallery"
    assert(lfs.mkdir(elsewhere .. ".audit")) -- a directory where the log should be
    local _, err, code = run("enroll --gallery " .. q(elsewhere) .. " Tony_Blair " .. q(photo("Tony_Blair", 1)))
    assert.are.equal(2, code)
    assert.matches("cannot open the audit log " .. elsewhere .. ".audit", err, 1, true)
    assert.is_nil(lfs.attributes(elsewhere))
  end)

  it("a change made but not recorded is reported, with exit status 2", function()
    assert.are.equal(0, select(3, enroll("Tony_Blair " .. q(photo("Tony_Blair", 1)))))
    local function unrecorded(args, done) -- done: a Lua pattern
      local out, err, code = run_unrecordable(args)
      assert.are.equal(2, code, args .. ": " .. err)
      assert.matches("siamese: " .. done .. ", but the audit log could not record it: "
        .. (log_path .. ": disk I/O error (injected)"):gsub("%p", "%%%0") .. "\n", err)
      return out
    end
    local g_pat = gallery:gsub("%p", "%%%0")
    -- enroll: the photo is in the gallery; --json says it too
    local out = unrecorded("enroll --json --gallery " .. q(gallery) .. " Serena_Williams " .. q(photo("Serena_Williams", 1)),
      "enrolled 1 photo in " .. g_pat)
    local doc = assert(json.decode(out))
    assert.are.equal(2, doc.identities)
    assert.matches("disk I/O error %(injected%)", doc.audit_error)
    out = unrecorded("gallery rename --gallery " .. q(gallery) .. " Serena_Williams Serena",
      "renamed Serena_Williams to Serena in " .. g_pat)
    assert.matches("renamed Serena_Williams to Serena", out, 1, true)
    unrecorded("gallery remove --gallery " .. q(gallery) .. " Serena", "removed Serena from " .. g_pat)
    out = unrecorded("token add --json --gallery " .. q(gallery) .. " --role door",
      "added token %x+ to " .. g_pat .. "%.tokens")
    local tok = assert(json.decode(out))
    assert.is_string(tok.token)
    assert.is_string(tok.audit_error)
    unrecorded("token revoke --gallery " .. q(gallery) .. " " .. tok.id, "revoked token " .. tok.id .. " in " .. g_pat .. "%.tokens")
    -- the changes were made
    local g = assert(require("siamese.gallery").load(gallery))
    assert.are.same({"Tony_Blair"}, g:names())
    assert.are.same({}, assert(require("siamese.app.web.tokens").open(gallery .. ".tokens")):list())
    -- a refusal that cannot be recorded: the refusal's message, then the audit's
    local _, err, code = run_unrecordable("enroll --gallery " .. q(gallery) .. " Tony_Blair " .. q(photo("Tony_Blair", 2)))
    assert.are.equal(2, code)
    assert.matches("^siamese: 'Tony_Blair' is already enrolled", err)
    assert.matches("siamese: the refusal, but the audit log could not record it", err, 1, true)
    assert.are.equal(1, #events())  -- only the first enrolment is in the log
  end)
end)

describe("siamese audit", function()
  if not has_sqlite then
    pending("lua-sql-sqlite3 is not installed (apt-get install lua-sql-sqlite3)")
    return
  end

  local audit = require "siamese.app.web.audit"
  local dir, gallery, log_path
  before_each(function()
    dir = support.temp_dir("cli_audit")
    gallery = dir .. "/office.gallery"
    log_path = gallery .. ".audit"
  end)
  after_each(function() os.execute("rm -rf " .. q(dir)) end)

  local function fill()
    local log = assert(audit.open(log_path))
    assert(log:record{role = "door", token_id = "1a2b3c4d", client = "192.0.2.7", action = "verify", name = "alice",
                      distance = 0.41234567, threshold = 0.6, accepted = true})
    assert(log:record{role = "admin", token_id = "99aa88bb", client = "::1", action = "rename", name = "alice",
                      accepted = true, detail = "renamed to Alice"})
    assert(log:record{client = "198.51.100.1", action = "enroll", accepted = false, detail = "401 missing"})
    assert(log:record{role = "door", client = "192.0.2.7", action = "verify", name = "bob\27[2J\u{202E}",
                      distance = 0.9, threshold = 0.6, accepted = false, detail = "bytes \xff\xfe"})
    log:close()
  end

  it("prints the events as a table, oldest first", function()
    fill()
    local out, err, code = run("audit --gallery " .. q(gallery))
    assert.are.equal(0, code, err)
    assert.are.equal("", err)
    local lines = {}
    for l in out:gmatch("[^\n]+") do lines[#lines + 1] = l end
    assert.are.equal(log_path .. ": 4 events", lines[1])
    assert.matches("^  id  time%s+role%s+token%s+client%s+action%s+name%s+distance%s+threshold%s+accepted%s+detail$",
      lines[2])
    assert.matches("^  1   %d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%dZ  door   1a2b3c4d  192%.0%.2%.7%s+verify  alice%s+0%.4123"
      .. "%s+0%.6000%s+yes%s+%-$", lines[3])
    assert.matches("99aa88bb  ::1 .* rename  alice .* %- .* yes%s+renamed to Alice$", lines[4])
    assert.matches("^  3 .* %-      %-         198%.51%.100%.1  enroll .* no%s+401 missing$", lines[5])
    -- escape sequences, bidirectional controls and bytes that are not UTF-8 are shown, not sent to the terminal
    assert.matches("bob\\x1B[2J\\u{202E}", lines[6], 1, true)
    assert.matches("bytes \\xFF\\xFE$", lines[6])
    assert.is_nil(out:find("\27", 1, true))
    assert.are.equal(6, #lines)
    -- the columns line up
    local col = lines[2]:find("action", 1, true)
    for i = 3, 6 do assert.matches("^%a", lines[i]:sub(col), i) end
  end)

  it("filters by time, action and name, limits to the latest; --json", function()
    fill()
    local function ids(args)
      local out, err, code = run("audit --json --gallery " .. q(gallery) .. " " .. args)
      assert.are.equal(0, code, args .. ": " .. err)
      local doc = assert(json.decode(out))
      assert.are.equal(log_path, doc.log)
      local r = {}
      for i, e in ipairs(doc.events) do r[i] = e.id end
      return r, doc
    end
    local all, doc = ids("")
    assert.are.same({1, 2, 3, 4}, all)
    local e = doc.events[1]
    assert.are.same({id = 1, at = e.at, role = "door", token_id = "1a2b3c4d", client = "192.0.2.7", action = "verify",
                     name = "alice", distance = 0.41234567, threshold = 0.6, accepted = true, detail = json.null}, e)
    assert.are.equal(json.null, doc.events[3].role)
    assert.are.equal(false, doc.events[3].accepted)
    assert.are.equal("bob\27[2J\u{202E}", doc.events[4].name)              -- as stored
    assert.are.equal("bytes \u{FFFD}\u{FFFD}", doc.events[4].detail)       -- not UTF-8: U+FFFD
    assert.are.same({1, 4}, (ids("--action verify")))
    assert.are.same({1, 2}, (ids("--name alice")))
    assert.are.same({1}, (ids("--name alice --action verify")))
    assert.are.same({3, 4}, (ids("--limit 2")))
    assert.are.same({4}, (ids("--action verify --limit 1")))
    assert.are.same({1, 2, 3, 4}, (ids("--since " .. os.date("!%Y-%m-%d"))))
    assert.are.same({1, 2, 3, 4}, (ids("--since 2000-01-01T00:00Z")))
    assert.are.same({}, (ids("--since 2999-12-31T23:59:59Z")))
    assert.are.same({}, (ids("--name nobody")))
    local out = run("audit --gallery " .. q(gallery) .. " --name nobody")
    assert.are.equal(log_path .. ": no events match\n", out)
    out = run("audit --gallery " .. q(gallery) .. " --action rename")
    assert.matches("^" .. log_path:gsub("%p", "%%%0") .. ": 1 event %(filtered%)\n", out)
  end)

  it("a missing log: 'no audit log', exit 0, nothing created", function()
    local out, err, code = run("audit --gallery " .. q(gallery))
    assert.are.equal(0, code, err)
    assert.are.equal(log_path .. ": no audit log\n", out)
    out, err, code = run("audit --json --gallery " .. q(gallery) .. " --limit 3")
    assert.are.equal(0, code, err)
    assert.are.same({log = log_path, events = {}}, assert(json.decode(out)))
    assert.are.same({}, support.list_dir(dir))
    -- an empty log
    assert(audit.open(log_path)):close()
    out = run("audit --gallery " .. q(gallery))
    assert.are.equal(log_path .. ": no events\n", out)
  end)

  it("refuses a damaged log or one with too open permissions, and bad arguments", function()
    fill()
    assert(os.execute("chmod 640 " .. q(log_path)))
    local out, err, code = run("audit --gallery " .. q(gallery))
    assert.are.equal(2, code)
    assert.are.equal("", out)
    assert.matches("permissions 0640 are too open", err, 1, true)
    support.write_file(log_path, string.rep("junk\n", 500))
    assert(os.execute("chmod 600 " .. q(log_path)))
    out, err, code = run("audit --json --gallery " .. q(gallery))
    assert.are.equal(2, code)
    assert.matches(log_path, assert(json.decode(out)).error, 1, true)
    assert.are.equal(string.rep("junk\n", 500), support.read_file(log_path))

    local cases = {
      {"audit", "--gallery FILE is required"},
      {"audit --gallery g extra", "audit takes no argument, got 1 argument"},
      {"audit --gallery g --limit 0", "--limit must be a positive integer, got 0"},
      {"audit --gallery g --limit 2.5", "--limit must be a positive integer, got 2.5"},
      {"audit --gallery g --limit x", "argument for option '--limit' must be a number, got 'x'"},
      {"audit --gallery g --since yesterday", "--since must be a UTC date or time YYYY-MM-DD or "
        .. "YYYY-MM-DDTHH:MM[:SS]Z, got 'yesterday'"},
      {"audit --gallery g --since 2026-02-30", "--since must be"},
      {"audit --gallery g --since 2026-11-22T25:00Z", "--since must be"},
      {"audit --gallery g --since '2026-11-22 08:00'", "--since must be"},
      {"audit --gallery g --since 2026-11-22T08:00", "--since must be"},   -- no Z: not said to be UTC
      {"audit --gallery g --action ''", "--action must not be empty"},
      {"audit --gallery g --name ''", "--name must not be empty"},
      {"audit --gallery g --bogus", "unknown option '--bogus'"},
    }
    for _, c in ipairs(cases) do
      out, err, code = run(c[1])
      assert.are.equal(2, code, c[1])
      assert.are.equal("", out, c[1])
      assert.are.equal("siamese: " .. c[2], err:sub(1, #c[2] + 9), c[1] .. ": " .. err)
      assert.matches("(see siamese audit --help)\n", err, 1, true)
      assert.are.equal(1, select(2, err:gsub("\n", "")), c[1])
      out, err, code = run(c[1] .. " --json")
      assert.are.equal(2, code, c[1])
      assert.are.equal(c[2], assert(json.decode(out), c[1]).error:sub(1, #c[2]), c[1])
    end
    assert.is_nil(lfs.attributes("g.audit"))
    out, _, code = run("audit --help")
    assert.are.equal(0, code)
    assert.matches("usage: siamese audit --gallery FILE", out, 1, true)
    out = run("--help")
    assert.matches("\n  audit ", out, 1, true)
  end)
end)

describe("siamese.app.cli.audit helpers", function()
  if not has_sqlite then
    pending("lua-sql-sqlite3 is not installed (apt-get install lua-sql-sqlite3)")
    return
  end

  local audit_cli = require "siamese.app.cli.audit"
  local audit = require "siamese.app.web.audit"
  local dir
  before_each(function() dir = support.temp_dir("cli_audit") end)
  after_each(function() os.execute("rm -rf " .. q(dir)) end)

  -- Calls fn with io.stderr captured; returns fn's results and the text.
  local function stderr_of(fn)
    local real, text = io.stderr, {}
    io.stderr = {write = function(self, ...) for _, s in ipairs{...} do text[#text + 1] = s end return self end}
    local res = table.pack(pcall(fn))
    io.stderr = real
    assert(res[1], res[2])
    return table.concat(text), table.unpack(res, 2, res.n)
  end

  it("open_for_change opens (creating) the log, or reports why not and returns 2", function()
    local gallery = dir .. "/g"
    local log = assert(audit_cli.open_for_change(gallery))
    assert.are.equal(gallery .. ".audit", log.path)
    assert.are.equal("rw-------", lfs.attributes(gallery .. ".audit", "permissions"))
    -- record: the local actor, and the log closed after
    assert.is_true(audit_cli.record(log, {{action = "remove", name = "a", accepted = true, role = "admin",
                                           token_id = "1a2b3c4d"}, {action = "rename", name = "b"}}))
    assert.is_nil(log.conn)
    local l2 = assert(audit.open(gallery .. ".audit"))
    local ev = l2:events()
    l2:close()
    assert.are.equal(2, #ev)
    for _, e in ipairs(ev) do
      assert.are.same({"local", audit.local_actor().client}, {e.role, e.client})
      assert.is_nil(e.token_id)   -- the command line presents no token
    end
    assert.are.same({"remove", "a", true, "rename", "b"}, {ev[1].action, ev[1].name, ev[1].accepted, ev[2].action,
                                                          ev[2].name})

    assert(os.execute("chmod 604 " .. q(gallery .. ".audit")))
    local err, l3, code = stderr_of(function() return audit_cli.open_for_change(gallery) end)
    assert.is_nil(l3)
    assert.are.equal(2, code)
    assert.matches("^siamese: cannot open the audit log " .. (gallery .. ".audit"):gsub("%p", "%%%0")
      .. ": permissions 0604 are too open.*; nothing was changed\n$", err)
  end)

  it("record reports a failing record (the log closed); unrecorded says what was done and returns 2", function()
    local log = assert(audit_cli.open_for_change(dir .. "/g"))
    log.record = function() return nil, "disk full" end
    assert.are.same({nil, "disk full"}, {audit_cli.record(log, {{action = "remove"}})})
    assert.is_nil(log.conn)
    local err, code = stderr_of(function() return audit_cli.unrecorded("removed bob from g", "disk full") end)
    assert.are.equal(2, code)
    assert.are.equal("siamese: removed bob from g, but the audit log could not record it: disk full\n", err)
  end)
end)
