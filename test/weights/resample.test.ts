import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { ConfigError, InputShapeError } from '../../src/errors';
import {
  type ResizeMethod,
  resamplePosEmbed,
  resize2d,
  resizeWeightMatrix,
} from '../../src/weights/resample';
import {
  entryToTensor,
  readSafetensors,
  type SafetensorsEntry,
} from '../../src/weights/safetensors';
import { describeBackends, maxAbsDiff } from '../helpers/backends';

const FIXTURE = new URL('../fixtures/weights/resample.safetensors', import.meta.url);
const TOLERANCE = 1e-5;

interface ResizeCase {
  name: string;
  kind: 'resize';
  size: [number, number];
  method: ResizeMethod;
  antialias: boolean;
}
interface PosEmbedCase {
  name: string;
  kind: 'posembed';
  oldGrid: [number, number];
  newGrid: [number, number];
  numPrefixTokens: number;
  method: ResizeMethod;
  antialias: boolean;
}

const fixture = readSafetensors(readFileSync(FIXTURE));
const cases = JSON.parse(fixture.metadata.cases) as Array<ResizeCase | PosEmbedCase>;
const tensor = (name: string): tf.Tensor =>
  entryToTensor(fixture.tensors.get(name) as SafetensorsEntry, name);

function row(m: Float64Array, inSize: number, i: number): number[] {
  return Array.from(m.subarray(i * inSize, (i + 1) * inSize));
}

describe('resizeWeightMatrix', () => {
  it('matches hand-computed bicubic weights (a = -0.75, clamped borders) for 2 -> 4', () => {
    const m = resizeWeightMatrix(2, 4, { method: 'bicubic' });
    // Output 0 samples x = -0.25: taps at -2, -1, 0, 1 with weights
    // W(1.75) = -0.03515625, W(0.75) = 0.26171875, W(0.25) = 0.87890625, W(1.25) = -0.10546875;
    // the three left taps clamp onto pixel 0.
    const r0 = row(m, 2, 0);
    expect(r0[0]).toBeCloseTo(-0.03515625 + 0.26171875 + 0.87890625, 12);
    expect(r0[1]).toBeCloseTo(-0.10546875, 12);
    // Output 1 samples x = 0.25: taps -1, 0, 1, 2 with W(1.25), W(0.25), W(0.75), W(1.75).
    const r1 = row(m, 2, 1);
    expect(r1[0]).toBeCloseTo(-0.10546875 + 0.87890625, 12);
    expect(r1[1]).toBeCloseTo(0.26171875 - 0.03515625, 12);
  });

  it('matches hand-computed bilinear weights for 2 -> 4 and 4 -> 2', () => {
    const up = resizeWeightMatrix(2, 4, { method: 'bilinear' });
    expect([0, 1, 2, 3].map((i) => row(up, 2, i))).toEqual([
      [1, 0], // x = -0.25 clamps to 0
      [0.75, 0.25],
      [0.25, 0.75],
      [0, 1], // x = 1.25: right neighbour clamps onto the last pixel
    ]);
    const down = resizeWeightMatrix(4, 2, { method: 'bilinear' });
    expect(row(down, 4, 0)).toEqual([0.5, 0.5, 0, 0]);
    // Antialiased 4 -> 2: triangle stretched to half-width 2 centred at 1; pixel centres 0.5,
    // 1.5, 2.5 weigh 0.75, 0.75, 0.25 (pixel 3 is outside the support), normalized by 1.75.
    const aa = row(resizeWeightMatrix(4, 2, { method: 'bilinear', antialias: true }), 4, 0);
    [3 / 7, 3 / 7, 1 / 7, 0].forEach((v, j) => {
      expect(aa[j]).toBeCloseTo(v, 12);
    });
  });

  it('rows sum to 1 and equal sizes give the identity', () => {
    for (const method of ['bicubic', 'bilinear'] as const) {
      for (const antialias of [false, true]) {
        for (const [a, b] of [
          [3, 7],
          [7, 3],
          [14, 24],
          [24, 14],
          [1, 4],
          [5, 1],
        ]) {
          const m = resizeWeightMatrix(a, b, { method, antialias });
          for (let i = 0; i < b; i++)
            expect(row(m, a, i).reduce((s, v) => s + v, 0)).toBeCloseTo(1, 12);
        }
        const id = resizeWeightMatrix(5, 5, { method, antialias });
        for (let i = 0; i < 5; i++)
          expect(row(id, 5, i)).toEqual([0, 1, 2, 3, 4].map((j) => (j === i ? 1 : 0)));
      }
    }
  });

  it('antialias changes bicubic upsampling (a = -0.5 kernel) but not bilinear upsampling', () => {
    const max = (x: Float64Array, y: Float64Array) =>
      Math.max(...x.map((v, i) => Math.abs(v - y[i])));
    expect(
      max(
        resizeWeightMatrix(14, 24, { method: 'bilinear', antialias: true }),
        resizeWeightMatrix(14, 24, { method: 'bilinear' }),
      ),
    ).toBeLessThan(1e-12);
    expect(
      max(
        resizeWeightMatrix(14, 24, { method: 'bicubic', antialias: true }),
        resizeWeightMatrix(14, 24, { method: 'bicubic' }),
      ),
    ).toBeGreaterThan(1e-3);
  });

  it('rejects bad sizes and methods', () => {
    expect(() => resizeWeightMatrix(0, 3, { method: 'bicubic' })).toThrow(ConfigError);
    expect(() => resizeWeightMatrix(3, 2.5, { method: 'bicubic' })).toThrow(
      /outSize must be a positive integer, got 2.5/,
    );
    expect(() => resizeWeightMatrix(3, 2, { method: 'nearest' as ResizeMethod })).toThrow(
      /method must be 'bicubic' or 'bilinear', got nearest/,
    );
  });
});

