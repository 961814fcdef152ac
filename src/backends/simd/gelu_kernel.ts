import type { KernelConfig, TensorInfo } from '@tensorflow/tfjs-core';
import { runSimd, simdAvailable, type WasmHeapBackend } from './module';

import { GELU_GRAD_KERNEL, GELU_KERNEL } from './names';

export { GELU_GRAD_KERNEL, GELU_KERNEL };

/**
 * Exact GELU and its gradient as single kernels of vit-ts' WebAssembly SIMD module
 * (src/backends/simd/gelu.c), for tfjs' wasm backend, where GELU otherwise runs as `Erf` plus
 * three elementwise kernels.
 */

const count = (t: TensorInfo) => t.shape.reduce((a, b) => a * b, 1);

/** The two kernels for the wasm backend named `backendName`, or [] when the module cannot run. */
export function geluKernels(backendName: string): KernelConfig[] {
  if (!simdAvailable()) return [];
  return [
    {
      kernelName: GELU_KERNEL,
      backendName,
      kernelFunc: ({ inputs, backend }) => {
        const x = inputs['x'] as TensorInfo;
        return runSimd(
          backend as unknown as WasmHeapBackend,
          [x],
          [{ shape: [...x.shape] }],
          (fns, [px, py]) => fns.vit_gelu(px as number, py as number, count(x)),
        )[0] as TensorInfo;
      },
    },
    {
      kernelName: GELU_GRAD_KERNEL,
      backendName,
      kernelFunc: ({ inputs, backend }) => {
        const x = inputs['x'] as TensorInfo;
        return runSimd(
          backend as unknown as WasmHeapBackend,
          [x, inputs['dy'] as TensorInfo],
          [{ shape: [...x.shape] }],
          (fns, [px, pdy, pdx]) =>
            fns.vit_gelu_grad(px as number, pdy as number, pdx as number, count(x)),
        )[0] as TensorInfo;
      },
    },
  ];
}
