import type { KernelConfig, TensorInfo } from '@tensorflow/tfjs-core';
import { arena, copyIn, copyOut, simdModule, type WasmHeapBackend } from './module';

/**
 * LayerNorm's forward pass over the last axis as one kernel of vit-ts' WebAssembly SIMD module
 * (src/backends/simd/layer_norm.c), for tfjs' wasm backend, where it otherwise runs as seven
 * kernels. Outputs what vit-ts' LayerNorm gradient reads (src/ops/layer_norm.ts).
 */

/**
 * Name of the kernel: inputs `x [rows, D]`, `gamma [D]`, `beta [D]`; outputs y `[rows, D]` and,
 * when the `stats` attribute is set, xhat `[rows, D]` and rstd `[rows, 1]`.
 */
export const LAYER_NORM_KERNEL = 'VitTsLayerNorm';

/** Attributes of {@link LAYER_NORM_KERNEL}. */
export interface LayerNormAttrs {
  epsilon: number;
  /** Whether to output xhat and rstd (for a gradient); otherwise only y. */
  stats: boolean;
}

/** The kernel for the wasm backend named `backendName`, or null when the module cannot run. */
export function layerNormKernel(backendName: string): KernelConfig | null {
  if (simdModule() == null) return null;
  return {
    kernelName: LAYER_NORM_KERNEL,
    backendName,
    kernelFunc: ({ inputs, backend, attrs }) => {
      const m = simdModule() as NonNullable<ReturnType<typeof simdModule>>;
      const heap = backend as unknown as WasmHeapBackend;
      const x = inputs['x'] as TensorInfo;
      const [rows, d] = x.shape as [number, number];
      const { epsilon, stats } = attrs as unknown as LayerNormAttrs;
      const count = rows * d;
      const { at, mem } = arena(m, [count, d, d, count, stats ? count : 0, stats ? rows : 0]);
      const [ax, ag, ab, ay, ah, ar] = at as [number, number, number, number, number, number];
      copyIn(heap, x, mem, ax);
      copyIn(heap, inputs['gamma'] as TensorInfo, mem, ag);
      copyIn(heap, inputs['beta'] as TensorInfo, mem, ab);
      m.fns.vit_layer_norm(
        ax * 4,
        ag * 4,
        ab * 4,
        ay * 4,
        stats ? ah * 4 : 0,
        stats ? ar * 4 : 0,
        rows,
        d,
        epsilon,
      );
      const outputs = [{ shape: [rows, d], at: ay }];
      if (stats) outputs.push({ shape: [rows, d], at: ah }, { shape: [rows, 1], at: ar });
      const made = copyOut(heap, m, outputs);
      // One output as a tensor, not a one-element array (runKernel would return the array).
      return made.length === 1 ? (made[0] as TensorInfo) : made;
    },
  };
}
