-- Specs of `siamese token` (run as processes): add, list and revoke the
-- web server's bearer tokens in "<gallery>.tokens"; --json; errors.
local json = require "siamese.json"
local lfs = require "lfs"
local tokens = require "siamese.app.web.tokens"
local support = dofile("spec/support.lua")

local q, run = support.q, support.siamese

describe("siamese token", function()
  local dir, gallery, store_path
  before_each(function()
    dir = support.temp_dir("cli_token")
    gallery = dir .. "/office.gallery"
    store_path = gallery .. ".tokens"
  end)
  after_each(function() os.execute("rm -rf " .. q(dir)) end)

  local function token_json(args)
    local out, err, code = run("token " .. args .. " --json")
    assert.are.equal(0, code, err)
    return assert(json.decode(out))
  end

  it("add prints the token once and stores only its hash; list and revoke", function()
    local out, err, code = run("token add --gallery " .. q(gallery) .. " --role admin --label 'Ana laptop'")
    assert.are.equal(0, code, err)
    assert.are.equal("", err)
    local tok = out:match("(sm_%x+_[%w_%-]+)")
    assert.is_string(tok)
    local id = tok:match("^sm_(%x+)_")
    assert.matches("added admin token " .. id .. " (Ana laptop) to " .. store_path, out, 1, true)
    assert.matches("shown only this once", out, 1, true)
    assert.matches("not the token in clear", out, 1, true)
    assert.are.equal("rw-------", lfs.attributes(store_path, "permissions"))
    -- the secret (everything after "sm_<id>_": base64url, which may itself hold "_") is not in the file
    assert.is_nil(support.read_file(store_path):find(tok:match("^sm_%x+_(.+)$"), 1, true))
    -- the token works against the store the server will open
    assert.are.equal("admin", assert(assert(tokens.open(store_path)):check("Bearer " .. tok)).role)

    local j = token_json("add --gallery " .. q(gallery) .. " --role door")
    assert.are.same({"created", "id", "label", "role", "store", "token"}, (function()
      local keys = {}
      for k in pairs(j) do keys[#keys + 1] = k end
      table.sort(keys)
      return keys
    end)())
    assert.are.equal(json.null, j.label)
    assert.are.equal("door", j.role)
    assert.are.equal(store_path, j.store)
    assert.are.equal("sm_" .. j.id .. "_", j.token:sub(1, 12))

    out, err, code = run("token list --gallery " .. q(gallery))
    assert.are.equal(0, code, err)
    assert.matches(store_path .. ": 2 tokens", out, 1, true)
    assert.matches(id .. "  admin", out, 1, true)
    assert.matches("Ana laptop", out, 1, true)
    assert.matches(j.id .. "  door", out, 1, true)
    assert.is_nil(out:find("sm_", 1, true))          -- never a secret
    local l = token_json("list --gallery " .. q(gallery))
    assert.are.equal(store_path, l.store)
    assert.are.equal(2, #l.tokens)
    for _, t in ipairs(l.tokens) do
      assert.is_nil(t.token)
      assert.is_nil(t.sha256)
      assert.matches("^%x%x%x%x%x%x%x%x$", t.id)
      assert.matches("Z$", t.created)
    end

    out, err, code = run("token revoke --gallery " .. q(gallery) .. " " .. id)
    assert.are.equal(0, code, err)
    assert.matches("revoked token " .. id, out, 1, true)
    local r = token_json("revoke --gallery " .. q(gallery) .. " " .. j.id:upper())
    assert.are.same({store = store_path, revoked = j.id}, r)
    assert.are.same({}, token_json("list --gallery " .. q(gallery)).tokens)
    out = run("token list --gallery " .. q(gallery))
    assert.matches("no tokens", out, 1, true)
    assert.are.same({nil, "unknown or revoked"}, {assert(tokens.open(store_path)):check("Bearer " .. tok)})
  end)

  it("concurrent adds all land (the store is updated under its lock)", function()
    local cmds = {}
    for i = 1, 6 do
      cmds[i] = "bin/siamese token add --gallery " .. q(gallery) .. " --role door --label p" .. i .. " --json >"
        .. q(dir .. "/out" .. i) .. " 2>&1 &"
    end
    assert(os.execute(table.concat(cmds, " ") .. " wait"))
    local store = assert(tokens.open(store_path))
    local list = store:list()
    assert.are.equal(6, #list)
    for i = 1, 6 do
      local j = assert(json.decode(support.read_file(dir .. "/out" .. i)))
      assert.are.equal("p" .. i, assert(store:check("Bearer " .. j.token)).label)
    end
    assert.are.equal("rw-------", lfs.attributes(store_path, "permissions"))
  end)

  it("list of a gallery without a store is empty and creates nothing", function()
    assert.are.same({}, token_json("list --gallery " .. q(gallery)).tokens)
    assert.is_nil(lfs.attributes(store_path))
  end)

  it("usage errors exit 2 with one line; --json errors as JSON", function()
    local cases = {
      {"token", "expected an action: add, list or revoke"},
      {"token frob --gallery g", "unknown action 'frob'"},
      {"token list", "--gallery FILE is required"},
      {"token add --gallery g", "--role admin|door is required"},
      {"token add --gallery g --role root", "argument for option '--role' must be one of 'admin', 'door'"},
      {"token add --gallery g --role door extra", "token add takes no argument, got 1 argument"},
      {"token list --gallery g --role door", "--role only applies to token add"},
      {"token revoke --gallery g", "token revoke takes one ID, got 0 arguments"},
      {"token revoke --gallery g zz", "ID must be 8 hex digits"},
      {"token list --gallery g --bogus", "unknown option '--bogus'"},
      {"token add --gallery g --role door --label " .. q("a\tb"), "--label: the label holds control characters"},
    }
    for _, c in ipairs(cases) do
      local out, err, code = run(c[1])
      assert.are.equal(2, code, c[1])
      assert.are.equal("", out, c[1])
      assert.are.equal("siamese: " .. c[2], err:sub(1, #c[2] + 9), c[1] .. ": " .. err)
      assert.matches("(see siamese token --help)\n", err, 1, true)
      assert.are.equal(1, select(2, err:gsub("\n", "")), c[1])
      out, err, code = run(c[1] .. " --json")
      assert.are.equal(2, code, c[1])
      local j = assert(json.decode(out), c[1])
      assert.are.equal(c[2], j.error:sub(1, #c[2]), c[1])
    end
    assert.is_nil(lfs.attributes("g.tokens"))
    local out, _, code = run("token --help")
    assert.are.equal(0, code)
    assert.matches("usage: siamese token add", out, 1, true)
    out = run("--help")
    assert.matches("token ", out, 1, true)
  end)

  it("errors: unknown id, too open or damaged store (left as it is)", function()
    local j = token_json("add --gallery " .. q(gallery) .. " --role door")
    local out, err, code = run("token revoke --gallery " .. q(gallery) .. " 00000000 --json")
    if j.id == "00000000" then return end -- one chance in 4 billion
    assert.are.equal(2, code)
    assert.matches("no token with id '00000000'", json.decode(out).error, 1, true)
    assert.matches("siamese: no token with id", err, 1, true)

    assert(os.execute("chmod 644 " .. q(store_path)))
    for _, args in ipairs{"list", "add --role admin", "revoke " .. j.id} do
      out, err, code = run("token " .. args .. " --gallery " .. q(gallery))
      assert.are.equal(2, code, args)
      assert.matches("permissions 0644 are too open", err, 1, true)
    end
    assert(os.execute("chmod 600 " .. q(store_path)))

    support.write_file(store_path, "{ damaged")
    for _, args in ipairs{"list", "add --role admin", "revoke " .. j.id} do
      out, err, code = run("token " .. args .. " --gallery " .. q(gallery) .. " --json")
      assert.are.equal(2, code, args)
      assert.matches("damaged token store", json.decode(out).error, 1, true)
      assert.are.equal("{ damaged", support.read_file(store_path))
    end

    out, err, code = run("token add --gallery " .. q(dir .. "/missing/g") .. " --role door")
    assert.are.equal(2, code)
    assert.matches("^siamese: ", err)
  end)
end)
