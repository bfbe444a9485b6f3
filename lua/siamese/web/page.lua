--- siamese.web.page: the demo's single page (plain HTML, CSS and fetch();
-- nothing loaded from elsewhere). Kept as a Lua string so that it is
-- installed with the other modules.
local page = {}

page.html = [==[
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>siamese — face verification demo</title>
<style>
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
</style>
</head>
<body>
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
  </section>
</div>
<script>
"use strict";
function el(tag, attrs, text) {
  const e = document.createElement(tag);
  for (const k in (attrs || {})) e.setAttribute(k, attrs[k]);
  if (text !== undefined) e.textContent = text;
  return e;
}
function fmt(x) { return (typeof x === "number") ? x.toFixed(3) : "—"; }

// Posts a form; shows "working", then either calls render(json) or shows the
// server's error. The result box gets data-state="busy" | "ok" | "error".
async function submit(form, url, out, render) {
  out.className = "result"; out.dataset.state = "busy"; out.replaceChildren(el("span", {class: "muted"}, "working…"));
  let res, body;
  try {
    res = await fetch(url, {method: "POST", body: new FormData(form)});
    body = await res.json();
  } catch (e) {
    out.className = "result error"; out.dataset.state = "error";
    out.replaceChildren(el("span", {}, "request failed: " + e)); return;
  }
  if (!res.ok) {
    out.className = "result error"; out.dataset.state = "error";
    out.replaceChildren(el("span", {class: "message"}, "Error " + res.status + ": " + body.error)); return;
  }
  out.replaceChildren(); render(body, out); out.dataset.state = "ok";
}

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

async function loadPeople() {
  const box = document.getElementById("people");
  try {
    const r = await (await fetch("/api/people")).json();
    if (r.count === 0) { box.replaceChildren(el("span", {class: "muted"}, "nobody enrolled yet")); return; }
    const list = el("ul");
    r.people.forEach(p => list.append(el("li", {}, p.name + " (" + p.templates + ")")));
    box.className = "";
    box.replaceChildren(el("div", {}, r.count + " people, threshold " + fmt(r.threshold)), list);
  } catch (e) { box.textContent = "cannot list the gallery: " + e; }
}
loadPeople();
</script>
</body>
</html>
]==]

return page
