import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { expect, it } from 'vitest';
import {
  ConfigError,
  InputShapeError,
  LayerNorm,
  MLP,
  MultiHeadAttention,
  PatchEmbed,
  TransformerBlock,
  ViTEmbedding,
} from '../../src/index';
import { describeBackends } from '../helpers/backends';
import { attentionRef, geluRef, layerNormRef, matmulRef, maxDiff } from '../helpers/reference';
import { randomizeWeights, weightBySuffix } from '../helpers/weights';

const rand = (shape: number[], seed: number) => tf.randomNormal(shape, 0, 1, 'float32', seed);

describeBackends('building blocks against plain-JS references', () => {
  it('PatchEmbed equals a strided convolution and orders patches row-major', () => {
    const pe = new PatchEmbed({ imgSize: [8, 12], patchSize: 4, inChans: 2, embedDim: 5 });
    const x = rand([2, 8, 12, 2], 1);
    const y = pe.apply(x) as tf.Tensor;
    expect(y.shape).toEqual([2, 6, 5]);
    randomizeWeights(pe.weights, 3);
    const y2 = pe.apply(x) as tf.Tensor;
    // Independent path: tfjs' own convolution with kernel = stride = patch.
    const conv = tf.add(
      tf.conv2d(x as tf.Tensor4D, pe.weights[0].read() as tf.Tensor4D, 4, 'valid'),
      pe.weights[1].read(),
    );
    expect(maxDiff(y2.dataSync(), tf.reshape(conv, [2, 6, 5]).dataSync())).toBeLessThan(1e-5);
    // First token of image 0 by hand: the top-left 4x4x2 patch dotted with the kernel.
    const xs = x.dataSync();
    const k = pe.weights[0].read().dataSync();
    const b = pe.weights[1].read().dataSync();
    let s = b[0];
    for (let i = 0; i < 4; i++)
      for (let j = 0; j < 4; j++)
        for (let c = 0; c < 2; c++) s += xs[(i * 12 + j) * 2 + c] * k[((i * 4 + j) * 2 + c) * 5];
    expect(Math.abs(y2.dataSync()[0] - s)).toBeLessThan(1e-5);
    tf.dispose([x, y, y2, conv]);
  });

  it('ViTEmbedding prepends the class token and adds the position embedding', () => {
    const emb = new ViTEmbedding({ numPatches: 4, embedDim: 3 });
    const x = rand([2, 4, 3], 2);
    emb.apply(x);
    randomizeWeights(emb.weights, 5);
    const y = emb.apply(x) as tf.Tensor;
    expect(y.shape).toEqual([2, 5, 3]);
    const cls = weightBySuffix(emb.weights, 'cls_token');
    const pos = weightBySuffix(emb.weights, 'pos_embed');
    const ys = y.dataSync();
    const xs = x.dataSync();
    for (let b = 0; b < 2; b++) {
      for (let c = 0; c < 3; c++) expect(ys[b * 15 + c]).toBeCloseTo(cls[c] + pos[c], 5);
      for (let t = 0; t < 4; t++)
        for (let c = 0; c < 3; c++) {
          expect(ys[b * 15 + (t + 1) * 3 + c]).toBeCloseTo(
            xs[b * 12 + t * 3 + c] + pos[(t + 1) * 3 + c],
            5,
          );
        }
    }
    tf.dispose([x, y]);
  });

  it('MultiHeadAttention matches the timm computation (fused qkv, head-major, scaled softmax)', () => {
    const [n, d, h] = [5, 12, 3];
    const attn = new MultiHeadAttention({ dim: d, numHeads: h });
    const x = rand([2, n, d], 4);
    attn.apply(x);
    randomizeWeights(attn.weights, 7);
    const y = attn.apply(x) as tf.Tensor;
    const { output, attention } = attn.callWithAttention(x);
    expect(attention.shape).toEqual([2, h, n, n]);
    // Bit for bit: with and without the maps the same computation runs (on wasm one call of
    // vit-ts' fused SIMD kernel, which also returns the probabilities when asked).
    expect(maxDiff(output.dataSync(), y.dataSync())).toBe(0);
    const w = (s: string) => weightBySuffix(attn.weights, s);
    const xs = x.dataSync();
    for (let b = 0; b < 2; b++) {
      const ref = attentionRef(
        xs.subarray(b * n * d, (b + 1) * n * d),
        n,
        d,
        h,
        w('qkv/kernel'),
        w('qkv/bias'),
        w('proj/kernel'),
        w('proj/bias'),
      );
      expect(maxDiff(y.dataSync().subarray(b * n * d, (b + 1) * n * d), ref.out)).toBeLessThan(
        1e-4,
      );
      expect(
        maxDiff(attention.dataSync().subarray(b * h * n * n, (b + 1) * h * n * n), ref.probs),
      ).toBeLessThan(1e-5);
    }
    tf.dispose([x, y, output, attention]);
  });

  it('MLP is fc2(gelu_erf(fc1(x)))', () => {
    const mlp = new MLP({ inFeatures: 6, hiddenFeatures: 10 });
    const x = rand([3, 4, 6], 5);
    mlp.apply(x);
    randomizeWeights(mlp.weights, 9, 0.5);
    const y = mlp.apply(x) as tf.Tensor;
    expect(y.shape).toEqual([3, 4, 6]);
    const w = (s: string) => weightBySuffix(mlp.weights, s);
    const hidden = matmulRef(x.dataSync(), 12, 6, w('fc1/kernel'), 10, w('fc1/bias')).map(geluRef);
    const ref = matmulRef(hidden, 12, 10, w('fc2/kernel'), 6, w('fc2/bias'));
    expect(maxDiff(y.dataSync(), ref)).toBeLessThan(1e-4);
    tf.dispose([x, y]);
  });

  it('LayerNorm uses epsilon 1e-6 and the biased variance', () => {
    const ln = new LayerNorm();
    const x = tf.mul(rand([4, 8], 6), 1e-3); // tiny variance: epsilon matters
    ln.apply(x);
    randomizeWeights(ln.weights, 11);
    const y = ln.apply(x) as tf.Tensor;
    const ref = layerNormRef(
      x.dataSync(),
      4,
      8,
      weightBySuffix(ln.weights, 'gamma'),
      weightBySuffix(ln.weights, 'beta'),
      1e-6,
    );
    expect(maxDiff(y.dataSync(), ref)).toBeLessThan(2e-4);
    tf.dispose([x, y]);
  });

  it('TransformerBlock is pre-norm: x + attn(norm1(x)), then + mlp(norm2(x))', () => {
    const [n, d, h] = [4, 8, 2];
    const block = new TransformerBlock({ dim: d, numHeads: h, mlpRatio: 2 });
    const x = rand([1, n, d], 8);
    block.apply(x);
    randomizeWeights(block.weights, 13);
    const y = block.apply(x) as tf.Tensor;
    const w = (s: string) => weightBySuffix(block.weights, s);
    const xs = Float64Array.from(x.dataSync());
    const a = attentionRef(
      layerNormRef(xs, n, d, w('norm1/gamma'), w('norm1/beta'), 1e-6),
      n,
      d,
      h,
      w('qkv/kernel'),
      w('qkv/bias'),
      w('attn/proj/kernel'),
      w('attn/proj/bias'),
    ).out;
    const x1 = xs.map((v, i) => v + a[i]);
    const hdn = matmulRef(
      layerNormRef(x1, n, d, w('norm2/gamma'), w('norm2/beta'), 1e-6),
      n,
      d,
      w('fc1/kernel'),
      2 * d,
      w('fc1/bias'),
    ).map(geluRef);
    const m = matmulRef(hdn, n, 2 * d, w('fc2/kernel'), d, w('fc2/bias'));
    expect(
      maxDiff(
        y.dataSync(),
        x1.map((v, i) => v + m[i]),
      ),
    ).toBeLessThan(1e-4);
    const { output, attention } = block.callWithAttention(x);
    // Bit for bit: with and without the maps the same computation runs (on wasm one call of
    // vit-ts' fused SIMD kernel, which also returns the probabilities when asked).
    expect(maxDiff(output.dataSync(), y.dataSync())).toBe(0);
    expect(attention.shape).toEqual([1, h, n, n]);
    tf.dispose([x, y, output, attention]);
  });

  it('blocks leak no tensors across repeated calls', () => {
    const block = new TransformerBlock({ dim: 8, numHeads: 2 });
    const x = rand([2, 3, 8], 9);
    tf.dispose(block.apply(x) as tf.Tensor);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) {
      tf.dispose(block.apply(x) as tf.Tensor);
      const r = block.callWithAttention(x);
      tf.dispose([r.output, r.attention]);
    }
    expect(tf.memory().numTensors).toBe(before);
    x.dispose();
  });
});

