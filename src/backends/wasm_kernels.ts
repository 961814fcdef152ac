import type { DataType, KernelBackend, KernelConfig, TensorInfo } from '@tensorflow/tfjs-core';
import * as tf from '@tensorflow/tfjs-core';
import { SIMD_KERNEL_NAMES } from './simd/names';

/**
 * Replacements for three data-movement kernels of tfjs' wasm backend (4.22) that copy far more
 * than they return. Installed by vit-ts' fast product forms (see `productForm`) and removed with
 * `setProductForm(backend, 'native')`, so "native" always means tfjs as shipped.
 *
 * - `Identity`: tfjs saves every tensor a gradient needs through the engine's `clone`, which
 *   runs `Identity`. On cpu, webgl and webgpu it shares the input's storage (a reference count);
 *   on wasm it copied the whole tensor (389 copies, 38 ms of a 760 ms Fashion-MNIST ViT step).
 *   Tensors are immutable on every backend (kernels write only into outputs they allocate; a
 *   variable's `assign` swaps its storage) and wasm counts references per buffer (`incRef` /
 *   `disposeData`), so sharing is exactly what the other backends do.
 * - `Slice` and `SplitV`: wasm's `Slice` first copies the WHOLE input out of the heap
 *   (`readSync`, a `HEAPU8.slice`) and then picks the part in JavaScript; `SplitV` does that once
 *   per part. Taking one 50 KB head out of a 1.8 MB activation copied 1.8 MB. The replacement
 *   copies only the output, in runs as long as the layout allows, straight between heap views.
 */

/** The slice of the wasm backend this file uses (public methods of tfjs' `BackendWasm`). */
interface WasmHeapBackend {
  makeOutput(shape: number[], dtype: DataType): TensorInfo;
  typedArrayFromHeap(t: TensorInfo): Float32Array | Int32Array | Uint8Array;
}

/** Backends whose kernels vit-ts replaced, with the kernels it replaced. */
const replaced = new Map<string, KernelConfig[]>();

/** Backends with the copying kernels above. */
const COPYING_BACKENDS = new Set(['wasm']);

/**
 * Copies `x[begin : begin + size]` into a new output. Runs: the innermost axes the slice takes
 * whole form one contiguous run together with the last partial axis; the outer axes are walked.
 */
function copySlice(
  backend: WasmHeapBackend,
  x: TensorInfo,
  begin: readonly number[],
  size: readonly number[],
): TensorInfo {
  const out = backend.makeOutput([...size], x.dtype);
  const count = size.reduce((a, b) => a * b, 1);
  if (count === 0) return out;
  // Views only after makeOutput: allocating can grow (and so detach) the heap's buffer.
  const src = backend.typedArrayFromHeap(x);
  const dst = backend.typedArrayFromHeap(out);
  const shape = x.shape;
  const rank = shape.length;
  if (rank === 0) {
    dst.set(src.subarray(0, 1));
    return out;
  }
  const strides = new Array<number>(rank);
  strides[rank - 1] = 1;
  for (let d = rank - 2; d >= 0; d--)
    strides[d] = (strides[d + 1] as number) * (shape[d + 1] as number);
  // Last axis that is not taken whole; everything inside it is contiguous.
  let k = rank - 1;
  while (k > 0 && size[k] === shape[k]) k--;
  const run = (size[k] as number) * (strides[k] as number);
  // Walk the outer axes 0..k-1 (an odometer over the slice's index space).
  const index = new Array<number>(k).fill(0);
  let offset = 0;
  for (let d = 0; d <= k; d++) offset += (begin[d] as number) * (strides[d] as number);
  for (let written = 0; written < count; written += run) {
    dst.set(src.subarray(offset, offset + run), written);
    for (let d = k - 1; d >= 0; d--) {
      index[d] = (index[d] as number) + 1;
      offset += strides[d] as number;
      if ((index[d] as number) < (size[d] as number)) break;
      offset -= (size[d] as number) * (strides[d] as number);
      index[d] = 0;
    }
  }
  return out;
}

