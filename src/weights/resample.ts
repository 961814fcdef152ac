/**
 * Image-style resizing with PyTorch's `F.interpolate` semantics (bicubic and bilinear,
 * `align_corners=False`, with or without `antialias`), and timm-style resampling of ViT position
 * embeddings to a new patch grid. tfjs has no bicubic resize, so the resize is written as two
 * separable matrix products: an [outSize, inSize] weight matrix per axis, built in plain JS.
 */
import * as tf from '@tensorflow/tfjs-core';
import {
  ConfigError,
  formatShape,
  InputShapeError,
  requireNonNegativeInt,
  requirePositiveInt,
} from '../errors';

/** Interpolation kernel of {@link resize2d}. */
export type ResizeMethod = 'bicubic' | 'bilinear';

/** Options of {@link resizeWeightMatrix} and {@link resize2d}. */
export interface ResizeOptions {
  method: ResizeMethod;
  /**
   * PyTorch's `antialias=True`: the kernel is stretched by the downscale factor so every input
   * pixel contributes, and truncated at the borders (weights renormalized) instead of clamping
   * indices. When upsampling it differs from the plain path for bicubic (PyTorch's antialiased
   * bicubic kernel uses a = -0.5, the plain one a = -0.75) and equals it for bilinear.
   */
  antialias?: boolean;
  /** Only `false` (PyTorch's default for these modes, used by timm) is supported. */
  alignCorners?: false;
}

/** Cubic convolution kernel (Keys) with parameter a, for |x| < 1 and 1 <= |x| < 2. */
function cubicNear(x: number, a: number): number {
  return ((a + 2) * x - (a + 3)) * x * x + 1;
}
function cubicFar(x: number, a: number): number {
  return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a;
}

/** PyTorch's non-antialiased bicubic (a = -0.75, indices clamped at the borders). */
function fillBicubic(m: Float64Array, inSize: number, outSize: number): void {
  const scale = inSize / outSize;
  const a = -0.75;
  for (let i = 0; i < outSize; i++) {
    const src = (i + 0.5) * scale - 0.5; // not clamped for cubic, as in PyTorch
    const left = Math.floor(src);
    const t = src - left;
    const weights = [cubicFar(t + 1, a), cubicNear(t, a), cubicNear(1 - t, a), cubicFar(2 - t, a)];
    for (let k = 0; k < 4; k++) {
      const j = Math.min(Math.max(left - 1 + k, 0), inSize - 1);
      m[i * inSize + j] += weights[k];
    }
  }
}

/** PyTorch's non-antialiased bilinear (source index clamped at 0, right neighbour at the edge). */
function fillBilinear(m: Float64Array, inSize: number, outSize: number): void {
  const scale = inSize / outSize;
  for (let i = 0; i < outSize; i++) {
    const src = Math.max((i + 0.5) * scale - 0.5, 0);
    const j0 = Math.floor(src);
    const j1 = j0 < inSize - 1 ? j0 + 1 : j0;
    const lambda = src - j0;
    m[i * inSize + j0] += 1 - lambda;
    m[i * inSize + j1] += lambda;
  }
}

/**
 * PyTorch's antialiased path (`_upsample_{bilinear,bicubic}2d_aa`, after PIL): a filter of
 * support interpSize/2 stretched by the scale when downsampling, evaluated on the input pixels
 * inside the support, weights normalized to sum 1.
 */
function fillAntialiased(
  m: Float64Array,
  inSize: number,
  outSize: number,
  method: ResizeMethod,
): void {
  const scale = inSize / outSize;
  const interpSize = method === 'bicubic' ? 4 : 2;
  const support = scale >= 1 ? (interpSize / 2) * scale : interpSize / 2;
  const invScale = scale >= 1 ? 1 / scale : 1;
  const filter = (x: number): number => {
    const ax = Math.abs(x);
    if (method === 'bilinear') return Math.max(0, 1 - ax);
    if (ax < 1) return cubicNear(ax, -0.5);
    return ax < 2 ? cubicFar(ax, -0.5) : 0;
  };
  for (let i = 0; i < outSize; i++) {
    const center = scale * (i + 0.5);
    // Math.trunc: PyTorch casts to int64 (truncation toward zero) before clamping.
    const lo = Math.max(Math.trunc(center - support + 0.5), 0);
    const hi = Math.min(Math.trunc(center + support + 0.5), inSize);
    let total = 0;
    for (let j = lo; j < hi; j++) total += filter((j - center + 0.5) * invScale);
    for (let j = lo; j < hi; j++) {
      const w = filter((j - center + 0.5) * invScale);
      m[i * inSize + j] = total !== 0 ? w / total : w;
    }
  }
}

