-- Specs of siamese.app.web.page: the page's Content-Security-Policy (page.csp)
-- names the SHA-256 of exactly the inline <style> and <script> of
-- page.html, and the page has nothing that policy would block (inline
-- event handlers, style attributes, resources from elsewhere); the access
-- token lives in sessionStorage only. (The browser's own verdict:
-- spec/e2e/run.lua, which reads the violations the page records.)
local page = require "siamese.app.web.page"
local hash = require "siamese.hash"
local base64 = require "siamese.app.web.base64"

-- The CSP source of a string's SHA-256 ('sha256-<base64 of the digest>').
local function source_of(s)
  local digest = hash.sha256(s):gsub("%x%x", function(h) return string.char(tonumber(h, 16)) end)
  return "'sha256-" .. base64.encode(digest) .. "'"
end

-- Every element <tag ...>contents</tag> of the html: a list of {attrs, contents}.
local function elements(html, tag)
  local found = {}
  for attrs, contents in html:gmatch("<" .. tag .. "([^>]*)>(.-)</" .. tag .. ">") do
    found[#found + 1] = {attrs = attrs, contents = contents}
  end
  return found
end

-- The page without its <style> and <script> contents: the markup only.
local function markup(html)
  return (html:gsub("<style>.-</style>", "<style></style>"):gsub("<script>.-</script>", "<script></script>"))
end

describe("siamese.app.web.page", function()
  it("has one inline style and one inline script, the module's page.style and page.script", function()
    local styles, scripts = elements(page.html, "style"), elements(page.html, "script")
    assert.are.equal(1, #styles)
    assert.are.equal(1, #scripts)
    assert.are.equal("", styles[1].attrs)
    assert.are.equal("", scripts[1].attrs) -- no src, no type: the inline script itself
    assert.are.equal(page.style, styles[1].contents)
    assert.are.equal(page.script, scripts[1].contents)
    assert.is_nil(page.html:find("<link[^>]+stylesheet"), "no style sheet link")
  end)

  it("exports a CSP naming the SHA-256 of exactly the inline contents", function()
    local script_src, style_src = page.csp:match(
      "^default%-src 'none'; script%-src ('sha256%-[%w+/]+=*'); style%-src ('sha256%-[%w+/]+=*'); img%-src data:; "
      .. "connect%-src 'self'; form%-action 'none'; frame%-ancestors 'none'; base%-uri 'none'$")
    assert.is_string(script_src, page.csp)
    -- a SHA-256 digest is 32 bytes: 44 base64 characters, one '='
    assert.are.equal(#"'sha256-'" + 44, #script_src)
    assert.are.equal(#"'sha256-'" + 44, #style_src)
    -- computed again here from the contents found in the HTML
    assert.are.equal(source_of(elements(page.html, "script")[1].contents), script_src)
    assert.are.equal(source_of(elements(page.html, "style")[1].contents), style_src)
    -- one byte more or less (e.g. a newline the HTML adds) is another hash
    assert.are_not.equal(source_of(page.script .. "\n"), script_src)
    assert.are_not.equal(source_of("\n" .. page.style), style_src)
    -- the encoding of the digest, checked on a known value: SHA-256("abc")
    assert.are.equal("'sha256-ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0='", source_of("abc"))
  end)

  it("has no inline event handlers, style attributes or scripting URLs in its markup", function()
    local m = markup(page.html)
    assert.is_nil(m:lower():find("%sstyle%s*="), "a style attribute")
    assert.is_nil(m:lower():find("%son[a-z]+%s*="), "an inline event handler")
    assert.is_nil(m:lower():find("javascript:", 1, true), "a javascript: URL")
    -- and the script does not make them either, nor HTML from strings
    for _, bad in ipairs{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function",
                         "setAttribute(\"on", "setAttribute(\"style", ".style.", "javascript:"} do
      assert.is_nil(page.script:find(bad, 1, true), bad)
    end
  end)

  it("loads nothing from elsewhere", function()
    assert.is_nil(page.html:lower():find("https?://"), "an http(s) URL")
    assert.is_nil(page.html:find("//", 1, true) and markup(page.html):find("=\"//", 1, true), "a protocol-relative URL")
    local m = markup(page.html)
    for attr, value in m:gmatch("%s(%a+)%s*=%s*\"([^\"]*)\"") do
      if attr == "src" or attr == "href" or attr == "action" or attr == "data" then
        assert.matches("^data:", value, nil, false, attr .. "=" .. value)
      end
    end
    -- fetch() only to this origin's API paths
    for url in page.script:gmatch("api%(\"([^\"]*)\"") do assert.matches("^/api/[a-z]+$", url) end
    assert.is_nil(page.script:find("fetch%(\"[^/]"), "a fetch() to elsewhere")
  end)

  it("keeps the access token in sessionStorage only and sends it as a bearer token", function()
    assert.truthy(page.script:find("sessionStorage.setItem", 1, true))
    assert.truthy(page.script:find("sessionStorage.getItem", 1, true))
    assert.is_nil(page.script:find("localStorage", 1, true))
    assert.is_nil(page.script:find("document.cookie", 1, true))
    assert.is_nil(page.script:find("location", 1, true), "no token in URLs")
    assert.truthy(page.script:find('"Authorization", "Bearer " + token', 1, true))
    -- the token field is a password field of its own form, not sent with the others
    assert.matches('<input type="password" id="token%-input"', page.html)
    local token_form = page.html:match('<form id="token%-form".-</form>')
    assert.is_string(token_form)
    for form in page.html:gmatch('<form id="[^"]+".-</form>') do
      if form ~= token_form then assert.is_nil(form:find("token", 1, true), form) end
    end
    -- the messages of 401 and 403
    for _, text in ipairs{"this server needs an access token",
                          "this token may not do that (admin: enrol and the gallery list; door: verify and identify)",
                          "the gallery list needs an admin token"} do
      assert.truthy(page.script:find(text, 1, true), text)
    end
  end)

  it("keeps the element ids the tests and clients rely on, each once", function()
    local seen = {}
    for id in markup(page.html):gmatch('%sid="([^"]+)"') do
      assert.is_nil(seen[id], "duplicate id " .. id)
      seen[id] = true
    end
    for _, id in ipairs{"verify", "verify-form", "verify-image1", "verify-image2", "verify-submit", "verify-result",
                        "enroll", "enroll-form", "enroll-name", "enroll-image", "enroll-mode", "enroll-submit",
                        "enroll-result", "identify", "identify-form", "identify-image", "identify-submit",
                        "identify-result", "gallery", "people", "people-result", "token-form", "token-input",
                        "token-use", "token-forget", "token-current", "token-status"} do
      assert.is_true(seen[id], id)
      -- and the script only looks up ids that exist
    end
    for id in page.script:gmatch('getElementById%("([^"]+)"%)') do assert.is_true(seen[id], id) end
  end)
end)
