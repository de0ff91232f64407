// The page: an image (upload or drop), a prompts box, each instance drawn in its prompt's colour with its score and
// box, a score slider that re-filters the last run without the model, and clicks on the image (an include point;
// shift-click an exclude point; a drag a box) that segment one object with SAM3's tracker when the export has it.
// It also sets window.litetext, the page's JavaScript API: ready, segment(image, prompts, {threshold,
// maskThreshold}), refilter, segmentObject(image, {points, pointLabels, box, multimask, refine}), and timings():
// the last model call's {encodeImageMs, promptsMs, imageCacheHit, backend}, or null before the first.
//
// A click on the image first dispatches a cancelable "litetext:click" event on window ({x, y, label, image}, x and y
// in image pixels); a listener that calls preventDefault() keeps the page from segmenting it.

import { LitetextError, loadModel, Segmenter } from "./litetext.js";

const COLOURS = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#bfef45", "#469990",
                 "#9a6324"];
const $ = (id) => document.getElementById(id);
const view = $("view");
const NO_CLICKS = Object.freeze({ points: [], pointLabels: [], box: null });
/** The page's clicks on the shown image: what the next click adds to. */
const state = { segmenter: null, image: null, shown: null, clicks: NO_CLICKS, timings: null };
/** Pointer travel (screen pixels) beyond which a press on the image is a drag (a box), not a click. */
const DRAG_PIXELS = 4;

function showMessage(text, kind = "error") {
  $("message").textContent = text || "";
  $("message").className = text ? kind : "";
}

function status(text) {
  $("status").textContent = text;
}

function progress(loaded, total) {
  const bar = $("progress");
  bar.hidden = total === null;
  if (total) {
    bar.max = total;
    bar.value = loaded;
  }
}

async function start() {
  const params = new URLSearchParams(location.search);
  let site = {};
  try {
    const response = await fetch("site.json", { cache: "no-cache" });
    if (response.ok) site = await response.json();
  } catch {
    site = {};
  }
  const modelUrl = params.get("model") || site.model || "model/";
  $("model-name").textContent = site.model_name ? `· ${site.model_name}` : "";
  status("Downloading the model…");
  const model = await loadModel(modelUrl, {
    backend: params.get("backend") || "auto",
    onProgress: ({ file, loaded, total }) => {
      progress(loaded, total);
      status(file ? `Downloading the model: ${(loaded / 2 ** 20).toFixed(1)} of ${(total / 2 ** 20).toFixed(1)} MB ` +
                    `(${file})` : "Starting onnxruntime…");
    },
  });
  progress(0, null);
  state.segmenter = new Segmenter(model);
  $("backend").textContent = model.backend === "webgpu" ? "WebGPU" :
    `WebAssembly (${globalThis.crossOriginIsolated ? "threads" : "one thread: the server sends no COOP/COEP headers"})`;
  status(model.hasTracker ? "Ready: choose an image, then type what to find or click an object." :
    "Ready: choose an image and type what to find.");
  $("click-hint").hidden = !model.hasTracker;
  return { backend: model.backend, model: model.manifest.model, tracker: model.hasTracker };
}

const ready = start();
ready.catch((error) => {
  progress(0, null);
  status("The model did not load.");
  showMessage(error.message);
});

function colourOf(index) {
  return COLOURS[index % COLOURS.length];
}