describeBackends('blocks inside user models', () => {
  it('work in tf.sequential and in a functional CNN -> tokens -> transformer model', async () => {
    const seq = tfl.sequential({
      layers: [
        new PatchEmbed({
          imgSize: 8,
          patchSize: 4,
          inChans: 3,
          embedDim: 8,
          batchInputShape: [null, 8, 8, 3],
        } as never),
        new ViTEmbedding({ numPatches: 4, embedDim: 8 }),
        new TransformerBlock({ dim: 8, numHeads: 2 }),
      ],
    });
    const y = seq.predict(rand([2, 8, 8, 3], 10)) as tf.Tensor;
    expect(y.shape).toEqual([2, 5, 8]);
    // A user CNN produces a feature map; a reshape turns it into tokens for our blocks.
    const inp = tfl.input({ shape: [16, 16, 3] });
    const feat = tfl.layers
      .conv2d({ filters: 8, kernelSize: 3, strides: 4, padding: 'same' })
      .apply(inp) as tfl.SymbolicTensor;
    const tokens = tfl.layers.reshape({ targetShape: [16, 8] }).apply(feat) as tfl.SymbolicTensor;
    const z = new TransformerBlock({ dim: 8, numHeads: 4 }).apply(
      new ViTEmbedding({ numPatches: 16, embedDim: 8 }).apply(tokens),
    ) as tfl.SymbolicTensor;
    const m = tfl.model({ inputs: inp, outputs: z });
    expect(m.outputs[0].shape).toEqual([null, 17, 8]);
    // conv (3*3*3*8 + 8) + cls/pos (8 + 17*8) + block (12*64 + 13*8)
    expect(m.countParams()).toBe(224 + 144 + 872);
    const out = m.predict(rand([1, 16, 16, 3], 11)) as tf.Tensor;
    expect(out.shape).toEqual([1, 17, 8]);
    tf.dispose([y, out]);
  });
});

