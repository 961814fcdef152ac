/**
 * vit-ts as a user gets it: the `npm pack` tarball installed in a fresh project with README's
 * install line (pack_setup.ts). Checks
 * - types: a strict project with `skipLibCheck: false` type-checks under NodeNext, Node16 and
 *   Bundler resolution, including every TypeScript block of README.md and docs/*.md;
 * - run: the README quick start verbatim (ESM, wasm), blocks marked runnable (cpu / wasm),
 *   and CommonJS `require` of both entry points sharing one copy of each class;
 * - a Vite browser build of the quick start;
 * - `@arethetypeswrong/cli` and `publint` report nothing for the tarball.
 *
 * Code blocks: a block may be preceded by a directive comment
 *   <!-- snippet: run -->               type-check and run it in Node (ESM)
 *   <!-- snippet: needs=model,images --> type-check it after declarations of its context
 *   <!-- snippet: skip REASON -->       neither (e.g. needs @tensorflow/tfjs-node, which
 *                                       downloads libtensorflow at install time)
 * Without a directive a block is type-checked as a complete module.
 */
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';

const execFileAsync = promisify(execFile);
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const CONSUMER = process.env['VIT_TS_CONSUMER'] as string;
const TARBALL = process.env['VIT_TS_TARBALL'] as string;
const BIN = (name: string) => path.join(CONSUMER, 'node_modules/.bin', name);

/**
 * Context doc fragments assume, by name: `<!-- snippet: needs=model,images -->` prepends these
 * declarations (types only: such blocks are type-checked, not run).
 */
const NEEDS: Record<string, string> = {
  model: "declare const model: import('@tensorflow/tfjs-layers').LayersModel;",
  images: "declare const images: import('@tensorflow/tfjs-core').Tensor4D;",
  oneHotLabels: "declare const oneHotLabels: import('@tensorflow/tfjs-core').Tensor2D;",
  pixels01: 'declare const pixels01: Float32Array;',
  batches:
    "declare const batches: Array<[import('@tensorflow/tfjs-core').Tensor4D, import('@tensorflow/tfjs-core').Tensor2D]>;",
  ckpt: "declare const ckpt: import('vit-ts').SafetensorsFile;",
  bytes: 'declare const bytes: Uint8Array;',
  posEmbed: "declare const posEmbed: import('@tensorflow/tfjs-core').Tensor3D;",
  pe: "declare const pe: import('@tensorflow/tfjs-core').Tensor3D;",
  tf: "import * as tf from '@tensorflow/tfjs-core';",
  batchesXY:
    "declare const batches: Array<{ x: import('@tensorflow/tfjs-core').Tensor4D; y: import('@tensorflow/tfjs-core').Tensor2D }>;",
  config: "declare const config: import('vit-ts').ViTConfig;",
  train: "declare const train: import('vit-ts').ImageDataset;",
  readFile: "import { readFile } from 'node:fs/promises';",
  countViTParams: "import { countViTParams } from 'vit-ts';",
  countTrainableParams: "import { countTrainableParams } from 'vit-ts';",
  createHybridViT: "import { createHybridViT } from 'vit-ts';",
  HYBRID_VIT_PRESETS: "import { HYBRID_VIT_PRESETS } from 'vit-ts';",
  ResNet18: "import { ResNet18 } from 'vit-ts';",
  readSafetensors: "import { readSafetensors } from 'vit-ts';",
  createViT: "import { createViT } from 'vit-ts';",
  loadPretrained: "import { loadPretrained } from 'vit-ts';",
  adamw: "import { adamw } from 'vit-ts';",
  softmaxCrossEntropy: "import { softmaxCrossEntropy } from 'vit-ts';",
  VisionTransformer: "import { VisionTransformer } from 'vit-ts';",
  loadPretrainedFile: "import { loadPretrainedFile } from 'vit-ts/node';",
  readSafetensorsFile: "import { readSafetensorsFile } from 'vit-ts/node';",
};

interface Snippet {
  file: string;
  source: string;
  mode: 'run' | 'typecheck' | 'skip';
  reason?: string;
}

function extractSnippets(): Snippet[] {
  const docs = ['README.md'];
  const walk = (dir: string) => {
    for (const e of readdirSync(path.join(ROOT, dir), { withFileTypes: true })) {
      if (e.isDirectory() && e.name !== 'api') walk(`${dir}/${e.name}`);
      else if (e.name.endsWith('.md')) docs.push(`${dir}/${e.name}`);
    }
  };
  walk('docs');
  const out: Snippet[] = [];
  for (const doc of docs) {
    const text = readFileSync(path.join(ROOT, doc), 'utf8');
    const re = /(?:<!--\s*snippet:\s*([^>]*?)\s*-->\s*\n)?```(ts|typescript|js)\n([\s\S]*?)```/g;
    let n = 0;
    for (const m of text.matchAll(re)) {
      n++;
      const directive = (m[1] ?? '').trim();
      const file = `${doc.replace(/\.md$/, '').replaceAll('/', '_')}_${n}.ts`;
      let source = m[3];
      let mode: Snippet['mode'] = 'typecheck';
      let reason: string | undefined;
      if (directive.startsWith('skip')) {
        mode = 'skip';
        reason = directive.slice(4).trim();
      } else if (directive === 'run') {
        mode = 'run';
      } else if (directive.startsWith('needs=')) {
        const lines = directive
          .slice('needs='.length)
          .split(',')
          .map((name) => {
            const line = NEEDS[name.trim()];
            if (line == null) throw new Error(`${doc}: unknown snippet need '${name}'`);
            return line;
          });
        source = `${lines.join('\n')}\n${source}`;
      } else if (directive !== '') {
        throw new Error(`${doc}: unknown snippet directive '${directive}'`);
      }
      // Every snippet is its own module (top-level await, no clashing globals).
      out.push({ file, source: `${source}\nexport {};\n`, mode, reason });
    }
  }
  return out;
}

