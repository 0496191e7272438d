// The web UI of `animagine serve`: plain JavaScript, no build step, nothing fetched from
// elsewhere. It speaks to the server's JSON API under animagine/v1/ (relative to the page, so
// the UI also works behind a proxy's path prefix). User text only ever reaches the page through
// textContent and form values, never as HTML.

"use strict";

const API = "animagine/v1/";
const LINT_DELAY = 250;
const SUGGEST_DELAY = 120;
const HISTORY_DELAY = 300;
const POLL_INTERVAL = 300;
const SUGGESTIONS = 8;

const $ = (id) => document.getElementById(id);

const state = {
  info: null,
  lintSeq: 0,
  lintTimer: 0,
  lintedText: null,
  findings: [],
  suggestSeq: 0,
  suggestTimer: 0,
  suggestions: [],
  active: -1,
  token: null,
  selected: null,
  historyPages: [null],
  historyPage: 0,
  historyTimer: 0,
};

// --- helpers -------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function describe(data) {
  if (!data || data.detail === undefined) return "";
  const detail = data.detail;
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) {
    return detail
      .map((item) => {
        const where = (item.loc || []).filter((part) => part !== "body").join(".");
        return where ? `${where}: ${item.msg}` : String(item.msg);
      })
      .join("; ");
  }
  return JSON.stringify(detail);
}

async function api(path, { method = "GET", json, body, headers = {} } = {}) {
  const options = { method, headers: { ...headers } };
  if (json !== undefined) {
    options.body = JSON.stringify(json);
    options.headers["Content-Type"] = "application/json";
  } else if (body !== undefined) {
    options.body = body;
  }
  const response = await fetch(API + path, options);
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok) {
    throw new ApiError(response.status, describe(data) || `${response.status} ${response.statusText}`);
  }
  return data;
}

// Build an element; children may be nodes or strings (which become text nodes).
function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key in node && typeof value !== "string") node[key] = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children) {
    if (child !== null && child !== undefined && child !== false) node.append(child);
  }
  return node;
}

function option(value, label = value) {
  return el("option", { value, text: label });
}

