import type { KernelConfig, TensorInfo } from '@tensorflow/tfjs-core';
import { arena, copyIn, copyOut, simdModule, type WasmHeapBackend } from './module';

/**
 * vit-ts' fused attention kernel for tfjs' wasm backend: `softmax(q k^T * scale) v` for every
 * image and head in one call of vit-ts' WebAssembly SIMD module (src/backends/simd/attention.c).
 * tfjs' wasm backend has no fused attention; as a chain of its kernels (two depthwise products,
 * a softmax, transposes) the attention of a batch-1 ViT-Ti/16 ran at 5-10 GFLOP/s.
 */

/**
 * Name of the kernel (inputs q, k, v `[B*N, D]`; outputs the context `[B*N, D]` and, when the
 * `probs` attribute is set, the probabilities `[N, B*H, N]`).
 */
export const FUSED_ATTENTION_KERNEL = 'VitTsFusedAttention';

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
  if (simdModule() == null) return null;
  return {
    kernelName: FUSED_ATTENTION_KERNEL,
    backendName,
    kernelFunc: ({ inputs, backend, attrs }) => {
      const m = simdModule() as NonNullable<ReturnType<typeof simdModule>>;
      const { batch, tokens: n, heads, scale, probs } = attrs as unknown as FusedAttentionAttrs;
      const heap = backend as unknown as WasmHeapBackend;
      const q = inputs['q'] as TensorInfo;
      const [rows, dim] = q.shape as [number, number];
      const hd = dim / heads;
      const np = (n + 7) & ~7;
      const act = rows * dim;
      const probCount = probs ? n * batch * heads * n : 0;
      const { at, mem } = arena(m, [act, act, act, act, probCount, hd * np + n * np]);
      const [aq, ak, av, actx, aprobs, ascratch] = at as [
        number,
        number,
        number,
        number,
        number,
        number,
      ];
      copyIn(heap, q, mem, aq);
      copyIn(heap, inputs['k'] as TensorInfo, mem, ak);
      copyIn(heap, inputs['v'] as TensorInfo, mem, av);
      m.fns.vit_attention(
        aq * 4,
        ak * 4,
        av * 4,
        actx * 4,
        probs ? aprobs * 4 : 0,
        ascratch * 4,
        batch,
        n,
        heads,
        hd,
        scale,
      );
      const outputs = [{ shape: [rows, dim], at: actx }];
      if (probs) outputs.push({ shape: [n, batch * heads, n], at: aprobs });
      const made = copyOut(heap, m, outputs);
      // One output as a tensor, not a one-element array (runKernel would return the array).
      return made.length === 1 ? (made[0] as TensorInfo) : made;
    },
  };
}
