import type { DataId, DataType, TensorInfo } from '@tensorflow/tfjs-core';
import * as tf from '@tensorflow/tfjs-core';
import { SIMD_WASM_BASE64 } from './simd_wasm';

/**
 * vit-ts' own WebAssembly SIMD kernels (src/backends/simd/*.c, compiled by
 * scripts/build-simd.sh into one module shipped as base64). The module has no data and no stack
 * of its own and imports its memory, so it can run in two ways:
 *
 * - **on tfjs' heap** (tfjs' single-threaded wasm build, as in Node): instantiated with the
 *   backend's own `WebAssembly.Memory`, kernels read their inputs and write their outputs in
 *   place: no copies;
 * - **on a memory of its own** (tfjs' threaded build, whose memory is shared, or a build that does
 *   not expose its memory): inputs are copied in and outputs back.
 *
 * Either way it runs on one thread.
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

/** The slice of tfjs' `BackendWasm` the kernels use (public methods and its module). */
export interface WasmHeapBackend {
  makeOutput(shape: number[], dtype: DataType): TensorInfo;
  typedArrayFromHeap(t: TensorInfo): Float32Array | Int32Array | Uint8Array;
  disposeData(dataId: DataId): boolean;
  wasm?: { asm?: { memory?: unknown } };
}

/** An instance of the module, on tfjs' heap or on a memory of its own. */
interface SimdInstance {
  fns: SimdExports;
  memory: WebAssembly.Memory;
  onTfjsHeap: boolean;
}

let compiled: WebAssembly.Module | null | undefined;
const onHeap = new WeakMap<WebAssembly.Memory, SimdInstance>();
let ownMemory: SimdInstance | undefined;
let forceCopy = false;

function decodeBase64(text: string): Uint8Array<ArrayBuffer> {
  const bin = atob(text);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return bytes;
}

/**
 * The compiled module, once; `null` when this JavaScript engine cannot compile it (no
 * WebAssembly SIMD): vit-ts then keeps tfjs' own kernels.
 */
export function simdCompiled(): WebAssembly.Module | null {
  if (compiled !== undefined) return compiled;
  try {
    compiled = new WebAssembly.Module(decodeBase64(SIMD_WASM_BASE64));
  } catch {
    compiled = null;
  }
  return compiled;
}

function instantiate(memory: WebAssembly.Memory, onTfjsHeap: boolean): SimdInstance {
  const inst = new WebAssembly.Instance(simdCompiled() as WebAssembly.Module, {
    env: { memory },
  });
  return { fns: inst.exports as unknown as SimdExports, memory, onTfjsHeap };
}

/** The instance for this backend: on its heap when it can be, else on a memory of its own. */
function instanceFor(backend: WasmHeapBackend): SimdInstance {
  const memory = backend.wasm?.asm?.memory;
  if (!forceCopy && memory instanceof WebAssembly.Memory) {
    const cached = onHeap.get(memory);
    if (cached) return cached;
    const shared =
      typeof SharedArrayBuffer !== 'undefined' && memory.buffer instanceof SharedArrayBuffer;
    if (!shared) {
      try {
        const inst = instantiate(memory, true);
        onHeap.set(memory, inst);
        return inst;
      } catch {
        // Fall through to a memory of its own.
      }
    }
  }
  ownMemory ??= instantiate(new WebAssembly.Memory({ initial: 16 }), false);
  return ownMemory;
}

/** An output to make: its shape, or a scratch buffer of `floats` the kernel may use. */
export type SimdBuffer = { shape: number[] } | { scratch: number };

/**
 * Runs one kernel call: makes the outputs (float32) and scratch buffers, passes byte pointers of
 * the inputs, then of the outputs and scratch buffers (in the order given; 0 for an empty one),
 * and returns the outputs. On tfjs' heap the pointers are the tensors' own; otherwise inputs are
 * copied into the module's memory and outputs copied back. Buffers are whole 4-float vectors
 * only in the module's own memory: kernels must not read or write past a tensor's end.
 */