function setStatus(node, text, kind = "") {
  node.textContent = text;
  node.classList.toggle("error", kind === "error");
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// Python counts code points, JavaScript UTF-16 units: the index of code point `count`.
function unitIndex(text, count) {
  let index = 0;
  for (let n = 0; n < count && index < text.length; n++) {
    const code = text.charCodeAt(index);
    index += code >= 0xd800 && code <= 0xdbff ? 2 : 1;
  }
  return index;
}

function formatCount(count) {
  if (count === null || count === undefined) return "";
  if (count >= 1e6) return `${(count / 1e6).toFixed(1)}M`;
  if (count >= 1e3) return `${(count / 1e3).toFixed(1)}k`;
  return String(count);
}

function toolsVersion() {
  return $("version").value || (state.info && state.info.version.name);
}

// --- setup ---------------------------------------------------------------------------------

async function init() {
  let info;
  try {
    info = await api("info");
  } catch (error) {
    setStatus($("load-error"), `Cannot reach the server: ${error.message}`, "error");
    $("load-error").hidden = false;
    return;
  }
  state.info = info;
  const model = info.model ? `${info.model} (${info.version.title})` : `no model (${info.version.title} prompt tools)`;
  $("model-line").textContent = `animagine ${info.animagine} · ${model}`;

  for (const version of info.versions) {
    $("version").append(option(version.name, version.title));
    $("convert-to").append(option(version.name, version.title));
  }
  $("version").value = info.version.name;
  $("convert-to").value = info.versions.find((v) => v.name !== info.version.name)?.name || info.version.name;
  updateVersionNote();

  for (const name of info.samplers) $("sampler").append(option(name));
  for (const aspect of info.aspects) {
    $("aspect").append(option(`${aspect.width}x${aspect.height}`, aspect.label));
  }
  $("aspect").append(option("custom", "Custom"));
  for (const name of info.presets.style) $("style").append(option(name));
  $("quality").append(option("", "No preset"));
  for (const name of info.presets.quality) $("quality").append(option(name));
  for (const name of info.hires.upscalers) $("hires-upscaler").append(option(name));

  const limits = info.limits;
  for (const id of ["width", "height"]) {
    $(id).min = limits.min_size;
    $(id).max = limits.max_size;
    $(id).step = limits.size_step;
  }
  $("size-note").textContent = `${limits.min_size} to ${limits.max_size}, a multiple of ${limits.size_step} (the demos offer 512 to 2048).`;
  $("cfg").max = limits.max_guidance;
  $("steps").max = limits.max_steps;
  $("num-images").max = limits.max_images;
  $("hires-scale").max = limits.max_hires_scale;

  resetForm();

  if (info.wildcards) {
    $("wildcards-box").hidden = false;
    for (const name of info.wildcards.names) {
      $("wildcards").append(
        el("button", {
          type: "button",
          class: "chip",
          text: `__${name}__`,
          dataset: { testid: "wildcard" },
          onclick: () => insertAtCaret(`__${name}__`),
        }),
      );
    }
    if (info.wildcards.error) {
      setStatus($("wildcards-error"), info.wildcards.error, "error");
      $("wildcards-error").hidden = false;
    }
  }

  if (!info.can_generate) {
    $("no-model").textContent = info.message;
    $("no-model").hidden = false;
    $("generate").disabled = true;
    $("generate-note").textContent = info.message;
  } else {
    $("generate-note").textContent = `Generation uses ${info.version.title}.`;
  }
  updateQueueLine(info.queue);

  if (info.history) {
    loadHistory();
  } else {
    $("history-off").hidden = false;
    $("history-tools").hidden = true;
    $("history-newer").hidden = true;
    $("history-older").hidden = true;
  }
  document.body.dataset.ready = "true";
  if ($("prompt").value) lintNow();
}

function resetForm() {
  const { defaults, presets, hires } = state.info;
  $("negative-prompt").placeholder = defaults.negative_prompt;
  setNumber("cfg", defaults.guidance_scale);
  setNumber("steps", defaults.steps);
  $("sampler").value = defaults.sampler;
  setSize(defaults.width, defaults.height);
  $("style").value = presets.default_style;
  $("quality").value = presets.default_quality;
  $("add-quality-tags").checked = defaults.add_quality_tags;
  $("num-images").value = defaults.num_images;
  setNumber("hires-scale", hires.scale);
  setNumber("hires-strength", hires.strength);
  $("hires-upscaler").value = hires.upscaler;
  $("hires").checked = false;
  $("hires-options").hidden = true;
  syncSeed();
}

function updateVersionNote() {
  const info = state.info;
  if (!info) return;
  const chosen = info.versions.find((v) => v.name === toolsVersion());
  const different = chosen && chosen.name !== info.version.name;
  $("version-note").textContent = different
    ? `Lint, canonical order and autocomplete follow ${chosen.title}; generation uses ${info.version.title}.`
    : "";
}

function updateQueueLine(queue) {
  if (!state.info || !state.info.can_generate || !queue) {
    $("queue-line").textContent = "";
    return;
  }
  const busy = queue.running ? "generating" : "idle";
  $("queue-line").textContent = `Queue: ${queue.waiting} waiting of ${queue.size} · ${busy}`;
}

// A number box and its slider (`id` and `id-range`) show the same value.
function setNumber(id, value) {
  $(id).value = value;
  const range = $(`${id}-range`);
  if (range) range.value = value;
}

function linkSlider(id) {
  const number = $(id);
  const range = $(`${id}-range`);
  range.addEventListener("input", () => {
    number.value = range.value;
  });
  number.addEventListener("input", () => {
    if (number.value !== "") range.value = number.value;
  });
}

function setSize(width, height) {
  const key = `${width}x${height}`;
  const bucket = [...$("aspect").options].some((item) => item.value === key);
  $("aspect").value = bucket ? key : "custom";
  $("width").value = width;
  $("height").value = height;
  $("custom-size").hidden = bucket;
}

function syncSeed() {
  $("seed").disabled = $("randomize").checked;
}

function insertAtCaret(text) {
  const prompt = $("prompt");
  const start = prompt.selectionStart;
  const end = prompt.selectionEnd;
  const before = prompt.value.slice(0, start);
  const joiner = before && !/[,\s]$/.test(before) ? ", " : "";
  prompt.value = before + joiner + text + prompt.value.slice(end);
  const caret = start + joiner.length + text.length;
  prompt.focus();
  prompt.setSelectionRange(caret, caret);
  lintSoon();
}

// --- lint ----------------------------------------------------------------------------------

function lintSoon() {
  clearTimeout(state.lintTimer);
  state.lintTimer = setTimeout(lintNow, LINT_DELAY);
}

async function lintNow() {
  clearTimeout(state.lintTimer);
  const text = $("prompt").value;
  const seq = ++state.lintSeq;
  try {
    const result = await api("lint", { method: "POST", json: { text, version: toolsVersion() } });
    if (seq === state.lintSeq) showFindings(text, result.findings);
  } catch (error) {
    if (seq === state.lintSeq) setStatus($("lint-status"), error.message, "error");
  }
}

function showFindings(text, findings) {
  state.lintedText = text;
  state.findings = findings;
  const list = $("findings");
  list.replaceChildren(...findings.map((finding) => findingItem(text, finding)));
  const fixable = findings.filter((finding) => finding.fix.length).length;
  $("fix-all").disabled = fixable === 0;
  let summary = "No findings.";
  if (!text.trim()) summary = "";
  else if (findings.length) {
    summary = `${findings.length} finding${findings.length === 1 ? "" : "s"}`;
    if (fixable) summary += `, ${fixable} with a fix`;
    summary += ".";
  }
  setStatus($("lint-status"), summary);
}

function findingItem(text, finding) {
  const place = el("button", {
    type: "button",
    class: "place",
    text: `${finding.line}:${finding.column}`,
    title: "Select it in the prompt",
    onclick: () => selectSpan(text, finding.start, finding.end),
  });
  const item = el(
    "li",
    {
      class: `finding ${finding.severity}`,
      dataset: { testid: "finding", code: finding.code, index: String(finding.index) },
    },
    el("span", { class: "severity", text: finding.severity }),
    place,
    el("code", { class: "code-name", text: finding.code }),
    el("span", { class: "message", text: finding.message }),
  );
  if (finding.fix.length) {
    const preview = finding.fix.map((edit) => edit.replacement || "(remove)").join(" ");
    item.append(
      el("button", {
        type: "button",
        class: "fix",
        text: "Fix",
        title: `Replace with: ${preview}`,
        dataset: { testid: "fix" },
        onclick: () => applyFix({ index: finding.index }),
      }),
    );
  }
  return item;
}

function selectSpan(text, start, end) {
  const prompt = $("prompt");
  if (prompt.value !== text) return;
  prompt.focus();
  prompt.setSelectionRange(unitIndex(text, start), unitIndex(text, end));
}

async function applyFix(which) {
  const text = $("prompt").value;
  if (text !== state.lintedText) {
    await lintNow(); // the findings were for another text: show the current ones first
    return;
  }
  try {
    const result = await api("fix", { method: "POST", json: { text, version: toolsVersion(), ...which } });
    $("prompt").value = result.text;
    state.lintSeq++;
    showFindings(result.text, result.findings);
  } catch (error) {
    setStatus($("lint-status"), error.message, "error");
  }
}

async function canonical() {
  try {
    const result = await api("canonical", {
      method: "POST",
      json: { text: $("prompt").value, version: toolsVersion() },
    });
    $("prompt").value = result.text;
    lintNow();
  } catch (error) {
    setStatus($("lint-status"), error.message, "error");
  }
}

async function convertPrompt() {
  const target = $("convert-to").value;
  try {
    const result = await api("convert", {
      method: "POST",
      json: { text: $("prompt").value, from: toolsVersion(), to: target },
    });
    $("prompt").value = result.text;
    $("version").value = result.to;
    updateVersionNote();
    lintNow();
  } catch (error) {
    setStatus($("lint-status"), error.message, "error");
  }
}

// --- autocomplete --------------------------------------------------------------------------

const SEPARATORS = ",\n|{}";
const OPENERS = " \t([";
const TAG_END = ",\n|{}:()[]\\";

// The tag being typed: from the last separator to the caret (openers and spaces skipped).
function currentToken() {
  const prompt = $("prompt");
  const text = prompt.value;
  const caret = prompt.selectionStart;
  if (caret !== prompt.selectionEnd) return null;
  let start = caret;
  while (start > 0 && !SEPARATORS.includes(text[start - 1])) start--;
  while (start < caret && OPENERS.includes(text[start])) start++;
  const typed = text.slice(start, caret);
  if (typed.trim().length < 2 || typed.includes(":") || typed.includes("__")) return null;
  let end = caret;
  while (end < text.length && !TAG_END.includes(text[end])) end++;
  while (end > caret && /\s/.test(text[end - 1])) end--;
  const query = typed.replace(/\\(.)/g, "$1").trim();
  if (query.length < 2) return null;
  return { start, end, query };
}

function suggestSoon() {
  clearTimeout(state.suggestTimer);
  state.suggestTimer = setTimeout(suggestNow, SUGGEST_DELAY);
}

async function suggestNow() {
  const token = currentToken();
  const seq = ++state.suggestSeq;
  if (!token) {
    hideSuggestions();
    return;
  }
  try {
    const params = new URLSearchParams({ q: token.query, limit: String(SUGGESTIONS) });
    const result = await api(`tags?${params}`);
    if (seq !== state.suggestSeq) return;
    state.token = token;
    showSuggestions(result.matches);
  } catch {
    if (seq === state.suggestSeq) hideSuggestions();
  }
}

function showSuggestions(matches) {
  state.suggestions = matches;
  state.active = matches.length ? 0 : -1;
  const list = $("autocomplete");
  list.replaceChildren(
    ...matches.map((match, index) => {
      const label = match.alias
        ? el("span", { class: "name" }, el("span", { class: "alias", text: match.alias }), " → ", match.name)
        : el("span", { class: "name", text: match.name });
      return el(
        "li",
        {
          id: `suggestion-${index}`,
          role: "option",
          class: `suggestion ${match.category}`,
          dataset: { testid: "suggestion", name: match.name },
          onmousedown: (event) => {
            event.preventDefault(); // keep the focus in the prompt
            accept(index);
          },
        },
        label,
        el("span", { class: "category", text: match.category }),
        el("span", { class: "count", text: formatCount(match.post_count) }),
      );
    }),
  );
  const open = matches.length > 0;
  list.hidden = !open;
  $("prompt").setAttribute("aria-expanded", String(open));
  highlight();
}

function hideSuggestions() {
  state.suggestions = [];
  state.active = -1;
  $("autocomplete").hidden = true;
  $("autocomplete").replaceChildren();
  $("prompt").setAttribute("aria-expanded", "false");
  $("prompt").removeAttribute("aria-activedescendant");
}

function highlight() {
  const items = $("autocomplete").children;
  for (let i = 0; i < items.length; i++) {
    const on = i === state.active;
    items[i].classList.toggle("active", on);
    items[i].setAttribute("aria-selected", String(on));
  }
  if (state.active >= 0) {
    $("prompt").setAttribute("aria-activedescendant", `suggestion-${state.active}`);
    items[state.active]?.scrollIntoView({ block: "nearest" });
  }
}

function accept(index) {
  const match = state.suggestions[index];
  const token = state.token;
  if (!match || !token) return;
  const prompt = $("prompt");
  const text = prompt.value;
  const before = text.slice(0, token.start);
  let after = text.slice(token.end);
  let insert = match.text;
  if (!/^\s*[,):\]]/.test(after)) {
    insert += ", ";
    after = after.replace(/^\s+/, "");
  }
  prompt.value = before + insert + after;
  const caret = before.length + insert.length;
  prompt.setSelectionRange(caret, caret);
  hideSuggestions();
  lintSoon();
}

