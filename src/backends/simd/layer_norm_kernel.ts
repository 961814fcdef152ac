import type { KernelConfig, TensorInfo } from '@tensorflow/tfjs-core';
import { runSimd, type SimdBuffer, simdAvailable, type WasmHeapBackend } from './module';

import { LAYER_NORM_KERNEL } from './names';

export { LAYER_NORM_KERNEL };

/**
 * LayerNorm's forward pass over the last axis as one kernel of vit-ts' WebAssembly SIMD module
 * (src/backends/simd/layer_norm.c), for tfjs' wasm backend, where it otherwise runs as seven
 * kernels. Outputs what vit-ts' LayerNorm gradient reads (src/ops/layer_norm.ts).
 */

/** Attributes of {@link LAYER_NORM_KERNEL}. */
export interface LayerNormAttrs {
  epsilon: number;
  /** Whether to output xhat and rstd (for a gradient); otherwise only y. */
  stats: boolean;
}

/** The kernel for the wasm backend named `backendName`, or null when the module cannot run. */
export function layerNormKernel(backendName: string): KernelConfig | null {
  if (!simdAvailable()) return null;
  return {
    kernelName: LAYER_NORM_KERNEL,
    backendName,
    kernelFunc: ({ inputs, backend, attrs }) => {
      const x = inputs['x'] as TensorInfo;
      const [rows, d] = x.shape as [number, number];
      const { epsilon, stats } = attrs as unknown as LayerNormAttrs;
      const buffers: SimdBuffer[] = stats
        ? [{ shape: [rows, d] }, { shape: [rows, d] }, { shape: [rows, 1] }]
        : [{ shape: [rows, d] }, { scratch: 0 }, { scratch: 0 }];
      const out = runSimd(
        backend as unknown as WasmHeapBackend,
        [x, inputs['gamma'] as TensorInfo, inputs['beta'] as TensorInfo],
        buffers,
        (fns, [px, pg, pb, py, ph, pr]) =>
          fns.vit_layer_norm(
            px as number,
            pg as number,
            pb as number,
            py as number,
            ph as number,
            pr as number,
            rows,
            d,
            epsilon,
          ),
      );
      // One output as a tensor, not a one-element array (runKernel would return the array).
      return out.length === 1 ? (out[0] as TensorInfo) : out;
    },
  };
}
