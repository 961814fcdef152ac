import { defineConfig } from 'vitest/config';

// `npm run test:package`: the published package as a user gets it. Builds nothing itself (the
// npm script runs `npm run build` first); packs dist/ with `npm pack`, installs the tarball in a
// fresh consumer project (test/package/pack_setup.ts) and checks bundles, types and snippets.
export default defineConfig({
  test: {
    include: ['test/package/**/*.pack.test.ts'],
    globalSetup: ['test/package/pack_setup.ts'],
    environment: 'node',
    testTimeout: 180_000,
    hookTimeout: 180_000,
    pool: 'forks',
    fileParallelism: false,
    reporters: ['default'],
  },
});
