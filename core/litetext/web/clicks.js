// Clicks and a box on one object with SAM3's tracker, as litetext's Python engine answers them
// (litetext.prompts.object_prompt, litetext.onnx.tracker.OnnxTracker.point_list, litetext.pipelines.clicks):
// the prompt checked against the image, turned into the tracker graphs' one point list, and the graph's
// low-resolution mask logits upsampled to the image, kept above logit 0, boxed and counted.

import { upsampleThreshold } from "./postprocess.js";

/** A bad object prompt: what was wrong and what to do. */
export class ObjectPromptError extends Error {}

/** The tracker graphs' point labels for a box's two corners, and for padding (SAM's ONNX convention). */
const BOX_CORNER_LABELS = [2, 3];
const PADDING_LABEL = -1;
const OPTIONS = ["points", "pointLabels", "box", "multimask", "refine"];

/**
 * Check segmentObject's options against an image of `width` × `height` pixels, as `object_prompt` does:
 * points [[x, y], ...] in pixels inside the image, one label per point (1 include, 0 exclude; all 1 when left out),
 * a box [x0, y0, x1, y1] inside the image with x0 < x1 and y0 < y1; at least a point or a box. `refine` (true or
 * false) feeds the last object's mask on the same image back to the tracker, as `mask_input` does in Python.
 */
export function objectPrompt(options, width, height) {
  if (options === null || typeof options !== "object" || Array.isArray(options)) {
    throw new ObjectPromptError(`segmentObject's options must be an object {${OPTIONS.join(", ")}}, ` +
                                `not ${shown(options)}`);
  }
  const unknown = Object.keys(options).filter((key) => !OPTIONS.includes(key));
  if (unknown.length) {
    throw new ObjectPromptError(`segmentObject takes ${OPTIONS.join(", ")}; not ${unknown.join(", ")}`);
  }
  const { points = null, pointLabels = null, box = null, multimask = false, refine = false } = options;
  if (typeof multimask !== "boolean") throw new ObjectPromptError(`multimask must be true or false, not ${shown(multimask)}`);
  if (typeof refine !== "boolean") throw new ObjectPromptError(`refine must be true or false, not ${shown(refine)}`);
  const checkedPoints = items(points, "points").map((point) => {
    const [x, y] = numbers(point, 2, "point", "two numbers x, y in pixels");
    if (!(x >= 0 && x <= width && y >= 0 && y <= height)) {
      throw new ObjectPromptError(`point (${x}, ${y}) lies outside the ${width}x${height} image`);
    }
    return [x, y];
  });
  let labels = checkedPoints.map(() => 1);
  if (pointLabels !== null && pointLabels !== undefined) {
    const values = items(pointLabels, "pointLabels");
    if (!values.every((v) => v === 0 || v === 1)) {
      throw new ObjectPromptError(`pointLabels must be 1 (include) or 0 (exclude), got ${shown(values)}`);
    }
    if (values.length !== checkedPoints.length) {
      throw new ObjectPromptError(`${checkedPoints.length} points but ${values.length} pointLabels`);
    }
    labels = values;
  }
  let checkedBox = null;
  if (box !== null && box !== undefined) {
    const [x0, y0, x1, y1] = numbers(box, 4, "box", "four numbers x0, y0, x1, y1 in pixels");
    if (x1 <= x0 || y1 <= y0) throw new ObjectPromptError(`box ${shown(box)} is empty or inverted: need x0 < x1 and y0 < y1`);
    if (x0 < 0 || y0 < 0 || x1 > width || y1 > height) {
      throw new ObjectPromptError(`box ${shown(box)} lies outside the ${width}x${height} image`);
    }
    checkedBox = [x0, y0, x1, y1];
  }
  if (!checkedPoints.length && !checkedBox) {
    throw new ObjectPromptError("no object prompt given: pass points (with pointLabels) or a box");
  }
  return { points: checkedPoints, pointLabels: labels, box: checkedBox, multimask, refine };
}

