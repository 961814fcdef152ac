import * as tf from '@tensorflow/tfjs-core';
import { expect, it } from 'vitest';
import { activeBackends, describeBackends } from '../helpers/backends';

// The backend-selection snippets of docs/backends.md (examples/backends/*.ts, kept identical to
// the docs by test/package/docs_snippets.test.ts) run on the backends of this run: cpu and wasm
// in Node, webgl and webgpu in the browser run.
const EXAMPLES: Record<string, () => Promise<{ run: () => Promise<Float32Array> }>> = {
  cpu: () => import('../../examples/backends/cpu'),
  wasm: () => import('../../examples/backends/wasm'),
  webgl: () => import('../../examples/backends/webgl'),
  webgpu: () => import('../../examples/backends/webgpu'),
};

describeBackends(
  'docs/backends.md snippet',
  (backend) => {
    it(`selects ${backend} and runs a ViT on it`, async () => {
      const before = tf.memory().numTensors;
      const { run } = await EXAMPLES[backend]();
      const logits = await run();
      expect(tf.getBackend()).toBe(backend);
      expect(logits.length).toBe(10);
      expect(Array.from(logits).every(Number.isFinite)).toBe(true);
      expect(tf.memory().numTensors).toBe(before);
    });
  },
  activeBackends().filter((b) => b in EXAMPLES),
);
