import { playwright } from '@vitest/browser-playwright';
import { defineConfig } from 'vitest/config';
import { CHROMIUM_ARGS, CHROMIUM_PATH, WEBGPU_ARGS } from './test/helpers/chromium';

// Browser test run (`npm run test:browser`): the backend-facing suites that run in Node on cpu and
// wasm (test/backends, test/train) run again in headless Debian Chromium, where
// `describeBackends` picks webgl and webgpu (test/helpers/backends.ts). Both run on SwiftShader
// (software GPU), which is slow: these suites keep their models tiny.
export default defineConfig({
  // `VIT_TS_BACKENDS=webgpu npm run test:browser` narrows the matrix (read by test/helpers/backends.ts).
  define: { __VIT_TS_BACKENDS__: JSON.stringify(process.env['VIT_TS_BACKENDS'] ?? '') },
  test: {
    include: process.env['VIT_TS_BROWSER_INCLUDE']?.split(',') ?? [
      'test/backends/**/*.test.ts',
      'test/train/**/*.test.ts',
    ],
    // `*.node.test.ts` files use Node-only code (vit-ts/node: checkpoints on disk, the terminal
    // progress bar); the rest of test/train reads tensors asynchronously and runs here too.
    exclude: ['**/*.node.test.ts', 'node_modules/**'],
    testTimeout: 300_000,
    hookTimeout: 300_000,
    reporters: ['default'],
    browser: {
      enabled: true,
      headless: true,
      provider: playwright({
        launchOptions: {
          executablePath: CHROMIUM_PATH,
          args: [...CHROMIUM_ARGS, ...WEBGPU_ARGS],
        },
      }),
      instances: [{ browser: 'chromium' }],
      screenshotFailures: false,
    },
  },
});
