/**
 * Crash safety of saveModel: a child process overwrites a good checkpoint again and again and is
 * killed (SIGKILL) at random moments; after each kill the directory must load, through the
 * verified loader, as exactly the old or exactly the new model.
 */
import { fork } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createViT } from '../../src/index';
import { loadModel, saveModel } from '../../src/node';
import { Random } from '../../src/random';
import { useBackend } from '../helpers/backends';

const CONFIG = {
  imgSize: 8,
  patchSize: 4,
  inChans: 1,
  embedDim: 16,
  depth: 2,
  numHeads: 2,
  numClasses: 3,
};
let root: string;
const flat = (m: LayersModel) => m.weights.map((w) => Array.from(w.read().dataSync()));

beforeAll(async () => {
  await useBackend('cpu');
  root = await mkdtemp(join(tmpdir(), 'vit-ts-crash-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

it('killed at random moments while overwriting, the directory holds exactly the old or the new model', async () => {
  const a = createViT(CONFIG, {}, { seed: 1 });
  const b = createViT(CONFIG, {}, { seed: 2 });
  const weightsA = flat(a);
  const weightsB = flat(b);
  await saveModel(a, join(root, 'A'));
  await saveModel(b, join(root, 'B'));
  a.dispose();
  b.dispose();
  const target = join(root, 'target');
  const rand = new Random(4242);
  const seen = { A: 0, B: 0 };
  const kills = 12;
  for (let k = 0; k < kills; k++) {
    await rm(target, { recursive: true, force: true });
    const good = createViT(CONFIG, {}, { seed: 1 });
    await saveModel(good, target); // the good checkpoint (A)
    good.dispose();
    const child = fork(
      join(import.meta.dirname, 'crash_writer.ts'),
      [target, join(root, 'A'), join(root, 'B')],
      {
        execArgv: ['--import', 'tsx'],
        stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
      },
    );
    await new Promise<void>((resolve, reject) => {
      child.once('message', () => resolve());
      child.once('error', reject);
      child.once('exit', (code) => reject(new Error(`writer exited early with ${code}`)));
    });
    child.removeAllListeners('exit');
    // Kill somewhere within the first few commits (each takes a few milliseconds).
    await new Promise((r) => setTimeout(r, rand.int(60)));
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
    const loaded = await loadModel(target);
    const w = flat(loaded);
    loaded.dispose();
    const isA = JSON.stringify(w) === JSON.stringify(weightsA);
    const isB = JSON.stringify(w) === JSON.stringify(weightsB);
    expect(isA || isB, `kill #${k}: neither model A nor model B`).toBe(true);
    seen[isA ? 'A' : 'B']++;
    // At most the live weights file plus one superseded or half-written one remain.
    const files = (await readdir(target)).filter((f) => f !== 'model.json');
    expect(files.length).toBeLessThanOrEqual(3);
  }
  expect(seen.A + seen.B).toBe(kills);
  console.log(
    `crash test: ${kills} kills, loaded old (A) ${seen.A} times, new (B) ${seen.B} times`,
  );
});
