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
