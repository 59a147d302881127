"""The web page at ``/``: drop or pick images, see the top-k bars and the Grad-CAM overlay.

Self-contained: inline CSS and JavaScript, no external script, font or stylesheet, so it works on a
machine without internet. It reads ``/info`` (classes, model, whether Grad-CAM is on) and posts the
chosen images to ``/predict`` as one multipart form. Opened as ``/?api_key=KEY`` it sends the key.

Example:
    >>> "<script>" in page_html(), "://" in page_html()  # inline script, no external address
    (True, False)
"""

from __future__ import annotations

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>graft serve</title>
<style>
body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:60rem;padding:0 1rem;color:#222}
h1{font-size:1.4rem;margin-bottom:.2rem} #info{color:#555;font-size:.9rem}
#drop{border:2px dashed #888;border-radius:8px;padding:2rem;text-align:center;margin:1rem 0;cursor:pointer}
#drop.over{background:#eef5ff;border-color:#36c}
.result{display:flex;gap:1rem;border-top:1px solid #ddd;padding:1rem 0;align-items:flex-start}
.result img.thumb{width:128px;height:128px;object-fit:contain;background:#f4f4f4}
.bars{flex:1;min-width:14rem} .row{display:flex;align-items:center;gap:.5rem;margin:.2rem 0}
.row .label{width:9rem;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.track{flex:1;background:#eee;height:1rem;border-radius:3px}
.bar{background:#36c;height:1rem;border-radius:3px} .row .prob{width:4rem;text-align:right}
.error{color:#b00} img.overlay{max-width:340px}
</style></head>
<body>
<h1>graft serve</h1>
<div id="info">loading model information...</div>
<div id="drop">Drop images here or <label><u>choose files</u>
<input id="file" type="file" accept="image/*" multiple hidden></label></div>
<label><input id="gradcam" type="checkbox"> Grad-CAM overlay</label>
<label style="margin-left:1rem">top-k <input id="topk" type="number" min="1" value="5" style="width:4rem"></label>
<div id="status"></div>
<div id="results"></div>
<script>
"use strict";
const params = new URLSearchParams(location.search);
const headers = params.get("api_key") ? {"X-API-Key": params.get("api_key")} : {};
const $ = (id) => document.getElementById(id);
let info = null;

function text(tag, value, cls) {
  const el = document.createElement(tag);
  el.textContent = value;
  if (cls) el.className = cls;
  return el;
}

async function loadInfo() {
  const r = await fetch("info", {headers});
  if (!r.ok) { $("info").textContent = "cannot read /info: HTTP " + r.status; return; }
  info = await r.json();
  $("info").textContent = `${info.model} (${info.backend}), ${info.num_classes} classes, input `
    + `${info.input_size.slice(1).join("x")} px, graft ${info.graft_version}`;
  $("gradcam").disabled = !info.gradcam;
  if (!info.gradcam) $("gradcam").parentElement.title = "start the server with --gradcam";
}

function showResult(file, pred) {
  const box = document.createElement("div");
  box.className = "result";
  const thumb = document.createElement("img");
  thumb.className = "thumb";
  thumb.alt = file.name;
  thumb.src = URL.createObjectURL(file);
  box.appendChild(thumb);
  const bars = document.createElement("div");
  bars.className = "bars";
  bars.appendChild(text("strong", file.name, "name"));
  for (const t of pred.top_k) {
    const row = document.createElement("div");
    row.className = "row";
    row.dataset.label = t.label;
    row.dataset.prob = t.prob;
    row.appendChild(text("span", t.label, "label"));
    const track = document.createElement("div");
    track.className = "track";
    const bar = document.createElement("div");
    bar.className = "bar";
    bar.style.width = (100 * t.prob).toFixed(1) + "%";
    track.appendChild(bar);
    row.appendChild(track);
    row.appendChild(text("span", (100 * t.prob).toFixed(1) + "%", "prob"));
    bars.appendChild(row);
  }
  box.appendChild(bars);
  if (pred.gradcam) {
    const cam = document.createElement("img");
    cam.className = "overlay";
    cam.alt = "Grad-CAM for " + pred.label;
    cam.src = pred.gradcam;
    box.appendChild(cam);
  }
  $("results").prepend(box);
}

async function send(files) {
  files = Array.from(files);
  if (!files.length) return;
  const form = new FormData();
  for (const f of files) form.append("file", f, f.name);
  const q = new URLSearchParams({top_k: $("topk").value || "5"});
  if ($("gradcam").checked) q.set("gradcam", "1");
  $("status").textContent = `predicting ${files.length} image(s)...`;
  $("status").className = "";
  try {
    const r = await fetch("predict?" + q, {method: "POST", body: form, headers});
    const body = await r.json();
    if (!r.ok) throw new Error(body.reason || ("HTTP " + r.status));
    body.predictions.forEach((p, i) => showResult(files[i], p));
    $("status").textContent = `done: ${files.length} image(s)`;
  } catch (e) {
    $("status").textContent = "error: " + e.message;
    $("status").className = "error";
  }
}

const drop = $("drop");
drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => {
  e.preventDefault(); drop.classList.remove("over"); send(e.dataTransfer.files);
});
$("file").addEventListener("change", (e) => { send(e.target.files); e.target.value = ""; });
loadInfo();
</script>
</body></html>
"""


def page_html() -> str:
    """The page's HTML (one self-contained document)."""
    return PAGE
