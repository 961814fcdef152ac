import type { KernelConfig, TensorInfo } from '@tensorflow/tfjs-core';
import { runSimd, type SimdExports, simdAvailable, type WasmHeapBackend } from './module';

import { GELU_GRAD_KERNEL, GELU_KERNEL } from './names';

export { GELU_GRAD_KERNEL, GELU_KERNEL };

/**
 * Exact GELU and its gradient as single kernels of vit-ts' WebAssembly SIMD module
 * (src/backends/simd/gelu.c), for tfjs' wasm backend, where GELU otherwise runs as `Erf` plus
 * three elementwise kernels.
 */

/**
 * An elementwise kernel over `x` (and, for the gradient, `dy` of the same shape): one output of
 * x's shape, `run(fns, pointers, count)` with the inputs' then the output's pointers.
 */
function elementwise(
  kernelName: string,
  backendName: string,
  inputNames: string[],
  run: (fns: SimdExports, ptrs: number[], count: number) => void,
): KernelConfig {
  return {
    kernelName,
    backendName,
    kernelFunc: ({ inputs, backend }) => {
      const x = inputs['x'] as TensorInfo;
      const count = x.shape.reduce((a, b) => a * b, 1);
      return runSimd(
        backend as unknown as WasmHeapBackend,
        inputNames.map((n) => inputs[n] as TensorInfo),
        [{ shape: [...x.shape] }],
        (fns, ptrs) => run(fns, ptrs, count),
      )[0] as TensorInfo;
    },
  };
}

/** The two kernels for the wasm backend named `backendName`, or [] when the module cannot run. */
export function geluKernels(backendName: string): KernelConfig[] {
  if (!simdAvailable()) return [];
  return [
    elementwise(GELU_KERNEL, backendName, ['x'], (fns, [px, py], n) =>
      fns.vit_gelu(px as number, py as number, n),
    ),
    elementwise(GELU_GRAD_KERNEL, backendName, ['x', 'dy'], (fns, [px, pdy, pdx], n) =>
      fns.vit_gelu_grad(px as number, pdy as number, pdx as number, n),
    ),
  ];
}