export function runSimd(
  backend: WasmHeapBackend,
  inputs: TensorInfo[],
  buffers: SimdBuffer[],
  call: (fns: SimdExports, ptrs: number[]) => void,
): TensorInfo[] {
  const inst = instanceFor(backend);
  const sizes = buffers.map((b) => ('shape' in b ? b.shape.reduce((x, y) => x * y, 1) : b.scratch));
  if (inst.onTfjsHeap) {
    const made = buffers.map((b, i) =>
      'shape' in b
        ? backend.makeOutput(b.shape, 'float32')
        : backend.makeOutput([sizes[i] as number], 'float32'),
    );
    // Heap offsets do not move when the heap grows (only the buffer object is replaced).
    const ptr = (t: TensorInfo, count: number) =>
      count === 0 ? 0 : backend.typedArrayFromHeap(t).byteOffset;
    const inPtrs = inputs.map((t) =>
      ptr(
        t,
        t.shape.reduce((x, y) => x * y, 1),
      ),
    );
    const outPtrs = made.map((t, i) => ptr(t, sizes[i] as number));
    call(inst.fns, [...inPtrs, ...outPtrs]);
    const outputs: TensorInfo[] = [];
    made.forEach((t, i) => {
      if ('shape' in (buffers[i] as SimdBuffer)) outputs.push(t);
      else backend.disposeData(t.dataId);
    });
    return outputs;
  }
  // A memory of its own: lay out inputs then buffers, each 16-byte aligned and padded to whole
  // vectors, from offset 0 (the module has no data or stack).
  const counts = [...inputs.map((t) => t.shape.reduce((x, y) => x * y, 1)), ...sizes];
  let next = 0;
  const at = counts.map((c) => {
    const o = next;
    next += Math.ceil(c / 4) * 4 + 4;
    return o;
  });
  const have = inst.memory.buffer.byteLength;
  if (next * 4 > have) inst.memory.grow(Math.ceil((next * 4 - have) / 65536));
  let mem = new Float32Array(inst.memory.buffer);
  inputs.forEach((t, i) => {
    mem.set(backend.typedArrayFromHeap(t) as Float32Array, at[i] as number);
  });
  call(
    inst.fns,
    at.map((o, i) => ((counts[i] as number) === 0 ? 0 : o * 4)),
  );
  const outputs: TensorInfo[] = [];
  const made: Array<[TensorInfo, number, number]> = [];
  buffers.forEach((b, i) => {
    if ('shape' in b)
      made.push([
        backend.makeOutput(b.shape, 'float32'),
        at[inputs.length + i] as number,
        sizes[i] as number,
      ]);
  });
  // Views only after every makeOutput: allocating can grow (and so detach) the tfjs heap.
  mem = new Float32Array(inst.memory.buffer);
  for (const [t, o, count] of made) {
    backend.typedArrayFromHeap(t).set(mem.subarray(o, o + count));
    outputs.push(t);
  }
  return outputs;
}

/** Whether the module compiles in this engine (then vit-ts registers its kernels on wasm). */
export function simdAvailable(): boolean {
  return simdCompiled() != null;
}

/**
 * Whether tfjs is recording a gradient tape (inside `tf.grad`, `variableGrads`, `fit`): only then
 * do the kernels output what a gradient needs (probabilities, LayerNorm statistics). Inference
 * (`predict`) skips that work.
 */
export function recordingGradients(): boolean {
  return tf.engine().state.gradientDepth > 0;
}

/** For tests: whether kernels on this backend run in place on tfjs' heap (no copies). */
export function simdRunsOnTfjsHeap(backend: WasmHeapBackend): boolean {
  return instanceFor(backend).onTfjsHeap;
}

/** For tests: run the kernels on a memory of their own (copying), as with tfjs' threaded build. */
export function forceSimdCopyMode(on: boolean): void {
  forceCopy = on;
}
