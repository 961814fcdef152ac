/**
 * Independent reference computations in plain JavaScript (nested loops over Float64), used to
 * check the layers' tfjs implementations. Deliberately naive: no tfjs ops at all.
 */

/** erf with |error| < 1.2e-7 (Numerical Recipes' erfc Chebyshev approximation). */
export function erf(x: number): number {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const r =
    t *
    Math.exp(
      -z * z -
        1.26551223 +
        t *
          (1.00002368 +
            t *
              (0.37409196 +
                t *
                  (0.09678418 +
                    t *
                      (-0.18628806 +
                        t *
                          (0.27886807 +
                            t *
                              (-1.13520398 +
                                t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
    );
  return x >= 0 ? 1 - r : r - 1;
}

export const geluRef = (x: number) => 0.5 * x * (1 + erf(x / Math.SQRT2));

/** y[i, o] = sum_k x[i, k] * w[k, o] + b[o], row-major flat arrays. */
export function matmulRef(
  x: ArrayLike<number>,
  rows: number,
  inDim: number,
  w: ArrayLike<number>,
  outDim: number,
  b?: ArrayLike<number>,
): Float64Array {
  const y = new Float64Array(rows * outDim);
  for (let i = 0; i < rows; i++) {
    for (let o = 0; o < outDim; o++) {
      let s = b ? b[o] : 0;
      for (let k = 0; k < inDim; k++) s += x[i * inDim + k] * w[k * outDim + o];
      y[i * outDim + o] = s;
    }
  }
  return y;
}

/** LayerNorm over the last axis of a [rows, dim] array. */
export function layerNormRef(
  x: ArrayLike<number>,
  rows: number,
  dim: number,
  g: ArrayLike<number>,
  b: ArrayLike<number>,
  eps: number,
): Float64Array {
  const y = new Float64Array(rows * dim);
  for (let i = 0; i < rows; i++) {
    let mean = 0;
    for (let k = 0; k < dim; k++) mean += x[i * dim + k];
    mean /= dim;
    let v = 0;
    for (let k = 0; k < dim; k++) v += (x[i * dim + k] - mean) ** 2;
    v /= dim;
    for (let k = 0; k < dim; k++)
      y[i * dim + k] = ((x[i * dim + k] - mean) / Math.sqrt(v + eps)) * g[k] + b[k];
  }
  return y;
}

/**
 * timm attention for one sample: x [n, d], fused qkv [d, 3d] + bias, proj [d, d] + bias.
 * Returns the output [n, d] and the probabilities [h, n, n].
 */
export function attentionRef(
  x: ArrayLike<number>,
  n: number,
  d: number,
  h: number,
  wqkv: ArrayLike<number>,
  bqkv: ArrayLike<number>,
  wproj: ArrayLike<number>,
  bproj: ArrayLike<number>,
): { out: Float64Array; probs: Float64Array } {
  const hd = d / h;
  const qkv = matmulRef(x, n, d, wqkv, 3 * d, bqkv);
  const probs = new Float64Array(h * n * n);
  const ctx = new Float64Array(n * d);
  const scale = 1 / Math.sqrt(hd);
  for (let head = 0; head < h; head++) {
    for (let i = 0; i < n; i++) {
      const row = new Float64Array(n);
      let max = -Infinity;
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let c = 0; c < hd; c++)
          s += qkv[i * 3 * d + head * hd + c] * qkv[j * 3 * d + d + head * hd + c];
        row[j] = s * scale;
        max = Math.max(max, row[j]);
      }
      let sum = 0;
      for (let j = 0; j < n; j++) {
        row[j] = Math.exp(row[j] - max);
        sum += row[j];
      }
      for (let j = 0; j < n; j++) probs[head * n * n + i * n + j] = row[j] / sum;
      for (let c = 0; c < hd; c++) {
        let s = 0;
        for (let j = 0; j < n; j++)
          s += probs[head * n * n + i * n + j] * qkv[j * 3 * d + 2 * d + head * hd + c];
        ctx[i * d + head * hd + c] = s;
      }
    }
  }
  return { out: matmulRef(ctx, n, d, wproj, d, bproj), probs };
}

/** Max |a - b| over two arrays of equal length. */
export function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} != ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}