/**
 * The [outSize, inSize] matrix W (row-major) such that resizing a signal x of length inSize
 * along one axis gives W x, exactly as PyTorch's `F.interpolate(mode, align_corners=False,
 * antialias)` does along that axis. Rows sum to 1. Equal sizes give the identity.
 */
export function resizeWeightMatrix(
  inSize: number,
  outSize: number,
  options: ResizeOptions,
): Float64Array {
  requirePositiveInt('resizeWeightMatrix', 'inSize', inSize);
  requirePositiveInt('resizeWeightMatrix', 'outSize', outSize);
  const method = checkMethod('resizeWeightMatrix', options?.method);
  const m = new Float64Array(outSize * inSize);
  if (options.antialias === true) fillAntialiased(m, inSize, outSize, method);
  else if (method === 'bicubic') fillBicubic(m, inSize, outSize);
  else fillBilinear(m, inSize, outSize);
  return m;
}

function checkMethod(owner: string, method: unknown): ResizeMethod {
  if (method !== 'bicubic' && method !== 'bilinear') {
    throw new ConfigError(
      `${owner}: method must be 'bicubic' or 'bilinear', got ${String(method)}`,
    );
  }
  return method;
}

/** Resizes axis `axis` (1 = H or 2 = W) of a rank-4 tensor by a 2-D matMul on the front axis. */
function resizeAxis(
  x: tf.Tensor4D,
  axis: 1 | 2,
  outSize: number,
  options: ResizeOptions,
): tf.Tensor4D {
  const inSize = x.shape[axis];
  if (inSize === outSize) return x;
  const perm = axis === 1 ? [1, 0, 2, 3] : [2, 1, 0, 3]; // swaps `axis` with 0; its own inverse
  const front = tf.transpose(x, perm);
  const [, d1, d2, d3] = front.shape;
  const weights = tf.tensor2d(Float32Array.from(resizeWeightMatrix(inSize, outSize, options)), [
    outSize,
    inSize,
  ]);
  // 2-D matMul: broadcasting matMul has broken gradients in tfjs.
  const resized = tf.matMul(weights, tf.reshape(front, [inSize, d1 * d2 * d3]));
  return tf.transpose(tf.reshape(resized, [outSize, d1, d2, d3]), perm);
}

/**
 * Resizes NHWC images `x` [B, H, W, C] to `size` [newH, newW] like PyTorch's
 * `F.interpolate(x_nchw, size, mode, align_corners=False, antialias)`. Separable: one matrix
 * product per axis (skipped for an axis whose size does not change, which is the identity in
 * PyTorch too). Differentiable. Returns float32; the caller owns the result.
 */
export function resize2d(
  x: tf.Tensor4D,
  size: [number, number],
  options: ResizeOptions,
): tf.Tensor4D {
  const owner = 'resize2d';
  if (!(x instanceof tf.Tensor) || x.rank !== 4) {
    throw new InputShapeError(
      `${owner}: x must be a rank-4 NHWC tensor [batch, height, width, channels], got ${x instanceof tf.Tensor ? formatShape(x.shape) : String(x)}`,
    );
  }
  if (!Array.isArray(size) || size.length !== 2) {
    throw new ConfigError(`${owner}: size must be [height, width], got ${String(size)}`);
  }
  const [outH, outW] = size;
  requirePositiveInt(owner, 'size[0] (height)', outH);
  requirePositiveInt(owner, 'size[1] (width)', outW);
  checkMethod(owner, options?.method);
  if (options.alignCorners != null && options.alignCorners !== false) {
    throw new ConfigError(
      `${owner}: only alignCorners=false is supported, got ${String(options.alignCorners)}`,
    );
  }
  if (x.shape.some((d) => d === 0)) {
    throw new InputShapeError(`${owner}: x must not be empty, got shape ${formatShape(x.shape)}`);
  }
  return tf.tidy(() => {
    const input = x.dtype === 'float32' ? x : tf.cast(x, 'float32');
    const byHeight = resizeAxis(input, 1, outH, options);
    const out = resizeAxis(byHeight, 2, outW, options);
    // A clone when nothing changed, so the caller always owns a distinct tensor.
    return out === x ? tf.clone(x) : out;
  });
}