const TYPES_PROBE = `// Types a user relies on: LayerArgs fields accepted, wrong fields rejected.
import { PatchEmbed, type PatchEmbedArgs, VisionTransformer } from 'vit-ts';
import { loadModel } from 'vit-ts/node';
const args: PatchEmbedArgs = { name: 'pe', trainable: false, inputShape: [32, 32, 3], imgSize: 32 };
export const layer = new PatchEmbed(args);
// @ts-expect-error an unknown field is a type error
export const bad = new PatchEmbed({ imgSiz: 32 });
// @ts-expect-error a LayerArgs field keeps its type
export const bad2 = new PatchEmbed({ name: 3 });
export const vit: VisionTransformer = new VisionTransformer({ depth: 1, dtype: 'float32' });
export const load: (dir: string) => Promise<unknown> = loadModel;
`;

function tsconfig(name: string, module: string, resolution: string): void {
  const config = {
    compilerOptions: {
      strict: true,
      skipLibCheck: false,
      target: 'ES2022',
      module,
      moduleResolution: resolution,
      lib: ['ES2022', 'DOM'],
      types: ['node'],
      noEmit: resolution !== 'NodeNext',
      outDir: 'out',
      noUnusedLocals: false,
    },
    include: ['snippets/**/*.ts', 'probe.ts'],
  };
  writeFileSync(path.join(CONSUMER, name), `${JSON.stringify(config, null, 2)}\n`);
}

function sh(cmd: string, args: string[], env: Record<string, string> = {}): string {
  try {
    return execFileSync(cmd, args, {
      cwd: CONSUMER,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...env },
    });
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')} failed:\n${err.stdout ?? ''}\n${err.stderr ?? ''}`);
  }
}

/**
 * Type errors of a tsc run, except those inside tfjs' own declaration files: with
 * `skipLibCheck: false`, tfjs-layers 4.22's .d.ts fail strict checks themselves (TS2411 in
 * keras_format/*.d.ts), whoever imports them. Errors in vit-ts' .d.ts, in the snippets or in the
 * probe are all kept.
 */
async function typeErrors(config: string): Promise<string[]> {
  let output = '';
  try {
    output = (
      await execFileAsync(BIN('tsc'), ['-p', config, '--pretty', 'false'], { cwd: CONSUMER })
    ).stdout;
  } catch (e) {
    output = (e as { stdout?: string }).stdout ?? String(e);
  }
  return output
    .split('\n')
    .filter((l) => /error TS\d+/.test(l))
    .filter((l) => !l.startsWith('node_modules/@tensorflow/'));
}

let snippets: Snippet[] = [];

beforeAll(() => {
  snippets = extractSnippets();
  mkdirSync(path.join(CONSUMER, 'snippets'), { recursive: true });
  for (const s of snippets) {
    if (s.mode !== 'skip') writeFileSync(path.join(CONSUMER, 'snippets', s.file), s.source);
  }
  writeFileSync(path.join(CONSUMER, 'probe.ts'), TYPES_PROBE);
  tsconfig('tsconfig.nodenext.json', 'NodeNext', 'NodeNext');
  tsconfig('tsconfig.node16.json', 'Node16', 'Node16');
  tsconfig('tsconfig.bundler.json', 'ESNext', 'Bundler');
});

