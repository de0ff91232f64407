// The vision encoder's input, computed as transformers' Sam3ImageProcessor computes it (torchvision backend):
// the RGB image resized to the export's square size (no padding, the aspect ratio is not kept) by torchvision's
// antialiased bilinear resize of a uint8 image (PIL's separable filter, int16 fixed-point weights, rounded to uint8
// after each pass, width first), then rescaled and normalised in float32: (x - mean / rescale) / (std / rescale).

export class ImageInputError extends Error {}

/** processor_config.json's image_processor entry, checked for what this file implements. */
export function imageSettings(processorConfig) {
  const config = processorConfig.image_processor || processorConfig;
  const resample = config.resample ?? 2;
  if (config.do_resize !== false && resample !== 2) {
    throw new ImageInputError(`the export's image processor resamples with PIL mode ${resample}; the browser page ` +
                              "implements bilinear (2), Sam3ImageProcessor's default");
  }
  if (config.do_pad) throw new ImageInputError("the export's image processor pads; the browser page does not");
  return {
    height: config.size.height,
    width: config.size.width,
    resize: config.do_resize !== false,
    rescale: config.do_rescale !== false ? config.rescale_factor ?? 1 / 255 : null,
    mean: config.do_normalize !== false ? config.image_mean : null,
    std: config.do_normalize !== false ? config.image_std : null,
  };
}

/** `pixel_values` (Float32Array, 3 × height × width) of an RGBA image ({data, width, height}, e.g. ImageData). */
export function pixelValues(image, settings) {
  const { width, height } = settings;
  const planes = [0, 1, 2].map((channel) => channelPlane(image, channel));
  const resized = planes.map((plane) =>
    settings.resize ? resizePlane(plane, image.width, image.height, width, height) : plane);
  if (!settings.resize && (image.width !== width || image.height !== height)) {
    throw new ImageInputError(`the export takes ${width}x${height} images and does not resize`);
  }
  const out = new Float32Array(3 * width * height);
  const f = Math.fround;
  for (let channel = 0; channel < 3; channel++) {
    const plane = resized[channel];
    const offset = channel * width * height;
    // torch: mean and std are float32 tensors times the Python float 1 / rescale_factor, in float32.
    let mean = 0;
    let std = 1;
    let scale = 1;
    if (settings.mean) {
      const inverse = settings.rescale === null ? 1 : f(1 / settings.rescale);
      mean = f(f(settings.mean[channel]) * inverse);
      std = f(f(settings.std[channel]) * inverse);
    } else if (settings.rescale !== null) {
      scale = f(settings.rescale);
    }
    for (let i = 0; i < plane.length; i++) {
      out[offset + i] = settings.mean ? f(f(plane[i] - mean) / std) : f(plane[i] * scale);
    }
  }
  return out;
}

function channelPlane(image, channel) {
  const plane = new Uint8Array(image.width * image.height);
  const data = image.data;
  for (let i = 0, j = channel; i < plane.length; i++, j += 4) plane[i] = data[j];
  return plane;
}

/** One uint8 plane resized as torch's `_upsample_bilinear2d_aa` does on uint8 (width first, then height). */
export function resizePlane(plane, width, height, outWidth, outHeight) {
  let current = plane;
  let currentWidth = width;
  if (outWidth !== width) {
    const { starts, sizes, weights, taps, precision } = int16Weights(width, outWidth);
    const next = new Uint8Array(outWidth * height);
    for (let y = 0; y < height; y++) {
      const row = y * width;
      for (let x = 0; x < outWidth; x++) {
        let acc = 1 << (precision - 1);
        const start = row + starts[x];
        for (let k = 0; k < sizes[x]; k++) acc += current[start + k] * weights[x * taps + k];
        next[y * outWidth + x] = clampByte(acc >> precision);
      }
    }
    current = next;
    currentWidth = outWidth;
  }
  if (outHeight !== height) {
    const { starts, sizes, weights, taps, precision } = int16Weights(height, outHeight);
    const next = new Uint8Array(currentWidth * outHeight);
    for (let y = 0; y < outHeight; y++) {
      for (let x = 0; x < currentWidth; x++) {
        let acc = 1 << (precision - 1);
        for (let k = 0; k < sizes[y]; k++) acc += current[(starts[y] + k) * currentWidth + x] * weights[y * taps + k];
        next[y * currentWidth + x] = clampByte(acc >> precision);
      }
    }
    current = next;
  }
  return current;
}

function clampByte(value) {
  return value < 0 ? 0 : value > 255 ? 255 : value;
}

// torch's HelperInterpLinear::_compute_index_ranges_weights (antialias) and _compute_index_ranges_int16_weights.
function int16Weights(inSize, outSize) {
  const scale = inSize / outSize;
  const support = scale >= 1 ? scale : 1;
  const taps = Math.ceil(support) * 2 + 1;
  const invscale = scale >= 1 ? 1 / scale : 1;
  const starts = new Int32Array(outSize);
  const sizes = new Int32Array(outSize);
  const real = new Float64Array(outSize * taps);
  let maxWeight = 0;
  for (let i = 0; i < outSize; i++) {
    const center = scale * (i + 0.5);
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    const xsize = Math.min(Math.max(Math.min(Math.trunc(center + support + 0.5), inSize) - xmin, 0), taps);
    let total = 0;
    for (let j = 0; j < xsize; j++) {
      const w = triangle((j + xmin - center + 0.5) * invscale);
      real[i * taps + j] = w;
      total += w;
    }
    if (total !== 0) {
      for (let j = 0; j < xsize; j++) {
        real[i * taps + j] /= total;
        maxWeight = Math.max(maxWeight, real[i * taps + j]);
      }
    }
    starts[i] = xmin;
    sizes[i] = xsize;
  }
  let precision = 0;
  for (; precision < 22; precision++) {
    if (Math.trunc(0.5 + maxWeight * 2 ** (precision + 1)) >= 1 << 15) break;
  }
  const weights = new Int32Array(outSize * taps);
  for (let i = 0; i < real.length; i++) {
    const v = real[i] * 2 ** precision;
    weights[i] = v < 0 ? Math.trunc(-0.5 + v) : Math.trunc(0.5 + v);
  }
  return { starts, sizes, weights, taps, precision };
}

function triangle(x) {
  const a = Math.abs(x);
  return a < 1 ? 1 - a : 0;
}
