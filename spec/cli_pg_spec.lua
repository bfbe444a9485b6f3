-- The command line on a gallery in PostgreSQL (--gallery postgresql://...),
-- against a throw-away cluster started here (spec/pg_cluster.lua): the
-- same commands as on a file, the audit log in the same database.
local support = dofile("spec/support.lua")
local pg_cluster = dofile("spec/pg_cluster.lua")

local FACES = "examples/data/faces"
local function photo(name, i) return string.format("%s/%s/%s_%04d.jpg", FACES, name, name, i) end

describe("siamese with --gallery postgresql://", function()
  local cluster, url, q

  setup(function()
    cluster = pg_cluster.start()
    url = cluster.url
    q = support.q(url)
  end)

  teardown(function()
    if cluster then cluster:destroy() end
  end)

  local function siamese(args) return support.siamese(args) end

  it("enroll, verify, identify, gallery list/rename/remove/info and audit work as on a file", function()
    local out, err, code = siamese("verify --gallery " .. q .. " --claim Tony_Blair " .. photo("Tony_Blair", 2))
    assert.are.equal(2, code)
    assert.matches("no such gallery", err)
    out, err, code = siamese("enroll --gallery " .. q .. " Tony_Blair " .. photo("Tony_Blair", 1))
    assert.are.equal(0, code, err)
    out, err, code = siamese("enroll --gallery " .. q .. " Serena_Williams " .. photo("Serena_Williams", 1))
    assert.are.equal(0, code, err)
    -- enrolment rules: enrolling an enrolled name again needs --add or --replace
    out, err, code = siamese("enroll --gallery " .. q .. " Tony_Blair " .. photo("Tony_Blair", 3))
    assert.are.equal(2, code)
    assert.matches("already enrolled", err .. out)
    out, err, code = siamese("verify --gallery " .. q .. " --claim Tony_Blair " .. photo("Tony_Blair", 2))
    assert.are.equal(0, code, err)
    assert.matches("welcome, Tony_Blair", out)
    out, err, code = siamese("verify --gallery " .. q .. " --claim Tony_Blair " .. photo("Serena_Williams", 2))
    assert.are.equal(1, code, err)
    out, err, code = siamese("identify --gallery " .. q .. " " .. photo("Serena_Williams", 2))
    assert.are.equal(0, code, err)
    assert.matches("Serena_Williams %(distance", out)
    out, err, code = siamese("gallery rename --gallery " .. q .. " Tony_Blair Tony")
    assert.are.equal(0, code, err)
    out, err, code = siamese("gallery remove --gallery " .. q .. " Serena_Williams")
    assert.are.equal(0, code, err)
    out, err, code = siamese("gallery list --gallery " .. q .. " --json")
    assert.are.equal(0, code, err)
    local list = require("siamese.json").decode(out)
    assert.are.same({{name = "Tony", templates = 1}}, list.people)
    out, err, code = siamese("audit --gallery " .. q .. " --json")
    assert.are.equal(0, code, err)
    local actions = {}
    for _, e in ipairs(require("siamese.json").decode(out).events) do
      actions[#actions + 1] = e.action .. ":" .. tostring(e.name) .. ":" .. tostring(e.accepted)
    end
    assert.are.same({"enroll:Tony_Blair:true", "enroll:Serena_Williams:true", "enroll:Tony_Blair:false",
                     "rename:Tony_Blair:true", "remove:Serena_Williams:true"}, actions)
  end)

  it("attendance: photos recorded in the database's register, --report and --unknowns from it", function()
    local out, err, code = siamese("enroll --gallery " .. q .. " Colin_Powell " .. photo("Colin_Powell", 1))
    assert.are.equal(0, code, err)
    out, err, code = siamese("attendance --gallery " .. q .. " --db " .. q .. " --time '2026-11-22 09:05' "
      .. photo("Colin_Powell", 2) .. " " .. photo("Gloria_Macapagal_Arroyo", 1))
    assert.are.equal(0, code, err)
    assert.matches("1 recognised, 1 unknown", out)
    out, err, code = siamese("attendance --db " .. q .. " --report --date 2026-11-22 --json")
    assert.are.equal(0, code, err)
    local report = require("siamese.json").decode(out)
    assert.are.equal(1, #report.people)
    assert.are.same({"Colin_Powell", "09:05:00"}, {report.people[1].name, report.people[1].first})
    out, err, code = siamese("attendance --db " .. q .. " --unknowns --json")
    assert.are.equal(0, code, err)
    assert.are.equal(1, #require("siamese.json").decode(out).unknown)
  end)

  it("gallery export and import: a file into a database and back, bit for bit", function()
    local dir = support.temp_dir("cli_pg_export")
    local file, back = dir .. "/door.gallery", dir .. "/back.gallery"
    local out, err, code = siamese("enroll --gallery " .. support.q(file) .. " Tony_Blair " .. photo("Tony_Blair", 1)
      .. " " .. photo("Tony_Blair", 3))
    assert.are.equal(0, code, err)
    out, err, code = siamese("enroll --gallery " .. support.q(file) .. " Serena_Williams " .. photo("Serena_Williams", 1))
    assert.are.equal(0, code, err)
    local db = cluster:new_database("exported")
    out, err, code = siamese("gallery import --gallery " .. support.q(db) .. " " .. support.q(file) .. " --json")
    assert.are.equal(0, code, err)
    assert.are.same({identities = 2, templates = 3}, (function(m) return {identities = m.identities,
      templates = m.templates} end)(require("siamese.json").decode(out)))
    out, err, code = siamese("gallery import --gallery " .. support.q(db) .. " " .. support.q(file))
    assert.are.equal(2, code)
    assert.matches("not empty", err)
    out, err, code = siamese("gallery export --gallery " .. support.q(db) .. " " .. support.q(back))
    assert.are.equal(0, code, err)
    assert.matches("exported 2 identities, 3 templates to", out)
    assert.are.equal(support.read_file(file), support.read_file(back)) -- bit for bit
    out, err, code = siamese("gallery export --gallery " .. support.q(db) .. " " .. support.q(back))
    assert.are.equal(2, code)
    assert.matches("exists %(give %-%-overwrite", err)
    out, err, code = siamese("audit --gallery " .. support.q(db) .. " --action import --json")
    assert.are.equal(0, code, err)
    assert.are.equal(1, #require("siamese.json").decode(out).events)
    os.execute("rm -rf " .. support.q(dir))
  end)

  it("takes what the URL leaves out from libpq's environment (PGHOST, PGPORT, PGUSER)", function()
    local core = require "siamese.core"
    local P, V = core.process, core.video
    local r, w = assert(V.pipe())
    local pid = assert(P.spawn({"bin/siamese", "gallery", "list", "--gallery", "postgresql:///postgres", "--json"},
      {stdout = w, stderr = w, env = {PGHOST = cluster.dir, PGPORT = tostring(cluster.port), PGUSER = "siamese"}}))
    P.close(w)
    local out = V.read_all(r, 1 << 20, 120) or ""
    P.close(r)
    local _, code = P.waitpid(pid)
    assert.are.equal(0, code, out)
    local people = {}
    for _, p in ipairs(require("siamese.json").decode(out).people) do people[p.name] = p.templates end
    assert.are.equal(1, people.Tony) -- the gallery the tests above filled, reached through the environment
  end)

  it("refuses a password on the command line (also for serve, token, attendance), reports an unreachable database", function()
    local with_password = url:gsub("postgresql://siamese@", "postgresql://siamese:hunter2@")
    local out, err, code = siamese("gallery list --gallery " .. support.q(with_password))
    assert.are.equal(2, code)
    assert.matches("PGPASSWORD or ~/.pgpass", err)
    assert.is_nil((out .. err):find("hunter2", 1, true))
    local nowhere = url:gsub("port=%d+", "port=1")
    out, err, code = siamese("identify --gallery " .. support.q(nowhere) .. " " .. photo("Tony_Blair", 2))
    assert.are.equal(2, code)
    assert.is_truthy(err:find(".s.PGSQL.1", 1, true), err) -- libpq names the socket it could not reach
    for _, args in ipairs{"serve --gallery %s", "token list --gallery %s", "attendance --report --db %s",
                          "enroll --gallery %s Tony_Blair " .. photo("Tony_Blair", 1)} do
      out, err, code = siamese(args:format(support.q(with_password)))
      assert.are.equal(2, code, args)
      assert.matches("PGPASSWORD or ~/.pgpass", err)
      assert.is_nil((out .. err):find("hunter2", 1, true))
    end
  end)
end)
