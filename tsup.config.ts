import { defineConfig } from 'tsup';

// Two entry points: the browser-safe library root and a Node-only entry (file system helpers,
// PNG encoding), plus the worker-thread script of the Node inference pool and data-parallel
// trainer (src/parallel/), which piscina starts by file path: it must exist as its own file
// next to the modules that locate it (dist/parallel_worker.js and .cjs). All @tensorflow/*
// packages stay external: they are peer dependencies and a second bundled copy of tfjs-core
// would break layer registration.
export default defineConfig({
  entry: {
    index: 'src/index.ts',
    node: 'src/node.ts',
    parallel_worker: 'src/parallel/worker.ts',
  },
  format: ['esm', 'cjs'],
  dts: true,
  sourcemap: true,
  clean: true,
  treeshake: true,
  splitting: true,
  target: 'es2022',
  external: [/^@tensorflow\//, 'pngjs', 'jpeg-js'],
});
