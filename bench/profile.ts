/**
 * Per-kernel profile (tf.profile) of one forward pass or one training step, aggregated by
 * kernel name and sorted by time. Prints the 1024^2 matMul rate of the same process.
 *
 *   npx tsx bench/profile.ts --backend wasm --model vit_tiny_p4_32 --mode train
 *   npx tsx bench/profile.ts --backend wasm --model vit_tiny_patch16_224 --mode forward
 *   npx tsx bench/profile.ts --backend wasm --model resnet18_cifar --mode train --batch 32
 *   ... --form native   # tfjs' own products instead of vit-ts' fast forms
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import { setProductForm } from '../src/index';
import { buildBenchModel, matMulRate, trainStep } from './models';

const args = process.argv.slice(2);
const opt = (name: string, fallback: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? args[i + 1] : fallback;
};

async function main() {
  const backend = opt('backend', 'wasm');
  const modelName = opt('model', 'vit_tiny_p4_32');
  const mode = opt('mode', 'train');
  const form = opt('form', '');
  await tf.setBackend(backend);
  await tf.ready();
  if (form === 'native' || form === 'fast') setProductForm(backend, form);
  const rate = await matMulRate();
  const bench = buildBenchModel(modelName);
  const batch = Number(opt('batch', mode === 'train' ? '32' : '1'));
  const x = tf.randomNormal([batch, ...bench.inputShape]);
  const y = tf.tidy(() =>
    tf.oneHot(
      tf.randomUniform([batch], 0, bench.numClasses, 'int32') as tf.Tensor1D,
      bench.numClasses,
    ),
  );
  const run = async () => {
    if (mode === 'train') await trainStep(bench, x, y);
    else {
      const out = bench.model.predict(x) as tf.Tensor;
      await out.data();
      out.dispose();
    }
  };
  await run(); // warm-up
  const t0 = performance.now();
  const info = await tf.profile(run);
  const wall = performance.now() - t0;
  const byName = new Map<string, { ms: number; count: number }>();
  let total = 0;
  for (const k of info.kernels) {
    const ms = Number(await k.kernelTimeMs);
    total += ms;
    const e = byName.get(k.name) ?? { ms: 0, count: 0 };
    e.ms += ms;
    e.count += 1;
    byName.set(k.name, e);
  }
  console.log(
    `${backend} ${modelName} ${mode} batch ${batch}: matMul ${(rate / 1e9).toFixed(1)} GFLOP/s, ` +
      `wall (profiled) ${wall.toFixed(0)} ms, kernels ${total.toFixed(0)} ms, floor ${(((bench.flopsPerImage * batch * (mode === 'train' ? 3 : 1)) / rate) * 1000).toFixed(0)} ms`,
  );
  for (const [name, e] of [...byName].sort((a, b) => b[1].ms - a[1].ms).slice(0, 25)) {
    console.log(
      `  ${name.padEnd(28)} ${e.ms.toFixed(1).padStart(9)} ms ${((100 * e.ms) / total).toFixed(1).padStart(5)}%  x${e.count}`,
    );
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
