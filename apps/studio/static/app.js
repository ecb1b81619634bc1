// edgert studio: one page per bundle, chosen by the server from the bundle's manifest.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { bundle: null, facts: null, forms: {}, job: null, abort: null };

async function api(path, body) {
  const init = body === undefined ? {} : {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  };
  const response = await fetch(path, init);
  const data = await response.json();
  if (!response.ok) throw new Error(data.error + (data.hint ? "\nhint: " + data.hint : ""));
  return data;
}

function rows(table, pairs) {
  table.replaceChildren(...pairs.filter(([, v]) => v !== undefined && v !== null && v !== "")
    .map(([k, v]) => {
      const tr = document.createElement("tr");
      const a = document.createElement("td"); a.textContent = k;
      const b = document.createElement("td"); b.textContent = v;
      b.dataset.key = k;
      tr.append(a, b);
      return tr;
    }));
}

const ms = (v) => (v === undefined || v === null ? undefined : `${Number(v).toFixed(1)} ms`);
const mb = (bytes) => `${(bytes / 1e6).toFixed(1)} MB`;

// --- the bundle list --------------------------------------------------------------------
async function loadBundles() {
  const [list, forms] = await Promise.all([api("/api/bundles"), api("/api/decoders")]);
  state.forms = forms;
  const ul = $("bundles");
  ul.replaceChildren(...list.map((b) => {
    const li = document.createElement("li");
    li.dataset.bundle = b.id;
    const agreement = b.validation.next_token_agreement ?? b.validation.top1_agreement;
    li.innerHTML = "<b></b><small></small>";
    li.querySelector("b").textContent = b.id;
    li.querySelector("small").textContent = [b.family, b.profile, b.precision, mb(b.size_bytes),
      agreement !== undefined ? `agreement ${(agreement * 100).toFixed(1)}%` : ""]
      .filter(Boolean).join(" · ");
    li.addEventListener("click", () => openBundle(b.id));
    return li;
  }));
  $("where").textContent = `${list.length} bundle(s) on this machine`;
  const wanted = new URLSearchParams(location.search).get("bundle");
  if (wanted) openBundle(wanted);
}

async function openBundle(id) {
  stop();
  state.bundle = id;
  for (const li of document.querySelectorAll("#bundles li")) {
    li.classList.toggle("active", li.dataset.bundle === id);
  }
  $("empty").hidden = true;
  $("facts").hidden = false;
  $("title").textContent = id;
  rows($("facts-table"), [["loading", "verifying checksums and creating sessions..."]]);
  for (const page of document.querySelectorAll(".page")) page.hidden = true;
  $("profile-out").hidden = true;
  let facts;
  try {
    facts = await api(`/api/bundles/${encodeURIComponent(id)}`);
  } catch (err) {
    rows($("facts-table"), [["error", err.message]]);
    return;
  }
  state.facts = facts;
  const agreement = facts.validation.next_token_agreement ?? facts.validation.top1_agreement;
  rows($("facts-table"), [
    ["family", facts.family], ["page", facts.page], ["profile", facts.profile],
    ["running with", facts.running_profile !== facts.profile ? facts.running_profile : undefined],
    ["provider", facts.provider + (facts.simulated ? " (simulated)" : "")],
    ["fallback", facts.fallback.join("; ") || "none"],
    ["precision", facts.precision], ["size", mb(facts.size_bytes)],
    ["validation agreement", agreement !== undefined ? `${(agreement * 100).toFixed(2)}%` : undefined],
    ["greedy identical", facts.validation.greedy_identical],
  ]);
  if (facts.page === "text" || facts.page === "context") showText(facts);
  else if (facts.page === "image") showImage(facts);
  else if (facts.page === "audio") showAudio(facts);
}

// --- text and context pages --------------------------------------------------------------
function showText(facts) {
  $("page-text").hidden = false;
  const context = facts.page === "context";
  $("context-label").hidden = !context;
  $("input-label").textContent = context ? "Question" : "Input";
  $("go").textContent = context ? "Ask" : "Generate";
  const select = $("decoder");
  select.replaceChildren(...Object.keys(state.forms).map((name) => new Option(name, name)));
  select.value = facts.default_decoder;
  showOptions();
  $("output").textContent = "";
  $("error").hidden = true;
  rows($("stats"), []);
}