function onPromptKey(event) {
  if ($("autocomplete").hidden || !state.suggestions.length) return;
  const count = state.suggestions.length;
  if (event.key === "ArrowDown") {
    state.active = (state.active + 1) % count;
    highlight();
  } else if (event.key === "ArrowUp") {
    state.active = (state.active - 1 + count) % count;
    highlight();
  } else if ((event.key === "Enter" || event.key === "Tab") && state.active >= 0) {
    accept(state.active);
  } else if (event.key === "Escape") {
    hideSuggestions();
  } else {
    return;
  }
  event.preventDefault();
}

// --- generation ----------------------------------------------------------------------------

function numberOrNull(id) {
  const text = $(id).value.trim();
  return text === "" ? null : Number(text);
}

function generationRequest() {
  const request = {
    prompt: $("prompt").value,
    negative_prompt: $("no-negative").checked ? "" : $("negative-prompt").value.trim() || null,
    guidance_scale: numberOrNull("cfg"),
    steps: numberOrNull("steps"),
    sampler: $("sampler").value || null,
    num_images: numberOrNull("num-images"),
    add_quality_tags: $("add-quality-tags").checked,
    style: $("style").value && $("style").value !== "(None)" ? $("style").value : null,
    quality: $("quality").value || null,
    seed: null,
  };
  if (!$("randomize").checked) {
    const seed = $("seed").value.trim();
    request.seed = seed === "" ? null : seed; // a string: JavaScript numbers round seeds past 2**53
  }
  if ($("aspect").value === "custom") {
    request.width = numberOrNull("width");
    request.height = numberOrNull("height");
  } else {
    const [width, height] = $("aspect").value.split("x").map(Number);
    request.width = width;
    request.height = height;
  }
  if ($("hires").checked) {
    request.hires = {
      scale: numberOrNull("hires-scale"),
      strength: numberOrNull("hires-strength"),
      upscaler: $("hires-upscaler").value,
    };
  }
  if (state.info.wildcards) request.variants = $("variants").value;
  return request;
}

