-- `make doc` keeps building: LDoc (Debian's lua-ldoc) over lua/siamese with
-- lua/config.ld, into a temporary folder. A doc comment LDoc cannot take
-- (e.g. "---" above a table with array entries) fails it here, not later.
local support = dofile("spec/support.lua")

describe("the API reference (make doc)", function()
  it("builds a page per module, named siamese.*", function()
    local P, V = require("siamese.core").process, require("siamese.core").video
    local out = support.temp_dir("doc")
    local r, w = assert(V.pipe())
    -- ldoc runs where config.ld is; -d sends the pages to the temporary folder
    local pid = assert(P.spawn({"env", "-C", "lua", "ldoc", "-c", "config.ld", "-i", "-d", out, "."},
      {stdout = w, stderr = w}))
    P.close(w)
    local log = V.read_all(r, 1 << 22, 300) or ""
    P.close(r)
    local _, code = P.waitpid(pid)
    assert.are.equal(0, code, log)
    for _, m in ipairs{"siamese", "siamese.gallery", "siamese.gallery_pg", "siamese.face", "siamese.door",
                       "siamese.video", "siamese.pg"} do
      assert(io.open(out .. "/modules/" .. m .. ".html"), "no page for " .. m):close()
    end
    local index = support.read_file(out .. "/index.html")
    assert.matches("misuse", index) -- the conventions on the front page
    os.execute("rm -rf " .. support.q(out))
  end)
end)

describe("README.md, the user's guide", function()
  local text = support.read_file("README.md")

  it("stays short: at most 300 lines", function()
    local n = select(2, text:gsub("\n", "\n"))
    assert.is_true(n <= 300, "README.md has " .. n .. " lines")
  end)

  it("links only to files and folders that exist", function()
    local count = 0
    for target in text:gmatch("%]%(([^)#]+)[^)]*%)") do
      if not target:match("^%a+://") then
        count = count + 1
        local f = io.open(target, "r")
        assert(f, "README.md links to a missing " .. target)
        f:close()
      end
    end
    assert.is_true(count >= 10, "expected the README's links, found " .. count)
  end)

  it("lists in its install line exactly the Debian packages make deps installs", function()
    local deps = support.read_file(".ci/deps"):match('\nPKGS="([^"]-) %$%*"')
    local line = text:match("apt%-get install %-y %-%-no%-install%-recommends ([^\n`]+)")
    assert.truthy(deps, ".ci/deps has no PKGS line")
    assert.are.equal(deps, line)
  end)

  it("gives each headline figure a link to the folder README that reproduces it", function()
    local section = assert(text:match("\n## Results\n(.-)\n## "), "no Results section")
    local rows = 0
    for row in section:gmatch("\n(|[^\n]+)") do
      if not row:match("^|%-") and not row:match("^| what") then
        rows = rows + 1
        assert.matches("%]%([%w_/]+README%.md%)", row, 1, false, row)
        assert.matches("`[^`]+` |$", row, 1, false, row)   -- the command
      end
    end
    assert.is_true(rows >= 5, "the Results table has " .. rows .. " rows")
  end)
end)
