// litetext in the browser: a model's ONNX export (written by `litetext export --format onnx`) run by
// onnxruntime-web. The stages are the Python engine's: load image → encode image (once per image) → encode text
// (once per prompt) → decode (one prompt per call) → post-process. No DOM here: ui.js draws the page.

import * as ort from "./ort/ort.min.mjs";
import { ObjectPromptError, objectCandidates, objectPrompt, pointList } from "./clicks.js";
import { candidates, instances } from "./postprocess.js";
import { ImageInputError, imageSettings, pixelValues } from "./preprocess.js";
import { Tokenizer, TokenizerError } from "./tokenizer.js";

/** Tokens per prompt: Sam3Processor pads every prompt to this length (litetext.prompts.TEXT_LENGTH). */
export const TEXT_LENGTH = 32;
/** The largest image side and pixel count the page takes: each kept mask is held at full size. */
export const MAX_SIDE = 8192;
export const MAX_PIXELS = 40_000_000;
const CACHE_NAME = "litetext-model-files";
const GRAPHS = ["vision_encoder", "text_encoder", "decoder"];
/** Clicks and boxes on one object: only in an export of a checkpoint with SAM3's tracker. */
const TRACKER_GRAPHS = ["tracker_decoder", "tracker_decoder_multimask"];
/** What segmentObject says on an export without the tracker graphs. */
export const NO_TRACKER = "this export has no tracker: clicks and boxes need SAM3's tracker graphs, which an export " +
  "of a checkpoint without the tracker does not hold; export one that has it (litetext export sam3 --format onnx, " +
  "or a composition written by litetext models assemble) and rebuild the site with litetext web";

/** Every error the page shows: what was wrong and what to do. */
export class LitetextError extends Error {}

ort.env.wasm.wasmPaths = new URL("./ort/", import.meta.url).href;
// Threads need cross-origin isolation (COOP/COEP headers); without it onnxruntime-web runs one thread.
ort.env.wasm.numThreads = globalThis.crossOriginIsolated ? Math.min(4, navigator.hardwareConcurrency || 1) : 1;

/** "webgpu" when the browser gives a WebGPU adapter, else "wasm"; an error when it has neither. */
export async function pickBackend(requested = "auto") {
  if (typeof WebAssembly !== "object") {
    throw new LitetextError("this browser runs neither WebGPU nor WebAssembly, which the model needs: use a " +
                            "recent Chrome, Edge, Firefox or Safari");
  }
  if (requested === "wasm") return "wasm";
  let adapter = null;
  try {
    adapter = navigator.gpu ? await navigator.gpu.requestAdapter() : null;
  } catch {
    adapter = null;
  }
  if (adapter) return "webgpu";
  if (requested === "webgpu") throw new LitetextError("WebGPU was asked for, and this browser has no WebGPU adapter");
  return "wasm";
}

/**
 * Load the export at `baseUrl` (a folder URL holding manifest.json). Files are checked against the manifest's sizes
 * and SHA-256 digests and kept in the Cache Storage, so a second visit downloads nothing.
 * onProgress({file, loaded, total, cached}) reports each file's download.
 */
