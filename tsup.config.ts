import { readdirSync, rmSync } from 'node:fs';
import { join, relative } from 'node:path';
import { defineConfig, type Options } from 'tsup';

// `npm run build` empties dist/ first (the two configs below run in parallel, so neither cleans).
// Published layout (see docs/packaging.md):
// - ESM (what bundlers read): every module of src/ is its own entry with code splitting, so each
//   module's code lands in its own file and a consumer's bundler, helped by
//   `"sideEffects": false`, drops every file it does not need. One entry per public entry point
//   only would put all shared code into a single chunk, which no bundler can split again:
//   `import { PatchEmbed } from 'vit-ts'` would then carry ResNet18, the weight loaders and the
//   analysis code. test/package/bundle.test.ts checks this against the packed tarball.
// - CJS (Node `require`): the public entry points with splitting, so `vit-ts` and `vit-ts/node`
//   share one copy of every class (instanceof and layer registration depend on it).
// - The worker-thread script of the Node pools (src/parallel/) is started by file path and is
//   emitted as dist/parallel_worker.{js,cjs}. All files sit flat in dist/ so that the pool finds
//   the worker next to whichever file its code ends up in.
// All @tensorflow/* packages stay external: they are peer dependencies and a second bundled copy
// of tfjs-core would break layer registration.

const PUBLIC_ENTRIES = {
  index: 'src/index.ts',
  node: 'src/node.ts',
  parallel_worker: 'src/parallel/worker.ts',
};

/** Every module under src/ as an entry named by its path (`layers/patch_embed` -> `layers-patch_embed`). */
function moduleEntries(): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) {
        const name = relative('src', p).replace(/\.ts$/, '').replaceAll('/', '-');
        out[`m-${name}`] = p;
      }
    }
  };
  walk('src');
  return out;
}

const common: Options = {
  sourcemap: true,
  treeshake: true,
  splitting: true,
  target: 'es2022',
  external: [/^@tensorflow\//, 'pngjs', 'jpeg-js', 'piscina', 'cli-progress'],
};

export default defineConfig([
  {
    ...common,
    entry: { ...moduleEntries(), ...PUBLIC_ENTRIES },
    format: ['esm'],
    dts: { entry: { index: PUBLIC_ENTRIES.index, node: PUBLIC_ENTRIES.node } },
    // The per-module entry files only re-export their chunk and nothing imports them: drop them.
    onSuccess: async () => {
      for (const f of readdirSync('dist')) if (f.startsWith('m-')) rmSync(join('dist', f));
    },
  },
  {
    ...common,
    entry: PUBLIC_ENTRIES,
    format: ['cjs'],
    dts: { entry: { index: PUBLIC_ENTRIES.index, node: PUBLIC_ENTRIES.node } },
  },
]);