async function generate(event) {
  event.preventDefault();
  hideSuggestions();
  const error = $("generate-error");
  error.hidden = true;
  if (!state.info || !state.info.can_generate) return;
  let queued;
  try {
    queued = await api("generate", { method: "POST", json: generationRequest() });
  } catch (failure) {
    error.textContent = failure.message;
    error.hidden = false;
    return;
  }
  if ($("randomize").checked && queued.seeds.length) $("seed").value = queued.seeds[0];
  followJob(queued);
}

function jobBlock(queued) {
  const bars = [];
  for (let i = 0; i < queued.count; i++) {
    bars.push(
      el(
        "div",
        { class: "bar" },
        el("span", { text: `Image ${i + 1}` }),
        el("progress", { max: "1", value: "0", dataset: { testid: "image-progress" } }),
      ),
    );
  }
  const status = el("p", { class: "job-status", dataset: { testid: "queue-position" } });
  const stop = el("button", { type: "button", class: "stop", text: "Interrupt", dataset: { testid: "interrupt" } });
  const block = el("div", { class: "job", dataset: { testid: "job", id: queued.id } }, status, ...bars, stop);
  stop.addEventListener("click", async () => {
    stop.disabled = true;
    try {
      await api(`jobs/${encodeURIComponent(queued.id)}/interrupt`, { method: "POST" });
    } catch (failure) {
      status.textContent = failure.message;
    }
  });
  return { block, status, bars, stop };
}

