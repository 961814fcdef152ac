/**
 * Debian's Chromium driven by Playwright, shared by the browser test run (vitest.browser.config.ts),
 * the end-to-end test of the demo page (test/e2e/browser_page.e2e.ts) and the browser benchmark
 * (bench/browser_parallel.ts): launch flags, building examples/browser and serving its dist/.
 * `npx playwright install` is blocked on these machines; /usr/bin/chromium works.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join, normalize, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Browser, chromium } from 'playwright';

/** Debian's Chromium. */
export const CHROMIUM_PATH = '/usr/bin/chromium';

/** Headless Chromium without network side traffic, WebGL2 through ANGLE on SwiftShader. */
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
  // WebGL2 through ANGLE on SwiftShader (headless has no GPU).
  '--use-angle=swiftshader',
  '--enable-unsafe-swiftshader',
];

/** WebGPU on SwiftShader's Vulkan adapter. */
export const WEBGPU_ARGS = ['--enable-unsafe-webgpu', '--use-webgpu-adapter=swiftshader'];

/** Starts headless Chromium with {@link CHROMIUM_ARGS}. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS });
}

const repo = resolve(fileURLToPath(new URL('../..', import.meta.url)));

/** The demo page's sources and its Vite build output. */
export const EXAMPLE_PAGE_DIR = join(repo, 'examples/browser');
export const EXAMPLE_DIST_DIR = join(EXAMPLE_PAGE_DIR, 'dist');

/** Builds examples/browser into {@link EXAMPLE_DIST_DIR} with Vite. */
export async function buildExamplePage(): Promise<void> {
  console.log('building examples/browser ...');
  const { build } = await import('vite');
  await build({ configFile: join(EXAMPLE_PAGE_DIR, 'vite.config.ts'), logLevel: 'warn' });
}

const MIME: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.bin': 'application/octet-stream',
  '.wasm': 'application/wasm',
  '.png': 'image/png',
};

/**
 * A static file server for `root` on 127.0.0.1 (ephemeral port); nothing outside `root` is
 * served. `isolated` adds the COOP / COEP headers that make the page cross-origin isolated
 * (SharedArrayBuffer, threaded wasm), as the Vite dev server and preview do.
 */
export async function serveStatic(
  root: string,
  options: { isolated?: boolean } = {},
): Promise<{ server: Server; url: string }> {
  const server = createServer(async (req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    const file = normalize(join(root, path === '/' ? 'index.html' : path));
    if (!file.startsWith(root) || !(await stat(file).catch(() => null))?.isFile()) {
      res.writeHead(404).end('not found');
      return;
    }
    const headers: Record<string, string> = {
      'content-type': MIME[extname(file)] ?? 'application/octet-stream',
    };
    if (options.isolated) {
      headers['cross-origin-opener-policy'] = 'same-origin';
      headers['cross-origin-embedder-policy'] = 'require-corp';
    }
    res.writeHead(200, headers);
    createReadStream(file).pipe(res);
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/` };
}
