/**
 * How close can a ViT forward pass get to the benchmark's floor (all FLOPs at the 1024^2 matMul
 * rate) when its products are tfjs' own wasm products? Times every dense product of ViT-Ti/16
 * and ViT-B/16 at batch 1 alone (a fused 2-D product with bias, the form vit-ts uses), next to
 * the 1024^2 rate measured in the same process, twice. CPU time of this process.
 *
 *   npx tsx bench/product_floor.ts
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';

/** CPU milliseconds of one `[m, k] . [k, n] + bias` on the active backend (mean of `reps`). */
function productMs(m: number, k: number, n: number, reps: number): number {
  const a = tf.randomNormal([m, k]);
  const b = tf.randomNormal([k, n]);
  const bias = tf.randomNormal([n]);
  const once = () => {
    const out = tf.fused.matMul({ a: a as tf.Tensor2D, b: b as tf.Tensor2D, bias });
    out.dataSync();
    out.dispose();
  };
  once();
  once();
  const c0 = process.cpuUsage();
  for (let i = 0; i < reps; i++) once();
  const c = process.cpuUsage(c0);
  tf.dispose([a, b, bias]);
  return (c.user + c.system) / 1e3 / reps;
}

const MODELS = [
  { name: 'ViT-Ti/16', dim: 192, reps: 20 },
  { name: 'ViT-B/16', dim: 768, reps: 5 },
];

async function main(): Promise<void> {
  await tf.setBackend('wasm');
  await tf.ready();
  const tokens = 197;
  const depth = 12;
  for (let round = 1; round <= 2; round++) {
    const rate = (2 * 1024 ** 3) / productMs(1024, 1024, 1024, 5) / 1e6; // GFLOP/s
    for (const { name, dim, reps } of MODELS) {
      // [rows, in, out, how many]: patch embedding, then per block qkv, proj, fc1, fc2; head.
      const products: [number, number, number, number][] = [
        [196, 768, dim, 1],
        [tokens, dim, 3 * dim, depth],
        [tokens, dim, dim, depth],
        [tokens, dim, 4 * dim, depth],
        [tokens, 4 * dim, dim, depth],
        [1, dim, 1000, 1],
      ];
      let ms = 0;
      let flops = 0;
      for (const [m, k, n, times] of products) {
        ms += productMs(m, k, n, reps) * times;
        flops += 2 * m * k * n * times;
      }
      const attention = 4 * tokens * tokens * dim * depth; // q.k^T and a.v, every head
      const floor = (flops + attention) / rate / 1e6;
      console.log(
        `round ${round} ${name}: 1024^2 rate ${rate.toFixed(1)} GFLOP/s, floor ${floor.toFixed(0)} ms; ` +
          `its dense products alone ${ms.toFixed(0)} ms = ${(ms / floor).toFixed(2)}x the floor ` +
          `(attention's products, ${((100 * attention) / (flops + attention)).toFixed(1)}% of the FLOPs, not included)`,
      );
    }
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
