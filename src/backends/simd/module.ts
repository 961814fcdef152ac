import type { DataType, TensorInfo } from '@tensorflow/tfjs-core';
import * as tf from '@tensorflow/tfjs-core';
import { SIMD_WASM_BASE64 } from './simd_wasm';

/**
 * vit-ts' own WebAssembly SIMD kernels (src/backends/simd/*.c, compiled by
 * scripts/build-simd.sh into one module shipped as base64): one instance with its own memory.
 * Kernels copy their inputs in from the tfjs wasm heap and their outputs back (a memcpy, small
 * against the work), so the module needs nothing from tfjs' build. Runs on one thread.
 */

/** The exported functions of the module (pointers are byte offsets into its memory). */
export interface SimdExports {
  vit_attention(
    q: number,
    k: number,
    v: number,
    ctx: number,
    probs: number,
    scratch: number,
    batch: number,
    n: number,
    heads: number,
    hd: number,
    scale: number,
  ): void;
  vit_gelu(x: number, y: number, n: number): void;
  vit_gelu_grad(x: number, dy: number, dx: number, n: number): void;
  vit_layer_norm(
    x: number,
    gamma: number,
    beta: number,
    y: number,
    xhat: number,
    rstd: number,
    rows: number,
    d: number,
    eps: number,
  ): void;
}

/** The instantiated module. */
export interface SimdModule {
  fns: SimdExports;
  memory: WebAssembly.Memory;
  /** First free byte after the module's static data and stack. */
  heapBase: number;
}

/** The slice of tfjs' `BackendWasm` the kernels use (public methods). */
export interface WasmHeapBackend {
  makeOutput(shape: number[], dtype: DataType): TensorInfo;
  typedArrayFromHeap(t: TensorInfo): Float32Array | Int32Array | Uint8Array;
}

let instance: SimdModule | null | undefined;

function decodeBase64(text: string): Uint8Array<ArrayBuffer> {
  const bin = atob(text);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return bytes;
}

/**
 * The module, compiled once on first use; `null` when this JavaScript engine cannot compile it
 * (no WebAssembly SIMD, or a browser main thread refusing synchronous compilation): vit-ts then
 * keeps tfjs' own kernels.
 */
export function simdModule(): SimdModule | null {
  if (instance !== undefined) return instance;
  try {
    const mod = new WebAssembly.Module(decodeBase64(SIMD_WASM_BASE64));
    const ex = new WebAssembly.Instance(mod, {}).exports as Record<string, unknown>;
    instance = {
      fns: ex as unknown as SimdExports,
      memory: ex['memory'] as WebAssembly.Memory,
      heapBase: (ex['__heap_base'] as WebAssembly.Global).value as number,
    };
  } catch {
    instance = null;
  }
  return instance;
}

/**
 * Places buffers of the given float counts one after another (16-byte aligned, each rounded up
 * to whole 4-float vectors, which the kernels may read and write) from the module's heap base,
 * growing its memory when needed. Returns their float offsets and a view of the memory made
 * after any growth.
 */
export function arena(m: SimdModule, floats: number[]): { at: number[]; mem: Float32Array } {
  let next = Math.ceil(m.heapBase / 16) * 4;
  const at = floats.map((f) => {
    const o = next;
    next += Math.ceil(f / 4) * 4;
    return o;
  });
  const bytes = next * 4;
  const have = m.memory.buffer.byteLength;
  if (bytes > have) m.memory.grow(Math.ceil((bytes - have) / 65536));
  return { at, mem: new Float32Array(m.memory.buffer) };
}

/** Copies a tfjs wasm tensor into the module's memory at float offset `at`. */
export function copyIn(
  backend: WasmHeapBackend,
  t: TensorInfo,
  mem: Float32Array,
  at: number,
): void {
  mem.set(backend.typedArrayFromHeap(t) as Float32Array, at);
}

/**
 * New float32 tfjs outputs of the given shapes, filled from the module's memory at the given
 * float offsets.
 */
export function copyOut(
  backend: WasmHeapBackend,
  m: SimdModule,
  outputs: Array<{ shape: number[]; at: number }>,
): TensorInfo[] {
  const made = outputs.map((o) => backend.makeOutput(o.shape, 'float32'));
  // Views only after every makeOutput: allocating can grow (and so detach) the tfjs heap.
  const mem = new Float32Array(m.memory.buffer);
  made.forEach((t, i) => {
    const { shape, at } = outputs[i] as { shape: number[]; at: number };
    const count = shape.reduce((a, b) => a * b, 1);
    backend.typedArrayFromHeap(t).set(mem.subarray(at, at + count));
  });
  return made;
}

/**
 * Whether tfjs is recording a gradient tape (inside `tf.grad`, `variableGrads`, `fit`): only then
 * do the kernels output what a gradient needs (probabilities, LayerNorm statistics). Inference
 * (`predict`) skips that work and its copies.
 */
export function recordingGradients(): boolean {
  return tf.engine().state.gradientDepth > 0;
}
