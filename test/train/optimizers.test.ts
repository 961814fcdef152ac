import * as tf from '@tensorflow/tfjs-core';
import { expect, it } from 'vitest';
import { AdamW, adam, adamw, ConfigError } from '../../src/index';
import { describeBackends } from '../helpers/backends';
import torchRef from './fixtures/adamw_torch.json';

type Named = Record<string, { shape: number[]; values: number[] }>;

/** Variables named as in the fixture, with a unique suffix so suites do not collide. */
function makeVariables(init: Named, tag: string): Record<string, tf.Variable> {
  const out: Record<string, tf.Variable> = {};
  for (const [name, { shape, values }] of Object.entries(init)) {
    out[name] = tf.variable(tf.tensor(values, shape), true, `${tag}/${name}`);
  }
  return out;
}

function gradMap(vars: Record<string, tf.Variable>, grads: Named): tf.NamedTensorMap {
  const map: tf.NamedTensorMap = {};
  for (const [name, v] of Object.entries(vars))
    map[v.name] = tf.tensor(grads[name].values, grads[name].shape);
  return map;
}

let suite = 0;

describeBackends('optimizers pin PyTorch settings', (backend) => {
  it('adam() and adamw() use epsilon 1e-8 whatever backend.epsilon() says', () => {
    // tf.train.adam() would take the backend's epsilon (1e-4 on webgl in Chromium).
    const backendEps = tf.backend().epsilon();
    expect(new tf.AdamOptimizer(0.1, 0.9, 0.999).getConfig()['epsilon']).toBe(backendEps);
    expect(adam().getConfig()).toEqual({
      learningRate: 1e-3,
      beta1: 0.9,
      beta2: 0.999,
      epsilon: 1e-8,
    });
    expect(adamw().getConfig()).toMatchObject({ epsilon: 1e-8, weightDecay: 1e-2 });
    expect(adamw({ epsilon: 1e-6 }).getConfig()['epsilon']).toBe(1e-6);
  });

  it('AdamW matches a hand-computed 2-step update (decay on the kernel only)', async () => {
    // Constant gradients make Adam's bias-corrected step exactly lr * sign(g) (up to epsilon), so
    // two steps of w <- w * (1 - lr * wd) - lr * sign(g) can be written down by hand.
    const lr = 0.1;
    const wd = 0.1;
    const tag = `hand${suite++}`;
    const kernel = tf.variable(tf.tensor2d([[1, -2]]), true, `${tag}/fc/kernel`);
    const bias = tf.variable(tf.tensor1d([1, -2]), true, `${tag}/fc/bias`);
    const before = tf.memory().numTensors;
    const opt = adamw({ learningRate: lr, weightDecay: wd });
    for (let step = 0; step < 2; step++) {
      const grads = {
        [kernel.name]: tf.tensor2d([[0.5, -0.25]]),
        [bias.name]: tf.tensor1d([0.5, -0.25]),
      };
      opt.applyGradients(grads as tf.NamedTensorMap as Parameters<typeof opt.applyGradients>[0]);
      tf.dispose(Object.values(grads));
    }
    // kernel: (1 * 0.99 - 0.1) * 0.99 - 0.1 = 0.7811; (-2 * 0.99 + 0.1) * 0.99 + 0.1 = -1.7612
    const k = await kernel.data();
    expect(k[0]).toBeCloseTo(0.7811, 5);
    expect(k[1]).toBeCloseTo(-1.7612, 5);
    // bias (rank 1, not decayed): 1 - 0.2 = 0.8; -2 + 0.2 = -1.8
    const b = await bias.data();
    expect(b[0]).toBeCloseTo(0.8, 5);
    expect(b[1]).toBeCloseTo(-1.8, 5);
    // Only the optimizer's own state (2 moments per variable, 2 beta powers) remains.
    expect(tf.memory().numTensors - before).toBe(2 * 2 + 2);
    opt.dispose();
    tf.dispose([kernel, bias]);
  });

  it(`AdamW equals torch.optim.AdamW ${torchRef.torch} over two steps`, async () => {
    const vars = makeVariables(torchRef.initial as Named, `torch${suite++}`);
    const opt = adamw({
      learningRate: torchRef.lr,
      weightDecay: torchRef.weightDecay,
      beta1: torchRef.beta1,
      beta2: torchRef.beta2,
      epsilon: torchRef.epsilon,
    });
    for (const [step, g] of torchRef.grads.entries()) {
      const grads = gradMap(vars, g as Named);
      opt.applyGradients(grads as tf.NamedTensorMap as Parameters<typeof opt.applyGradients>[0]);
      tf.dispose(Object.values(grads));
      for (const [name, v] of Object.entries(vars)) {
        const expected = (torchRef.after[step] as Record<string, number[]>)[name];
        const got = await v.data();
        for (let i = 0; i < got.length; i++)
          expect(Math.abs(got[i] - expected[i])).toBeLessThan(2e-6);
      }
    }
    // The decayed kernel moved differently from plain Adam: check decay was really applied.
    const plain = makeVariables(torchRef.initial as Named, `plain${suite++}`);
    const adamOpt = adam({ learningRate: torchRef.lr, epsilon: torchRef.epsilon });
    for (const g of torchRef.grads) {
      const grads = gradMap(plain, g as Named);
      adamOpt.applyGradients(grads as Parameters<typeof adamOpt.applyGradients>[0]);
      tf.dispose(Object.values(grads));
    }
    const kName = 'blocks/0/fc1/kernel';
    const decayGap = Math.abs((await plain[kName].data())[0] - (await vars[kName].data())[0]);
    expect(decayGap).toBeGreaterThan(1e-3);
    const cls = 'embed/cls_token';
    expect(Array.from(await plain[cls].data())).toEqual(Array.from(await vars[cls].data()));
    opt.dispose();
    adamOpt.dispose();
    tf.dispose([...Object.values(vars), ...Object.values(plain)]);
  });

  it(`AdamW survives serialization and trains a compiled model (${backend})`, async () => {
    const opt = adamw({ learningRate: 0.01, weightDecay: 0.05, noWeightDecay: ['pos_embed'] });
    expect(opt.getClassName()).toBe('VitTs>AdamW');
    const restored = tf.serialization.SerializationMap.getMap().classNameMap['VitTs>AdamW'];
    expect(restored).toBeDefined();
    const [cls, fromConfig] = restored;
    const copy = fromConfig(cls, opt.getConfig()) as AdamW;
    expect(copy).toBeInstanceOf(AdamW);
    expect(copy.getConfig()).toEqual(opt.getConfig());
    opt.dispose();
    copy.dispose();
  });

  it('rejects bad options with a clear message', () => {
    expect(() => adamw({ weightDecay: -1 })).toThrow(ConfigError);
    expect(() => adamw({ weightDecay: -1 })).toThrow(/weightDecay/);
    expect(() => adam({ beta1: 1 })).toThrow(/beta1 must be a number in \[0, 1\), got 1/);
    expect(() => adam({ learningRate: 0 })).toThrow(/learningRate/);
  });
});
