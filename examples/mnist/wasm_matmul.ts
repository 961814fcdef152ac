/**
 * Speed-up for training on the wasm backend (tfjs 4.22): its BatchMatMul kernel is several
 * times slower when asked to transpose an operand than a plain product of the transposed copy
 * (measured on a [3200,64]^T x [3200,192] weight gradient: 106 ms with transposeA vs 30 ms with
 * an explicit transpose; [3200,192] x [64,192]^T: 122 ms vs 15 ms). Backpropagation through every
 * dense layer asks for exactly those transposed products. This wraps the wasm kernel so that a
 * transposed operand is first materialized with the Transpose kernel. Numerically the same
 * product; it only changes which code path of the kernel runs.
 */
import * as tf from '@tensorflow/tfjs-core';

let installed = false;

/** Re-registers wasm's BatchMatMul so transposed operands are transposed explicitly first. Idempotent. */
export function installWasmTransposedMatMul(): void {
  if (installed) return;
  const original = tf.getKernel('BatchMatMul', 'wasm');
  const transpose = tf.getKernel('Transpose', 'wasm');
  if (original == null || transpose == null)
    throw new Error('installWasmTransposedMatMul: the wasm backend is not registered');
  tf.unregisterKernel('BatchMatMul', 'wasm');
  tf.registerKernel({
    kernelName: 'BatchMatMul',
    backendName: 'wasm',
    setupFunc: original.setupFunc,
    disposeFunc: original.disposeFunc,
    kernelFunc: ({ inputs, backend, attrs }) => {
      const { transposeA, transposeB } = attrs as unknown as tf.BatchMatMulAttrs;
      const temporaries: tf.TensorInfo[] = [];
      const swapLast = (t: tf.TensorInfo): tf.TensorInfo => {
        const rank = t.shape.length;
        const perm = [...Array(rank - 2).keys(), rank - 1, rank - 2];
        const out = transpose.kernelFunc({
          inputs: { x: t },
          backend,
          attrs: { perm },
        }) as tf.TensorInfo;
        temporaries.push(out);
        return out;
      };
      const { a: a0, b: b0 } = inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
      const a = transposeA ? swapLast(a0) : a0;
      const b = transposeB ? swapLast(b0) : b0;
      const out = original.kernelFunc({
        inputs: { a, b },
        backend,
        attrs: { ...attrs, transposeA: false, transposeB: false },
      });
      for (const t of temporaries)
        (backend as unknown as { disposeData(id: object): void }).disposeData(t.dataId);
      return out;
    },
  });
  installed = true;
}
