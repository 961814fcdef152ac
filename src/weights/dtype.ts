/**
 * Bit-level conversions between float32 and the 16-bit float formats of PyTorch checkpoints
 * (IEEE 754 binary16 "F16" and bfloat16 "BF16"), and byte-order helpers. Pure, no tfjs.
 */

const F32 = new Float32Array(1);
const U32 = new Uint32Array(F32.buffer);

/** True when the host stores multi-byte numbers little-endian (every current browser and Node). */
export const HOST_IS_LITTLE_ENDIAN: boolean = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * Bits of the float16 nearest to `value`, rounding to nearest, ties to even (as PyTorch's
 * `tensor.to(torch.float16)`): values from 65520 up overflow to infinity, values below 2^-25
 * flush to (signed) zero, NaN becomes the quiet NaN 0x7e00 with the sign kept.
 */
export function float32ToFloat16Bits(value: number): number {
  F32[0] = value;
  const x = U32[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  const mant = x & 0x7fffff;
  if (exp === 0xff) return mant !== 0 ? sign | 0x7e00 : sign | 0x7c00;
  const e = exp - 127;
  if (e > 15) return sign | 0x7c00;
  if (e >= -14) {
    // Normal half: keep the top 10 mantissa bits, round on the 13 dropped ones. A carry out of
    // the mantissa correctly bumps the exponent (and 65520.. reaches infinity, 0x7c00).
    let half = sign | ((e + 15) << 10) | (mant >>> 13);
    const rest = mant & 0x1fff;
    if (rest > 0x1000 || (rest === 0x1000 && (half & 1) === 1)) half += 1;
    return half;
  }
  // Subnormal half (units of 2^-24), or zero. float32 subnormals are far below 2^-25.
  const shift = -e - 1; // the value is m * 2^(e-23) with m the 24-bit significand
  if (exp === 0 || shift > 24) return sign;
  const m = mant | 0x800000;
  let half = m >>> shift;
  const rest = m & ((1 << shift) - 1);
  const halfway = 1 << (shift - 1);
  if (rest > halfway || (rest === halfway && (half & 1) === 1)) half += 1;
  return sign | half;
}

/** The float32 value of float16 bits (exact: every float16 is a float32). */
export function float16BitsToFloat32(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exp = (bits >>> 10) & 0x1f;
  const mant = bits & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant !== 0 ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/**
 * Bits of the bfloat16 nearest to `value` (round to nearest, ties to even, as PyTorch's
 * `tensor.to(torch.bfloat16)`); every NaN becomes 0x7fc0, as in PyTorch.
 */
export function float32ToBfloat16Bits(value: number): number {
  F32[0] = value;
  const x = U32[0];
  if ((x & 0x7f800000) === 0x7f800000 && (x & 0x7fffff) !== 0) return 0x7fc0;
  // Plain number arithmetic: no 32-bit overflow (the largest non-NaN input is 0xff800000).
  return Math.floor((x + 0x7fff + ((x >>> 16) & 1)) / 0x10000) & 0xffff;
}

/** The float32 value of bfloat16 bits (exact). */
export function bfloat16BitsToFloat32(bits: number): number {
  U32[0] = (bits & 0xffff) << 16;
  return F32[0];
}

let float16Table: Float32Array | null = null;

/** Lookup table float16 bits -> float32 value (256 KB, built once on first use). */
function float16ToFloat32Table(): Float32Array {
  if (float16Table == null) {
    float16Table = new Float32Array(65536);
    for (let b = 0; b < 65536; b++) float16Table[b] = float16BitsToFloat32(b);
  }
  return float16Table;
}

/** Decodes an array of float16 bits to float32 values. */
export function float16ArrayToFloat32(bits: Uint16Array): Float32Array {
  const table = float16ToFloat32Table();
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = table[bits[i]];
  return out;
}

/** Decodes an array of bfloat16 bits to float32 values. */
export function bfloat16ArrayToFloat32(bits: Uint16Array): Float32Array {
  const out = new Float32Array(bits.length);
  const outBits = new Uint32Array(out.buffer);
  for (let i = 0; i < bits.length; i++) outBits[i] = bits[i] << 16;
  return out;
}

/** Encodes float32 values as float16 bits (round to nearest even). */
export function float32ArrayToFloat16(values: ArrayLike<number>): Uint16Array {
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = float32ToFloat16Bits(values[i]);
  return out;
}

/** Encodes float32 values as bfloat16 bits (round to nearest even). */
export function float32ArrayToBfloat16(values: ArrayLike<number>): Uint16Array {
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = float32ToBfloat16Bits(values[i]);
  return out;
}

/**
 * Reverses the byte order of every `elementBytes`-wide element of `bytes`, in place. Used only
 * on big-endian hosts, since safetensors data is little-endian.
 */
export function swapBytesInPlace(bytes: Uint8Array, elementBytes: number): void {
  if (elementBytes === 1) return;
  for (let i = 0; i + elementBytes <= bytes.length; i += elementBytes) {
    for (let a = i, b = i + elementBytes - 1; a < b; a++, b--) {
      const t = bytes[a];
      bytes[a] = bytes[b];
      bytes[b] = t;
    }
  }
}