export async function loadModel(baseUrl, { backend = "auto", onProgress = () => {} } = {}) {
  const base = new URL(baseUrl, document.baseURI).href;
  const manifest = await fetchJson(new URL("manifest.json", base).href, "manifest.json");
  for (const role of GRAPHS) {
    if (!manifest.graphs?.[role]) {
      throw new LitetextError(`manifest.json at ${base} lists no ${role} graph: it is not a litetext ONNX export; ` +
                              "rebuild the site with litetext web MODEL --out DIR");
    }
  }
  const roles = [...GRAPHS, ...TRACKER_GRAPHS.filter((role) => manifest.graphs[role])];
  const digests = manifest.digests || {};
  const sizes = {};
  for (const graph of Object.values(manifest.graphs)) Object.assign(sizes, graph.files);
  const total = roles.reduce((n, role) => n + Object.values(manifest.graphs[role].files).reduce((a, b) => a + b, 0), 0);
  let done = 0;
  const fetchFile = async (name) => {
    const bytes = await fetchVerified(new URL(name, base).href, name, sizes[name], digests[name], (loaded) =>
      onProgress({ file: name, loaded: done + loaded, total }));
    if (sizes[name] !== undefined) done += bytes.length;
    return bytes;
  };
  const text = async (name) => new TextDecoder().decode(await fetchFile(name));
  let tokenizer;
  let settings;
  try {
    const tokenizerConfig = "tokenizer_config.json" in digests ? JSON.parse(await text("tokenizer_config.json")) : {};
    if (!("tokenizer.json" in digests)) {
      throw new TokenizerError("the export has no tokenizer.json (the browser page reads the fast tokenizer's file); " +
                               "re-export with a transformers that writes it");
    }
    tokenizer = new Tokenizer(JSON.parse(await text("tokenizer.json")), tokenizerConfig);
    settings = imageSettings(JSON.parse(await text("processor_config.json")));
  } catch (error) {
    throw error instanceof LitetextError ? error : new LitetextError(error.message);
  }
  const graphs = {};
  for (const role of roles) {
    const spec = manifest.graphs[role];
    const files = {};
    for (const name of Object.keys(spec.files)) files[name] = await fetchFile(name);
    graphs[role] = { spec, files };
  }
  onProgress({ file: null, loaded: total, total });
  const chosen = await pickBackend(backend);
  let sessions;
  try {
    sessions = await createSessions(graphs, chosen);
  } catch (error) {
    if (chosen !== "webgpu" || backend === "webgpu") throw loadError(error);
    console.warn("litetext: WebGPU could not run the model, falling back to WebAssembly:", error);
    try {
      sessions = await createSessions(graphs, "wasm");
    } catch (again) {
      throw loadError(again);
    }
    return new Model({ manifest, tokenizer, settings, sessions, backend: "wasm" });
  }
  const gpu = chosen === "webgpu" ? await ort.env.webgpu.device : null;
  return new Model({ manifest, tokenizer, settings, sessions, backend: chosen, gpu });
}

function loadError(error) {
  return new LitetextError(`onnxruntime-web cannot load the model (${error.message || error}); the export may be ` +
                           "damaged or from another onnxruntime: rebuild the site with litetext web MODEL --out DIR");
}

async function createSessions(graphs, backend) {
  const sessions = {};
  for (const [role, { spec, files }] of Object.entries(graphs)) {
    const externalData = Object.entries(files).filter(([name]) => name !== spec.file)
      .map(([path, data]) => ({ path, data }));
    sessions[role] = await ort.InferenceSession.create(files[spec.file], {
      executionProviders: [backend], externalData, graphOptimizationLevel: "all",
    });
  }
  return sessions;
}

async function fetchJson(url, name) {
  let response;
  try {
    response = await fetch(url, { cache: "no-cache" });
  } catch (error) {
    throw new LitetextError(`cannot download ${name} from ${url} (${error.message}): check the connection and the ` +
                            "site's --model-url");
  }
  if (!response.ok) {
    throw new LitetextError(`the model's ${name} is missing (HTTP ${response.status} at ${url}): rebuild the site ` +
                            "with litetext web MODEL --out DIR, or fix --model-url");
  }
  try {
    return await response.json();
  } catch {
    throw new LitetextError(`${url} is not JSON: it is not a litetext export's ${name}`);
  }
}

