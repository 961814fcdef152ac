import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe } from 'vitest';

/** Backends every backend-facing suite runs on in Node. A backend that fails to start fails the run. */
export const NODE_BACKENDS = ['cpu', 'wasm'] as const;

/**
 * Backends of the browser run (`npm run test:browser`, headless Chromium on SwiftShader). cpu is
 * not repeated there: it is the Node run's job, and suites that compare against cpu compute
 * their reference in the same page with {@link onBackend}.
 */
export const BROWSER_BACKENDS = ['webgl', 'webgpu'] as const;

/** True when the tests run in a browser page (vitest browser mode), false in Node. */
export const IN_BROWSER = typeof window !== 'undefined' && typeof document !== 'undefined';

// Set by vitest.browser.config.ts from the VIT_TS_BACKENDS environment variable.
declare const __VIT_TS_BACKENDS__: string | undefined;

/** Optional override of the backend list: `VIT_TS_BACKENDS=wasm npm test` (comma-separated). */
function backendsFromEnv(): string[] | null {
  const fromDefine = typeof __VIT_TS_BACKENDS__ === 'string' ? __VIT_TS_BACKENDS__ : '';
  const fromProcess =
    typeof process !== 'undefined' ? (process.env?.['VIT_TS_BACKENDS'] ?? '') : '';
  const list = (fromDefine || fromProcess)
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  return list.length > 0 ? list : null;
}

/** The backends of this run: the browser or Node matrix, or the `VIT_TS_BACKENDS` override. */
export function activeBackends(): readonly string[] {
  return backendsFromEnv() ?? (IN_BROWSER ? BROWSER_BACKENDS : NODE_BACKENDS);
}

/**
 * Registers a backend's package. cpu and wasm are imported above; the GPU backends register
 * only in a browser, so they are imported there, on first use.
 */
export async function loadBackend(name: string): Promise<void> {
  if (tf.findBackendFactory(name) != null) return;
  if (name === 'webgl') await import('@tensorflow/tfjs-backend-webgl');
  else if (name === 'webgpu') await import('@tensorflow/tfjs-backend-webgpu');
  if (tf.findBackendFactory(name) == null) {
    throw new Error(
      `backend ${name} is not available ${IN_BROWSER ? 'in this browser' : 'in Node'}`,
    );
  }
}

/** Makes `name` the active backend, throwing (never skipping) when it cannot start. */
export async function useBackend(name: string): Promise<void> {
  await loadBackend(name);
  const ok = await tf.setBackend(name);
  if (!ok || tf.getBackend() !== name) throw new Error(`backend ${name} failed to initialize`);
  await tf.ready();
}

/**
 * Runs `fn` with `name` as the active backend and switches back afterwards, e.g. to compute a
 * cpu reference inside a webgl suite. Return plain arrays, not tensors, from `fn`.
 */
export async function onBackend<T>(name: string, fn: () => T | Promise<T>): Promise<T> {
  const previous = tf.getBackend();
  await useBackend(name);
  try {
    return await fn();
  } finally {
    await useBackend(previous);
  }
}

/**
 * Repeats a suite once per backend, in the spirit of tfjs' `describeWithFlags(ALL_ENVS)`:
 * the backend is set (and must succeed) before the suite's tests run. Default backends: cpu and
 * wasm in Node, webgl and webgpu in the browser run (see {@link activeBackends}).
 */
export function describeBackends(
  name: string,
  fn: (backend: string) => void,
  backends: readonly string[] = activeBackends(),
): void {
  for (const backend of backends) {
    describe(`${name} [${backend}]`, () => {
      beforeAll(async () => {
        await useBackend(backend);
      });
      afterAll(() => {
        tf.disposeVariables();
      });
      fn(backend);
    });
  }
}

/** Max absolute difference between two tensors (or arrays), as a number. */
export function maxAbsDiff(a: tf.Tensor, b: tf.Tensor | number[]): number {
  return tf.tidy(
    () =>
      tf.max(tf.abs(tf.sub(a, b instanceof tf.Tensor ? b : tf.tensor(b, a.shape)))).dataSync()[0],
  );
}

/** Relative L2 error ||a - b|| / ||b||. */
export function relL2(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.div(tf.norm(tf.sub(a, b)), tf.norm(b)).dataSync()[0]);
}

/** Relative L2 error ||a - b|| / ||b|| of two plain arrays (e.g. read back from two backends). */
export function relL2Arrays(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length)
    throw new Error(`relL2Arrays: lengths differ (${a.length} vs ${b.length})`);
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += b[i] ** 2;
  }
  return Math.sqrt(num / den);
}

export { seededValues } from './seeded';
