import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));

/**
 * Cross-origin isolation (COOP + COEP) makes SharedArrayBuffer available, which tfjs' threaded
 * SIMD wasm build needs; without these headers tfjs falls back to the single-threaded SIMD build.
 * A production server must send the same two headers with the page (docs/backends.md).
 */
const CROSS_ORIGIN_ISOLATION = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
};

// The page imports vit-ts from the source (../../src, no library build needed) and the shipped models
// (examples/mnist/model, examples/fashion/model: model.json as lazily loaded chunks, the weights
// files found by import.meta.glob as assets) and samples: Vite copies them into dist with hashed names.
// parallel.html is the multi-core benchmark page (bench/browser_parallel.ts drives it).
export default defineConfig({
  root: here('.'),
  base: './',
  build: {
    outDir: here('dist'),
    emptyOutDir: true,
    target: 'es2022',
    // tfjs is large; the page is a demo, not a size benchmark.
    chunkSizeWarningLimit: 4000,
    rollupOptions: {
      input: { main: here('index.html'), parallel: here('parallel.html') },
    },
  },
  // Module workers (the Web Worker pool of parallel.html) share chunks with the page.
  worker: { format: 'es' },
  server: { host: '127.0.0.1', headers: CROSS_ORIGIN_ISOLATION },
  preview: { host: '127.0.0.1', headers: CROSS_ORIGIN_ISOLATION },
});
