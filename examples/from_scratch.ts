/**
 * The lecture's from-scratch walk-through, with vit-ts' blocks: build ViT-Base/16, print its
 * config and parameter count, then follow one image through every stage (patches, tokens,
 * blocks, class token, head), look at the attention shapes, and compare what the class token
 * attends to with what a patch token attends to.
 *
 *   npx tsx examples/from_scratch.ts              # ViT-Base/16 at 224 px (86.6 M parameters)
 *   npx tsx examples/from_scratch.ts --quick      # same code on a 2-block, 64-wide ViT at 32 px
 *   npx tsx examples/from_scratch.ts --backend cpu
 *
 * The weights are random (timm's init), so the attention shows the mechanics, not what a trained
 * model looks at: for that, see examples/attention_figure.ts.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import {
  countViTMacs,
  countViTParams,
  createViT,
  findVisionTransformer,
  resolveViTConfig,
  VIT_PRESETS,
  type ViTConfig,
} from '../src/index';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const backend = args.includes('--backend') ? args[args.indexOf('--backend') + 1] : 'wasm';

const config: ViTConfig = quick
  ? { imgSize: 32, patchSize: 8, embedDim: 64, depth: 2, numHeads: 4, numClasses: 10 }
  : VIT_PRESETS.vit_base_patch16_224.config;

const fmt = (n: number) => n.toLocaleString('en-US');
const shape = (t: tf.Tensor) => `[${t.shape.join(', ')}]`;

async function main(): Promise<void> {
  if (!(await tf.setBackend(backend))) throw new Error(`backend ${backend} failed to start`);
  await tf.ready();
  console.log(`backend: ${tf.getBackend()}${quick ? ' (quick mode: a small ViT)' : ''}\n`);

  // 1. The config: every field resolved, defaults filled in.
  const c = resolveViTConfig(config);
  console.log('1. config');
  console.log(JSON.stringify(c));

  // 2. Parameter count, from the config alone and from the built model.
  const model = createViT(config, {}, { seed: 0 });
  const vit = findVisionTransformer(model);
  const d = c.embedDim;
  const { gridSize, numPatches, numPrefixTokens, numTokens } = vit.geometry;
  console.log('\n2. parameters');
  console.log(`   countViTParams(config): ${fmt(countViTParams(config))}`);
  console.log(`   model.countParams():    ${fmt(model.countParams())}`);
  console.log(
    `   patch embedding ${fmt(c.patchSize[0] * c.patchSize[1] * c.inChans * d + d)}, ` +
      `class token + positions ${fmt(d + numTokens * d)}, ` +
      `each block ${fmt(12 * d * d + 13 * d)} (12 D^2 + 13 D), head ${fmt(d * c.numClasses + c.numClasses)}`,
  );
  console.log(`   forward cost: ${(countViTMacs(config) / 1e9).toFixed(2)} GMACs per image`);

  // 3. Shapes at every stage, calling each child layer by hand.
  console.log('\n3. shapes at every stage');
  const image = tf.randomUniform([1, c.imgSize[0], c.imgSize[1], c.inChans], 0, 1, 'float32', 1);
  tf.tidy(() => {
    console.log(`   image                         ${shape(image)}`);
    const patches = vit.patchEmbed.apply(image) as tf.Tensor;
    console.log(
      `   patch embedding               ${shape(patches)}  (${gridSize[0]} x ${gridSize[1]} = ${numPatches} patches of ${c.patchSize.join('x')} px, each a ${d}-vector)`,
    );
    let tokens = vit.embed.apply(patches) as tf.Tensor;
    console.log(
      `   + class token, + positions    ${shape(tokens)}  (${numPrefixTokens} prefix token + ${numPatches})`,
    );
    vit.blocks.forEach((block, i) => {
      tokens = block.apply(tokens) as tf.Tensor;
      if (i < 2 || i === vit.blocks.length - 1)
        console.log(`   block ${String(i).padEnd(2)}                      ${shape(tokens)}`);
      else if (i === 2) console.log('   ...');
    });
    const normed = vit.norm.apply(tokens) as tf.Tensor;
    console.log(`   final norm                    ${shape(normed)}`);
    const cls = tf.reshape(tf.slice(normed, [0, 0, 0], [-1, 1, -1]), [1, d]);
    console.log(`   class token                   ${shape(cls)}`);
    const logits = vit.head ? (vit.head.apply(cls) as tf.Tensor) : cls;
    console.log(`   head (logits)                 ${shape(logits)}`);
    // The same numbers as the model's own forward pass.
    const direct = model.predict(image) as tf.Tensor;
    const diff = tf.max(tf.abs(tf.sub(direct, logits))).dataSync()[0];
    console.log(`   |by hand - model.predict|max  ${diff.toExponential(1)}`);
  });

  // 4. Attention: one [B, heads, N, N] matrix per block.
  console.log('\n4. attention');
  const { logits, attentions, blocks } = vit.forwardWithAttention(image, {
    blocks: [0, c.depth - 1],
  });
  attentions.forEach((a, k) => {
    console.log(
      `   block ${blocks[k]}: ${shape(a)} = [batch, heads ${c.numHeads}, queries ${numTokens}, keys ${numTokens}]; rows sum to 1`,
    );
  });

  // 5. Class token vs a patch token: who attends where (head mean, last block).
  console.log('\n5. class-token vs patch attention (last block, mean over heads)');
  const summary = tf.tidy(() => {
    const a = tf.squeeze(tf.mean(attentions[attentions.length - 1], 1), [0]) as tf.Tensor2D; // [N, N]
    const centre =
      numPrefixTokens + Math.floor(gridSize[0] / 2) * gridSize[1] + Math.floor(gridSize[1] / 2);
    const row = (q: number) => tf.reshape(tf.slice(a, [q, 0], [1, -1]), [numTokens]) as tf.Tensor1D;
    const describe = (q: number) => {
      const r = row(q);
      const toCls = tf.slice(r, 0, 1).dataSync()[0];
      const toPatches = tf.sum(tf.slice(r, numPrefixTokens)).dataSync()[0];
      const self = tf.slice(r, q, 1).dataSync()[0];
      const entropy = tf.neg(tf.sum(tf.mul(r, tf.log(tf.add(r, 1e-12))))).dataSync()[0];
      return { toCls, toPatches, self, entropy };
    };
    return { cls: describe(0), patch: describe(centre), centre };
  });
  const uniform = Math.log(numTokens);
  const line = (
    name: string,
    s: { toCls: number; toPatches: number; self: number; entropy: number },
  ) =>
    console.log(
      `   ${name.padEnd(22)} to class token ${s.toCls.toFixed(4)}, to patches ${s.toPatches.toFixed(4)}, ` +
        `to itself ${s.self.toFixed(4)}, entropy ${s.entropy.toFixed(3)} (uniform: ${uniform.toFixed(3)})`,
    );
  line('class token (query 0)', summary.cls);
  line(`patch ${summary.centre - numPrefixTokens} (query ${summary.centre})`, summary.patch);
  console.log(
    '   The class token has no patch of its own: it only gathers from the patches, and its final\n' +
      '   state is what the head reads. A patch token mixes its own content with its neighbours.\n' +
      '   With random weights both rows are close to uniform; after training they are not.',
  );

  tf.dispose([image, logits, ...attentions]);
  model.dispose();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
