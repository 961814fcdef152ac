import { defineConfig } from 'vitest/config';

// Node test run (`npm test`): every backend-facing suite repeats on cpu and wasm
// (test/helpers/backends.ts). Browser backends run through `npm run test:browser`.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    exclude: ['test/**/*.browser.test.ts', 'test/**/*.pack.test.ts', 'node_modules/**'],
    environment: 'node',
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    reporters: ['default'],
  },
});
