import * as tf from '@tensorflow/tfjs-core';
import { expect, it } from 'vitest';
import { softmaxCrossEntropy } from '../../src/index';
import { describeBackends } from '../helpers/backends';

describeBackends('softmaxCrossEntropy', () => {
  it('equals -log softmax of the true class, averaged (PyTorch CrossEntropyLoss)', async () => {
    const logits = tf.tensor2d([
      [2, -1, 0.5],
      [-3, 4, 1],
    ]);
    const y = tf.tensor2d([
      [1, 0, 0],
      [0, 0, 1],
    ]);
    const loss = softmaxCrossEntropy()(y, logits);
    const lse = (r: number[]) => Math.log(r.reduce((a, v) => a + Math.exp(v), 0));
    const expected = (lse([2, -1, 0.5]) - 2 + (lse([-3, 4, 1]) - 1)) / 2;
    expect((await loss.data())[0]).toBeCloseTo(expected, 5);
    // Label smoothing 0.3 over 3 classes: targets 0.8 / 0.1 / 0.1.
    const smooth = softmaxCrossEntropy({ labelSmoothing: 0.3 })(y, logits);
    const ls = (r: number[], t: number[]) => -t.reduce((a, ti, i) => a + ti * (r[i] - lse(r)), 0);
    const expectedSmooth =
      (ls([2, -1, 0.5], [0.8, 0.1, 0.1]) + ls([-3, 4, 1], [0.1, 0.1, 0.8])) / 2;
    expect((await smooth.data())[0]).toBeCloseTo(expectedSmooth, 5);
    expect(() => softmaxCrossEntropy({ labelSmoothing: 1 })).toThrow(
      /labelSmoothing must be a number in \[0, 1\), got 1/,
    );
    tf.dispose([logits, y, loss, smooth]);
  });
});