async function fetchVerified(url, name, size, digest, onProgress) {
  const hex = digest?.startsWith("sha256:") ? digest.slice(7) : null;
  const key = `${url}?sha256=${hex}`;
  let cache = null;
  try {
    cache = hex && globalThis.caches ? await caches.open(CACHE_NAME) : null;
  } catch {
    cache = null;  // no Cache Storage (not a secure context, private mode): download every visit
  }
  if (cache) {
    const hit = await cache.match(key);
    if (hit) {
      const bytes = new Uint8Array(await hit.arrayBuffer());
      if (size === undefined || bytes.length === size) {
        onProgress(bytes.length);
        return bytes;
      }
      await cache.delete(key);
    }
  }
  let response;
  try {
    response = await fetch(url);
  } catch (error) {
    throw new LitetextError(`cannot download the model file ${name} from ${url} (${error.message})`);
  }
  if (!response.ok) {
    throw new LitetextError(`the model file ${name} is missing (HTTP ${response.status} at ${url}): copy the whole ` +
                            "export, or rebuild the site with litetext web MODEL --out DIR");
  }
  const chunks = [];
  let received = 0;
  try {
    const reader = response.body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      received += value.length;
      onProgress(received);
    }
  } catch (error) {
    throw new LitetextError(`the download of ${name} broke off after ${received.toLocaleString()} bytes ` +
                            `(${error.message}): reload the page to try again`);
  }
  const bytes = new Uint8Array(received);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.length;
  }
  if (size !== undefined && received !== size) {
    throw new LitetextError(`the model file ${name} is ${received.toLocaleString()} bytes, the manifest says ` +
                            `${size.toLocaleString()}: it is half-downloaded or half-copied; copy the whole export ` +
                            "again, or rebuild the site with litetext web MODEL --out DIR");
  }
  if (hex && globalThis.crypto?.subtle) {
    const actual = toHex(await crypto.subtle.digest("SHA-256", bytes));
    if (actual !== hex) {
      throw new LitetextError(`the model file ${name} does not match its sha256 in manifest.json: it was changed or ` +
                              "damaged after export; rebuild the site with litetext web MODEL --out DIR");
    }
  }
  if (cache) await cache.put(key, new Response(bytes)).catch(() => {});
  return bytes;
}

