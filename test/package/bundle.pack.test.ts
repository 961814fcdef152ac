/**
 * Tree-shaking of the PUBLISHED files: esbuild bundles `vit-ts` as installed from the `npm pack`
 * tarball in a fresh project (see pack_setup.ts), for the browser, minified, with tfjs left
 * external. A bundle of src/ (test/package/bundle.test.ts) can be tree-shaken while the
 * published build is not (one shared chunk); this test reads what users get.
 * Sizes are recorded in docs/packaging.md.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const CONSUMER = process.env['VIT_TS_CONSUMER'] as string;

interface Bundle {
  code: string;
  bytes: number;
  /** Published files that contribute bytes to the output (paths inside the package). */
  files: string[];
}

async function bundle(entry: string): Promise<Bundle> {
  // The consumer's own esbuild, resolving `vit-ts` from its node_modules.
  const require = createRequire(path.join(CONSUMER, 'package.json'));
  const esbuild = require('esbuild') as typeof import('esbuild');
  const result = await esbuild.build({
    stdin: { contents: entry, resolveDir: CONSUMER, loader: 'js', sourcefile: 'app.js' },
    bundle: true,
    write: false,
    metafile: true,
    minify: true,
    platform: 'browser',
    format: 'esm',
    logLevel: 'silent',
    external: ['@tensorflow/*'],
  });
  const out = Object.values(result.metafile.outputs)[0];
  const code = result.outputFiles[0].text;
  return {
    code,
    bytes: Buffer.byteLength(code),
    files: Object.entries(out.inputs)
      .filter(([k, v]) => v.bytesInOutput > 0 && k.includes('node_modules/vit-ts/'))
      .map(([k]) => k.replace(/^.*node_modules\/vit-ts\//, '')),
  };
}

/** Runs an ESM bundle (tfjs external) in the consumer and lists the vit-ts classes it registered. */
async function registered(entry: string): Promise<string[]> {
  const require = createRequire(path.join(CONSUMER, 'package.json'));
  const esbuild = require('esbuild') as typeof import('esbuild');
  const result = await esbuild.build({
    stdin: {
      contents: `${entry}\nimport * as tfc from '@tensorflow/tfjs-core';\nexport const names = Object.keys(tfc.serialization.SerializationMap.getMap().classNameMap).filter((n) => n.startsWith('VitTs>'));`,
      resolveDir: CONSUMER,
      loader: 'js',
    },
    bundle: true,
    write: false,
    platform: 'node',
    format: 'cjs',
    logLevel: 'silent',
    external: ['@tensorflow/*'],
  });
  const module = { exports: {} as { names: string[] } };
  new Function('require', 'module', 'exports', result.outputFiles[0].text)(
    require,
    module,
    module.exports,
  );
  return module.exports.names.sort();
}

const ANALYSIS_OR_WEIGHTS = /safetensors|attentionRollout|colormap|keymaps|loadPretrained/i;

describe('bundles of the packed vit-ts (esbuild, browser, minified, tfjs external)', () => {
  it('import { PatchEmbed } stays small: no ResNet18, no other layers, no weights or analysis code', async () => {
    const b = await bundle(
      "import { PatchEmbed } from 'vit-ts'; export const layer = new PatchEmbed({ imgSize: 8, patchSize: 4, embedDim: 4 });",
    );
    console.log(`PatchEmbed bundle: ${b.bytes} bytes from ${b.files.length} files`);
    expect(b.files.length).toBeGreaterThan(0);
    expect(b.files.every((f) => f.startsWith('dist/') && f.endsWith('.js'))).toBe(true);
    expect(b.code).toContain('VitTs>PatchEmbed');
    expect(b.code).not.toMatch(
      /ResNet18|BasicBlock|VisionTransformer|TransformerBlock|MultiHeadAttention/,
    );
    expect(b.code).not.toMatch(ANALYSIS_OR_WEIGHTS);
    expect(b.code).not.toMatch(/piscina|node:fs|worker_threads/);
    // About 6 kB (docs/packaging.md); the whole library is about 20 times that.
    expect(b.bytes).toBeLessThan(12_000);
  });

  it('import { VisionTransformer } holds the ViT layers only; the whole API holds everything', async () => {
    const vit = await bundle(
      "import { VisionTransformer } from 'vit-ts'; export const layer = new VisionTransformer({ depth: 1 });",
    );
    const all = await bundle("import * as vit from 'vit-ts'; globalThis.vit = vit;");
    console.log(`VisionTransformer bundle: ${vit.bytes} bytes; whole library: ${all.bytes} bytes`);
    for (const name of [
      'VisionTransformer',
      'TransformerBlock',
      'MultiHeadAttention',
      'PatchEmbed',
    ])
      expect(vit.code).toContain(`VitTs>${name}`);
    expect(vit.code).not.toMatch(/ResNet18|BasicBlock/);
    expect(vit.code).not.toMatch(ANALYSIS_OR_WEIGHTS);
    expect(all.code).toMatch(/ResNet18/);
    expect(all.code).toMatch(/safetensors/);
    expect(vit.bytes).toBeLessThan(all.bytes / 2);
    // The browser-safe root pulls in no Node module.
    expect(all.code).not.toMatch(/from\s*["']node:|require\(["']node:/);
  });

  it('"sideEffects": false keeps the registration of each layer the app uses', async () => {
    expect(await registered("import { PatchEmbed } from 'vit-ts'; new PatchEmbed({});")).toEqual([
      'VitTs>PatchEmbed',
    ]);
    const vit = await registered("import { createViT } from 'vit-ts'; globalThis.f = createViT;");
    for (const name of ['VisionTransformer', 'TransformerBlock', 'PatchEmbed', 'ViTEmbedding'])
      expect(vit).toContain(`VitTs>${name}`);
    const all = await registered(
      "import { registerVitTsLayers } from 'vit-ts'; registerVitTsLayers();",
    );
    expect(all).toEqual(expect.arrayContaining(['VitTs>ResNet18', 'VitTs>AdamW', 'VitTs>MLP']));
  });
});
