import type { KernelConfig, TensorInfo } from '@tensorflow/tfjs-core';
import { runSimd, type SimdBuffer, simdAvailable, type WasmHeapBackend } from './module';

import { FUSED_ATTENTION_KERNEL } from './names';

export { FUSED_ATTENTION_KERNEL };

/**
 * vit-ts' fused attention kernel for tfjs' wasm backend: `softmax(q k^T * scale) v` for every
 * image and head in one call of vit-ts' WebAssembly SIMD module (src/backends/simd/attention.c).
 * tfjs' wasm backend has no fused attention; as a chain of its kernels (two depthwise products,
 * a softmax, transposes) the attention of a batch-1 ViT-Ti/16 ran at 5-10 GFLOP/s.
 */

/** Attributes of {@link FUSED_ATTENTION_KERNEL}. */
export interface FusedAttentionAttrs {
  batch: number;
  tokens: number;
  heads: number;
  scale: number;
  /** Whether to output the probabilities (for a gradient); otherwise only the context. */
  probs: boolean;
}

/** The kernel for the wasm backend named `backendName`, or null when the module cannot run. */
export function fusedAttentionKernel(backendName: string): KernelConfig | null {
  if (!simdAvailable()) return null;
  return {
    kernelName: FUSED_ATTENTION_KERNEL,
    backendName,
    kernelFunc: ({ inputs, backend, attrs }) => {
      const { batch, tokens: n, heads, scale, probs } = attrs as unknown as FusedAttentionAttrs;
      const q = inputs['q'] as TensorInfo;
      const [rows, dim] = q.shape as [number, number];
      const hd = dim / heads;
      const np = (n + 7) & ~7;
      const buffers: SimdBuffer[] = [
        { shape: [rows, dim] },
        probs ? { shape: [n, batch * heads, n] } : { scratch: 0 },
        { scratch: hd * np + n * np }, // keys transposed, one head's scores
      ];
      const out = runSimd(
        backend as unknown as WasmHeapBackend,
        [q, inputs['k'] as TensorInfo, inputs['v'] as TensorInfo],
        buffers,
        (fns, [pq, pk, pv, pctx, pprobs, pscratch]) =>
          fns.vit_attention(
            pq as number,
            pk as number,
            pv as number,
            pctx as number,
            pprobs as number,
            pscratch as number,
            batch,
            n,
            heads,
            hd,
            scale,
          ),
      );
      // One output as a tensor, not a one-element array (runKernel would return the array).
      return out.length === 1 ? (out[0] as TensorInfo) : out;
    },
  };
}