function showOptions() {
  const decoder = $("decoder").value;
  const box = $("options");
  box.replaceChildren();
  const bundleDefaults = state.facts.option_defaults || {};
  for (const form of state.forms[decoder] || []) {
    const field = form.name in bundleDefaults ? { ...form, default: bundleDefaults[form.name] } : form;
    const label = document.createElement("label");
    label.append(field.name + " ");
    let input;
    if (field.name === "draft") {
      input = document.createElement("select");
      input.append(...state.facts.drafts.map((d) => new Option(d, d)));
    } else {
      input = document.createElement("input");
      input.type = field.kind === "bool" ? "checkbox" : field.kind === "str" ? "text" : "number";
      if (field.kind === "float") input.step = "any";
      if (field.kind === "bool") input.checked = field.default;
      else input.value = field.default ?? "";
    }
    input.dataset.name = field.name;
    input.dataset.kind = field.kind;
    input.dataset.default = JSON.stringify(field.default);
    label.append(input);
    box.append(label);
  }
}

function chosenOptions() {
  const options = {};
  for (const input of $("options").querySelectorAll("[data-name]")) {
    const kind = input.dataset.kind;
    let value;
    if (kind === "bool") value = input.checked;
    else if (kind === "str") value = input.value;
    else if (input.value === "") value = null;
    else value = kind === "int" ? parseInt(input.value, 10) : parseFloat(input.value);
    if (JSON.stringify(value) !== input.dataset.default) options[input.dataset.name] = value;
  }
  return options;
}

function* sseEvents(buffer) {
  let cut;
  while ((cut = buffer.text.indexOf("\n\n")) >= 0) {
    const block = buffer.text.slice(0, cut);
    buffer.text = buffer.text.slice(cut + 2);
    const data = block.split("\n").filter((l) => l.startsWith("data: ")).map((l) => l.slice(6));
    if (data.length) yield JSON.parse(data.join("\n"));
  }
}

async function generate() {
  stop();
  const output = $("output");
  output.textContent = "";
  $("error").hidden = true;
  $("queue").textContent = "";
  rows($("stats"), []);
  const body = { text: $("input").value, decoder: $("decoder").value, options: chosenOptions() };
  if (state.facts.page === "context") body.context = $("context").value;
  const abort = new AbortController();
  state.abort = abort;
  $("go").disabled = true;
  $("stop").disabled = false;
  const live = { provider: "", profile: "" };
  try {
    await streamJob("generate", body, abort, (event) => handle(event, live));
  } catch (err) {
    if (err.name !== "AbortError") showError(err.message);
  } finally {
    if (state.abort === abort) finish();
  }
}

// POST a job and hand its server-sent events to `onEvent` until it returns true.
async function streamJob(action, body, abort, onEvent) {
  const response = await fetch(`/api/bundles/${encodeURIComponent(state.bundle)}/${action}`, {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body), signal: abort.signal,
  });
  if (!response.ok) {
    const data = await response.json();
    throw new Error(data.error + (data.hint ? "\nhint: " + data.hint : ""));
  }
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  const buffer = { text: "" };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer.text += value;
    for (const event of sseEvents(buffer)) {
      if (onEvent(event)) return;
    }
  }
}

function handle(event, live) {
  const output = $("output");
  switch (event.event) {
    case "job": state.job = event.job; break;
    case "queued":
      $("queue").textContent = `queued: ${event.position} request(s) ahead on this model`;
      break;
    case "start":
      $("queue").textContent = "";
      Object.assign(live, event);
      break;
    case "token":
      output.textContent += event.text;
      rows($("stats"), [
        ["provider", live.provider], ["profile", live.profile], ["decoder", live.decoder],
        ["first token", ms(event.first_ms)],
        ["pieces streamed", event.pieces],
      ]);
      break;
    case "done": showStats(event.stats, live); output.dataset.done = "1"; return true;
    case "error": showError(event.message + (event.hint ? "\nhint: " + event.hint : "")); return true;
    case "cancelled": $("queue").textContent = "stopped"; return true;
  }
  return false;
}

