import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import {
  attentionRollout,
  createViT,
  type HeadFusion,
  rolloutFromAttentions,
  rolloutMatrix,
} from '../../src/index';
import { describeBackends, maxAbsDiff } from '../helpers/backends';

interface RolloutCase {
  name: string;
  numPrefixTokens: number;
  classToken: boolean;
  gridSize: [number, number];
  shape: [number, number, number, number];
  attentions: number[][][][][];
  results: {
    headFusion: HeadFusion;
    discardRatio: number;
    grid: number[][][];
    matrix?: number[][][];
  }[];
}

// Written by scripts/fixtures/rollout_ref.py (numpy, implemented from the paper's description).
const fixture = JSON.parse(
  readFileSync(new URL('../fixtures/analysis/rollout.json', import.meta.url), 'utf8'),
) as { cases: RolloutCase[] };

describeBackends('attention rollout', () => {
  for (const c of fixture.cases) {
    describe(c.name, () => {
      for (const r of c.results) {
        it(`matches numpy: headFusion ${r.headFusion}, discardRatio ${r.discardRatio}`, () => {
          const atts = c.attentions.map((a) => tf.tensor4d(a as number[][][][]));
          const opts = {
            headFusion: r.headFusion,
            discardRatio: r.discardRatio,
            numPrefixTokens: c.numPrefixTokens,
            classToken: c.classToken,
            gridSize: c.gridSize,
          };
          const expected = tf.tensor(r.grid);
          const grid = rolloutFromAttentions(atts, opts);
          expect(grid.shape).toEqual([c.shape[0], ...c.gridSize]);
          expect(maxAbsDiff(grid, expected)).toBeLessThan(1e-5);
          if (r.matrix) {
            const m = rolloutMatrix(atts, opts);
            const expectedMatrix = tf.tensor(r.matrix);
            expect(maxAbsDiff(m, expectedMatrix)).toBeLessThan(1e-5);
            // Every rollout row is a distribution over the input tokens.
            const rowSums = tf.sum(m, -1);
            expect(maxAbsDiff(rowSums, new Array(rowSums.size).fill(1))).toBeLessThan(1e-5);
            tf.dispose([m, rowSums, expectedMatrix]);
          }
          tf.dispose([...atts, grid, expected]);
        });
      }
    });
  }

  it('leaks no tensors', () => {
    const c = fixture.cases[0];
    const atts = c.attentions.map((a) => tf.tensor4d(a as number[][][][]));
    const before = tf.memory().numTensors;
    const grid = rolloutFromAttentions(atts, { headFusion: 'max', discardRatio: 0.9 });
    grid.dispose();
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose(atts);
  });

  it('one layer without discarding is (A + I) / 2 row-normalised: the class-token row by hand', () => {
    // N = 1 + 4 tokens, one head: A rows are distributions, so rowsum(A + I) = 2.
    const a = [
      [0.1, 0.2, 0.3, 0.4, 0.0],
      [0.2, 0.2, 0.2, 0.2, 0.2],
      [0.5, 0.0, 0.0, 0.5, 0.0],
      [0.0, 1.0, 0.0, 0.0, 0.0],
      [0.25, 0.25, 0.25, 0.25, 0.0],
    ];
    const att = tf.tensor4d([[a]]);
    const grid = rolloutFromAttentions([att]);
    expect(grid.shape).toEqual([1, 2, 2]);
    expect(Array.from(grid.dataSync())).toEqual(
      [0.2, 0.3, 0.4, 0.0].map((v) => v / 2).map((v) => expect.closeTo(v, 6)),
    );
    tf.dispose([att, grid]);
  });

  it('throws clear errors on bad inputs', () => {
    const ok = tf.fill([1, 2, 5, 5], 0.2) as tf.Tensor4D;
    expect(() => rolloutFromAttentions([ok], { discardRatio: 1 })).toThrow(
      /discardRatio must be a number in \[0, 1\), got 1/,
    );
    expect(() => rolloutFromAttentions([ok], { discardRatio: -0.1 })).toThrow(/discardRatio/);
    expect(() => rolloutFromAttentions([ok], { headFusion: 'median' as HeadFusion })).toThrow(
      /headFusion must be 'mean', 'max' or 'min'/,
    );
    expect(() => rolloutFromAttentions([])).toThrow(/non-empty array/);
    const rank3 = tf.ones([2, 5, 5]);
    expect(() => rolloutFromAttentions([rank3 as unknown as tf.Tensor4D])).toThrow(
      /attentions\[0\] must have shape \[B, heads, N, N\], got \[2, 5, 5\]/,
    );
    const other = tf.ones([1, 2, 10, 10]) as tf.Tensor4D;
    expect(() => rolloutFromAttentions([ok, other])).toThrow(
      /attentions\[1\] has shape \[1, 2, 10, 10\], but attentions\[0\] has \[1, 2, 5, 5\]/,
    );
    const odd = tf.fill([1, 1, 11, 11], 1 / 11) as tf.Tensor4D;
    expect(() => rolloutFromAttentions([odd])).toThrow(
      /10 patch tokens do not form a square grid; pass gridSize/,
    );
    // The full matrix needs no grid.
    const m = rolloutMatrix([odd]);
    expect(m.shape).toEqual([1, 11, 11]);
    tf.dispose([odd, m]);
    expect(() => rolloutFromAttentions([ok], { gridSize: [3, 2] })).toThrow(
      /gridSize \[3, 2\] has 6 patches, but the attention has 4 patch tokens/,
    );
    tf.dispose([ok, rank3, other]);
  });
});

describeBackends('attentionRollout on a model', () => {
  it('returns one grid per image for a non-square ViT with registers', () => {
    const model = createViT({
      imgSize: [16, 24],
      patchSize: 8,
      embedDim: 16,
      depth: 3,
      numHeads: 2,
      numClasses: 4,
      numRegTokens: 2,
    });
    const x = tf.randomUniform([2, 16, 24, 3]);
    const before = tf.memory().numTensors;
    const g = attentionRollout(model, x, { headFusion: 'max', discardRatio: 0.5, layers: [0, -1] });
    expect(g.shape).toEqual([2, 2, 3]);
    const v = g.dataSync();
    expect(v.every((e) => Number.isFinite(e) && e >= 0 && e <= 1)).toBe(true);
    g.dispose();
    expect(tf.memory().numTensors).toBe(before);
    expect(() => attentionRollout(model, x, { layers: [3] })).toThrow(
      /layers entries must be integers in \[-3, 2\].*got 3/,
    );
    expect(() => attentionRollout(model, x, { discardRatio: 1.5 })).toThrow(
      /discardRatio must be a number in \[0, 1\)/,
    );
    expect(() => attentionRollout(model, tf.zeros([2, 16, 16, 3]))).toThrow(
      /images must have shape \[null, 16, 24, 3\].*got \[2, 16, 16, 3\]/,
    );
    x.dispose();
    model.dispose();
  });
});