function draw(result) {
  state.shown = result;
  const { pixels, instances } = result;
  view.width = pixels.width;
  view.height = pixels.height;
  view.style.display = "block";
  $("hint").style.display = "none";
  const context = view.getContext("2d");
  const overlay = new ImageData(new Uint8ClampedArray(pixels.data), pixels.width, pixels.height);
  for (const instance of instances) {
    const [r, g, b] = rgb(colourOf(instance.promptIndex));
    const data = overlay.data;
    for (let i = 0; i < instance.mask.length; i++) {
      if (instance.mask[i]) {
        data[4 * i] = (data[4 * i] + r) >> 1;
        data[4 * i + 1] = (data[4 * i + 1] + g) >> 1;
        data[4 * i + 2] = (data[4 * i + 2] + b) >> 1;
      }
    }
  }
  context.putImageData(overlay, 0, 0);
  const line = Math.max(2, Math.round(Math.max(pixels.width, pixels.height) / 400));
  context.lineWidth = line;
  context.font = `${line * 7}px system-ui, sans-serif`;
  for (const instance of instances) {
    const [x0, y0, x1, y1] = instance.box;
    context.strokeStyle = context.fillStyle = colourOf(instance.promptIndex);
    context.strokeRect(x0, y0, x1 - x0, y1 - y0);
    context.fillText(`${instance.prompt} ${instance.score.toFixed(2)}`, x0 + line, Math.max(y0 - line, line * 7));
  }
  const list = $("results");
  list.replaceChildren(...instances.map((instance) => {
    const item = document.createElement("li");
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.style.background = colourOf(instance.promptIndex);
    item.append(swatch, `${instance.prompt}: ${instance.score.toFixed(3)}, box ` +
      `${instance.box.map((v) => Math.round(v)).join(", ")}, ${instance.area.toLocaleString()} px`);
    return item;
  }));
  if (!instances.length) {
    const item = document.createElement("li");
    item.textContent = `nothing scores above ${Number($("threshold").value).toFixed(2)}`;
    list.append(item);
  }
}

