import * as tf from '@tensorflow/tfjs-core';
import {
  FUSED_ATTENTION_KERNEL,
  type FusedAttentionAttrs,
} from '../backends/simd/attention_kernel';
import { recordingGradients } from '../backends/simd/module';
import { simdKernelReady } from '../backends/simd/register';
import { InputShapeError } from '../errors';

/**
 * Multi-head scaled dot-product attention, laid out for tfjs' wasm
 * kernels, with a hand-written gradient.
 *
 * Why a layout of its own: on wasm (tfjs 4.22) batched products are fastest as one depthwise
 * convolution (src/ops/matmul.ts), a transpose of rank <= 4 runs at about 1 ns per element but a
 * rank-5 one ~50x slower, and `Slice` / `StridedSlice` copy the whole input out of the heap per
 * part. The plain formulation (split qkv, move heads forward, batched products) therefore spent
 * about a third of a small ViT's training step in slices and transposes. Here every tensor is
 * produced directly in the layout the next depthwise convolution reads, with `C = B * H` channels:
 *
 * - q as the convolution input `[N, hd, C]`, k as its filter `[hd, C, N]`: scores `[N, C, N]`,
 *   whose last axis is the key axis, so the softmax needs no transpose;
 * - probabilities as the input `[N, N, C]`, v as the filter `[N, C, hd]`: output `[N, C, hd]`,
 *   which is `[N, B, H, hd]`, one rank-4 transpose away from the merged `[B, N, D]`;
 * - q, k and v come from three products with the matching column blocks of the fused qkv kernel
 *   (slicing the weights, not the activations: on wasm slicing or gathering a part out of the
 *   fused activations cost more than the attention products themselves).
 *
 * The gradient is written out with the same four products (dP, dV, dQ, dK each one depthwise
 * convolution). Numbers equal the plain formulation
 * within float32 rounding (test/ops/attention_core.test.ts, forward and gradient, cpu and wasm).
 */

/** One call of vit-ts' fused wasm kernel: the context, then the probabilities when asked. */
function runFused(
  q: tf.Tensor,
  k: tf.Tensor,
  v: tf.Tensor,
  attrs: FusedAttentionAttrs,
): tf.Tensor[] {
  const out = tf
    .engine()
    .runKernel(FUSED_ATTENTION_KERNEL, { q, k, v }, attrs as unknown as tf.NamedAttrMap);
  return Array.isArray(out) ? out : [out];
}

/** `[B*N, D]` (one of q, k, v) as `[B, N, H, hd]` transposed by `perm` (rank 4). */
function headLayout(
  t: tf.Tensor,
  dims: [number, number, number, number],
  perm: number[],
): tf.Tensor4D {
  return tf.transpose(tf.reshape(t, dims), perm) as tf.Tensor4D;
}

/** The per-channel products of the depthwise convolution: input `[M, K, C]`, filter `[K, C, N]`. */
function channelProducts(
  input: tf.Tensor,
  filter: tf.Tensor,
  m: number,
  k: number,
  c: number,
  n: number,
): tf.Tensor4D {
  return tf.depthwiseConv2d(
    tf.reshape(input, [1, m, k, c]) as tf.Tensor4D,
    tf.reshape(filter, [1, k, c, n]) as tf.Tensor4D,
    1,
    'valid',
  );
}

/**
 * Attention of per-token queries, keys and values `[B * N, D]` (heads side by side on the last
 * axis, timm's order) over `batch` images of `tokens` tokens and `heads` heads: returns the
 * merged context `[B * N, D]` (before the output projection), `softmax(q k^T * scale) v` per
 * head. Differentiable with respect to q, k and v. Works on every backend; vit-ts uses it where
 * the product form is `'fast'` (wasm).
 */
