// Instances from the decoder's outputs, as litetext's ImagePipeline.postprocess and transformers'
// Sam3Processor.post_process_instance_segmentation compute them: score = sigmoid(logit) × sigmoid(presence), kept
// above `threshold`; boxes (the graph already gives normalised x0, y0, x1, y1) scaled to image pixels; masks =
// sigmoid of the low-resolution logits, upsampled bilinearly (align_corners=False) to the image, above
// `maskThreshold`.

const sigmoid = (x) => 1 / (1 + Math.exp(-x));

/**
 * The candidates of one decoder call for one prompt, kept so that a new score threshold re-filters without running
 * the model: {prompt, scores (Float32Array, queries), boxes (Float32Array, queries × 4, pixels),
 * maskLogits (Float32Array, queries × h × w), maskHeight, maskWidth, width, height}.
 */
export function candidates(prompt, outputs, row, width, height) {
  const logits = outputs.pred_logits;
  const queries = logits.dims[1];
  const presence = outputs.presence_logits ? sigmoid(outputs.presence_logits.data[row]) : 1;
  const scores = new Float32Array(queries);
  const boxes = new Float32Array(queries * 4);
  const scale = [width, height, width, height];
  for (let q = 0; q < queries; q++) {
    scores[q] = Math.fround(sigmoid(logits.data[row * queries + q]) * presence);
    for (let k = 0; k < 4; k++) boxes[q * 4 + k] = outputs.pred_boxes.data[(row * queries + q) * 4 + k] * scale[k];
  }
  const [, , maskHeight, maskWidth] = outputs.pred_masks.dims;
  const size = queries * maskHeight * maskWidth;
  const maskLogits = outputs.pred_masks.data.slice(row * size, (row + 1) * size);
  return { prompt, scores, boxes, maskLogits, maskHeight, maskWidth, width, height, masks: new Map() };
}

/**
 * The instances of `found` (a list of `candidates`) scoring above `threshold`, prompt by prompt in query order
 * (as litetext's Result): [{prompt, promptIndex, query, score, box, area, mask}], mask a Uint8Array (height × width)
 * computed once per query and mask threshold.
 */
export function instances(found, { threshold = 0.5, maskThreshold = 0.5 } = {}) {
  const out = [];
  found.forEach((candidate, promptIndex) => {
    for (let query = 0; query < candidate.scores.length; query++) {
      const score = candidate.scores[query];
      if (!(score > threshold)) continue;
      const mask = maskOf(candidate, query, maskThreshold);
      out.push({
        prompt: candidate.prompt,
        promptIndex,
        query,
        score,
        box: Array.from(candidate.boxes.subarray(query * 4, query * 4 + 4)),
        area: mask.area,
        mask: mask.pixels,
      });
    }
  });
  return out;
}

function maskOf(candidate, query, maskThreshold) {
  const key = `${query}:${maskThreshold}`;
  let mask = candidate.masks.get(key);
  if (!mask) {
    const { maskHeight: h, maskWidth: w } = candidate;
    const probabilities = new Float32Array(h * w);
    const offset = query * h * w;
    for (let i = 0; i < h * w; i++) probabilities[i] = sigmoid(candidate.maskLogits[offset + i]);
    mask = upsampleThreshold(probabilities, h, w, candidate.height, candidate.width, maskThreshold);
    candidate.masks.set(key, mask);
  }
  return mask;
}

/** torch.nn.functional.interpolate(mode="bilinear", align_corners=False) of an h × w map, then `> threshold`. */
export function upsampleThreshold(map, h, w, height, width, threshold) {
  const columns = axis(w, width);
  const rows = axis(h, height);
  const pixels = new Uint8Array(width * height);
  let area = 0;
  for (let y = 0; y < height; y++) {
    const y0 = rows.low[y] * w;
    const y1 = rows.high[y] * w;
    const ly = rows.lambda[y];
    for (let x = 0; x < width; x++) {
      const x0 = columns.low[x];
      const x1 = columns.high[x];
      const lx = columns.lambda[x];
      const top = (1 - lx) * map[y0 + x0] + lx * map[y0 + x1];
      const bottom = (1 - lx) * map[y1 + x0] + lx * map[y1 + x1];
      if ((1 - ly) * top + ly * bottom > threshold) {
        pixels[y * width + x] = 1;
        area++;
      }
    }
  }
  return { pixels, area };
}

function axis(inSize, outSize) {
  const scale = inSize / outSize;
  const low = new Int32Array(outSize);
  const high = new Int32Array(outSize);
  const lambda = new Float32Array(outSize);
  for (let i = 0; i < outSize; i++) {
    const source = Math.max(scale * (i + 0.5) - 0.5, 0);
    low[i] = Math.min(Math.floor(source), inSize - 1);
    high[i] = Math.min(low[i] + 1, inSize - 1);
    lambda[i] = source - low[i];
  }
  return { low, high, lambda };
}
