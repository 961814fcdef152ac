/**
 * Weight quantization in tfjs' own manifest format (the format `tensorflowjs_converter
 * --quantize_float16 / --quantize_uint8` writes): every tfjs app dequantizes such weights while
 * loading (`tf.io.decodeWeights`), so a quantized model.json loads anywhere without vit-ts.
 *
 * - `'float16'`: each float32 value stored as an IEEE half (2 bytes, round to nearest even).
 * - `'uint8'`: per tensor, an affine map `value = q * scale + min` over the tensor's range, with
 *   the range nudged so that 0 is exactly representable (as the converter does): 1 byte.
 * Only float32 weights are quantized; int32 / bool weights are stored unchanged.
 */
import type * as tf from '@tensorflow/tfjs-core';
import { ConfigError } from '../errors';
import { float32ToFloat16Bits } from '../weights/dtype';

/** Weight quantization of `saveModel`. */
export type WeightQuantization = 'float16' | 'uint8';

const BYTES: Record<string, number> = { float32: 4, int32: 4, bool: 1, complex64: 8 };

function quantizeUint8(values: Float32Array): { bytes: Uint8Array; min: number; scale: number } {
  let lo = 0;
  let hi = 0;
  for (const v of values) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  // Range that contains 0, nudged so that 0 maps to an integer level exactly.
  let scale = (hi - lo) / 255;
  let min = lo;
  if (scale === 0) {
    scale = 1;
    min = lo;
  } else {
    const zeroPoint = Math.round(-lo / scale);
    min = -zeroPoint * scale;
  }
  const bytes = new Uint8Array(values.length);
  const max = min + 255 * scale;
  for (let i = 0; i < values.length; i++) {
    const v = Math.min(Math.max(values[i] as number, min), max);
    bytes[i] = Math.round((v - min) / scale);
  }
  return { bytes, min, scale };
}

/**
 * Quantizes the float32 weights of `data` (laid out as `specs` says) and returns the new specs
 * (with tfjs' `quantization` field) and data. Pure; allocates no tensors.
 */
export function quantizeWeights(
  specs: readonly tf.io.WeightsManifestEntry[],
  data: Uint8Array,
  quantize: WeightQuantization,
): { specs: tf.io.WeightsManifestEntry[]; data: Uint8Array } {
  if (quantize !== 'float16' && quantize !== 'uint8') {
    throw new ConfigError(
      `quantizeWeights: quantize must be 'float16' or 'uint8', got ${JSON.stringify(quantize)}`,
    );
  }
  const outSpecs: tf.io.WeightsManifestEntry[] = [];
  const parts: Uint8Array[] = [];
  let offset = 0;
  for (const spec of specs) {
    const n = spec.shape.reduce((a, b) => a * b, 1);
    const width = BYTES[spec.dtype];
    if (width === undefined || spec.quantization !== undefined) {
      throw new ConfigError(
        `quantizeWeights: weight ${spec.name} has dtype ${spec.dtype}${spec.quantization ? ' and is already quantized' : ''}; only plain float32 / int32 / bool weights can be saved quantized`,
      );
    }
    const raw = data.subarray(offset, offset + n * width);
    offset += n * width;
    if (spec.dtype !== 'float32') {
      outSpecs.push({ ...spec });
      parts.push(raw);
      continue;
    }
    const values = new Float32Array(raw.slice().buffer);
    if (quantize === 'float16') {
      const halves = new Uint16Array(n);
      for (let i = 0; i < n; i++) halves[i] = float32ToFloat16Bits(values[i] as number);
      parts.push(new Uint8Array(halves.buffer));
      outSpecs.push({ ...spec, quantization: { dtype: 'float16' } });
    } else {
      const q = quantizeUint8(values);
      parts.push(q.bytes);
      outSpecs.push({ ...spec, quantization: { dtype: 'uint8', min: q.min, scale: q.scale } });
    }
  }
  const total = parts.reduce((a, p) => a + p.byteLength, 0);
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return { specs: outSpecs, data: out };
}