function describeJob(job) {
  if (job.state === "queued") {
    return job.position ? `Queued: position ${job.position} in the queue` : "Queued";
  }
  if (job.state === "running") {
    const { steps_done: done, steps_total: total, eta } = job.progress;
    const left = eta !== null ? `, about ${Math.ceil(eta)} s left` : "";
    return `Generating: step ${done} of ${total}${left}`;
  }
  if (job.state === "done") return `Done: ${job.images.length} image${job.images.length === 1 ? "" : "s"}`;
  if (job.state === "failed") return `Failed: ${job.error}`;
  if (job.state === "interrupted") return `Interrupted: ${job.images.length} image(s) kept`;
  return "Cancelled";
}

async function followJob(queued) {
  const view = jobBlock(queued);
  $("jobs").prepend(view.block);
  view.status.textContent = queued.position ? `Queued: position ${queued.position} in the queue` : "Starting";
  const shown = new Set();
  let job;
  for (;;) {
    try {
      job = await api(`jobs/${encodeURIComponent(queued.id)}`);
    } catch (failure) {
      view.status.textContent = failure.message;
      view.status.classList.add("error");
      return;
    }
    view.block.dataset.state = job.state;
    view.status.textContent = describeJob(job);
    job.progress.images.forEach((fraction, index) => {
      if (view.bars[index]) view.bars[index].querySelector("progress").value = fraction;
    });
    for (const image of job.images) {
      if (!shown.has(image.index)) {
        shown.add(image.index);
        addToGallery(image);
      }
    }
    if (!["queued", "running"].includes(job.state)) break;
    await sleep(POLL_INTERVAL);
  }
  view.stop.remove();
  if (job.state === "failed") view.status.classList.add("error");
  if (job.images.length) select(job.images[0]);
  if (state.info.history && state.historyPage === 0) loadHistory();
  refreshQueue();
}

