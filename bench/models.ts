/** Models, training steps and the matMul-rate probe shared by the benchmark scripts. */

import type * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { FASHION_VIT_CONFIG } from '../examples/fashion/config';
import { matMulGflops } from '../examples/matmul_rate';
import { MNIST_VIT_CONFIG } from '../examples/mnist/data';
import {
  adamw,
  countViTMacs,
  createResNet18,
  createViT,
  resolveViTConfig,
  softmaxCrossEntropy,
  VIT_PRESETS,
  type ViTConfig,
} from '../src/index';

/** A model under test with its input shape (HWC) and forward FLOPs per image. */
export interface BenchModel {
  name: string;
  model: LayersModel;
  inputShape: [number, number, number];
  numClasses: number;
  flopsPerImage: number;
  optimizer?: tf.Optimizer;
}

/** Multiply-accumulates of ResNet18's convolutions and head for a square input. */
export function resnet18Macs(stem: 'imagenet' | 'cifar', size: number, classes: number): number {
  let macs = 0;
  let s = size;
  const conv = (k: number, ci: number, co: number, stride: number, pad: number) => {
    s = Math.floor((s + 2 * pad - k) / stride) + 1;
    macs += s * s * k * k * ci * co;
  };
  if (stem === 'imagenet') {
    conv(7, 3, 64, 2, 3);
    s = Math.floor((s + 2 - 3) / 2) + 1; // max-pool
  } else conv(3, 3, 64, 1, 1);
  let ci = 64;
  for (const [co, stride] of [
    [64, 1],
    [128, 2],
    [256, 2],
    [512, 2],
  ]) {
    for (let block = 0; block < 2; block++) {
      const st = block === 0 ? stride : 1;
      const sIn = s;
      conv(3, ci, co, st, 1);
      conv(3, co, co, 1, 1);
      if (st !== 1 || ci !== co) {
        const so = Math.floor((sIn - 1) / st) + 1;
        macs += so * so * ci * co;
      }
      ci = co;
    }
  }
  return macs + 512 * classes;
}

/** The ViT training configuration of the issue: ViT-Ti with patch 4 on 32 px, 10 classes. */
export const VIT_TINY_P4_32: ViTConfig = {
  ...VIT_PRESETS.vit_tiny_patch16_224.config,
  imgSize: 32,
  patchSize: 4,
  numClasses: 10,
};

/** The small ViTs the examples train on 28 px grey images (Fashion-MNIST and MNIST). */
export const SMALL_VITS: Record<string, ViTConfig> = {
  vit_fashion_28: FASHION_VIT_CONFIG,
  vit_mnist_28: MNIST_VIT_CONFIG,
};

/**
 * Builds a named model: a ViT preset name (224 px, 1000 classes), `vit_tiny_p4_32` (training
 * configuration), `vit_fashion_28` / `vit_mnist_28` (the examples' small ViTs),
 * `resnet18_imagenet` (224 px) or `resnet18_cifar` (32 px, 10 classes).
 */
export function buildBenchModel(name: string): BenchModel {
  if (name === 'resnet18_imagenet' || name === 'resnet18_cifar') {
    const cifar = name === 'resnet18_cifar';
    const size = cifar ? 32 : 224;
    const classes = cifar ? 10 : 1000;
    return {
      name,
      model: createResNet18({ numClasses: classes, stem: cifar ? 'cifar' : 'imagenet' }),
      inputShape: [size, size, 3],
      numClasses: classes,
      flopsPerImage: 2 * resnet18Macs(cifar ? 'cifar' : 'imagenet', size, classes),
    };
  }
  const config =
    name === 'vit_tiny_p4_32'
      ? VIT_TINY_P4_32
      : (SMALL_VITS[name] ?? VIT_PRESETS[name as keyof typeof VIT_PRESETS]?.config);
  if (!config) throw new Error(`unknown bench model ${name}`);
  const resolved = resolveViTConfig(config);
  return {
    name,
    model: createViT(config),
    inputShape: [resolved.imgSize[0], resolved.imgSize[1], resolved.inChans],
    numClasses: resolved.numClasses,
    flopsPerImage: 2 * countViTMacs(config),
  };
}

/**
 * One training step as `fit` runs it: forward in training mode, softmax cross-entropy,
 * gradients of every trainable weight, one AdamW update. Compiles on first use.
 */
export async function trainStep(bench: BenchModel, x: tf.Tensor, y: tf.Tensor): Promise<number> {
  if (!bench.optimizer) {
    bench.optimizer = adamw({ learningRate: 1e-3, weightDecay: 0.05 });
    bench.model.compile({ optimizer: bench.optimizer, loss: softmaxCrossEntropy() });
  }
  const loss = (await bench.model.trainOnBatch(x, y)) as number;
  return loss;
}

export { median } from '../examples/matmul_rate';

/** Rate of the shared 1024^2 (cpu: 512^2) tf.matMul load indicator, in FLOP/s. */
export async function matMulRate(): Promise<number> {
  return (await matMulGflops()) * 1e9;
}