function rgb(hex) {
  return [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
}

function publicInstances(result) {
  return result.instances.map(({ prompt, score, box, area }) => ({ prompt, score, box, area }));
}

/** window.litetext.segment: every instance of each prompt in `image`; errors show on the page and reject. */
async function segment(image, prompts, { threshold, maskThreshold = 0.5 } = {}) {
  try {
    await ready;
    const chosen = threshold ?? Number($("threshold").value);
    if (threshold !== undefined && typeof threshold === "number" && threshold >= 0 && threshold <= 1) {
      $("threshold").value = String(threshold);
      $("threshold-value").textContent = threshold.toFixed(2);
    }
    const result = await state.segmenter.segment(image, prompts, {
      threshold: chosen, maskThreshold,
      onStage: (stage) => status({ image: "Encoding the image…", text: "Encoding the prompts…",
                                   decode: "Finding the objects…" }[stage]),
    });
    state.image = image;
    state.clicks = NO_CLICKS;
    $("clear-clicks").disabled = true;
    draw(result);
    const { encodeImageMs, promptsMs, imageCacheHit } = remember(result.timings);
    status(`${result.instances.length} instance(s). ` + (imageCacheHit ? "Image already encoded; " :
      `Image encoded in ${(encodeImageMs / 1000).toFixed(2)} s; `) + `prompts in ${(promptsMs / 1000).toFixed(2)} s.`);
    showMessage("");
    return publicInstances(result);
  } catch (error) {
    throw failed(error);
  }
}

/** Keep a model call's timings for window.litetext.timings(); returns them. */
function remember(timings) {
  state.timings = { ...timings, backend: state.segmenter.model.backend };
  return timings;
}

/** Show an error on the page; the LitetextError to reject with. */
function failed(error) {
  const message = error instanceof LitetextError ? error.message : `unexpected error: ${error.message || error}`;
  showMessage(message);
  status(state.segmenter ? "Ready." : "The model did not load.");
  return new LitetextError(message);
}

/** The last run's instances at a new score threshold, as the slider does; no model call. */
function refilter(threshold) {
  $("threshold").value = String(threshold);
  $("threshold-value").textContent = Number(threshold).toFixed(2);
  const result = state.segmenter?.refilter({ threshold: Number(threshold) });
  if (!result) return [];
  draw(result);
  status(`${result.instances.length} instance(s) above ${Number(threshold).toFixed(2)} (no model run).`);
  return publicInstances(result);
}

/**
 * window.litetext.segmentObject: one object in `image` from clicks and/or a box (SAM3's tracker, on the image's
 * cached encoding): {score, box, area}, or with multimask the three candidates [{score, box, area}, ...] in the
 * tracker's order. The page shows the (best) mask, and further clicks on the image add to this prompt.
 */
async function segmentObject(image, options = {}) {
  const result = await showObject(image, options);
  state.image = image;
  state.clicks = { points: result.prompt.points, pointLabels: result.prompt.pointLabels, box: result.prompt.box };
  $("clear-clicks").disabled = false;
  drawClicks(state.clicks);
  const found = result.candidates.map(({ score, box, area }) => ({ score, box, area }));
  return result.prompt.multimask ? found : found[0];
}

/** Run one object prompt and draw its best candidate; errors show on the page and reject. */
async function showObject(image, options) {
  try {
    await ready;
    const result = await state.segmenter.segmentObject(image, options, {
      onStage: (stage) => status({ image: "Encoding the image…", decode: "Finding the object…" }[stage]),
    });
    const best = result.candidates.reduce((a, b) => (b.score > a.score ? b : a));
    draw({ pixels: result.pixels, instances: [{ ...best, prompt: "object", promptIndex: 0 }] });
    const { encodeImageMs, promptsMs, imageCacheHit } = remember(result.timings);
    status(`Object score ${best.score.toFixed(3)}. ` + (imageCacheHit ? "Image already encoded; " :
      `Image encoded in ${(encodeImageMs / 1000).toFixed(2)} s; `) + `clicks in ${(promptsMs / 1000).toFixed(2)} s.`);
    showMessage("");
    return result;
  } catch (error) {
    throw failed(error);
  }
}

/** The clicks on the canvas: include points green, exclude points red, the box dashed. */
function drawClicks({ points, pointLabels, box }) {
  const context = view.getContext("2d");
  const radius = Math.max(4, Math.round(Math.max(view.width, view.height) / 120));
  context.lineWidth = Math.max(1, radius / 3);
  if (box) {
    context.setLineDash([radius, radius]);
    context.strokeStyle = "#ffffff";
    context.strokeRect(box[0], box[1], box[2] - box[0], box[3] - box[1]);
    context.setLineDash([]);
  }
  points.forEach(([x, y], i) => {
    context.beginPath();
    context.arc(x, y, radius, 0, 2 * Math.PI);
    context.fillStyle = pointLabels[i] ? "#22c55e" : "#ef4444";
    context.fill();
    context.strokeStyle = "#ffffff";
    context.stroke();
  });
}

/**
 * A click (or a box) on the page: added to the page's clicks, then the object segmented again, refining the mask
 * shown (its logits fed back to the tracker, as the Gradio app's Object tab does) after the first click.
 */
function addClick(change) {
  if (!state.image) return;
  const previous = state.clicks;
  const next = { ...previous, ...change(previous) };
  state.clicks = next;
  $("clear-clicks").disabled = false;
  const refine = previous.points.length > 0 || previous.box !== null;
  showObject(state.image, { points: next.points, pointLabels: next.pointLabels, box: next.box, refine })
    .then(() => { if (state.clicks === next) drawClicks(next); })
    .catch(() => { if (state.clicks === next) state.clicks = previous; });  // the message is on the page
}

function clearClicks() {
  state.clicks = NO_CLICKS;
  $("clear-clicks").disabled = true;
  if (state.shown) draw({ pixels: state.shown.pixels, instances: [] });
  $("results").replaceChildren();
  showMessage("");
  status("Clicks cleared.");
}

/** The page's clicks on the shown image ({points, pointLabels, box}, image pixels): what segmentObject would take. */
function clicks() {
  const { points, pointLabels, box } = state.clicks;
  return { points: points.map((point) => [...point]), pointLabels: [...pointLabels], box: box && [...box] };
}

window.litetext = { ready, segment, refilter, segmentObject, clicks, timings: () => state.timings, LitetextError };

function promptsFromBox() {
  return $("prompts").value.split(/[,\n]/).filter((part) => part.trim());
}

function runFromPage() {
  if (!state.image) {
    showMessage("choose an image first (or drop one on the page)");
    return;
  }
  segment(state.image, promptsFromBox()).catch(() => {});  // the message is already on the page
}

async function chooseImage(file) {
  state.image = file;
  state.clicks = NO_CLICKS;
  $("clear-clicks").disabled = true;
  const prompts = promptsFromBox();
  if (prompts.length) {
    runFromPage();
    return;
  }
  try {
    await ready;
    const bitmap = await createImageBitmap(file);
    const context = new OffscreenCanvas(bitmap.width, bitmap.height).getContext("2d");
    context.drawImage(bitmap, 0, 0);
    draw({ pixels: context.getImageData(0, 0, bitmap.width, bitmap.height), instances: [] });
    $("results").replaceChildren();
    showMessage("type what to find, then Segment", "info");
  } catch {
    showMessage(`${file.name} is not an image the browser can decode: give a JPEG, PNG, WebP or GIF`);
  }
}

$("run").addEventListener("click", runFromPage);
$("prompts").addEventListener("keydown", (event) => { if (event.key === "Enter") runFromPage(); });
$("file").addEventListener("change", () => { if ($("file").files[0]) chooseImage($("file").files[0]); });
$("threshold").addEventListener("input", () => refilter(Number($("threshold").value)));
const drop = $("drop");
drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (event) => {
  event.preventDefault();
  drop.classList.remove("over");
  const file = event.dataTransfer.files[0];
  if (file) chooseImage(file);
});
$("clear-clicks").addEventListener("click", clearClicks);