function showStats(s, live) {
  const pairs = [
    ["provider", live.provider], ["profile", live.profile], ["decoder", s.decoder],
    ["first token", ms(s.first_token_ms)],
    ["tokens/s", s.tokens_per_s ? s.tokens_per_s.toFixed(0) : undefined],
    ["new tokens", s.new_tokens],
    ["decoder calls", s.decoder_calls],
    ["acceptance", s.acceptance_rate !== undefined ? `${(s.acceptance_rate * 100).toFixed(0)}%` : undefined],
  ];
  if (s.memory_cache_hit !== undefined) {
    pairs.push(["context memory", s.memory_cache_hit ? "cache hit" : "encoded"]);
    pairs.push(["memory time", ms(s.memory_ms)]);
    if (s.memory_saved_ms !== undefined) pairs.push(["saved by the cache", ms(s.memory_saved_ms)]);
    pairs.push(["context tokens", s.context_tokens]);
  }
  rows($("stats"), pairs);
}

function showError(message) {
  const page = state.facts && state.facts.page;
  const box = page === "image" ? $("image-error") : page === "audio" ? $("audio-error") : $("error");
  box.textContent = message;
  box.hidden = false;
}

function stop() {
  if (state.job) fetch(`/api/jobs/${state.job}/cancel`, { method: "POST" }).catch(() => {});
  if (state.abort) {
    state.abort.abort();
    $("queue").textContent = "stopped";
  }
  finish();
}

function finish() {
  state.abort = null;
  state.job = null;
  $("go").disabled = false;
  $("stop").disabled = true;
  $("transcribe").disabled = !state.audio;
  $("audio-stop").disabled = true;
}

// --- audio page ---------------------------------------------------------------------------
// Files and recordings are decoded and resampled to the model's rate here (the browser's own
// decoders), then sent as 16-bit PCM: the server never parses a container format.
function showAudio(facts) {
  $("page-audio").hidden = false;
  const languages = facts.languages.length ? ["", ...facts.languages] : [""];
  $("language").replaceChildren(...languages.map((l) => new Option(l || "detect", l)));
  $("language").disabled = !facts.languages.length;
  $("task").replaceChildren(...["", ...facts.tasks].map((t) => new Option(t || "default", t)));
  $("task").disabled = !facts.tasks.length;
  $("record").disabled = !(navigator.mediaDevices && window.MediaRecorder);
  for (const id of ["segments", "audio-stats"]) rows($(id), []);
  $("transcript").textContent = "";
  $("audio-error").hidden = true;
  $("audio-status").textContent = state.audio ? state.audio.label : "";
  $("transcribe").disabled = !state.audio;
}

async function useAudio(bytes, label) {
  const rate = state.facts.sampling_rate;
  const decoded = await new AudioContext().decodeAudioData(bytes);
  const offline = new OfflineAudioContext(1, Math.ceil(decoded.duration * rate), rate);
  const source = offline.createBufferSource();
  source.buffer = decoded;
  source.connect(offline.destination);
  source.start();
  const samples = (await offline.startRendering()).getChannelData(0);
  const pcm = new Int16Array(samples.length);
  for (let i = 0; i < samples.length; i++) pcm[i] = Math.max(-32768, Math.min(32767, Math.round(samples[i] * 32767)));
  let binary = "";
  const raw = new Uint8Array(pcm.buffer);
  for (let i = 0; i < raw.length; i += 0x8000) binary += String.fromCharCode(...raw.subarray(i, i + 0x8000));
  state.audio = { pcm16: btoa(binary), rate, label: `${label}: ${decoded.duration.toFixed(1)} s` };
  $("audio-status").textContent = state.audio.label;
  $("transcribe").disabled = false;
}

let recorder = null;
async function record() {
  if (recorder) { recorder.stop(); return; }
  const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
  const chunks = [];
  recorder = new MediaRecorder(stream);
  recorder.ondataavailable = (e) => chunks.push(e.data);
  recorder.onstop = async () => {
    stream.getTracks().forEach((t) => t.stop());
    recorder = null;
    $("record").textContent = "Record";
    await useAudio(await new Blob(chunks).arrayBuffer(), "recording");
  };
  recorder.start();
  $("record").textContent = "Stop recording";
}

async function transcribe() {
  stop();
  rows($("segments"), []);
  rows($("audio-stats"), []);
  $("transcript").textContent = "";
  $("audio-error").hidden = true;
  const body = { pcm16: state.audio.pcm16, rate: state.audio.rate, language: $("language").value,
    task: $("task").value, timestamps: $("timestamps").checked };
  const abort = new AbortController();
  state.abort = abort;
  $("transcribe").disabled = true;
  $("audio-stop").disabled = false;
  const segments = [];
  try {
    await streamJob("transcribe", body, abort, (event) => audioEvent(event, segments));
  } catch (err) {
    if (err.name !== "AbortError") showError(err.message);
  } finally {
    if (state.abort === abort) finish();
  }
}

