/**
 * The hand-built hybrid example (examples/hybrid_by_hand.ts) in its quick mode: the layer tree,
 * the exact parameter count, two training steps, and a saveModel / loadModel round trip with
 * identical outputs, on each Node backend, without leaking tensors.
 */
import * as tf from '@tensorflow/tfjs-core';
import { expect, it } from 'vitest';
import { runHybridByHand } from '../../examples/hybrid_by_hand';
import { describeBackends } from '../helpers/backends';

describeBackends('example: hybrid CNN + ViT built by hand', () => {
  it('summarizes, trains two steps and round-trips through saveModel / loadModel', async () => {
    const before = tf.memory().numTensors;
    const lines: string[] = [];
    const r = await runHybridByHand({
      trainSize: 16,
      epochs: 1,
      batchSize: 8,
      maxSteps: 2,
      evalSize: 8,
      seed: 3,
      log: (l) => lines.push(l),
    });
    // CNN: conv 3x3x1x16 + BN(16) + conv 3x3x16x32 + BN(32); projection 32 -> 64; position
    // embedding 49 x 64; two blocks of 12 D^2 + 13 D; fc_norm; head 64 -> 10.
    const cnn = 9 * 16 + 2 * 16 + 9 * 16 * 32 + 2 * 32;
    const block = 12 * 64 * 64 + 13 * 64;
    expect(r.params).toBe(cnn + (32 * 64 + 64) + 49 * 64 + 2 * block + 2 * 64 + (64 * 10 + 10));
    expect(r.summary).toMatch(/patch_embed\s+HybridEmbed\s+\[B, 49, 64\]/);
    expect(r.summary).toMatch(/cnn\s+Sequential\s+\[B, 7, 7, 32\]/);
    expect(r.losses.length).toBe(2);
    for (const l of r.losses) expect(l).toBeGreaterThan(0.5); // about ln(10) at the start
    for (const l of r.losses) expect(l).toBeLessThan(5);
    expect(r.roundTripMaxDiff).toBe(0);
    expect(r.heldOutAccuracy).toBeGreaterThanOrEqual(0);
    expect(lines.some((l) => l.startsWith('saveModel -> loadModel'))).toBe(true);
    expect(tf.memory().numTensors).toBe(before);
  });
});
