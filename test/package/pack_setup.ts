/**
 * Global setup of `npm run test:package`: packs the built package (`npm pack`, so exactly the
 * published files) and makes a fresh consumer project in a temporary directory that installs
 * the tarball with the install line README.md gives users, plus the tools a user's project has
 * (typescript, @types/node, vite, esbuild). Installs use the local npm cache (--prefer-offline).
 *
 * The tests read the paths from the environment: VIT_TS_TARBALL, VIT_TS_CONSUMER.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** The `npm install ...` line of README.md's quick start, as a list of package specs. */
export function readmeInstallSpecs(readme: string): string[] {
  const line = readme.split('\n').find((l) => /^npm install vit-ts\b/.test(l.trim()));
  if (line == null) throw new Error('README.md has no `npm install vit-ts ...` line');
  return line.trim().split(/\s+/).slice(2);
}

function run(cmd: string, args: string[], cwd: string): string {
  return execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

export default function setup(): () => void {
  if (
    !existsSync(path.join(ROOT, 'dist/index.js')) ||
    !existsSync(path.join(ROOT, 'dist/index.d.ts'))
  ) {
    throw new Error('dist/ is missing: run `npm run build` first (npm run test:package does)');
  }
  const work = mkdtempSync(path.join(tmpdir(), 'vit-ts-consumer-'));
  const packDir = path.join(work, 'pack');
  mkdirSync(packDir);
  const packed = JSON.parse(run('npm', ['pack', '--json', '--pack-destination', packDir], ROOT));
  const tarball = path.join(packDir, packed[0].filename);
  const consumer = path.join(work, 'app');
  mkdirSync(consumer);
  writeFileSync(
    path.join(consumer, 'package.json'),
    `${JSON.stringify({ name: 'vit-ts-consumer', private: true, type: 'module' }, null, 2)}\n`,
  );
  const specs = readmeInstallSpecs(readFileSync(path.join(ROOT, 'README.md'), 'utf8')).map((s) =>
    s === 'vit-ts' ? tarball : s,
  );
  const dev = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')).devDependencies;
  // The tools of a user's project, and the cpu backend README names as the alternative to wasm.
  const tools = [
    'typescript',
    '@types/node',
    'vite',
    'esbuild',
    '@tensorflow/tfjs-backend-cpu',
  ].map((n) => `${n}@${dev[n]}`);
  const flags = ['--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error'];
  run('npm', ['install', ...flags, ...specs], consumer);
  run('npm', ['install', ...flags, '--save-dev', ...tools], consumer);
  process.env['VIT_TS_TARBALL'] = tarball;
  process.env['VIT_TS_CONSUMER'] = consumer;
  return () => {
    if (process.env['VIT_TS_KEEP_CONSUMER'] == null) rmSync(work, { recursive: true, force: true });
    else console.log(`consumer project kept in ${consumer}`);
  };
}