async function refreshQueue() {
  try {
    const info = await api("info");
    updateQueueLine(info.queue);
  } catch {
    // the queue line is a hint; the next job refreshes it
  }
}

function addToGallery(image) {
  const figure = el(
    "button",
    {
      type: "button",
      class: "thumb",
      title: `Seed ${image.seed}`,
      dataset: { testid: "gallery-image" },
      onclick: () => select(image),
    },
    el("img", { src: image.url, alt: `Seed ${image.seed}`, loading: "lazy" }),
    el("span", { class: "caption", text: `seed ${image.seed}` }),
  );
  $("gallery").prepend(figure);
}

function select(item) {
  state.selected = item;
  $("selected").hidden = false;
  $("selected-image").src = item.url;
  $("download-selected").href = item.url;
  $("params-json").textContent = item.parameters_text;
  $("infotext").textContent = item.infotext;
}

// --- loading parameters into the form ------------------------------------------------------

function loadForm(form, version) {
  $("prompt").value = form.prompt;
  $("no-negative").checked = form.negative_prompt === "";
  $("negative-prompt").value = form.negative_prompt;
  $("negative-prompt").disabled = $("no-negative").checked;
  setNumber("steps", form.steps);
  setNumber("cfg", form.guidance_scale);
  if (![...$("sampler").options].some((item) => item.value === form.sampler)) {
    $("sampler").append(option(form.sampler));
  }
  $("sampler").value = form.sampler;
  $("randomize").checked = false;
  $("seed").value = form.seed;
  syncSeed();
  setSize(form.width, form.height);
  $("num-images").value = 1;
  // The recorded prompts already hold the presets' texts and the quality tags.
  $("style").value = "(None)";
  $("quality").value = "";
  $("add-quality-tags").checked = Boolean(form.add_quality_tags);
  $("hires").checked = Boolean(form.hires);
  $("hires-options").hidden = !form.hires;
  if (form.hires) {
    setNumber("hires-scale", form.hires.scale);
    setNumber("hires-strength", form.hires.strength);
    if ([...$("hires-upscaler").options].some((item) => item.value === form.hires.upscaler)) {
      $("hires-upscaler").value = form.hires.upscaler;
    }
  }
  if (version && state.info.versions.some((v) => v.name === version)) {
    $("version").value = version;
    updateVersionNote();
  }
  lintNow();
}

