import type { KernelBackend, KernelConfig, TensorInfo } from '@tensorflow/tfjs-core';
import * as tf from '@tensorflow/tfjs-core';

/**
 * A zero-copy `Identity` kernel for tfjs' wasm backend.
 *
 * tfjs saves every tensor a gradient needs through the engine's `clone`, which runs the
 * `Identity` kernel. On cpu, webgl and webgpu that kernel shares the input's storage (a reference
 * count); on wasm (4.22) it copies the whole tensor into new heap memory. A ViT training step
 * saves a few hundred activations, so on wasm it spent about 5% of the step copying (389 copies,
 * 38 ms of a 760 ms Fashion-MNIST ViT step). Tensors are immutable on every backend (kernels
 * write only into outputs they allocate; a variable's `assign` swaps its storage), so sharing is
 * exactly what the other backends do. The wasm backend keeps a reference count per buffer
 * (`incRef` / `disposeData`), which makes sharing safe.
 */

/** Backends whose Identity kernel vit-ts has replaced, with the kernel it replaced. */
const replaced = new Map<string, KernelConfig>();

/** Backends on which the copying Identity is replaced. */
const COPYING_IDENTITY_BACKENDS = new Set(['wasm']);

/**
 * Replaces the copying `Identity` kernel of `backendName` (only `'wasm'` copies) with one that
 * shares the input's storage. Idempotent; returns whether the shared kernel is installed. Called
 * by vit-ts' fast product forms (see `productForm`), so applications need not call it.
 */
export function shareIdentityStorage(backendName: string = tf.getBackend()): boolean {
  if (replaced.has(backendName)) return true;
  if (!COPYING_IDENTITY_BACKENDS.has(backendName)) return false;
  const original = tf.getKernel('Identity', backendName);
  if (original == null) return false;
  tf.unregisterKernel('Identity', backendName);
  tf.registerKernel({
    kernelName: 'Identity',
    backendName,
    kernelFunc: (args) => {
      const x = args.inputs['x'] as TensorInfo;
      // Strings live outside the heap; leave them to the backend's own kernel.
      if (x.dtype === 'string') return original.kernelFunc(args);
      (args.backend as KernelBackend).incRef(x.dataId);
      return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
    },
  });
  replaced.set(backendName, original);
  return true;
}

/** Puts back the backend's own `Identity` kernel (for benchmarks comparing both). */
export function restoreIdentityKernel(backendName: string = tf.getBackend()): void {
  const original = replaced.get(backendName);
  if (original == null) return;
  tf.unregisterKernel('Identity', backendName);
  tf.registerKernel(original);
  replaced.delete(backendName);
}
