import { defineConfig } from 'tsup';

// Two entry points: the browser-safe library root and a Node-only entry (file system helpers,
// PNG encoding). All @tensorflow/* packages stay external: they are peer dependencies and a
// second bundled copy of tfjs-core would break layer registration.
export default defineConfig({
  entry: { index: 'src/index.ts', node: 'src/node.ts' },
  format: ['esm', 'cjs'],
  dts: true,
  sourcemap: true,
  clean: true,
  treeshake: true,
  splitting: true,
  target: 'es2022',
  external: [/^@tensorflow\//, 'pngjs', 'jpeg-js'],
});