describeBackends('clear errors', () => {
  it('bad configs throw at construction, naming the argument', () => {
    expect(() => new MultiHeadAttention({ dim: 10, numHeads: 3 })).toThrow(
      /dim \(10\) must be divisible by numHeads \(3\)/,
    );
    expect(() => new TransformerBlock({ dim: 10, numHeads: 4 })).toThrow(ConfigError);
    expect(() => new PatchEmbed({ imgSize: 30, patchSize: 16 })).toThrow(
      /imgSize \[30, 30\] must be divisible by patchSize \[16, 16\]/,
    );
    expect(() => new PatchEmbed({ embedDim: 0 })).toThrow(
      /embedDim must be a positive integer, got 0/,
    );
    expect(() => new PatchEmbed({ patchSize: -4 })).toThrow(
      /patchSize \(height\) must be a positive integer, got -4/,
    );
    expect(() => new MLP({ inFeatures: 4, drop: 1.5 })).toThrow(
      /drop must be a number in \[0, 1\), got 1.5/,
    );
  });

  it('bad inputs throw at call naming expected and received shapes', () => {
    const pe = new PatchEmbed({ imgSize: 8, patchSize: 4, inChans: 3, embedDim: 4 });
    const wrongRank = tf.zeros([8, 8, 3]);
    const wrongChannels = tf.zeros([1, 8, 8, 1]);
    const wrongSize = tf.zeros([1, 12, 8, 3]);
    expect(() => pe.apply(wrongRank)).toThrow(InputShapeError);
    expect(() => pe.apply(wrongRank)).toThrow(
      /expected input of shape \[null, 8, 8, 3\].*got \[8, 8, 3\]/,
    );
    expect(() => pe.apply(wrongChannels)).toThrow(/got \[1, 8, 8, 1\]/);
    expect(() => pe.apply(wrongSize)).toThrow(/got \[1, 12, 8, 3\]/);
    const attn = new MultiHeadAttention({ dim: 8, numHeads: 2 });
    const bad = tf.zeros([1, 3, 6]);
    expect(() => attn.apply(bad)).toThrow(
      /MultiHeadAttention: expected input of shape \[null, null, 8\].*got \[1, 3, 6\]/,
    );
    tf.dispose([wrongRank, wrongChannels, wrongSize, bad]);
  });
});