export function multiHeadAttentionCore(
  q: tf.Tensor2D,
  k: tf.Tensor2D,
  v: tf.Tensor2D,
  batch: number,
  tokens: number,
  heads: number,
  scale: number,
): tf.Tensor2D {
  const [rows, dim] = q.shape;
  const hd = dim / heads;
  const same = (t: tf.Tensor) => t.rank === 2 && t.shape[0] === rows && t.shape[1] === dim;
  if (rows !== batch * tokens || !Number.isInteger(hd) || hd < 1 || !same(k) || !same(v)) {
    throw new InputShapeError(
      `multiHeadAttentionCore: q, k and v must each be [batch * tokens, heads * headDim] = [${batch * tokens}, ${heads} * headDim], got q [${q.shape.join(', ')}], k [${k.shape.join(', ')}], v [${v.shape.join(', ')}]`,
    );
  }
  const b = batch;
  const n = tokens;
  const h = heads;
  const c = b * h;
  const bnhd: [number, number, number, number] = [b, n, h, hd];
  // [N, B, H, hd] <-> [B, N, H, hd] (the same permutation both ways; nothing to do for B = 1).
  const swapBN = (t: tf.Tensor, first: number, second: number): tf.Tensor =>
    b === 1 ? t : tf.transpose(tf.reshape(t, [first, second, h, hd]), [1, 0, 2, 3]);

  // The gradient from the saved scaled queries, keys, values and probabilities `[N, C, N]`.
  const gradFunc = (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]): tf.Tensor[] =>
    tf.tidy(() => {
      const [sq, sk, sv, p] = saved;
      const dOut = dy as tf.Tensor;
      const dOutNch = swapBN(dOut, b, n); // [N, C, hd]
      // dP[i,c,j] = sum_e dO[i,c,e] V[j,c,e]
      const dProbs = tf.reshape(
        channelProducts(
          headLayout(dOut, bnhd, [1, 3, 0, 2]), // [N_q, hd, C]
          headLayout(sv, bnhd, [3, 0, 2, 1]), // [hd, C, N_k]
          n,
          hd,
          c,
          n,
        ),
        [n, c, n],
      );
      // dV[j,c,e] = sum_i P[i,c,j] dO[i,c,e]
      const dv = channelProducts(tf.transpose(p, [2, 0, 1]), dOutNch, n, n, c, hd);
      // Softmax: dS = P * (dP - sum_j dP * P).
      const dScores = tf.mul(p, tf.sub(dProbs, tf.sum(tf.mul(dProbs, p), -1, true)));
      // dQ[i,c,d] = sum_j dS[i,c,j] K[j,c,d], times the scale
      const dqs = channelProducts(tf.transpose(dScores, [0, 2, 1]), swapBN(sk, b, n), n, n, c, hd);
      // dK[j,c,d] = sum_i dS[i,c,j] Qs[i,c,d]
      const dk = channelProducts(tf.transpose(dScores, [2, 0, 1]), swapBN(sq, b, n), n, n, c, hd);
      const toRows = (t: tf.Tensor) => tf.reshape(swapBN(t, n, b), [rows, dim]);
      return [toRows(tf.mul(dqs, scale)), toRows(dk), toRows(dv)];
    });

  const op = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const [qi, ki, vi] = args.slice(0, 3) as tf.Tensor2D[];
    const save = args[3] as tf.GradSaveFunc;
    const qs = tf.mul(qi, scale);
    if (fused) {
      // One call of vit-ts' WebAssembly SIMD kernel: the same context, and the probabilities in
      // the layout the gradient below reads.
      const [ctx, probs] = runFused(qi, ki, vi, {
        batch: b,
        tokens: n,
        heads: h,
        scale,
        probs: true,
      });
      save([qs, ki, vi, probs as tf.Tensor]);
      return { value: ctx as tf.Tensor2D, gradFunc };
    }
    const scores = channelProducts(
      headLayout(qs, bnhd, [1, 3, 0, 2]), // [N, hd, B, H]
      headLayout(ki, bnhd, [3, 0, 2, 1]), // [hd, B, H, N]
      n,
      hd,
      c,
      n,
    );
    const probs = tf.softmax(tf.reshape(scores, [n, c, n])); // [N_q, C, N_k]
    const ctx = channelProducts(
      tf.transpose(probs, [0, 2, 1]), // [N_q, N_k, C]
      swapBN(vi, b, n), // [N, B, H, hd]
      n,
      n,
      c,
      hd,
    ); // [N_q, C, hd] = [N, B, H, hd]
    save([qs, ki, vi, probs]);
    return {
      value: tf.reshape(swapBN(ctx, n, b), [rows, dim]) as tf.Tensor2D,
      gradFunc,
    };
  });
  const fused = simdKernelReady(FUSED_ATTENTION_KERNEL);
  if (fused && !recordingGradients()) {
    // Inference: the kernel alone, without the probabilities a gradient would need.
    return runFused(q, k, v, {
      batch: b,
      tokens: n,
      heads: h,
      scale,
      probs: false,
    })[0] as tf.Tensor2D;
  }
  return tf.tidy(() => op(q, k, v) as tf.Tensor2D);
}

/** Whether {@link fusedAttentionWithProbs} can run: the kernel is registered, no gradient tape. */
export function fusedAttentionMapsAvailable(): boolean {
  return !recordingGradients() && simdKernelReady(FUSED_ATTENTION_KERNEL);
}

/**
 * The context `[B * N, D]` and the probabilities `[B, H, N, N]` from one call of vit-ts' fused
 * wasm kernel (the same numbers as {@link multiHeadAttentionCore}, bit for bit, so attention
 * maps and outputs agree with a forward pass that does not keep them). Only where
 * {@link fusedAttentionMapsAvailable}; `null` otherwise (callers then use ops).
 */
export function fusedAttentionWithProbs(
  q: tf.Tensor2D,
  k: tf.Tensor2D,
  v: tf.Tensor2D,
  batch: number,
  tokens: number,
  heads: number,
  scale: number,
): [tf.Tensor2D, tf.Tensor4D] | null {
  if (!fusedAttentionMapsAvailable()) return null;
  const [ctx, probs] = runFused(q, k, v, { batch, tokens, heads, scale, probs: true }) as [
    tf.Tensor2D,
    tf.Tensor,
  ];
  // [N_q, B, H, N_k] -> [B, H, N_q, N_k]
  const maps = tf.tidy(
    () =>
      tf.transpose(tf.reshape(probs, [tokens, batch, heads, tokens]), [1, 2, 0, 3]) as tf.Tensor4D,
  );
  probs.dispose();
  return [ctx, maps];
}