function audioEvent(event, segments) {
  switch (event.event) {
    case "job": state.job = event.job; break;
    case "queued": $("audio-queue").textContent = `queued: ${event.position} ahead`; break;
    case "segment":
      $("audio-queue").textContent = "";
      segments.push([`${event.start.toFixed(2)}-${event.end.toFixed(2)} s`, event.text]);
      rows($("segments"), segments);
      break;
    case "done": {
      $("transcript").textContent = event.text;
      $("transcript").dataset.done = "1";
      const s = event.stats;
      rows($("audio-stats"), [["language", event.language], ["audio", `${s.audio_s.toFixed(1)} s`],
        ["windows", s.windows], ["features", ms(s.feature_ms)], ["decoding", ms(s.decode_ms)],
        ["tokens", s.new_tokens], ["real-time factor", s.real_time_factor.toFixed(3)]]);
      return true;
    }
    case "error": showError(event.message + (event.hint ? "\nhint: " + event.hint : "")); return true;
    case "cancelled": $("audio-queue").textContent = "stopped"; return true;
  }
  return false;
}

$("audio-file").addEventListener("change", async (e) => {
  const file = e.target.files[0];
  if (!file) return;
  try { await useAudio(await file.arrayBuffer(), file.name); } catch (err) { showError(`cannot decode ${file.name}: ${err.message}`); }
});
$("record").addEventListener("click", () => record().catch((err) => showError(err.message)));
$("transcribe").addEventListener("click", transcribe);
$("audio-stop").addEventListener("click", stop);

// --- image page -----------------------------------------------------------------------------
const canvas = $("canvas");
const pen = canvas.getContext("2d");
let drawing = false;

function clearCanvas() {
  pen.fillStyle = "#000";
  pen.fillRect(0, 0, canvas.width, canvas.height);
  state.image = null;
}

function showImage(facts) {
  $("page-image").hidden = false;
  const gray = facts.input.channels === 1;
  $("invert-label").hidden = !gray;
  $("draw-box").hidden = !gray;  // drawing makes sense for small grayscale inputs (digits)
  $("image-error").hidden = true;
  rows($("top"), []);
  $("latency").textContent = "";
  clearCanvas();
}

function point(event) {
  const box = canvas.getBoundingClientRect();
  return [(event.clientX - box.left) * canvas.width / box.width,
          (event.clientY - box.top) * canvas.height / box.height];
}

canvas.addEventListener("pointerdown", (e) => {
  drawing = true;
  state.image = null;
  pen.strokeStyle = "#fff"; pen.lineWidth = 18; pen.lineCap = "round"; pen.lineJoin = "round";
  pen.beginPath(); pen.moveTo(...point(e));
  canvas.setPointerCapture(e.pointerId);
});
canvas.addEventListener("pointermove", (e) => {
  if (!drawing) return;
  pen.lineTo(...point(e)); pen.stroke();
});
canvas.addEventListener("pointerup", () => { drawing = false; });

// The drawing, cropped to its ink and centred in a square, like the training digits.
function drawnSource() {
  const { data, width, height } = pen.getImageData(0, 0, canvas.width, canvas.height);
  let x0 = width, y0 = height, x1 = -1, y1 = -1;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (data[(y * width + x) * 4] > 0) {
        x0 = Math.min(x0, x); x1 = Math.max(x1, x); y0 = Math.min(y0, y); y1 = Math.max(y1, y);
      }
    }
  }
  if (x1 < 0) throw new Error("the canvas is empty: draw something first");
  const side = Math.max(x1 - x0, y1 - y0) * 1.15 + 2;
  const cx = (x0 + x1) / 2, cy = (y0 + y1) / 2;
  return { image: canvas, sx: cx - side / 2, sy: cy - side / 2, sw: side, sh: side };
}

