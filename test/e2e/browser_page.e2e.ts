/**
 * End-to-end test of the browser demo (examples/browser): builds the page with Vite, serves
 * dist/ from 127.0.0.1 on an ephemeral port, opens it in Debian's Chromium (webgl on SwiftShader)
 * and checks what a user would see. Run with `npm run test:e2e` (not part of `npm test`).
 *
 *   npm run test:e2e                 # build, then test
 *   npx tsx test/e2e/browser_page.e2e.ts --no-build   # reuse examples/browser/dist
 *
 * Prints "N passed, M failed", saves test-artifacts/browser-page.png, exits 1 on any failure.
 */
import { mkdir, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Page } from 'playwright';
import {
  buildExamplePage,
  EXAMPLE_DIST_DIR as distDir,
  launchChromium,
  serveStatic,
} from '../helpers/chromium';

const repo = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const screenshot = join(repo, 'test-artifacts/browser-page.png');
/** SwiftShader is a software GPU: the first webgl pass compiles many shaders. */
const READY_TIMEOUT_MS = 240_000;

/** Grey-level statistics of a canvas: spread of its pixels and a copy of its RGBA bytes. */
async function canvasPixels(
  page: Page,
  selector: string,
): Promise<{ std: number; distinct: number; data: number[] }> {
  return page.$eval(selector, (el) => {
    const c = el as HTMLCanvasElement;
    const ctx = c.getContext('2d');
    if (ctx == null) throw new Error('no 2d context');
    const d = ctx.getImageData(0, 0, c.width, c.height).data;
    let sum = 0;
    let sq = 0;
    const colours = new Set<number>();
    const n = d.length / 4;
    for (let i = 0; i < n; i++) {
      const v = (d[i * 4] + d[i * 4 + 1] + d[i * 4 + 2]) / 3;
      sum += v;
      sq += v * v;
      colours.add((d[i * 4] << 16) | (d[i * 4 + 1] << 8) | d[i * 4 + 2]);
    }
    const mean = sum / n;
    return {
      std: Math.sqrt(Math.max(0, sq / n - mean * mean)),
      distinct: colours.size,
      data: Array.from(d),
    };
  });
}

/** Fraction of pixels whose RGB differs by more than 8 levels in some channel. */
function changedFraction(a: number[], b: number[]): number {
  let changed = 0;
  for (let i = 0; i < a.length; i += 4) {
    if (
      Math.abs(a[i] - b[i]) > 8 ||
      Math.abs(a[i + 1] - b[i + 1]) > 8 ||
      Math.abs(a[i + 2] - b[i + 2]) > 8
    )
      changed++;
  }
  return changed / (a.length / 4);
}

async function waitReady(page: Page): Promise<void> {
  await page.waitForFunction(
    () => ['ready', 'error'].includes(document.body.dataset['state'] ?? ''),
    null,
    {
      timeout: READY_TIMEOUT_MS,
    },
  );
  const state = await page.evaluate(() => document.body.dataset['state']);
  if (state !== 'ready')
    throw new Error(`page state ${state}: ${await page.textContent('#status')}`);
}

async function setLayer(page: Page, position: number): Promise<void> {
  await page.$eval(
    '#layer',
    (el, p) => {
      const input = el as HTMLInputElement;
      input.value = String(p);
      input.dispatchEvent(new Event('input', { bubbles: true }));
    },
    position,
  );
  await page.waitForFunction(
    () => document.body.dataset['state'] === 'busy' || document.body.dataset['state'] === 'ready',
  );
  await waitReady(page);
}

