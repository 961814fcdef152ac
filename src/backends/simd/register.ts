import type { KernelConfig } from '@tensorflow/tfjs-core';
import * as tf from '@tensorflow/tfjs-core';
import { markSimdRegistered, wasmKernelsInstalled } from '../wasm_kernels';
import { fusedAttentionKernel } from './attention_kernel';
import { geluKernels } from './gelu_kernel';
import { layerNormKernel } from './layer_norm_kernel';

/**
 * Whether vit-ts' SIMD kernel `name` can be used on `backendName` now: vit-ts' wasm replacements
 * are installed there (the fast product form), this engine compiles the module, and the kernel is
 * registered. The kernels register on first use, from the ops that use them (attention core,
 * GELU, LayerNorm): code that uses none of them (a bundle of PatchEmbed alone) never references
 * the compiled module. A kernel unregistered afterwards stays off until `restoreWasmKernels` and
 * a new install; `restoreWasmKernels` unregisters them all.
 */
export function simdKernelReady(name: string, backendName: string = tf.getBackend()): boolean {
  if (!wasmKernelsInstalled(backendName)) return false;
  if (tf.getKernel(name, backendName) != null) return true;
  if (markSimdRegistered(backendName)) return false;
  const kernels: Array<KernelConfig | null> = [
    fusedAttentionKernel(backendName),
    ...geluKernels(backendName),
    layerNormKernel(backendName),
  ];
  if (kernels.some((k) => k == null)) return false;
  for (const k of kernels as KernelConfig[]) {
    if (tf.getKernel(k.kernelName, backendName) == null) tf.registerKernel(k);
  }
  return true;
}
