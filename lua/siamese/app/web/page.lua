--- siamese.app.web.page: the demo's single page (plain HTML, CSS and fetch();
-- nothing loaded from elsewhere). Kept as Lua strings so that it is
-- installed with the other modules.
--
--   page.style   the CSS, exactly as inside the page's one <style> element
--   page.script  the JavaScript, exactly as inside its one <script> element
--   page.html    the page (the two above assembled into it)
--   page.csp     the Content-Security-Policy to send with it: scripts and
--                styles only by the SHA-256 hashes of those two contents
--                (no inline event handlers or style attributes; nothing
--                from elsewhere), images only data: URLs, fetch() only to
--                this origin, no forms submitted, no framing.
--
-- The access token (siamese token add) is asked for in a bar at the top
-- and kept in sessionStorage only (this tab, until it closes; never
-- localStorage, cookies or URLs); every API request sends it as
-- "Authorization: Bearer <token>".
local hash = require "siamese.hash"
local base64 = require "siamese.app.web.base64"

local page = {}

page.style = [==[
  body { font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 1100px; color: #222; background: #f6f6f4; }
  h1 { font-size: 1.5em; margin-bottom: .2em; }
  .sub { color: #666; margin-top: 0; }
  .grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(330px, 1fr)); gap: 1em; }
  section { background: #fff; border: 1px solid #ddd; border-radius: 8px; padding: 1em; }
  h2 { font-size: 1.15em; margin-top: 0; }
  label { display: block; margin: .4em 0; }
  input[type=text] { width: 95%; padding: .3em; }
  button { margin-top: .5em; padding: .4em 1.2em; font-size: 1em; cursor: pointer; }
  .result { margin-top: .8em; min-height: 1.5em; }
  .result .verdict { font-weight: bold; font-size: 1.1em; }
  .result.error { color: #b00020; }
  .result img { max-width: 100%; border-radius: 4px; margin-top: .4em; display: block; }
  .pair { display: flex; gap: .4em; } .pair img { width: 49%; }
  ul { padding-left: 1.2em; margin: .3em 0; }
  .muted { color: #777; }
  .tokenbar { display: flex; flex-wrap: wrap; align-items: center; gap: .5em; background: #fff; border: 1px solid #ddd;
              border-radius: 8px; padding: .5em 1em; }
  .tokenbar label { display: inline; margin: 0; font-weight: bold; }
  .tokenbar input { flex: 0 1 24em; padding: .3em; font-family: ui-monospace, monospace; }
  .tokenbar button { margin-top: 0; }
  #token-current { color: #555; }
  #token-status.warn, #people.error { color: #b00020; }
  #people li button { margin: 0 0 0 .6em; padding: .1em .6em; font-size: .85em; }
]==]

page.script = [==[
"use strict";
// Content-Security-Policy violations of this page, for the end-to-end test
// (it expects none): the policy allows this script and the style by hash.
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", e => {
  window.__cspViolations.push({directive: e.violatedDirective, blocked: e.blockedURI, sample: e.sample});
});

function el(tag, attrs, text) {
  const e = document.createElement(tag);
  for (const k in (attrs || {})) e.setAttribute(k, attrs[k]);
  if (text !== undefined) e.textContent = text;
  return e;
}
function fmt(x) { return (typeof x === "number") ? x.toFixed(3) : "—"; }

// The access token: in this tab's sessionStorage only (gone when the tab
// closes), never in persistent storage, cookies or URLs. Sent with every
// API request as "Authorization: Bearer <token>".
const TOKEN_KEY = "siamese.token";
const TOKEN_FORMAT = /^sm_[0-9a-f]{8}_[A-Za-z0-9_-]{43}$/;
const NEEDS_TOKEN = "this server needs an access token";
const WRONG_ROLE = "this token may not do that (admin: enrol and the gallery list; door: verify and identify)";
const NEEDS_ADMIN = "the gallery list needs an admin token";
const tokenInput = document.getElementById("token-input");
let token = "";
try { token = sessionStorage.getItem(TOKEN_KEY) || ""; } catch (e) { token = ""; }
if (!TOKEN_FORMAT.test(token)) token = "";

function setStatus(text, warn) {
  const s = document.getElementById("token-status");
  s.textContent = text;
  s.className = warn ? "warn" : "";
}
function showToken() {
  // only the token's public id ("sm_" and 8 hex digits), never its secret
  document.getElementById("token-current").textContent =
    token ? "using token " + token.slice(0, 11) + "… (this tab only)" : "no token";
}
function setToken(t) {
  token = t;
  try {
    if (t) sessionStorage.setItem(TOKEN_KEY, t); else sessionStorage.removeItem(TOKEN_KEY);
  } catch (e) { /* storage refused: the token lives in this page only */ }
  tokenInput.value = "";
  showToken();
}

// One API request with the token. Returns {status, ok, body}: body is the
// JSON answer, or {error} when the answer is not JSON. Raises only when
// the request could not be made. referrerPolicy "same-origin": the page is
// served with "Referrer-Policy: no-referrer", under which the Fetch
// standard sends a POST's Origin header as "null"; the server compares
// Origin with Host (cross-site requests are refused), so it must be the
// page's own origin. (Only this origin's URLs are ever requested.)
async function api(url, init) {
  const headers = new Headers();
  if (token) headers.set("Authorization", "Bearer " + token);
  const res = await fetch(url, Object.assign({headers: headers, credentials: "omit", cache: "no-store",
                                              referrerPolicy: "same-origin"}, init || {}));
  let body = null;
  try { body = await res.json(); } catch (e) { body = null; }
  if (!body || typeof body !== "object") body = {error: res.statusText || "the answer is not JSON"};
  if (typeof body.error !== "string") body.error = String(body.error);
  return {status: res.status, ok: res.ok, body: body};
}

// 401 and 403: the message for people, shown in the token bar too (a 401
// also puts the cursor in the token field). null for other statuses.
function authProblem(status, what) {
  let m = null;
  if (status === 401) m = NEEDS_TOKEN;
  else if (status === 403) m = what === "people" ? NEEDS_ADMIN : WRONG_ROLE;
  if (m === null) return null;
  setStatus(status === 401 && token ? m + ": the token in use was refused (revoked?)" : m, true);
  if (status === 401) tokenInput.focus();
  return m;
}

function showError(out, text) {
  out.className = "result error"; out.dataset.state = "error";
  out.replaceChildren(el("span", {class: "message"}, text));
}

// Posts a form; shows "working", then either calls render(json) or shows the
// server's error. The result box gets data-state="busy" | "ok" | "error".
async function submit(form, url, out, render) {
  out.className = "result"; out.dataset.state = "busy"; out.replaceChildren(el("span", {class: "muted"}, "working…"));
  let r;
  try {
    r = await api(url, {method: "POST", body: new FormData(form)});
  } catch (e) {
    showError(out, "request failed: " + e); return;
  }
  if (!r.ok) {
    const m = authProblem(r.status, url);
    showError(out, "Error " + r.status + ": " + (m ? m + " (" + r.body.error + ")" : r.body.error)); return;
  }
  out.replaceChildren(); render(r.body, out); out.dataset.state = "ok";
}

document.getElementById("token-form").addEventListener("submit", ev => {
  ev.preventDefault();
  const t = tokenInput.value.trim();
  if (!TOKEN_FORMAT.test(t)) {
    setStatus(t ? "that is not an access token (sm_, 8 hex digits, _, 43 characters)" : "paste a token first", true);
    tokenInput.focus();
    return;
  }
  setToken(t);
  setStatus("token set", false);
  loadPeople();
});

document.getElementById("token-forget").addEventListener("click", () => {
  setToken("");
  setStatus("token forgotten", false);
  loadPeople();
});

document.getElementById("verify-form").addEventListener("submit", ev => {
  ev.preventDefault();
  submit(ev.target, "/api/verify", document.getElementById("verify-result"), (r, out) => {
    out.append(el("div", {class: "verdict"}, r.accepted ? "Same person" : "Different people"));
    out.append(el("div", {class: "numbers"}, "distance " + fmt(r.distance) + " (threshold " + fmt(r.threshold) + ", " + r.metric + ")"));
    const pair = el("div", {class: "pair"});
    r.images.forEach((src, i) => pair.append(el("img", {src: src, alt: "photo " + (i + 1)})));
    out.append(pair);
  });
});

document.getElementById("enroll-form").addEventListener("submit", ev => {
  ev.preventDefault();
  submit(ev.target, "/api/enroll", document.getElementById("enroll-result"), (r, out) => {
    out.append(el("div", {class: "verdict"}, "Enrolled " + r.name));
    out.append(el("div", {}, r.templates + " photo(s) of " + r.name + "; " + r.count + " people in the gallery"));
    out.append(el("img", {src: r.image, alt: r.name}));
    loadPeople();
  });
});

document.getElementById("identify-form").addEventListener("submit", ev => {
  ev.preventDefault();
  submit(ev.target, "/api/identify", document.getElementById("identify-result"), (r, out) => {
    const list = el("ul", {class: "faces"});
    r.faces.forEach((f, i) => {
      const who = f.name === null ? (f.quality && !f.quality.ok ? "not decided: " + f.reason : "unknown") : f.name;
      const li = el("li", {class: "face"}, "Face " + (i + 1) + ": ");
      li.append(el("span", {class: "name"}, who));
      const near = f.candidates.map(c => c.name + " " + fmt(c.distance)).join(", ");
      li.append(document.createTextNode(" (distance " + fmt(f.distance) + (near ? "; nearest: " + near : "") + ")"));
      list.append(li);
    });
    out.append(el("div", {class: "verdict"}, r.faces.length + " face(s) found"));
    out.append(list);
    out.append(el("img", {src: r.image, alt: "identified faces"}));
  });
});

// Removes a person (admin token), after a confirmation.
async function removePerson(name) {
  if (!window.confirm("Remove " + name + " and all their photos from the gallery?")) return;
  const out = document.getElementById("people-result");
  const fields = new FormData();
  fields.append("name", name);
  out.className = "result"; out.dataset.state = "busy"; out.replaceChildren(el("span", {class: "muted"}, "working…"));
  let r;
  try {
    r = await api("/api/remove", {method: "POST", body: fields});
  } catch (e) {
    showError(out, "request failed: " + e); return;
  }
  if (!r.ok) {
    const m = authProblem(r.status, "remove");
    showError(out, "Error " + r.status + ": " + (m ? m + " (" + r.body.error + ")" : r.body.error)); return;
  }
  out.replaceChildren(el("span", {}, "Removed " + name)); out.dataset.state = "ok";
  loadPeople();
}

// The gallery list (admin token). #people gets data-state="busy" | "ok" |
// "error"; only the latest of overlapping loads is shown.
let peopleLoads = 0;
async function loadPeople() {
  const box = document.getElementById("people");
  const n = ++peopleLoads;
  box.dataset.state = "busy";
  let r;
  try {
    r = await api("/api/people");
  } catch (e) {
    if (n !== peopleLoads) return;
    box.className = "error"; box.dataset.state = "error"; box.textContent = "cannot list the gallery: " + e; return;
  }
  if (n !== peopleLoads) return;
  if (!r.ok) {
    const m = authProblem(r.status, "people");
    box.className = "error"; box.dataset.state = "error";
    box.textContent = m || "cannot list the gallery: Error " + r.status + ": " + r.body.error;
    return;
  }
  const p = r.body;
  box.className = ""; box.dataset.state = "ok";
  if (p.count === 0) { box.className = "muted"; box.replaceChildren(el("span", {}, "nobody enrolled yet")); return; }
  const list = el("ul");
  p.people.forEach(person => {
    const li = el("li", {class: "person"}, person.name + " (" + person.templates + ")");
    const remove = el("button", {type: "button", class: "remove"}, "Remove");
    remove.addEventListener("click", () => removePerson(person.name));
    li.append(remove);
    list.append(li);
  });
  box.replaceChildren(el("div", {}, p.count + " people, threshold " + fmt(p.threshold)), list);
}

showToken();
loadPeople();
]==]

page.html = [==[
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>siamese — face verification demo</title>
<link rel="icon" href="data:,">
<style>]==] .. page.style .. [==[</style>
</head>
<body>
<form id="token-form" class="tokenbar" autocomplete="off">
  <label for="token-input">Access token</label>
  <input type="password" id="token-input" name="token" autocomplete="off" spellcheck="false" placeholder="sm_…">
  <button type="submit" id="token-use">Use</button>
  <button type="button" id="token-forget">Forget</button>
  <span id="token-current"></span>
  <span id="token-status" role="status" aria-live="polite"></span>
</form>
<h1>siamese — faces, one photo at a time</h1>
<p class="sub">Verify two photos, enroll a person from one photo, identify the faces in a photo.
Pictures are processed by this server only.</p>
<div class="grid">
  <section id="verify">
    <h2>Verify: same person?</h2>
    <form id="verify-form">
      <label>First photo <input type="file" id="verify-image1" name="image1" accept="image/*"></label>
      <label>Second photo <input type="file" id="verify-image2" name="image2" accept="image/*"></label>
      <button type="submit" id="verify-submit">Compare</button>
    </form>
    <div class="result" id="verify-result"></div>
  </section>
  <section id="enroll">
    <h2>Enroll a person</h2>
    <form id="enroll-form">
      <label>Name <input type="text" id="enroll-name" name="name" maxlength="64" placeholder="e.g. Ada Lovelace"></label>
      <label>Photo <input type="file" id="enroll-image" name="image" accept="image/*"></label>
      <label>This person is <select id="enroll-mode" name="mode">
        <option value="new" selected>new to the gallery</option>
        <option value="add">already enrolled: add this photo</option>
        <option value="replace">already enrolled: replace the photos</option>
      </select></label>
      <button type="submit" id="enroll-submit">Enroll</button>
    </form>
    <div class="result" id="enroll-result"></div>
  </section>
  <section id="identify">
    <h2>Identify</h2>
    <form id="identify-form">
      <label>Photo <input type="file" id="identify-image" name="image" accept="image/*"></label>
      <button type="submit" id="identify-submit">Identify</button>
    </form>
    <div class="result" id="identify-result"></div>
  </section>
  <section id="gallery">
    <h2>Gallery</h2>
    <div id="people" class="muted">loading…</div>
    <div class="result" id="people-result"></div>
  </section>
</div>
<script>]==] .. page.script .. [==[</script>
</body>
</html>
]==]

-- 'sha256-<base64 of the digest>' of a string, as CSP writes it.
local function csp_hash(s)
  local digest = hash.sha256(s):gsub("%x%x", function(h) return string.char(tonumber(h, 16)) end)
  return "'sha256-" .. base64.encode(digest) .. "'"
end

page.csp = table.concat({
  "default-src 'none'",
  "script-src " .. csp_hash(page.script),
  "style-src " .. csp_hash(page.style),
  "img-src data:",
  "connect-src 'self'",
  "form-action 'none'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
}, "; ")

return page