describe('the packed vit-ts in a fresh project', () => {
  it('every skipped doc block says why', () => {
    const skipped = snippets.filter((s) => s.mode === 'skip');
    for (const s of skipped) expect(s.reason, s.file).toMatch(/\w{4,}/);
    expect(snippets.filter((s) => s.mode !== 'skip').length).toBeGreaterThan(skipped.length);
    expect(snippets.some((s) => s.file === 'README_1.ts' && s.mode === 'run')).toBe(true);
  });

  it('type-checks strictly under moduleResolution NodeNext, Node16 and Bundler (skipLibCheck false, all doc blocks)', async () => {
    const configs = ['tsconfig.nodenext.json', 'tsconfig.node16.json', 'tsconfig.bundler.json'];
    const errors = await Promise.all(configs.map((c) => typeErrors(c)));
    expect(Object.fromEntries(configs.map((c, k) => [c, errors[k]]))).toEqual({
      'tsconfig.nodenext.json': [],
      'tsconfig.node16.json': [],
      'tsconfig.bundler.json': [],
    });
    // Three strict checks of tfjs' and Node's declarations: about 15 s of CPU each.
  }, 600_000);

  it('runs the README quick start verbatim (ESM, wasm) and every block marked runnable', () => {
    // tsc under NodeNext emitted out/ in the type-check test above (vitest runs tests in order).
    const quick = sh('node', ['out/snippets/README_1.js']);
    expect(quick).toContain('[ 1, 10 ] 5526346');
    for (const s of snippets.filter((x) => x.mode === 'run' && x.file !== 'README_1.ts')) {
      sh('node', [`out/snippets/${s.file.replace(/\.ts$/, '.js')}`]);
    }
  });

  it('CommonJS and ESM: both entry points share one copy of each class, on cpu and wasm', () => {
    const body = (backend: string) => `{
  await tf.setBackend('${backend}');
  await tf.ready();
  const model = vit.createViT({ imgSize: 16, patchSize: 8, embedDim: 8, depth: 1, numHeads: 2, numClasses: 3 });
  const dir = require('node:fs').mkdtempSync(require('node:path').join(require('node:os').tmpdir(), 'vit-ts-'));
  await node.saveModel(model, dir);
  const again = await node.loadModel(dir);
  if (!(again.layers[1] instanceof vit.VisionTransformer)) throw new Error('two copies of VisionTransformer');
  const y = again.predict(tf.ones([2, 16, 16, 3]));
  const z = model.predict(tf.ones([2, 16, 16, 3]));
  const diff = tf.max(tf.abs(tf.sub(y, z))).dataSync()[0];
  if (diff > 1e-6) throw new Error('round trip changed the output: ' + diff);
  console.log('${backend}', JSON.stringify(y.shape), tf.getBackend());
}`;
    writeFileSync(
      path.join(CONSUMER, 'cjs_check.cjs'),
      `const tf = require('@tensorflow/tfjs-core');
require('@tensorflow/tfjs-layers');
require('@tensorflow/tfjs-backend-wasm');
require('@tensorflow/tfjs-backend-cpu');
const vit = require('vit-ts');
const node = require('vit-ts/node');
(async () => {${body('cpu')}${body('wasm')}
})().catch((e) => { console.error(e); process.exit(1); });
`,
    );
    writeFileSync(
      path.join(CONSUMER, 'esm_check.mjs'),
      `import { createRequire } from 'node:module';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-layers';
import '@tensorflow/tfjs-backend-wasm';
import '@tensorflow/tfjs-backend-cpu';
import * as vit from 'vit-ts';
import * as node from 'vit-ts/node';
const require = createRequire(import.meta.url);
${body('cpu')}${body('wasm')}
`,
    );
    const expected = 'cpu [2,3] cpu\nwasm [2,3] wasm\n';
    expect(sh('node', ['cjs_check.cjs'])).toBe(expected);
    expect(sh('node', ['esm_check.mjs'])).toBe(expected);
  });

  it('builds the quick start for the browser with Vite', () => {
    const web = path.join(CONSUMER, 'web');
    mkdirSync(web, { recursive: true });
    writeFileSync(
      path.join(web, 'index.html'),
      '<!doctype html><html><body><script type="module" src="./main.ts"></script></body></html>\n',
    );
    writeFileSync(
      path.join(web, 'main.ts'),
      readFileSync(path.join(CONSUMER, 'snippets/README_1.ts'), 'utf8'),
    );
    // esnext: the quick start uses top-level await.
    writeFileSync(
      path.join(web, 'vite.config.mjs'),
      "export default { build: { target: 'esnext', outDir: 'dist', emptyOutDir: true } };\n",
    );
    sh(BIN('vite'), [
      'build',
      web,
      '--config',
      path.join(web, 'vite.config.mjs'),
      '--logLevel',
      'error',
    ]);
    const assets = readdirSync(path.join(web, 'dist/assets'));
    const js = assets
      .filter((f) => f.endsWith('.js'))
      .map((f) => readFileSync(path.join(web, 'dist/assets', f), 'utf8'))
      .join('');
    expect(js).toContain('VitTs>VisionTransformer');
    expect(js).not.toMatch(/VitTs>ResNet18|node:fs/);
  });

  it("README's relative links point to files inside the package", () => {
    const readme = readFileSync(path.join(CONSUMER, 'node_modules/vit-ts/README.md'), 'utf8');
    const links = [...readme.matchAll(/\]\((?!https?:|#)([^)#\s]+)/g)].map((m) => m[1]);
    expect(links.length).toBeGreaterThan(5);
    const missing = links.filter(
      (l) => !existsSync(path.join(CONSUMER, 'node_modules/vit-ts', decodeURIComponent(l))),
    );
    expect(missing).toEqual([]);
  });

  it('@arethetypeswrong/cli and publint report nothing for the tarball', () => {
    sh(path.join(ROOT, 'node_modules/.bin/attw'), [TARBALL]);
    const lint = sh(path.join(ROOT, 'node_modules/.bin/publint'), [
      '--strict',
      path.join(CONSUMER, 'node_modules/vit-ts'),
    ]);
    expect(lint).toContain('All good!');
  });
});