/** Options of {@link resamplePosEmbed}. */
export interface ResamplePosEmbedOptions {
  /** Target patch grid [rows, cols]. */
  newGrid: [number, number];
  /** Source patch grid; inferred as square from the token count when omitted. */
  oldGrid?: [number, number];
  /** Leading class / register token rows kept as they are (default 1, timm's default). */
  numPrefixTokens?: number;
  /** Default 'bicubic' (timm's default). */
  method?: ResizeMethod;
  /** Default true (timm's `resample_abs_pos_embed` default). */
  antialias?: boolean;
}

function checkGrid(owner: string, name: string, grid: unknown): [number, number] {
  if (!Array.isArray(grid) || grid.length !== 2) {
    throw new ConfigError(`${owner}: ${name} must be [rows, cols], got ${JSON.stringify(grid)}`);
  }
  requirePositiveInt(owner, `${name}[0]`, grid[0]);
  requirePositiveInt(owner, `${name}[1]`, grid[1]);
  return [grid[0], grid[1]];
}

/**
 * Resamples a ViT position embedding [B, P + gh*gw, D] to a new patch grid, giving
 * [B, P + nh*nw, D], as timm's `resample_abs_pos_embed`: the P prefix rows (class, register
 * tokens) are kept, the grid rows are reshaped to (gh, gw) in row-major order, resized with
 * {@link resize2d} (bicubic, antialiased by default) and flattened back. Non-square grids work in
 * both directions. The caller owns the result.
 */
export function resamplePosEmbed(posEmbed: tf.Tensor, options: ResamplePosEmbedOptions): tf.Tensor {
  const owner = 'resamplePosEmbed';
  if (!(posEmbed instanceof tf.Tensor) || posEmbed.rank !== 3) {
    throw new InputShapeError(
      `${owner}: posEmbed must be a rank-3 tensor [1, prefix + rows*cols, dim], got ${posEmbed instanceof tf.Tensor ? formatShape(posEmbed.shape) : String(posEmbed)}`,
    );
  }
  const [batch, tokens, dim] = posEmbed.shape as [number, number, number];
  const prefix = requireNonNegativeInt(owner, 'numPrefixTokens', options?.numPrefixTokens ?? 1);
  const newGrid = checkGrid(owner, 'newGrid', options.newGrid);
  const gridTokens = tokens - prefix;
  if (gridTokens <= 0) {
    throw new InputShapeError(
      `${owner}: posEmbed ${formatShape(posEmbed.shape)} has ${tokens} tokens, not more than numPrefixTokens=${prefix}`,
    );
  }
  let oldGrid: [number, number];
  if (options.oldGrid != null) {
    oldGrid = checkGrid(owner, 'oldGrid', options.oldGrid);
    if (oldGrid[0] * oldGrid[1] !== gridTokens) {
      throw new InputShapeError(
        `${owner}: oldGrid [${oldGrid}] has ${oldGrid[0] * oldGrid[1]} cells but posEmbed ${formatShape(posEmbed.shape)} has ${gridTokens} grid tokens after ${prefix} prefix tokens`,
      );
    }
  } else {
    const side = Math.round(Math.sqrt(gridTokens));
    if (side * side !== gridTokens) {
      throw new InputShapeError(
        `${owner}: cannot infer the old grid: posEmbed ${formatShape(posEmbed.shape)} has ${gridTokens} grid tokens after ${prefix} prefix tokens, not a square number; pass options.oldGrid`,
      );
    }
    oldGrid = [side, side];
  }
  const method = checkMethod(owner, options.method ?? 'bicubic');
  const antialias = options.antialias ?? true;
  return tf.tidy(() => {
    const grid = tf.reshape(tf.slice(posEmbed, [0, prefix, 0], [batch, gridTokens, dim]), [
      batch,
      oldGrid[0],
      oldGrid[1],
      dim,
    ]);
    const resized = tf.reshape(resize2d(grid as tf.Tensor4D, newGrid, { method, antialias }), [
      batch,
      newGrid[0] * newGrid[1],
      dim,
    ]);
    if (prefix === 0) return resized;
    return tf.concat(
      [tf.cast(tf.slice(posEmbed, [0, 0, 0], [batch, prefix, dim]), 'float32'), resized],
      1,
    );
  });
}
