import type { KernelConfig, TensorInfo } from '@tensorflow/tfjs-core';
import { arena, copyIn, copyOut, simdModule, type WasmHeapBackend } from './module';

/**
 * Exact GELU and its gradient as single kernels of vit-ts' WebAssembly SIMD module
 * (src/backends/simd/gelu.c), for tfjs' wasm backend, where GELU otherwise runs as `Erf` plus
 * three elementwise kernels.
 */

/** Name of the GELU kernel (input `x`, output `gelu(x)`, same shape). */
export const GELU_KERNEL = 'VitTsGelu';
/** Name of the GELU gradient kernel (inputs `x`, `dy`; output `dy * gelu'(x)`). */
export const GELU_GRAD_KERNEL = 'VitTsGeluGrad';

/** The two kernels for the wasm backend named `backendName`, or [] when the module cannot run. */
export function geluKernels(backendName: string): KernelConfig[] {
  if (simdModule() == null) return [];
  return [
    {
      kernelName: GELU_KERNEL,
      backendName,
      kernelFunc: ({ inputs, backend }) => {
        const m = simdModule() as NonNullable<ReturnType<typeof simdModule>>;
        const heap = backend as unknown as WasmHeapBackend;
        const x = inputs['x'] as TensorInfo;
        const count = x.shape.reduce((a, b) => a * b, 1);
        const { at, mem } = arena(m, [count, count]);
        const [ax, ay] = at as [number, number];
        copyIn(heap, x, mem, ax);
        m.fns.vit_gelu(ax * 4, ay * 4, count);
        return copyOut(heap, m, [{ shape: [...x.shape], at: ay }])[0] as TensorInfo;
      },
    },
    {
      kernelName: GELU_GRAD_KERNEL,
      backendName,
      kernelFunc: ({ inputs, backend }) => {
        const m = simdModule() as NonNullable<ReturnType<typeof simdModule>>;
        const heap = backend as unknown as WasmHeapBackend;
        const x = inputs['x'] as TensorInfo;
        const count = x.shape.reduce((a, b) => a * b, 1);
        const { at, mem } = arena(m, [count, count, count]);
        const [ax, ady, adx] = at as [number, number, number];
        copyIn(heap, x, mem, ax);
        copyIn(heap, inputs['dy'] as TensorInfo, mem, ady);
        m.fns.vit_gelu_grad(ax * 4, ady * 4, adx * 4, count);
        return copyOut(heap, m, [{ shape: [...x.shape], at: adx }])[0] as TensorInfo;
      },
    },
  ];
}
