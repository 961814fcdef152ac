/**
 * The shared pieces every layer leans on: one error hierarchy (every class a VitTsError), one
 * divisibility check, one token geometry, one value description for messages.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { describe, expect, it } from 'vitest';
import {
  AtomicWriteError,
  BackendError,
  CheckpointError,
  ConfigError,
  DataError,
  describeValue,
  InputShapeError,
  kindOf,
  ModelFileError,
  NotBuiltError,
  requireDivisible,
  SafetensorsError,
  showValue,
  VitTsError,
} from '../../src/errors';
import { patchGrid, tokenGeometry, toPair } from '../../src/geometry';
import * as api from '../../src/index';
import { MultiHeadAttention } from '../../src/layers/attention';
import { readWeight } from '../../src/layers/layer_utils';
import { shortClassName } from '../../src/layers/register';
import { TransformerBlock } from '../../src/layers/transformer_block';
import { countViTMacs, countViTParams } from '../../src/models/param_count';
import { VisionTransformer } from '../../src/models/vision_transformer';
import { CheckpointError as CheckpointErrorFromLoad } from '../../src/weights/load';
import { SafetensorsError as SafetensorsErrorFromWeights } from '../../src/weights/safetensors';

describe('error classes', () => {
  it('every error class is a VitTsError with its own name, exported from the package root', () => {
    const made = [
      new ConfigError('a'),
      new InputShapeError('b'),
      new SafetensorsError('c'),
      new CheckpointError('d', { loaded: [] } as never),
      new ModelFileError('e'),
      new BackendError('f'),
      new DataError('h'),
      new NotBuiltError('g'),
      new AtomicWriteError('i'),
    ];
    for (const e of made) {
      expect(e).toBeInstanceOf(VitTsError);
      expect(e).toBeInstanceOf(Error);
      expect(e.name).toBe(e.constructor.name);
      expect((api as Record<string, unknown>)[e.name]).toBe(e.constructor);
    }
    // Moved classes stay importable from where they were.
    expect(SafetensorsErrorFromWeights).toBe(SafetensorsError);
    expect(CheckpointErrorFromLoad).toBe(CheckpointError);
  });

  it('requireDivisible returns the quotient or names both values and the remainder', () => {
    expect(requireDivisible('X', 'dim', 768, 'numHeads', 12)).toBe(64);
    expect(() => requireDivisible('X', 'dim', 100, 'numHeads', 12)).toThrow(
      'X: dim (100) must be divisible by numHeads (12); got remainder 4',
    );
    expect(() => new MultiHeadAttention({ dim: 10, numHeads: 4 })).toThrow(ConfigError);
    expect(() => new TransformerBlock({ dim: 10, numHeads: 4 })).toThrow(
      /TransformerBlock: dim \(10\) must be divisible by numHeads \(4\); got remainder 2/,
    );
  });

  it('describes values for messages', () => {
    const t = tf.zeros([2, 3]);
    expect(describeValue(t)).toBe('a tensor of shape [2, 3]');
    t.dispose();
    expect(describeValue([1, 2])).toBe('an array of length 2');
    expect(describeValue('abc')).toBe("'abc'");
    expect(describeValue(null)).toBe('null');
    expect(describeValue(undefined)).toBe('undefined');
    expect(describeValue({})).toBe('an object');
    expect(describeValue(new Map())).toBe('Map');
    expect(showValue({ a: 1 })).toBe('{"a":1}');
    expect(showValue('x'.repeat(200))).toHaveLength(80);
    expect(kindOf(3)).toBe('number 3');
    expect(kindOf([])).toBe('an array');
  });

  it('readWeight before build throws NotBuiltError naming layer and weight', () => {
    expect(() => readWeight(undefined, 'PatchEmbed', 'proj/kernel')).toThrow(NotBuiltError);
    expect(() => readWeight(null, 'PatchEmbed', 'proj/kernel')).toThrow(
      'PatchEmbed: weight proj/kernel used before build()',
    );
  });

  it('shortClassName strips only the vit-ts prefix', () => {
    expect(shortClassName('VitTs>PatchEmbed')).toBe('PatchEmbed');
    expect(shortClassName('Dense')).toBe('Dense');
  });
});

describe('token geometry', () => {
  it('computes grid, prefix and sequence length', () => {
    expect(toPair('T', 'imgSize', 224)).toEqual([224, 224]);
    expect(toPair('T', 'imgSize', [32, 48])).toEqual([32, 48]);
    expect(() => toPair('T', 'imgSize', [1, 2, 3] as never)).toThrow(
      'T: imgSize must be a number or [height, width], got [1, 2, 3]',
    );
    expect(patchGrid('T', [224, 224], [16, 16])).toEqual({ gridSize: [14, 14], numPatches: 196 });
    expect(patchGrid('T', [32, 48], [8, 16])).toEqual({ gridSize: [4, 3], numPatches: 12 });
    expect(() => patchGrid('T', [30, 32], [16, 16])).toThrow(
      'T: imgSize [30, 32] must be divisible by patchSize [16, 16]; got remainders [14, 0]',
    );
    expect(
      tokenGeometry('T', {
        imgSize: [224, 224],
        patchSize: [16, 16],
        classToken: true,
        numRegTokens: 4,
      }),
    ).toEqual({ gridSize: [14, 14], numPatches: 196, numPrefixTokens: 5, numTokens: 201 });
  });

  it('VisionTransformer, countViTParams and countViTMacs agree with the geometry', () => {
    const config = {
      imgSize: [32, 48] as [number, number],
      patchSize: 8,
      embedDim: 16,
      depth: 1,
      numHeads: 2,
      numRegTokens: 2,
      numClasses: 3,
    };
    const vit = new VisionTransformer(config);
    expect(vit.gridSize).toEqual([4, 6]);
    expect(vit.numPrefixTokens).toBe(3);
    expect(vit.geometry.numTokens).toBe(27);
    // Position embedding: 27 rows of 16; class token 16; registers 2 x 16.
    const d = 16;
    const hidden = 64;
    const block = 4 * d + (3 * d * d + 3 * d + d * d + d) + (d * hidden + hidden + hidden * d + d);
    const expected = 8 * 8 * 3 * d + d + d + 2 * d + 27 * d + block + 2 * d + d * 3 + 3;
    expect(countViTParams(config)).toBe(expected);
    const n = 27;
    const macs =
      24 * 8 * 8 * 3 * d + (n * d * 3 * d + 2 * n * n * d + n * d * d + 2 * n * d * hidden) + d * 3;
    expect(countViTMacs(config)).toBe(macs);
  });
});
