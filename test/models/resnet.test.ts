import * as tf from '@tensorflow/tfjs-core';
import { expect, it } from 'vitest';
import { BasicBlock, countTrainableParams, createResNet18, ResNet18 } from '../../src/index';
import { describeBackends, maxAbsDiff } from '../helpers/backends';
import { randomizeWeights } from '../helpers/weights';

describeBackends('ResNet18 structure', () => {
  it("has torchvision's exact parameter counts (ImageNet stem, and CIFAR stem with 10 classes)", () => {
    const imagenet = createResNet18();
    expect(countTrainableParams(imagenet)).toBe(11_689_512);
    expect(imagenet.countParams()).toBe(11_689_512 + 2 * 4800); // + BN running mean/var
    const cifar = createResNet18({ numClasses: 10, stem: 'cifar' });
    expect(countTrainableParams(cifar)).toBe(11_173_962);
    expect(cifar.countParams()).toBe(11_183_562);
    const names = cifar.weights.map((w) => w.originalName);
    expect(new Set(names).size).toBe(names.length);
    expect(names).toContain('resnet18/layer2/0/downsample/0/kernel');
    expect(names).toContain('resnet18/layer4/1/bn2/moving_variance');
    expect(names).not.toContain('resnet18/layer1/0/downsample/0/kernel');
    imagenet.dispose();
    cifar.dispose();
  });

  it('rejects bad configs and inputs clearly', () => {
    expect(() => new ResNet18({ stem: 'tiny' as never })).toThrow(
      /stem must be 'imagenet' or 'cifar', got 'tiny'/,
    );
    expect(() => createResNet18({ numClasses: 2.5 })).toThrow(
      /numClasses must be an integer >= 0, got 2.5/,
    );
    const r = new ResNet18({ numClasses: 3, stem: 'cifar' });
    const gray = tf.zeros([1, 32, 32, 1]);
    expect(() => r.apply(gray)).toThrow(
      /ResNet18: expected input of shape \[null, null, null, 3\].*got \[1, 32, 32, 1\]/,
    );
    gray.dispose();
  });
}, ['cpu']);

/** A conv with PyTorch's symmetric `padding=p`, as explicit pad + valid conv. */
function torchConv(x: tf.Tensor4D, k: tf.Tensor4D, stride: number, pad: number): tf.Tensor4D {
  return tf.conv2d(
    tf.pad(x, [
      [0, 0],
      [pad, pad],
      [pad, pad],
      [0, 0],
    ]),
    k,
    stride,
    'valid',
  );
}

/** Inference BatchNorm written out: (x - mean) / sqrt(var + 1e-5) * gamma + beta. */
function bnRef(x: tf.Tensor, w: Map<string, tf.Tensor>, p: string): tf.Tensor {
  const get = (n: string) => w.get(`${p}/${n}`) as tf.Tensor;
  return tf.add(
    tf.mul(
      tf.div(tf.sub(x, get('moving_mean')), tf.sqrt(tf.add(get('moving_variance'), 1e-5))),
      get('gamma'),
    ),
    get('beta'),
  );
}

describeBackends('ResNet18 numerics', () => {
  it("BasicBlock with a stride-2 projection matches PyTorch's padding and BN semantics", () => {
    const block = new BasicBlock({ inChannels: 3, outChannels: 4, stride: 2 });
    const x = tf.randomNormal([2, 6, 6, 3], 0, 1, 'float32', 1) as tf.Tensor4D;
    block.apply(x);
    randomizeWeights(block.weights, 3, 0.3);
    const y = block.apply(x) as tf.Tensor;
    expect(y.shape).toEqual([2, 3, 3, 4]);
    const w = new Map(block.weights.map((v) => [v.originalName.replace(/^[^/]+\//, ''), v.read()]));
    const ref = tf.tidy(() => {
      const k = (n: string) => w.get(n) as tf.Tensor4D;
      const h = tf.relu(bnRef(torchConv(x, k('conv1/kernel'), 2, 1), w, 'bn1')) as tf.Tensor4D;
      const main = bnRef(torchConv(h, k('conv2/kernel'), 1, 1), w, 'bn2');
      const short = bnRef(torchConv(x, k('downsample/0/kernel'), 2, 0), w, 'downsample/1');
      return tf.relu(tf.add(main, short));
    });
    expect(maxAbsDiff(y, ref)).toBeLessThan(1e-4);
    tf.dispose([x, y, ref]);
  });

  it('training-mode BN normalizes with batch statistics and updates running stats like PyTorch', () => {
    const block = new BasicBlock({ inChannels: 2, outChannels: 2 });
    const x = tf.randomNormal([4, 5, 5, 2], 2, 3, 'float32', 4);
    block.apply(x);
    const mean0 = block.weights.find((v) => v.originalName.endsWith('bn1/moving_mean'))!;
    const var0 = block.weights.find((v) => v.originalName.endsWith('bn1/moving_variance'))!;
    const conv1 = block.weights.find((v) => v.originalName.endsWith('conv1/kernel'))!;
    const expected = tf.tidy(() => {
      const c = torchConv(x as tf.Tensor4D, conv1.read() as tf.Tensor4D, 1, 1);
      const { mean, variance } = tf.moments(c, [0, 1, 2]);
      const n = 4 * 5 * 5;
      return [tf.mul(mean, 0.1), tf.add(0.9, tf.mul(variance, (0.1 * n) / (n - 1)))];
    });
    const y = block.apply(x, { training: true }) as tf.Tensor;
    expect(maxAbsDiff(mean0.read(), expected[0])).toBeLessThan(1e-5);
    expect(maxAbsDiff(var0.read(), expected[1])).toBeLessThan(1e-4);
    tf.dispose([x, y, ...expected]);
  });

  it('ImageNet stem: 32 px input gives [B, classes] and a leak-free predict', () => {
    const m = createResNet18({ numClasses: 7, imgSize: 32 });
    const x = tf.randomNormal([1, 32, 32, 3]);
    tf.dispose(m.predict(x) as tf.Tensor);
    const before = tf.memory().numTensors;
    const y = m.predict(x) as tf.Tensor;
    expect(y.shape).toEqual([1, 7]);
    y.dispose();
    expect(tf.memory().numTensors).toBe(before);
    x.dispose();
    m.dispose();
  });
});