function toHex(buffer) {
  return Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Prompts as the Python engine takes them: one text or a list; whitespace collapsed, duplicates dropped. */
export function normalizePrompts(prompts) {
  const list = typeof prompts === "string" ? [prompts] : prompts;
  if (!Array.isArray(list) || list.length === 0) {
    throw new LitetextError("no prompt given: pass at least one noun phrase, e.g. 'red car'");
  }
  const cleaned = [];
  for (const prompt of list) {
    if (typeof prompt !== "string") throw new LitetextError(`prompts must be text, got ${describe(prompt)}`);
    const text = prompt.split(/\s+/u).filter(Boolean).join(" ");
    if (!text) throw new LitetextError("a prompt is empty or blank: every prompt must name something, e.g. 'person'");
    if (!cleaned.includes(text)) cleaned.push(text);
  }
  return cleaned;
}

function describe(value) {
  if (value === null) return "null";
  if (typeof value === "object") return value.constructor?.name || "an object";
  return `${typeof value} ${JSON.stringify(value)?.slice(0, 40)}`;
}

/** RGBA pixels ({data, width, height}) of an image URL, File/Blob, ImageBitmap, HTMLImageElement or ImageData. */
export async function readImage(image) {
  const options = { imageOrientation: "from-image", colorSpaceConversion: "none", premultiplyAlpha: "none" };
  const decode = async (blob, what) => {
    try {
      return await createImageBitmap(blob, options);
    } catch {
      throw new LitetextError(`${what} is not an image the browser can decode (${blob.type || "unknown type"}, ` +
                              `${blob.size.toLocaleString()} bytes): give a JPEG, PNG, WebP or GIF`);
    }
  };
  let bitmap;
  if (typeof image === "string") {
    if (!image.trim()) throw new LitetextError("no image given: pass an image URL, File, ImageBitmap or <img>");
    let response;
    try {
      response = await fetch(image);
    } catch (error) {
      throw new LitetextError(`cannot fetch the image ${image} (${error.message})`);
    }
    if (!response.ok) throw new LitetextError(`cannot fetch the image ${image}: HTTP ${response.status}`);
    bitmap = await decode(await response.blob(), image);
  } else if (typeof Blob !== "undefined" && image instanceof Blob) {
    bitmap = await decode(image, image.name || "the file");
  } else if (typeof HTMLImageElement !== "undefined" && image instanceof HTMLImageElement) {
    try {
      await image.decode();
    } catch {
      throw new LitetextError(`the <img> ${image.src.slice(0, 80)} holds no decodable image`);
    }
    bitmap = await createImageBitmap(image, options);
  } else if (typeof ImageBitmap !== "undefined" && image instanceof ImageBitmap) {
    bitmap = image;
  } else if (typeof ImageData !== "undefined" && image instanceof ImageData) {
    checkSize(image.width, image.height);
    return image;
  } else {
    throw new LitetextError("segment() takes an image URL, a File, an ImageBitmap or an HTMLImageElement, not " +
                            describe(image));
  }
  checkSize(bitmap.width, bitmap.height);
  const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
  const context = canvas.getContext("2d", { willReadFrequently: true });
  context.drawImage(bitmap, 0, 0);
  return context.getImageData(0, 0, bitmap.width, bitmap.height);
}

function checkSize(width, height) {
  if (!width || !height) throw new LitetextError(`the image is ${width}x${height} pixels: it is empty`);
  if (width > MAX_SIDE || height > MAX_SIDE || width * height > MAX_PIXELS) {
    throw new LitetextError(`the image is ${width}x${height} pixels; the browser page takes at most ${MAX_SIDE} ` +
                            `pixels a side and ${MAX_PIXELS / 1e6} megapixels (it holds each mask at full size): ` +
                            "resize it first");
  }
}

/** One loaded export: the stages, each a method. */
export class Model {
  constructor({ manifest, tokenizer, settings, sessions, backend, gpu = null }) {
    Object.assign(this, { manifest, tokenizer, settings, sessions, backend, gpu });
    this.textCache = new Map();
    /** Whether the export has SAM3's tracker, so that clicks and boxes on one object run (decodeObject). */
    this.hasTracker = Boolean(sessions.tracker_decoder);
  }

  /** The vision encoder's outputs for RGBA pixels, by output name. */
  async encodeImage(pixels) {
    const values = pixelValues(pixels, this.settings);
    const input = new ort.Tensor("float32", values, [1, 3, this.settings.height, this.settings.width]);
    const name = this.manifest.graphs.vision_encoder.inputs[0].name;
    return await this.runGraph("vision_encoder", { [name]: input });
  }

  /** {features, mask} (ort.Tensor, 1 × 32 × D and 1 × 32) of each prompt; each prompt is encoded once. */
  async encodeText(prompts) {
    const missing = prompts.filter((prompt) => !this.textCache.has(prompt));
    if (missing.length) {
      const { inputIds, attentionMask, truncated } = this.tokenizer.encodeBatch(missing, TEXT_LENGTH);
      if (truncated.length) console.warn(`litetext: prompts cut to ${TEXT_LENGTH} tokens:`, truncated);
      const shape = [missing.length, TEXT_LENGTH];
      const { text_features: features } = await this.runGraph("text_encoder", {
        input_ids: new ort.Tensor("int64", inputIds, shape),
        attention_mask: new ort.Tensor("int64", attentionMask, shape),
      });
      const width = features.dims[2];
      missing.forEach((prompt, row) => {
        const slice = features.data.slice(row * TEXT_LENGTH * width, (row + 1) * TEXT_LENGTH * width);
        const mask = attentionMask.slice(row * TEXT_LENGTH, (row + 1) * TEXT_LENGTH);
        this.textCache.set(prompt, {
          features: new ort.Tensor("float32", slice, [1, TEXT_LENGTH, width]),
          mask: new ort.Tensor("int64", mask, [1, TEXT_LENGTH]),
        });
      });
    }
    return prompts.map((prompt) => this.textCache.get(prompt));
  }

  /** The decoder's outputs for one image's features and one prompt's text encoding. */
  async decode(imageFeatures, text) {
    const feeds = {};
    for (const { name } of this.manifest.graphs.decoder.inputs) {
      if (name === "text_features") feeds[name] = text.features;
      else if (name === "text_mask") feeds[name] = text.mask;
      else if (imageFeatures[name]) feeds[name] = imageFeatures[name];
      else throw new LitetextError(`the decoder takes ${name}, which the page does not know how to give`);
    }
    return await this.runGraph("decoder", feeds);
  }

  /**
   * One graph's outputs. On WebGPU a kernel the browser cannot compile or validate raises no error in onnxruntime:
   * its outputs are garbage. The run is watched through the device's error scopes, and such a run is an error.
   */
  async runGraph(role, feeds) {
    const session = this.sessions[role];
    if (!this.gpu) return await session.run(feeds);
    const scopes = ["validation", "out-of-memory", "internal"];
    for (const scope of scopes) this.gpu.pushErrorScope(scope);
    let outputs;
    try {
      outputs = await session.run(feeds);
    } finally {
      const errors = (await Promise.all(scopes.map(() => this.gpu.popErrorScope()))).filter(Boolean);
      if (errors.length) {
        throw new LitetextError(`WebGPU failed running the ${role} graph in this browser (${errors[0].message.split("\n")[0]}), ` +
                                "so its results cannot be trusted: reload the page with ?backend=wasm");
      }
    }
    return outputs;
  }

  /**
   * The tracker decoder's outputs (iou_scores, pred_masks) for one image's features and one object's point list
   * (clicks.js pointList); `multimask` runs the three-candidate graph. `maskInput`: an earlier call's low-resolution
   * logits (Float32Array) fed back to the tracker; without it, the no-mask embedding.
   */
  async decodeObject(imageFeatures, { points, labels, count }, multimask = false, maskInput = null) {
    if (!this.hasTracker) throw new LitetextError(NO_TRACKER);
    const role = multimask ? "tracker_decoder_multimask" : "tracker_decoder";
    if (!this.sessions[role]) throw new LitetextError(`this export has no ${role} graph: re-export it with this litetext`);
    const maskShape = this.manifest.graphs[role].inputs.find((t) => t.name === "mask_input").shape;
    const maskSize = maskShape.reduce((a, b) => a * b, 1);
    if (maskInput && maskInput.length !== maskSize) {
      throw new LitetextError(`the mask to refine has ${maskInput.length} values; the tracker takes ${maskSize}`);
    }
    const feeds = {
      input_points: new ort.Tensor("float32", points, [1, count, 2]),
      input_labels: new ort.Tensor("int64", labels, [1, count]),
      mask_input: new ort.Tensor("float32", maskInput ?? new Float32Array(maskSize), maskShape),
      has_mask_input: new ort.Tensor("float32", Float32Array.of(maskInput ? 1 : 0), [1]),
    };
    for (let i = 0; i < 3; i++) feeds[`image_embedding_${i}`] = imageFeatures[`tracker_embedding_${i}`];
    return await this.runGraph(role, feeds);
  }
}

/**
 * What the page runs: the model plus the last images' features (each image is encoded once; a new prompt runs only
 * the text encoder and decoder) and the last run's candidates (a new threshold re-filters without the model).
 */
export class Segmenter {
  constructor(model, { keepImages = 2 } = {}) {
    this.model = model;
    this.keepImages = keepImages;
    this.images = new Map();
    this.last = null;
    /** The last object prompt's image digest and first candidate's low-resolution logits (for `refine`). */
    this.lastObject = null;
    this.queue = Promise.resolve();
  }

  /** Instances of each prompt in `image`; onStage(name) reports "image", "text", "decode". */
  segment(image, prompts, options = {}) {
    const run = () => this.run(image, prompts, options);
    const result = this.queue.then(run, run);  // onnxruntime sessions run one call at a time
    this.queue = result.catch(() => {});
    return result;
  }

  async run(image, prompts, { threshold = 0.5, maskThreshold = 0.5, onStage = () => {} } = {}) {
    checkThreshold("threshold", threshold);
    checkThreshold("maskThreshold", maskThreshold);
    const cleaned = normalizePrompts(prompts);
    const pixels = await readImage(image);
    const started = performance.now();
    const { features, imageCacheHit } = await this.encode(pixels, onStage);
    const encoded = performance.now();
    onStage("text");
    const texts = await this.model.encodeText(cleaned);
    onStage("decode");
    const found = [];
    for (let i = 0; i < cleaned.length; i++) {
      const outputs = await this.model.decode(features, texts[i]);
      found.push(candidates(cleaned[i], outputs, 0, pixels.width, pixels.height));
    }
    const decoded = performance.now();
    this.last = { pixels, found, threshold, maskThreshold, prompts: cleaned };
    const kept = instances(found, { threshold, maskThreshold });
    return {
      instances: kept, pixels, prompts: cleaned,
      timings: { encodeImageMs: encoded - started, promptsMs: decoded - encoded, imageCacheHit },
    };
  }

  /** The vision encoder's outputs for `pixels`, from the last images' cache when the same pixels were seen. */
  async encode(pixels, onStage = () => {}) {
    const digest = toHex(await crypto.subtle.digest("SHA-256", pixels.data)) + `:${pixels.width}x${pixels.height}`;
    let features = this.images.get(digest);
    const imageCacheHit = Boolean(features);
    if (features) {
      this.images.delete(digest);
    } else {
      onStage("image");
      features = await this.model.encodeImage(pixels);
    }
    this.images.set(digest, features);
    while (this.images.size > this.keepImages) this.images.delete(this.images.keys().next().value);
    return { features, imageCacheHit, digest };
  }

  /**
   * One object in `image` from clicks and/or a box, with SAM3's tracker on the same image encoding as text prompts:
   * {candidates: [{score, box, area, mask}] (one, or three with multimask), prompt, pixels, timings};
   * onStage(name) reports "image", "decode".
   */
  segmentObject(image, options = {}, { onStage = () => {} } = {}) {
    const run = () => this.runObject(image, options, onStage);
    const result = this.queue.then(run, run);
    this.queue = result.catch(() => {});
    return result;
  }

  async runObject(image, options, onStage = () => {}) {
    if (!this.model.hasTracker) throw new LitetextError(NO_TRACKER);
    const pixels = await readImage(image);
    let prompt;
    try {
      prompt = objectPrompt(options, pixels.width, pixels.height);
    } catch (error) {
      throw error instanceof ObjectPromptError ? new LitetextError(error.message) : error;
    }
    const started = performance.now();
    const { features, imageCacheHit, digest } = await this.encode(pixels, onStage);
    const encoded = performance.now();
    let maskInput = null;
    if (prompt.refine) {
      if (this.lastObject?.digest !== digest) {
        throw new LitetextError("refine feeds back the last object's mask on this image, and there is none: call " +
                                "segmentObject on this image without refine first");
      }
      maskInput = this.lastObject.logits;
    }
    onStage("decode");
    const size = this.model.manifest.image_size ?? this.model.settings.height;
    const outputs = await this.model.decodeObject(features, pointList(prompt, pixels.width, pixels.height, size),
                                                  prompt.multimask, maskInput);
    const found = objectCandidates(outputs, pixels.width, pixels.height);
    // What a later `refine` feeds back: the first candidate's logits, as Python's `result.mask_logits[0]`.
    this.lastObject = { digest, logits: found[0].logits };
    return {
      candidates: found, prompt, pixels,
      timings: { encodeImageMs: encoded - started, promptsMs: performance.now() - encoded, imageCacheHit },
    };
  }

  /** The last run's instances at another score threshold (and mask threshold), without running the model. */
  refilter({ threshold, maskThreshold } = {}) {
    if (!this.last) return null;
    if (threshold !== undefined) { checkThreshold("threshold", threshold); this.last.threshold = threshold; }
    if (maskThreshold !== undefined) { checkThreshold("maskThreshold", maskThreshold); this.last.maskThreshold = maskThreshold; }
    const { found, pixels, prompts } = this.last;
    return { instances: instances(found, this.last), pixels, prompts };
  }
}

function checkThreshold(name, value) {
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0 || value > 1) {
    throw new LitetextError(`${name} must be a number from 0 to 1, got ${describe(value)}`);
  }
}

export { ImageInputError, ort };