/** The replacement kernels, given the backend's own (for strings, which live outside the heap). */
function replacements(backendName: string, own: (name: string) => KernelConfig): KernelConfig[] {
  return [
    {
      kernelName: 'Identity',
      backendName,
      kernelFunc: (args) => {
        const x = args.inputs['x'] as TensorInfo;
        if (x.dtype === 'string') return own('Identity').kernelFunc(args);
        (args.backend as KernelBackend).incRef(x.dataId);
        return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
      },
    },
    {
      kernelName: 'Slice',
      backendName,
      kernelFunc: (args) => {
        const x = args.inputs['x'] as TensorInfo;
        if (x.dtype === 'string' || x.dtype === 'complex64') return own('Slice').kernelFunc(args);
        const attrs = args.attrs as unknown as {
          begin: number | number[];
          size?: number | number[];
        };
        const [begin, size] = tf.slice_util.parseSliceParams(
          x as tf.TensorInfo as tf.Tensor,
          attrs.begin,
          attrs.size,
        );
        return copySlice(args.backend as unknown as WasmHeapBackend, x, begin, size);
      },
    },
    {
      kernelName: 'SplitV',
      backendName,
      kernelFunc: (args) => {
        const x = args.inputs['x'] as TensorInfo;
        if (x.dtype === 'string' || x.dtype === 'complex64') return own('SplitV').kernelFunc(args);
        const attrs = args.attrs as unknown as { numOrSizeSplits: number | number[]; axis: number };
        const axis = tf.util.parseAxisParam(attrs.axis, x.shape)[0] as number;
        const sizes = tf.backend_util.prepareSplitSize(
          x as tf.TensorInfo as tf.Tensor,
          attrs.numOrSizeSplits,
          axis,
        );
        const begin = new Array<number>(x.shape.length).fill(0);
        return sizes.map((s) => {
          const size = [...x.shape];
          size[axis] = s;
          const part = copySlice(args.backend as unknown as WasmHeapBackend, x, begin, size);
          begin[axis] = (begin[axis] as number) + s;
          return part;
        });
      },
    },
  ];
}

/**
 * Replaces the copying `Identity`, `Slice` and `SplitV` kernels of `backendName` (only `'wasm'`
 * has them) with ones that share storage or copy only what they return. Where
 * they are installed, vit-ts' own WebAssembly SIMD kernels (fused attention, GELU, LayerNorm;
 * src/backends/simd/) register on first use. Idempotent; returns
 * whether the replacements are installed. Called by vit-ts' fast product forms, so applications
 * need not call it.
 */
export function installWasmKernels(backendName: string = tf.getBackend()): boolean {
  if (replaced.has(backendName)) return true;
  if (!COPYING_BACKENDS.has(backendName)) return false;
  const originals = new Map<string, KernelConfig>();
  for (const name of ['Identity', 'Slice', 'SplitV']) {
    const k = tf.getKernel(name, backendName);
    if (k == null) return false;
    originals.set(name, k);
  }
  const own = (name: string) => originals.get(name) as KernelConfig;
  for (const k of replacements(backendName, own)) {
    // Unregister first: registering over a kernel makes tfjs print a warning.
    tf.unregisterKernel(k.kernelName, backendName);
    tf.registerKernel(k);
  }
  replaced.set(backendName, [...originals.values()]);
  return true;
}

/** Puts back the backend's own kernels (for benchmarks comparing both). */
export function restoreWasmKernels(backendName: string = tf.getBackend()): void {
  const originals = replaced.get(backendName);
  if (originals == null) return;
  for (const k of originals) {
    tf.unregisterKernel(k.kernelName, backendName);
    tf.registerKernel(k);
  }
  // vit-ts' SIMD kernels, registered on first use (src/backends/simd/register.ts).
  simdRegistered.delete(backendName);
  for (const name of SIMD_KERNEL_NAMES) {
    if (tf.getKernel(name, backendName) != null) tf.unregisterKernel(name, backendName);
  }
  replaced.delete(backendName);
}

/** Whether vit-ts' wasm replacements are installed on `backendName` (the fast product form). */
export function wasmKernelsInstalled(backendName: string): boolean {
  return replaced.has(backendName);
}

/** Backends on which vit-ts' SIMD kernels were registered since the replacements were installed. */
const simdRegistered = new Set<string>();

/**
 * Marks vit-ts' SIMD kernels registered on `backendName` (src/backends/simd/register.ts), so a
 * kernel unregistered afterwards (by a test, or a user comparing) is not registered again until
 * the replacements are restored and installed anew. Returns whether it was marked before.
 */
export function markSimdRegistered(backendName: string): boolean {
  const before = simdRegistered.has(backendName);
  simdRegistered.add(backendName);
  return before;
}