/** A pointer event's position in image pixels, inside the image. */
function imagePoint(event) {
  const bounds = view.getBoundingClientRect();
  const x = ((event.clientX - bounds.left) / bounds.width) * view.width;
  const y = ((event.clientY - bounds.top) / bounds.height) * view.height;
  return [Math.min(Math.max(x, 0), view.width), Math.min(Math.max(y, 0), view.height)];
}

let press = null;
view.addEventListener("pointerdown", (event) => {
  if (event.button !== 0) return;
  press = { start: imagePoint(event), client: [event.clientX, event.clientY], snapshot: null };
  view.setPointerCapture(event.pointerId);
});
view.addEventListener("pointermove", (event) => {
  if (!press || !dragged(press, event)) return;
  const context = view.getContext("2d");
  const [x0, y0] = press.start;
  const [x1, y1] = imagePoint(event);
  press.snapshot ??= context.getImageData(0, 0, view.width, view.height);  // the picture under the box being drawn
  context.putImageData(press.snapshot, 0, 0);
  context.setLineDash([6, 4]);
  context.strokeStyle = "#ffffff";
  context.lineWidth = 2;
  context.strokeRect(x0, y0, x1 - x0, y1 - y0);
  context.setLineDash([]);
});
view.addEventListener("pointerup", (event) => {
  const pressed = press;
  press = null;
  if (!pressed) return;
  const end = imagePoint(event);
  if (dragged(pressed, event)) {
    const [[x0, y0], [x1, y1]] = [pressed.start, end];
    const box = [Math.min(x0, x1), Math.min(y0, y1), Math.max(x0, x1), Math.max(y0, y1)];
    addClick(() => ({ box }));
    return;
  }
  const label = event.shiftKey ? 0 : 1;
  const hook = new CustomEvent("litetext:click", { cancelable: true,
                                                    detail: { x: end[0], y: end[1], label, image: state.image } });
  if (!window.dispatchEvent(hook)) return;  // a listener took the click
  addClick(({ points, pointLabels }) => ({ points: [...points, end], pointLabels: [...pointLabels, label] }));
});
view.addEventListener("pointercancel", () => { press = null; });

function dragged(pressed, event) {
  return Math.hypot(event.clientX - pressed.client[0], event.clientY - pressed.client[1]) > DRAG_PIXELS;
}
