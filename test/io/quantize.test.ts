/**
 * saveModel({ quantize }) on the shipped MNIST model: file sizes, the change in logits and in
 * held-out accuracy, and that tfjs' own loader (tf.loadLayersModel) dequantizes the files.
 * Bounds asserted: float16 max |logit change| < 0.01 and accuracy change <= 0.2 points;
 * uint8 max |logit change| < 0.5 and accuracy change <= 2 points (first 500 held-out digits).
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { type LayersModel, loadLayersModel } from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { splitDigits } from '../../examples/mnist/data';
import { quantizeWeights } from '../../src/io/quantize';
import { loadModel, saveModel } from '../../src/node';
import { loadPretrained } from '../../src/weights/load';
import { entryToTensor } from '../../src/weights/safetensors';
import { useBackend } from '../helpers/backends';
import { buildFixtureModel, fixture, fixtureWeights, readFixtureFile } from '../weights/fixtures';

const mnistModel = fileURLToPath(new URL('../../examples/mnist/model', import.meta.url));
let root: string;
let x: tf.Tensor4D;
let labels: number[];
let reference: LayersModel;
let refLogits: Float32Array;

function logitsOf(m: LayersModel): Float32Array {
  return tf.tidy(() => (m.predict(x) as tf.Tensor).dataSync() as Float32Array);
}
function accuracy(logits: Float32Array): number {
  let correct = 0;
  labels.forEach((y, i) => {
    const row = logits.subarray(i * 10, i * 10 + 10);
    if (row.indexOf(Math.max(...row)) === y) correct++;
  });
  return correct / labels.length;
}

beforeAll(async () => {
  await useBackend('wasm');
  root = await mkdtemp(join(tmpdir(), 'vit-ts-quant-'));
  reference = await loadModel(mnistModel);
  const meta = reference.getUserDefinedMetadata() as {
    training: { seed: number; heldOutSize: number };
  };
  // The held-out part of the seeded split of the 10,000 npm digits (never trained on).
  const split = splitDigits(meta.training.seed, 10_000 - meta.training.heldOutSize);
  const held = split.heldOut.slice(0, 500);
  const buf = new Float32Array(held.length * 784);
  for (const [i, d] of held.entries()) buf.set(d.pixels, i * 784);
  x = tf.tensor4d(buf, [held.length, 28, 28, 1]);
  labels = held.map((d) => d.label);
  refLogits = logitsOf(reference);
});
afterAll(async () => {
  reference.dispose();
  x.dispose();
  await rm(root, { recursive: true, force: true });
});

it.each([
  ['float16', 0.01, 0.002],
  ['uint8', 0.5, 0.02],
] as const)(
  'quantize %s: smaller file, logits within the bound, loads in plain tfjs',
  async (q, maxLogit, maxAcc) => {
    const plain = await saveModel(reference, join(root, 'f32'));
    const saved = await saveModel(reference, join(root, q), { quantize: q });
    const f32Bytes = plain.bytes[plain.weightsFile] as number;
    const qBytes = saved.bytes[saved.weightsFile] as number;
    expect(qBytes).toBe(q === 'float16' ? f32Bytes / 2 : f32Bytes / 4);
    const loaded = await loadModel(join(root, q));
    const logits = logitsOf(loaded);
    let maxDiff = 0;
    logits.forEach((v, i) => {
      maxDiff = Math.max(maxDiff, Math.abs(v - (refLogits[i] as number)));
    });
    const accRef = accuracy(refLogits);
    const accQ = accuracy(logits);
    console.log(
      `quantize ${q}: weights ${f32Bytes} -> ${qBytes} bytes; max |logit change| ${maxDiff.toExponential(3)}; held-out accuracy (500) ${(accRef * 100).toFixed(1)}% -> ${(accQ * 100).toFixed(1)}%`,
    );
    expect(maxDiff).toBeGreaterThan(0); // really quantized
    expect(maxDiff).toBeLessThan(maxLogit);
    expect(Math.abs(accQ - accRef)).toBeLessThanOrEqual(maxAcc);
    // tfjs' own loader (no vit-ts loader) reads the quantized manifest too.
    const json = JSON.parse(await readFile(join(root, q, 'model.json'), 'utf8'));
    const data = await readFile(join(root, q, saved.weightsFile));
    const viaTfjs = await loadLayersModel(
      tf.io.fromMemory({
        modelTopology: json.modelTopology,
        weightSpecs: json.weightsManifest[0].weights,
        weightData: data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength),
      }),
    );
    expect(Array.from(logitsOf(viaTfjs))).toEqual(Array.from(logits));
    viaTfjs.dispose();
    loaded.dispose();
  },
);

it('quantizeWeights keeps int32 weights and maps 0 exactly in uint8', () => {
  const specs = [
    { name: 'a', shape: [4], dtype: 'float32' as const },
    { name: 'b', shape: [2], dtype: 'int32' as const },
  ];
  const data = new Uint8Array(24);
  new Float32Array(data.buffer, 0, 4).set([-1, 0, 0.5, 2]);
  new Int32Array(data.buffer, 16, 2).set([7, -9]);
  const q = quantizeWeights(specs, data, 'uint8');
  expect(q.data.length).toBe(4 + 8);
  const decoded = tf.io.decodeWeights(q.data.buffer as ArrayBuffer, q.specs);
  const a = Array.from(decoded['a']?.dataSync() ?? []);
  expect(a[1]).toBe(0);
  for (const [i, v] of a.entries()) {
    expect(Math.abs(v - ([-1, 0, 0.5, 2][i] as number))).toBeLessThan(3 / 255);
  }
  expect(Array.from(decoded['b']?.dataSync() ?? [])).toEqual([7, -9]);
  tf.dispose(Object.values(decoded));
  expect(() => quantizeWeights(specs, data, 'int4' as never)).toThrow(
    /quantize must be 'float16' or 'uint8'/,
  );
});

/**
 * The same two formats on PyTorch-parity fixtures (timm ViT, CIFAR ResNet18): the saved,
 * quantized and reloaded model against PyTorch's own logits for the fixture's input. Bounds are
 * relative to the largest |logit| of the reference: float32 stays at the parity tolerance.
 */
