import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));

// The page imports vit-ts from the source (../../src, no library build needed) and the shipped MNIST model
// (examples/mnist/model) and samples as assets: Vite copies them into dist with hashed names.
export default defineConfig({
  root: here('.'),
  base: './',
  build: {
    outDir: here('dist'),
    emptyOutDir: true,
    target: 'es2022',
    // tfjs is large; the page is a demo, not a size benchmark.
    chunkSizeWarningLimit: 4000,
  },
  server: { host: '127.0.0.1' },
  preview: { host: '127.0.0.1' },
});