function pixels(facts) {
  const [, c, h, w] = facts.input.shape;
  const small = document.createElement("canvas");
  small.width = w; small.height = h;
  const ctx = small.getContext("2d");
  ctx.fillStyle = "#000"; ctx.fillRect(0, 0, w, h);
  ctx.imageSmoothingEnabled = true; ctx.imageSmoothingQuality = "high";
  const src = state.image ? { image: state.image, sx: 0, sy: 0, sw: state.image.width, sh: state.image.height }
    : drawnSource();
  ctx.drawImage(src.image, src.sx, src.sy, src.sw, src.sh, 0, 0, w, h);
  const rgba = ctx.getImageData(0, 0, w, h).data;
  const invert = state.image && c === 1 && $("invert").checked;
  const out = new Array(c * h * w);
  for (let i = 0; i < h * w; i++) {
    const [r, g, b] = [rgba[i * 4] / 255, rgba[i * 4 + 1] / 255, rgba[i * 4 + 2] / 255];
    if (c === 1) {
      const v = 0.299 * r + 0.587 * g + 0.114 * b;
      out[i] = invert ? 1 - v : v;
    } else {
      out[i] = r; out[h * w + i] = g; out[2 * h * w + i] = b;
    }
  }
  const preview = $("preview").getContext("2d");
  preview.imageSmoothingEnabled = false;
  preview.drawImage(small, 0, 0, 64, 64);
  return out;
}

async function classify() {
  $("image-error").hidden = true;
  try {
    const result = await api(`/api/bundles/${encodeURIComponent(state.bundle)}/classify`,
      { pixels: pixels(state.facts), top_k: 5 });
    const table = $("top");
    table.replaceChildren(...result.top.map((row, i) => {
      const tr = document.createElement("tr");
      tr.innerHTML = "<td></td><td></td><td><span class=bar></span></td>";
      tr.children[0].textContent = row.label;
      tr.children[0].dataset.rank = String(i + 1);
      tr.children[1].textContent = `${(row.score * 100).toFixed(1)}%`;
      tr.querySelector(".bar").style.width = `${Math.max(row.score * 12, 0.1)}rem`;
      return tr;
    }));
    $("latency").textContent = `${result.latency_ms.toFixed(2)} ms on ${result.provider}`;
  } catch (err) {
    showError(err.message);
  }
}

$("image-file").addEventListener("change", async (e) => {
  const file = e.target.files[0];
  if (!file) return;
  try {
    state.image = await createImageBitmap(file);
  } catch {
    showError(`cannot read ${file.name} as an image`);
  }
});
$("context-file").addEventListener("change", async (e) => {
  const file = e.target.files[0];
  if (file) $("context").value = await file.text();
});

// --- profile --------------------------------------------------------------------------------
async function profileBundle() {
  const button = $("profile-btn");
  button.disabled = true;
  button.textContent = "Profiling...";
  try {
    const r = await api(`/api/bundles/${encodeURIComponent(state.bundle)}/profile`, {});
    const p50 = (x) => (x && x.p50 !== undefined ? ms(x.p50) : undefined);
    rows($("profile-table"), [
      ["provider", r.provider + (r.simulated ? " (simulated)" : "")], ["precision", r.precision],
      ["load (first / warm)", r.load_ms ? `${ms(r.load_ms.first)} / ${ms(r.load_ms.warm)}` : undefined],
      ["runs", r.runs],
      ["first token p50", p50(r.first_token_ms)], ["per token p50", p50(r.per_token_ms)],
      ["latency p50", p50(r.latency_ms)],
      ["throughput", r.throughput ? `${r.throughput.value.toFixed(1)} ${r.throughput.unit}` : undefined],
      ["peak RSS", r.peak_rss_mb ? `${r.peak_rss_mb.toFixed(0)} MB` : undefined],
      ["host", r.host ? `${r.host.cpu || ""} ${r.host.cores || ""} cores` : undefined],
    ]);
    $("profile-json").textContent = JSON.stringify(r, null, 2);
    $("profile-out").hidden = false;
  } catch (err) {
    rows($("profile-table"), [["error", err.message]]);
    $("profile-out").hidden = false;
  } finally {
    button.disabled = false;
    button.textContent = "Profile this bundle";
  }
}

$("decoder").addEventListener("change", showOptions);
$("go").addEventListener("click", generate);
$("stop").addEventListener("click", stop);
$("clear").addEventListener("click", clearCanvas);
$("classify").addEventListener("click", classify);
$("profile-btn").addEventListener("click", profileBundle);
$("input").addEventListener("keydown", (e) => {
  if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); generate(); }
});
loadBundles().catch((err) => { $("where").textContent = err.message; });