describe.each(['timm_vit', 'cifar_resnet18'])(
  'quantize on the PyTorch-parity fixture %s',
  (name) => {
    const e = fixture(name);
    let model: LayersModel;
    let x: tf.Tensor;
    let torchLogits: Float32Array;
    beforeAll(() => {
      const io = readFixtureFile(e.io);
      x = entryToTensor(io.tensors.get('input_nhwc') as never, 'input_nhwc');
      torchLogits = (io.tensors.get('logits') as { data: Float32Array }).data;
      model = buildFixtureModel(e, x.shape);
      loadPretrained(model, fixtureWeights(e), { from: e.from });
    });
    afterAll(() => {
      model.dispose();
      x.dispose();
    });

    it.each([
      ['none', 1e-4],
      ['float16', 5e-3],
      ['uint8', 0.05],
    ] as const)('%s: logits vs PyTorch within %s of the largest logit', async (q, relBound) => {
      const dir = join(root, `${name}-${q}`);
      const saved = await saveModel(model, dir, q === 'none' ? {} : { quantize: q });
      const loaded = await loadModel(dir);
      const logits = tf.tidy(() => (loaded.predict(x) as tf.Tensor).dataSync() as Float32Array);
      loaded.dispose();
      expect(logits.length).toBe(torchLogits.length);
      let maxDiff = 0;
      let scale = 0;
      logits.forEach((v, i) => {
        const ref = torchLogits[i] as number;
        maxDiff = Math.max(maxDiff, Math.abs(v - ref));
        scale = Math.max(scale, Math.abs(ref));
      });
      const classes = logits.length / x.shape[0];
      let sameArgmax = 0;
      for (let r = 0; r < x.shape[0]; r++) {
        const a = Array.from(logits.subarray(r * classes, (r + 1) * classes));
        const b = Array.from(torchLogits.subarray(r * classes, (r + 1) * classes));
        if (a.indexOf(Math.max(...a)) === b.indexOf(Math.max(...b))) sameArgmax++;
      }
      console.log(
        `${name} ${q}: weights file ${saved.bytes[saved.weightsFile]} B; max |logit - PyTorch| ${maxDiff.toExponential(2)} (largest |logit| ${scale.toFixed(3)}, relative ${(maxDiff / scale).toExponential(2)}); argmax agrees ${sameArgmax}/${x.shape[0]}`,
      );
      if (q !== 'none') expect(maxDiff).toBeGreaterThan(0);
      expect(maxDiff / scale).toBeLessThan(relBound);
    });
  },
);
