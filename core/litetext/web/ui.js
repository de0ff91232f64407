// The page: an image (upload or drop), a prompts box, each instance drawn in its prompt's colour with its score and
// box, a score slider that re-filters the last run without the model. It also sets window.litetext, the page's
// JavaScript API: ready, segment(image, prompts, {threshold, maskThreshold}), refilter, segmentObject.
//
// Clicks: a click on the image dispatches a "litetext:click" event on window ({x, y} in image pixels). When an export
// carries the tracker graphs, segmentObject(image, {points, labels}) is where a click runs; until then it rejects.

import { LitetextError, loadModel, Segmenter } from "./litetext.js";

const COLOURS = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#bfef45", "#469990",
                 "#9a6324"];
const $ = (id) => document.getElementById(id);
const view = $("view");
const state = { segmenter: null, image: null, shown: null };

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
  status("Ready: choose an image and type what to find.");
  return { backend: model.backend, model: model.manifest.model };
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
    draw(result);
    const { encodeImageMs, promptsMs, imageCacheHit } = result.timings;
    status(`${result.instances.length} instance(s). ` + (imageCacheHit ? "Image already encoded; " :
      `Image encoded in ${(encodeImageMs / 1000).toFixed(2)} s; `) + `prompts in ${(promptsMs / 1000).toFixed(2)} s.`);
    showMessage("");
    return publicInstances(result);
  } catch (error) {
    const message = error instanceof LitetextError ? error.message : `unexpected error: ${error.message || error}`;
    showMessage(message);
    status(state.segmenter ? "Ready." : "The model did not load.");
    throw new LitetextError(message);
  }
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

function segmentObject() {
  const message = "this export has no tracker: clicks need the tracker graphs, which this ONNX export does not hold";
  showMessage(message);
  return Promise.reject(new LitetextError(message));
}

window.litetext = { ready, segment, refilter, segmentObject, LitetextError };

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
view.addEventListener("click", (event) => {
  const bounds = view.getBoundingClientRect();
  const x = ((event.clientX - bounds.left) / bounds.width) * view.width;
  const y = ((event.clientY - bounds.top) / bounds.height) * view.height;
  window.dispatchEvent(new CustomEvent("litetext:click", { detail: { x, y, image: state.image } }));
});
