import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';
import { describe, expect, it } from 'vitest';

/**
 * What a consumer's bundler makes of vit-ts (esbuild, in memory, platform browser, the library
 * taken from src/index.ts under the package's own package.json, so `"sideEffects": false`
 * applies as it does to the published files).
 *
 * tfjs-core and tfjs-layers are bundled too: a backend reached through any import (ours or
 * theirs) would then show up among the bundle's inputs. Tree-shaking is checked per source file
 * (bytes each input contributes to the output).
 */
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

interface Bundle {
  code: string;
  /** Input files that contribute bytes to the output, relative to the repository. */
  inputs: string[];
  /** Imports left external. */
  imports: string[];
}

async function bundle(entry: string, externalTfjs: boolean): Promise<Bundle> {
  const result = await esbuild.build({
    stdin: { contents: entry, resolveDir: ROOT, loader: 'js', sourcefile: 'consumer.js' },
    bundle: true,
    write: false,
    metafile: true,
    platform: 'browser',
    format: 'cjs',
    logLevel: 'silent',
    alias: { 'vit-ts': path.join(ROOT, 'src/index.ts') },
    external: externalTfjs ? ['@tensorflow/*'] : [],
  });
  const out = Object.values(result.metafile.outputs)[0];
  return {
    code: result.outputFiles[0].text,
    inputs: Object.entries(out.inputs)
      .filter(([, v]) => v.bytesInOutput > 0)
      .map(([k]) => k),
    imports: out.imports.map((i) => i.path),
  };
}

/** Runs a CJS bundle whose tfjs imports are external and returns the names it registered. */
function registeredVitTsClasses(code: string): string[] {
  const require = createRequire(path.join(ROOT, 'package.json'));
  const module = { exports: {} };
  new Function('require', 'module', 'exports', code)(require, module, module.exports);
  const tfc = require('@tensorflow/tfjs-core') as typeof import('@tensorflow/tfjs-core');
  return Object.keys(tfc.serialization.SerializationMap.getMap().classNameMap).filter((n) =>
    n.startsWith('VitTs>'),
  );
}

const BACKEND_OR_NODE = /@tensorflow\/tfjs-(backend-|node)/;

describe('consumer bundle of vit-ts (esbuild, platform browser)', () => {
  it('the whole API bundles with tfjs and pulls in no backend and no tfjs-node', async () => {
    const b = await bundle("import * as vit from 'vit-ts'; globalThis.vit = vit;", false);
    expect(b.inputs.some((f) => f.startsWith('src/models/resnet.ts'))).toBe(true);
    expect(b.inputs.some((f) => f.includes('node_modules/@tensorflow/tfjs-core/'))).toBe(true);
    expect(b.inputs.filter((f) => BACKEND_OR_NODE.test(f))).toEqual([]);
    expect(b.imports.filter((p) => BACKEND_OR_NODE.test(p))).toEqual([]);
    expect(b.code).not.toMatch(BACKEND_OR_NODE);
    // The Node-only entry (file system helpers) stays out of the browser-safe root.
    expect(
      b.inputs.filter(
        (f) =>
          f === 'src/node.ts' ||
          /_node\.ts$|^src\/io\/(node_fs|atomic|safe_read)\.ts$|^src\/parallel\//.test(f),
      ),
    ).toEqual([]);
    expect(b.imports.filter((p) => p.startsWith('node:'))).toEqual([]);
  });

  it('importing only PatchEmbed leaves out ResNet18, VisionTransformer, the weights code and the rest', async () => {
    const b = await bundle(
      "import { PatchEmbed } from 'vit-ts'; export const layer = new PatchEmbed({ imgSize: 8, patchSize: 4, embedDim: 4 });",
      true,
    );
    const src = b.inputs.filter((f) => f.startsWith('src/'));
    expect(src).toContain('src/layers/patch_embed.ts');
    for (const dropped of [
      'src/models/resnet.ts',
      'src/models/vision_transformer.ts',
      'src/layers/attention.ts',
      'src/train/optimizers.ts',
      'src/backends/conv_grad.ts',
    ]) {
      expect(src).not.toContain(dropped);
    }
    expect(
      src.filter((f) => f.startsWith('src/weights/') || f.startsWith('src/analysis/')),
    ).toEqual([]);
    expect(b.code).not.toMatch(/ResNet18|VisionTransformer/);
    // A handful of kilobytes against about 150 kB for the whole API.
    expect(b.code.length).toBeLessThan(20_000);
  });

  it('"sideEffects": false keeps the registration of every layer the bundle uses', async () => {
    const b = await bundle(
      "import { PatchEmbed } from 'vit-ts'; export const layer = new PatchEmbed({ imgSize: 8, patchSize: 4, embedDim: 4 });",
      true,
    );
    expect(registeredVitTsClasses(b.code)).toEqual(['VitTs>PatchEmbed']);
    const vit = await bundle(
      "import { createViT } from 'vit-ts'; export const make = createViT;",
      true,
    );
    // Everything a ViT is built from registers, so its saved models load back.
    expect(registeredVitTsClasses(vit.code)).toEqual(
      expect.arrayContaining([
        'VitTs>VisionTransformer',
        'VitTs>TransformerBlock',
        'VitTs>PatchEmbed',
        'VitTs>ViTEmbedding',
        'VitTs>MultiHeadAttention',
        'VitTs>MLP',
        'VitTs>LayerNorm',
        'VitTs>Linear',
      ]),
    );
  });

  it('a load-only app keeps every layer through registerVitTsLayers(); an unused import keeps none', async () => {
    // Why registerVitTsLayers exists: with "sideEffects": false an import whose bindings are
    // never used is dropped with its module, registration included.
    const unused = await bundle("import { ResNet18 } from 'vit-ts'; export const x = 1;", true);
    expect(unused.inputs.filter((f) => f.startsWith('src/'))).toEqual([]);
    const loadOnly = await bundle(
      "import { registerVitTsLayers } from 'vit-ts'; registerVitTsLayers();",
      true,
    );
    expect(registeredVitTsClasses(loadOnly.code).sort()).toEqual(
      [
        'VitTs>AdamW',
        'VitTs>BasicBlock',
        'VitTs>HybridEmbed',
        'VitTs>HybridVisionTransformer',
        'VitTs>LayerNorm',
        'VitTs>Linear',
        'VitTs>MLP',
        'VitTs>MultiHeadAttention',
        'VitTs>PatchEmbed',
        'VitTs>ResNet18',
        'VitTs>TransformerBlock',
        'VitTs>ViTEmbedding',
        'VitTs>VisionTransformer',
      ].sort(),
    );
  });
});