async function readImage(file) {
  const status = $("drop-status");
  setStatus(status, `Reading ${file.name}…`);
  try {
    const result = await api("read-image", {
      method: "POST",
      body: file,
      headers: { "Content-Type": file.type || "application/octet-stream" },
    });
    loadForm(result.form, result.parameters.version);
    select({ ...result, url: URL.createObjectURL(file) });
    setStatus(status, `Loaded the parameters of ${file.name}.`);
  } catch (error) {
    setStatus(status, `${file.name}: ${error.message}`, "error");
  }
}

function hasFiles(event) {
  return event.dataTransfer && [...event.dataTransfer.types].includes("Files");
}

// --- history -------------------------------------------------------------------------------

function historySoon() {
  clearTimeout(state.historyTimer);
  state.historyTimer = setTimeout(() => {
    state.historyPages = [null];
    state.historyPage = 0;
    loadHistory();
  }, HISTORY_DELAY);
}

async function loadHistory() {
  const params = new URLSearchParams({ q: $("history-search").value });
  if ($("history-favourites").checked) params.set("favourites", "true");
  const before = state.historyPages[state.historyPage];
  if (before !== null) params.set("before", String(before));
  const list = $("history-list");
  let page;
  try {
    page = await api(`history?${params}`);
  } catch (error) {
    list.replaceChildren(el("p", { class: "status error", text: error.message }));
    return;
  }
  list.replaceChildren(...page.entries.map(historyItem));
  if (!page.entries.length) {
    list.append(el("p", { class: "note", text: params.get("q") || params.has("favourites") ? "Nothing matches." : "No images yet." }));
  }
  state.historyPages.length = state.historyPage + 1;
  if (page.next_before !== null) state.historyPages.push(page.next_before);
  $("history-newer").disabled = state.historyPage === 0;
  $("history-older").disabled = page.next_before === null;
  $("history-page").textContent = `Page ${state.historyPage + 1} · ${page.total} in all`;
}

function favouriteButton(entry) {
  const button = el("button", {
    type: "button",
    class: "favourite",
    title: "Favourite",
    dataset: { testid: "favourite" },
  });
  const paint = () => {
    button.textContent = entry.favourite ? "★" : "☆";
    button.setAttribute("aria-pressed", String(entry.favourite));
    button.setAttribute("aria-label", entry.favourite ? "Unmark as favourite" : "Mark as favourite");
  };
  paint();
  button.addEventListener("click", async () => {
    try {
      const result = await api(`history/${entry.id}/favourite`, {
        method: "POST",
        json: { favourite: !entry.favourite },
      });
      entry.favourite = result.favourite;
      paint();
    } catch (error) {
      button.title = error.message;
    }
  });
  return button;
}