describeBackends('resize2d / resamplePosEmbed vs PyTorch', () => {
  for (const c of cases) {
    it(`${c.name} (${c.kind}, ${c.method}, antialias=${c.antialias}) within ${TOLERANCE}`, () => {
      const before = tf.memory().numTensors;
      const input = tensor(`${c.name}.input`);
      const expected = tensor(`${c.name}.output`);
      const got =
        c.kind === 'resize'
          ? resize2d(input as tf.Tensor4D, c.size, { method: c.method, antialias: c.antialias })
          : resamplePosEmbed(input, {
              newGrid: c.newGrid,
              // The inferred square grid is exercised whenever the old grid is square.
              oldGrid: c.oldGrid[0] === c.oldGrid[1] ? undefined : c.oldGrid,
              numPrefixTokens: c.numPrefixTokens,
              method: c.method,
              antialias: c.antialias,
            });
      expect(got.shape).toEqual(expected.shape);
      expect(maxAbsDiff(got, expected)).toBeLessThanOrEqual(TOLERANCE);
      tf.dispose([input, expected, got]);
      expect(tf.memory().numTensors).toBe(before);
    });
  }

  it('keeps the prefix rows bit-exact', () => {
    const input = tensor('pos_reg_3x4_to_5x2.input');
    const out = resamplePosEmbed(input, { newGrid: [5, 2], oldGrid: [3, 4], numPrefixTokens: 5 });
    const a = tf.slice(input, [0, 0, 0], [1, 5, -1]);
    const b = tf.slice(out, [0, 0, 0], [1, 5, -1]);
    expect(Array.from(b.dataSync())).toEqual(Array.from(a.dataSync()));
    tf.dispose([input, out, a, b]);
  });

  it('defaults to timm: bicubic, antialias, one prefix token', () => {
    const input = tensor('pos_cls_4x4_to_6x6.input');
    const expected = tensor('pos_cls_4x4_to_6x6.output');
    const got = resamplePosEmbed(input, { newGrid: [6, 6] });
    expect(maxAbsDiff(got, expected)).toBeLessThanOrEqual(TOLERANCE);
    tf.dispose([input, expected, got]);
  });

  it('has the gradient of the separable product (2-D matMuls only)', () => {
    const x = tf.randomNormal([2, 3, 5, 2], 0, 1, 'float32', 3) as tf.Tensor4D;
    const opts = { method: 'bicubic' as const, antialias: true };
    const grad = tf.grad((t: tf.Tensor) => tf.sum(resize2d(t as tf.Tensor4D, [6, 4], opts)))(x);
    // d sum / d x[b, h, w, c] = (column sum h of Wh) * (column sum w of Ww).
    const wh = resizeWeightMatrix(3, 6, opts);
    const ww = resizeWeightMatrix(5, 4, opts);
    const colSum = (m: Float64Array, inSize: number, j: number) => {
      let s = 0;
      for (let i = 0; i < m.length / inSize; i++) s += m[i * inSize + j];
      return s;
    };
    const expected: number[] = [];
    for (let b = 0; b < 2; b++)
      for (let h = 0; h < 3; h++)
        for (let w = 0; w < 5; w++)
          for (let c = 0; c < 2; c++) expected.push(colSum(wh, 3, h) * colSum(ww, 5, w));
    expect(maxAbsDiff(grad, expected)).toBeLessThan(1e-5);
    tf.dispose([x, grad]);
  });

  it('returns a distinct tensor when the size does not change', () => {
    const x = tf.ones([1, 2, 2, 1]) as tf.Tensor4D;
    const y = resize2d(x, [2, 2], { method: 'bicubic' });
    expect(y).not.toBe(x);
    x.dispose();
    expect(Array.from(y.dataSync())).toEqual([1, 1, 1, 1]);
    y.dispose();
  });

  it('rejects bad input with clear errors', () => {
    const pe = tf.zeros([1, 1 + 12, 4]);
    const flat = tf.zeros([13, 4]);
    const rank3 = tf.zeros([2, 2, 1]);
    const image = tf.zeros([1, 2, 2, 1]) as tf.Tensor4D;
    const before = tf.memory().numTensors;
    expect(() => resamplePosEmbed(pe, { newGrid: [4, 4] })).toThrow(InputShapeError);
    expect(() => resamplePosEmbed(pe, { newGrid: [4, 4] })).toThrow(
      /12 grid tokens after 1 prefix tokens, not a square number; pass options.oldGrid/,
    );
    expect(() => resamplePosEmbed(pe, { newGrid: [4, 4], oldGrid: [3, 3] })).toThrow(
      /oldGrid \[3,3\] has 9 cells but posEmbed \[1, 13, 4\] has 12 grid tokens/,
    );
    expect(() => resamplePosEmbed(pe, { newGrid: [0, 4], oldGrid: [3, 4] })).toThrow(
      /newGrid\[0\] must be a positive integer, got 0/,
    );
    expect(() => resamplePosEmbed(pe, { newGrid: [4, 4], numPrefixTokens: 13 })).toThrow(
      /has 13 tokens, not more than numPrefixTokens=13/,
    );
    expect(() => resamplePosEmbed(flat, { newGrid: [4, 4] })).toThrow(
      /posEmbed must be a rank-3 tensor/,
    );
    expect(() => resize2d(rank3 as tf.Tensor4D, [3, 3], { method: 'bicubic' })).toThrow(
      /x must be a rank-4 NHWC tensor/,
    );
    expect(() =>
      resize2d(image, [3, 3], { method: 'bicubic', alignCorners: true as false }),
    ).toThrow(/only alignCorners=false/);
    expect(() => resize2d(image, [3, 0], { method: 'bicubic' })).toThrow(
      /size\[1\] \(width\) must be a positive integer, got 0/,
    );
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([pe, flat, rank3, image]);
  });
});
