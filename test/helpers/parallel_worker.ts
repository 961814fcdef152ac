import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const repo = resolve(fileURLToPath(new URL('../..', import.meta.url)));

/**
 * Bundles src/parallel/worker.ts (or another worker `entry`, relative to the repository) into one
 * ESM file, as tsup's `parallel_worker` entry does for the published package (Node cannot run the
 * TypeScript source in a worker thread), and returns its path. External packages stay imports,
 * resolved from the repository's node_modules.
 */
export async function buildWorkerBundle(entry = 'src/parallel/worker.ts'): Promise<string> {
  const dir = join(repo, 'test-artifacts', 'parallel');
  mkdirSync(dir, { recursive: true });
  const name = entry.replace(/^.*\//, '').replace(/\.ts$/, '');
  // One file per process: parallel test files must not overwrite each other's worker.
  const outfile = join(dir, `${name}.${process.pid}.mjs`);
  await build({
    entryPoints: [join(repo, entry)],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'es2022',
    packages: 'external',
    logLevel: 'warning',
  });
  return outfile;
}