function historyItem(entry) {
  const created = new Date(entry.created * 1000);
  const remove = el("button", { type: "button", class: "delete", text: "Delete", dataset: { testid: "delete" } });
  remove.addEventListener("click", async () => {
    if (remove.dataset.armed !== "true") {
      remove.dataset.armed = "true";
      remove.textContent = "Really delete?";
      return;
    }
    try {
      await api(`history/${entry.id}`, { method: "DELETE" });
      loadHistory();
    } catch (error) {
      remove.textContent = error.message;
    }
  });
  return el(
    "article",
    { class: "history-entry", dataset: { testid: "history-entry", id: String(entry.id) } },
    el(
      "button",
      { type: "button", class: "thumb", title: "Show its parameters", onclick: () => select(entry) },
      el("img", { src: entry.url, alt: `History image ${entry.id}`, loading: "lazy" }),
    ),
    el(
      "div",
      { class: "entry-text" },
      el("p", { class: "entry-prompt", text: entry.parameters.prompt }),
      el("p", { class: "note", text: `#${entry.id} · seed ${entry.seed} · ${created.toLocaleString()}` }),
      el(
        "div",
        { class: "row" },
        favouriteButton(entry),
        el("button", { type: "button", text: "Load", dataset: { testid: "load-entry" }, onclick: () => loadForm(entry.form, entry.parameters.version) }),
        remove,
      ),
    ),
  );
}

// --- wiring --------------------------------------------------------------------------------

function wire() {
  const prompt = $("prompt");
  prompt.addEventListener("input", () => {
    lintSoon();
    suggestSoon();
  });
  prompt.addEventListener("keydown", onPromptKey);
  prompt.addEventListener("click", () => hideSuggestions());
  prompt.addEventListener("blur", () => setTimeout(hideSuggestions, 150));

  $("version").addEventListener("change", () => {
    updateVersionNote();
    lintNow();
  });
  $("canonical").addEventListener("click", canonical);
  $("fix-all").addEventListener("click", () => applyFix({ all: true }));
  $("convert").addEventListener("click", convertPrompt);

  $("randomize").addEventListener("change", syncSeed);
  $("no-negative").addEventListener("change", () => {
    $("negative-prompt").disabled = $("no-negative").checked;
  });
  $("aspect").addEventListener("change", () => {
    const custom = $("aspect").value === "custom";
    $("custom-size").hidden = !custom;
    if (!custom) {
      const [width, height] = $("aspect").value.split("x");
      $("width").value = width;
      $("height").value = height;
    }
  });
  for (const id of ["width", "height"]) {
    // As the official demos do: a custom side is floored to a multiple of 8.
    $(id).addEventListener("change", () => {
      const value = Number($(id).value);
      if (Number.isFinite(value) && value > 0) $(id).value = Math.floor(value / 8) * 8;
    });
  }
  for (const id of ["cfg", "steps", "hires-scale", "hires-strength"]) linkSlider(id);
  $("hires").addEventListener("change", () => {
    $("hires-options").hidden = !$("hires").checked;
  });
  $("generate-form").addEventListener("submit", generate);

  $("image-file").addEventListener("change", () => {
    const file = $("image-file").files[0];
    if (file) readImage(file);
    $("image-file").value = "";
  });
  window.addEventListener(
    "dragover",
    (event) => {
      if (!hasFiles(event)) return;
      event.preventDefault();
      document.body.classList.add("dragging");
    },
    true,
  );
  window.addEventListener("dragleave", (event) => {
    if (event.target === document.documentElement || !event.relatedTarget) {
      document.body.classList.remove("dragging");
    }
  });
  window.addEventListener(
    "drop",
    (event) => {
      if (!hasFiles(event)) return;
      event.preventDefault();
      event.stopPropagation();
      document.body.classList.remove("dragging");
      const file = event.dataTransfer.files[0];
      if (file) readImage(file);
    },
    true,
  );

  $("history-search").addEventListener("input", historySoon);
  $("history-favourites").addEventListener("change", historySoon);
  $("history-older").addEventListener("click", () => {
    if (state.historyPage + 1 < state.historyPages.length) {
      state.historyPage++;
      loadHistory();
    }
  });
  $("history-newer").addEventListener("click", () => {
    if (state.historyPage > 0) {
      state.historyPage--;
      loadHistory();
    }
  });
  $("load-selected").addEventListener("click", () => {
    const item = state.selected;
    if (item && item.form) loadForm(item.form, item.parameters.version);
  });
}

wire();
init();
