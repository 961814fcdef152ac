/**
 * Child process of crash_save.test.ts: overwrites a model directory forever, alternating two
 * saved models (B, A, B, ...) through the same crash-safe commit saveModel uses, until killed.
 * Arguments: target dir, dir of model A, dir of model B.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { commitVersioned } from '../../src/io/atomic';

const [target, dirA, dirB] = process.argv.slice(2) as [string, string, string];

function load(dir: string): { json: Record<string, unknown>; weights: Uint8Array } {
  const json = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8'));
  const file = readdirSync(dir).find((f) => f.startsWith('weights.')) as string;
  return { json, weights: new Uint8Array(readFileSync(join(dir, file))) };
}
const models = [load(dirB), load(dirA)];

async function main(): Promise<void> {
  process.send?.('ready');
  for (let i = 0; ; i++) {
    const m = models[i % 2] as (typeof models)[number];
    await commitVersioned(target, {
      files: { 'weights.bin': m.weights },
      manifestName: 'model.json',
      manifest: (names) => {
        const json = structuredClone(m.json) as { weightsManifest: Array<{ paths: string[] }> };
        (json.weightsManifest[0] as { paths: string[] }).paths = [`./${names['weights.bin']}`];
        return JSON.stringify(json);
      },
    });
  }
}
void main();