function items(values, name) {
  if (values === null || values === undefined) return [];
  if (!Array.isArray(values)) throw new ObjectPromptError(`${name} must be a list, not ${shown(values)}`);
  return values;
}

function numbers(item, count, name, shape) {
  if (!Array.isArray(item) || item.length !== count || !item.every((v) => typeof v === "number")) {
    throw new ObjectPromptError(`${name} ${shown(item)} must be ${shape}`);
  }
  if (!item.every(Number.isFinite)) throw new ObjectPromptError(`${name} ${shown(item)} has a NaN or infinite coordinate`);
  return item;
}

function shown(value) {
  const text = Array.isArray(value) ? `[${value.map((v) => (Array.isArray(v) ? shown(v) : typeof v === "string" ?
    JSON.stringify(v) : String(v))).join(", ")}]` : typeof value === "string" ? JSON.stringify(value) : String(value);
  return text.length <= 80 ? text : `${text.slice(0, 77)}...`;
}

/**
 * The tracker graphs' `input_points` (Float32Array, P × 2) and `input_labels` (BigInt64Array, P) of a checked
 * prompt on a `width` × `height` image: coordinates scaled to the model's square input of `size` pixels as
 * Sam3TrackerProcessor does (float32: x · (size / width)), the clicks, the box's corners (labels 2, 3), then one
 * padding point (0, 0, label -1); with no click and no box, two padding points.
 */
export function pointList(prompt, width, height, size) {
  const f = Math.fround;
  const scaleX = f(size / width);
  const scaleY = f(size / height);
  const points = [];
  const labels = [];
  prompt.points.forEach(([x, y], i) => {
    points.push(f(f(x) * scaleX), f(f(y) * scaleY));
    labels.push(prompt.pointLabels[i]);
  });
  if (prompt.box) {
    const [x0, y0, x1, y1] = prompt.box;
    points.push(f(f(x0) * scaleX), f(f(y0) * scaleY), f(f(x1) * scaleX), f(f(y1) * scaleY));
    labels.push(...BOX_CORNER_LABELS);
  }
  if (!labels.length) {
    points.push(0, 0);
    labels.push(PADDING_LABEL);
  }
  points.push(0, 0);
  labels.push(PADDING_LABEL);
  return { points: Float32Array.from(points), labels: BigInt64Array.from(labels, BigInt), count: labels.length };
}

/**
 * The tracker graph's candidates (one, or three with multimask) on the `width` × `height` image:
 * [{score, box, area, mask, logits}], score the predicted IoU, mask (Uint8Array, height × width) the low-resolution
 * logits upsampled bilinearly (align_corners=False) and kept above 0, box the pixels' [x0, y0, x1, y1] (x1, y1 one
 * past the last pixel; zeros for an empty mask), area the mask's pixel count, logits the low-resolution ones.
 */
export function objectCandidates(outputs, width, height) {
  const scores = outputs.iou_scores.data;
  const dims = outputs.pred_masks.dims;
  const [h, w] = dims.slice(-2);
  const logits = outputs.pred_masks.data;
  const found = [];
  for (let i = 0; i < scores.length; i++) {
    const own = logits.slice(i * h * w, (i + 1) * h * w);
    const { pixels, area } = upsampleThreshold(own, h, w, height, width, 0);
    found.push({ score: scores[i], box: maskBox(pixels, width, height), area, mask: pixels, logits: own });
  }
  return found;
}

/** The box around a mask's pixels, as litetext.result.mask_boxes: [x0, y0, x1 + 1, y1 + 1], zeros when empty. */
export function maskBox(pixels, width, height) {
  let x0 = width;
  let y0 = height;
  let x1 = -1;
  let y1 = -1;
  for (let y = 0; y < height; y++) {
    const row = y * width;
    for (let x = 0; x < width; x++) {
      if (pixels[row + x]) {
        if (x < x0) x0 = x;
        if (x > x1) x1 = x;
        if (y < y0) y0 = y;
        y1 = y;
      }
    }
  }
  return x1 < 0 ? [0, 0, 0, 0] : [x0, y0, x1 + 1, y1 + 1];
}
