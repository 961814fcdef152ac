/**
 * All cores in the browser: builds examples/browser (parallel.html), serves it cross-origin
 * isolated (COOP + COEP, as the Vite dev server and preview do), opens it in Debian's Chromium
 * (headless) and measures ViT-Ti/16 forward on a batch:
 *   - tfjs' threaded SIMD wasm with setThreadsCount(1) and (2), reporting getThreadsCount():
 *     as shipped ('threads': tfjs caps its pool at hardwareConcurrency / 2) and with that cap
 *     lifted ('threads-uncapped', examples/browser/wasm_setup.ts liftWasmThreadCap);
 *   - a pool of 1 and 2 Web Workers, each with its own single-threaded wasm backend;
 *   - webgl (SwiftShader, a software GPU, in headless Chromium: a CPU figure, not a GPU one).
 * Each page also reports its 1024x1024 matMul rate (the machine's load shows there).
 *
 *   npm run bench:browser-parallel
 *   npx tsx bench/browser_parallel.ts --no-build --batch 4 --runs 3 --modes threads,workers
 */
import {
  buildExamplePage,
  EXAMPLE_DIST_DIR as distDir,
  launchChromium,
  serveStatic,
} from '../test/helpers/chromium';

const args = process.argv.slice(2);
const opt = (name: string, fallback: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? args[i + 1] : fallback;
};
const batch = Number(opt('batch', '4'));
const runs = Number(opt('runs', '3'));
const modes = opt('modes', 'threads,threads-uncapped,workers,webgl').split(',');
const isolated = !args.includes('--no-isolation');

interface PageResult {
  mode: string;
  n: number;
  backend?: string;
  crossOriginIsolated?: boolean;
  hardwareConcurrency?: number;
  wasmMultithread?: boolean;
  threadsCount?: number;
  matMulGflops?: number;
  medianMs?: number;
  imagesPerSecond?: number;
  maxDiffVsPage?: number;
  times?: number[];
  error?: string;
}

async function main(): Promise<void> {
  const t0 = performance.now();
  if (!args.includes('--no-build')) await buildExamplePage();
  const { server, url } = await serveStatic(distDir, { isolated });
  const browser = await launchChromium();
  const rows: PageResult[] = [];
  let examplePage = '';
  try {
    // The example page (index.html) picks threaded wasm when cross-origin isolated.
    {
      const page = await browser.newPage();
      await page.goto(url);
      await page.waitForFunction(
        () => ['ready', 'error'].includes(document.body.dataset['state'] ?? ''),
        null,
        { timeout: 600_000 },
      );
      examplePage = `example page: state ${await page.evaluate(() => document.body.dataset['state'])}, crossOriginIsolated ${await page.evaluate(() => self.crossOriginIsolated)}; ${await page.textContent('#status')}`;
      console.log(examplePage);
      await page.close();
    }
    const cases: Array<[string, number]> = [];
    for (const mode of modes) {
      if (mode === 'webgl') cases.push(['webgl', 1]);
      else cases.push([mode, 1], [mode, 2]);
    }
    for (const [mode, n] of cases) {
      const page = await browser.newPage();
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      page.on('console', (m) => {
        if (m.type() === 'error' || m.type() === 'warning') errors.push(`console: ${m.text()}`);
      });
      await page.goto(`${url}parallel.html?mode=${mode}&n=${n}&batch=${batch}&runs=${runs}`);
      await page.waitForFunction(
        () => ['ready', 'error'].includes(document.body.dataset['state'] ?? ''),
        null,
        { timeout: 600_000 },
      );
      const result = JSON.parse(
        (await page.evaluate(() => document.body.dataset['result'])) ?? '{}',
      ) as PageResult;
      if (errors.length > 0) result.error = [result.error, ...errors].filter(Boolean).join('; ');
      rows.push({ ...result, mode, n });
      console.log(JSON.stringify({ ...result, mode, n }));
      await page.close();
    }
  } finally {
    await browser.close();
    server.close();
  }
  const base = (mode: string) => rows.find((r) => r.mode === mode && r.n === 1)?.medianMs;
  console.log(
    `\nViT-Ti/16, 224 px, batch ${batch}, headless Chromium (${rows[0]?.hardwareConcurrency} logical cores), page ${isolated ? '' : 'NOT '}cross-origin isolated`,
  );
  console.log(
    '| mode | n | threads (tfjs) | median ms | img/s | vs n=1 | matMul GFLOP/s | max diff vs page |',
  );
  console.log('|---|---|---|---|---|---|---|---|');
  for (const r of rows) {
    const b = base(r.mode);
    console.log(
      `| ${r.mode} | ${r.n} | ${r.threadsCount ?? '-'} | ${r.medianMs ?? 'error'} | ${r.imagesPerSecond?.toFixed(2) ?? '-'} | ${b && r.medianMs ? `${(b / r.medianMs).toFixed(2)}x` : '-'} | ${r.matMulGflops?.toFixed(1) ?? '-'} | ${r.maxDiffVsPage?.toExponential(1) ?? '-'} |${r.error ? ` ${r.error}` : ''}`,
    );
  }
  console.log(examplePage);
  console.log(`total ${((performance.now() - t0) / 1000).toFixed(0)} s`);
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