async function main(): Promise<void> {
  const results: Array<{ name: string; ok: boolean; detail: string }> = [];
  const check = (name: string, ok: boolean, detail: string) => {
    results.push({ name, ok, detail });
    console.log(`${ok ? 'PASS' : 'FAIL'} ${name}: ${detail}`);
  };

  if (!process.argv.includes('--no-build')) await buildExamplePage();
  await readFile(join(distDir, 'index.html')).catch(() => {
    throw new Error(`${distDir}/index.html missing: run without --no-build`);
  });
  const { server, url } = await serveStatic(distDir);
  const browser = await launchChromium();
  try {
    const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    const pageErrors: string[] = [];
    page.on('pageerror', (e) => pageErrors.push(e.message));
    page.on('console', (m) => {
      if (m.type() === 'error') pageErrors.push(m.text());
    });
    await page.goto(url);
    await waitReady(page);
    const backend = await page.evaluate(() => document.body.dataset['backend']);
    check(
      'model loads and a backend starts',
      backend === 'webgl' || backend === 'cpu',
      `backend ${backend}; ${await page.textContent('#status')}`,
    );

    // Known held-out samples: the page selects sample 0 on load; then two more by clicking.
    const labels = await page.$$eval('#samples button', (bs) =>
      bs.map((b) => Number((b as HTMLElement).dataset['label'])),
    );
    check(
      '20 sample digits listed',
      labels.length === 20,
      `${labels.length} buttons, labels ${labels.join(',')}`,
    );
    for (const index of [0, 7, 19]) {
      if (index !== 0) {
        await page.click(`#samples button[data-sample-index="${index}"]`);
        await page.waitForFunction(
          () =>
            document.body.dataset['state'] === 'busy' || document.body.dataset['state'] === 'ready',
        );
        await waitReady(page);
      }
      const top1 = await page.$eval('#prediction', (el) =>
        Number((el as HTMLElement).dataset['top1']),
      );
      const rows = await page.$$eval('#prediction li', (lis) =>
        lis.map((li) =>
          Array.from(li.children, (c) => c.textContent)
            .filter(Boolean)
            .join(': '),
        ),
      );
      check(
        `sample ${index} predicted as its label`,
        top1 === labels[index],
        `label ${labels[index]}, top-3 [${rows.join(' | ')}]`,
      );
      check(`sample ${index} shows top-3`, rows.length === 3, `${rows.length} rows`);
    }

    // The canvases are drawn: the overlay, every strip map and the thumbnails are not uniform.
    const overlay = await canvasPixels(page, '#overlay');
    check(
      'overlay canvas drawn (non-uniform)',
      overlay.std > 10 && overlay.distinct > 8,
      `grey std ${overlay.std.toFixed(1)}, ${overlay.distinct} colours`,
    );
    const stripStats = await page.$$eval('#strip canvas', (cs) =>
      cs.map((el) => {
        const c = el as HTMLCanvasElement;
        const d =
          c.getContext('2d')?.getImageData(0, 0, c.width, c.height).data ??
          new Uint8ClampedArray(4);
        return new Set(
          Array.from(
            { length: d.length / 4 },
            (_, i) => (d[i * 4] << 16) | (d[i * 4 + 1] << 8) | d[i * 4 + 2],
          ),
        ).size;
      }),
    );
    check(
      'every block map and the rollout drawn',
      stripStats.length === 7 && stripStats.every((n) => n > 8),
      `distinct colours per map: ${stripStats.join(', ')}`,
    );
    const thumb = await canvasPixels(page, '#samples button[data-sample-index="0"] canvas');
    check('sample thumbnails drawn', thumb.std > 10, `grey std ${thumb.std.toFixed(1)}`);

    // The layer slider changes the overlay: block 1 -> last block -> rollout.
    const max = Number(await page.$eval('#layer', (el) => (el as HTMLInputElement).max));
    await setLayer(page, 0);
    const first = await canvasPixels(page, '#overlay');
    const label0 = await page.textContent('#layer-label');
    await setLayer(page, max - 1);
    const last = await canvasPixels(page, '#overlay');
    const labelLast = await page.textContent('#layer-label');
    await setLayer(page, max);
    const rollout = await canvasPixels(page, '#overlay');
    const labelRollout = await page.textContent('#layer-label');
    const f1 = changedFraction(first.data, last.data);
    const f2 = changedFraction(last.data, rollout.data);
    check(
      'slider: first vs last block overlay differ',
      f1 > 0.05,
      `${(f1 * 100).toFixed(1)}% of pixels changed ("${label0}" -> "${labelLast}")`,
    );
    check(
      'slider: last block vs rollout overlay differ',
      f2 > 0.05,
      `${(f2 * 100).toFixed(1)}% of pixels changed (-> "${labelRollout}")`,
    );
    check(
      'slider label names the rollout',
      /rollout/.test(labelRollout ?? ''),
      `"${labelRollout}"`,
    );

    // Drawing: a vertical stroke is a "1".
    await setLayer(page, max - 1);
    const box = await page.locator('#draw').boundingBox();
    if (box == null) throw new Error('#draw has no bounding box');
    const x = box.x + box.width * 0.5;
    await page.mouse.move(x, box.y + box.height * 0.15);
    await page.mouse.down();
    for (let i = 1; i <= 10; i++)
      await page.mouse.move(x + i * 0.4, box.y + box.height * (0.15 + 0.07 * i));
    await page.mouse.up();
    await page.waitForFunction(
      () => /drawing/.test(document.getElementById('input-info')?.textContent ?? ''),
      null,
      {
        timeout: READY_TIMEOUT_MS,
      },
    );
    await waitReady(page);
    const drawnTop1 = await page.$eval('#prediction', (el) =>
      Number((el as HTMLElement).dataset['top1']),
    );
    check('a drawn vertical stroke is predicted as 1', drawnTop1 === 1, `top-1 ${drawnTop1}`);

    // The screenshot shows a held-out digit with the rollout.
    await page.click('#samples button[data-sample-index="7"]');
    await page.waitForFunction(() =>
      /held-out/.test(document.getElementById('input-info')?.textContent ?? ''),
    );
    await waitReady(page);
    await setLayer(page, max);
    await mkdir(join(repo, 'test-artifacts'), { recursive: true });
    await page.screenshot({ path: screenshot, fullPage: true });
    console.log(`screenshot: ${screenshot}`);
    check('no page errors', pageErrors.length === 0, pageErrors.slice(0, 3).join(' | ') || 'none');
  } catch (e) {
    check('page test ran to the end', false, (e as Error).message);
  } finally {
    await browser.close();
    server.close();
  }
  const failed = results.filter((r) => !r.ok).length;
  console.log(`${results.length - failed} passed, ${failed} failed`);
  process.exitCode = failed > 0 ? 1 : 0;
}

main().catch((e) => {
  console.error(e);
  console.log('0 passed, 1 failed');
  process.exit(1);
});
