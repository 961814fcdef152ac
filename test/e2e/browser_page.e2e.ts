/**
 * End-to-end test of the browser demo (examples/browser): builds the page with Vite, serves
 * dist/ from 127.0.0.1 on an ephemeral port, opens it in Debian's Chromium (webgl on SwiftShader)
 * and checks what a user would see, for both shipped models (MNIST digits and Fashion-MNIST,
 * switched with the page's model picker). Run with `npm run test:e2e` (not part of `npm test`).
 *
 *   npm run test:e2e                 # build, then test
 *   npx tsx test/e2e/browser_page.e2e.ts --no-build   # reuse examples/browser/dist
 *
 * Prints "N passed, M failed", saves test-artifacts/browser-page.png and
 * test-artifacts/browser-page-fashion.png, exits 1 on any failure.
 */
import { mkdir, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Page } from 'playwright';
import { FASHION_MNIST_CLASSES } from '../../src/data/datasets';
import {
  buildExamplePage,
  EXAMPLE_DIST_DIR as distDir,
  launchChromium,
  serveStatic,
} from '../helpers/chromium';

const repo = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const screenshot = join(repo, 'test-artifacts/browser-page.png');
const fashionScreenshot = join(repo, 'test-artifacts/browser-page-fashion.png');
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

/** What the test needs from a shipped model.json, read in Node: the page must show the same. */
interface ModelFacts {
  params: number;
  depth: number;
  /** The record's headline accuracy: `testAccuracy`, else `heldOutAccuracy`. */
  accuracy: number;
}

async function modelFacts(folder: string): Promise<ModelFacts> {
  const json = JSON.parse(
    await readFile(join(repo, 'examples', folder, 'model/model.json'), 'utf8'),
  );
  const params = (json.weightsManifest as Array<{ weights: Array<{ shape: number[] }> }>)
    .flatMap((g) => g.weights)
    .reduce((sum, w) => sum + w.shape.reduce((a, b) => a * b, 1), 0);
  const vit = (
    json.modelTopology.config.layers as Array<{ class_name: string; config: object }>
  ).find(
    // A plain ViT or a hybrid (a CNN making the tokens): both carry the ViT's depth.
    (l) =>
      l.class_name === 'VitTs>VisionTransformer' ||
      l.class_name === 'VitTs>HybridVisionTransformer',
  );
  if (vit == null) throw new Error(`examples/${folder}/model: no (Hybrid)VisionTransformer layer`);
  const training = json.userDefinedMetadata?.training ?? {};
  const accuracy = training.testAccuracy ?? training.heldOutAccuracy;
  if (typeof accuracy !== 'number')
    throw new Error(`examples/${folder}/model: no recorded accuracy`);
  return { params, depth: (vit.config as { depth: number }).depth, accuracy };
}

/** Picks a model in the page's switch and waits until it is loaded and its first sample shown. */
async function switchModel(page: Page, id: string): Promise<void> {
  await page.selectOption('#model', id);
  await page.waitForFunction(
    (want) =>
      document.body.dataset['state'] === 'error' ||
      (document.body.dataset['model'] === want && document.body.dataset['state'] === 'ready'),
    id,
    { timeout: READY_TIMEOUT_MS },
  );
  await waitReady(page);
}

/** Clicks sample `index` and waits until the page shows its prediction. */
async function clickSample(page: Page, index: number): Promise<void> {
  await page.click(`#samples button[data-sample-index="${index}"]`);
  await page.waitForFunction(
    (n) =>
      document.body.dataset['state'] !== 'busy' &&
      (document.getElementById('input-info')?.textContent ?? '').includes(`sample #${n},`),
    index + 1,
    { timeout: READY_TIMEOUT_MS },
  );
  await waitReady(page);
}

/** The prediction panel: every class probability, the top-1 index and the top-3 rows' names. */
async function readPrediction(
  page: Page,
): Promise<{ probs: number[]; top1: number; names: string[] }> {
  return page.$eval('#prediction', (el) => {
    const list = el as HTMLElement;
    return {
      probs: JSON.parse(list.dataset['probs'] ?? '[]') as number[],
      top1: Number(list.dataset['top1']),
      names: Array.from(list.querySelectorAll('li .name'), (n) => n.textContent ?? ''),
    };
  });
}

/** Checks that the probabilities are a distribution over `classNames` and the rows name classes. */
function checkDistribution(
  check: (name: string, ok: boolean, detail: string) => void,
  what: string,
  prediction: { probs: number[]; top1: number; names: string[] },
  classNames: readonly string[],
): void {
  const { probs, top1, names } = prediction;
  const sum = probs.reduce((a, b) => a + b, 0);
  const argmax = probs.indexOf(Math.max(...probs));
  check(
    `${what}: ${classNames.length} class probabilities summing to 1`,
    probs.length === classNames.length &&
      probs.every((p) => p >= 0 && p <= 1) &&
      Math.abs(sum - 1) < 1e-4,
    `${probs.length} values, sum ${sum.toFixed(6)}`,
  );
  check(
    `${what}: top-3 rows name the model's classes, best first`,
    names.length === 3 &&
      names.every((n) => classNames.includes(n)) &&
      top1 === argmax &&
      names[0] === classNames[top1],
    `top-3 [${names.join(' | ')}], top-1 index ${top1} (argmax ${argmax}, p ${probs[argmax]?.toFixed(3)})`,
  );
}

async function pageTensors(page: Page): Promise<number> {
  return page.evaluate(() => Number(document.body.dataset['tensors']));
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

    // The MNIST training record is the one in model.json.
    const mnist = await modelFacts('mnist');
    const mnistRecord = await page.$eval('#training', (el) => ({
      accuracy: Number((el as HTMLElement).dataset['accuracy']),
      text: el.textContent ?? '',
    }));
    check(
      'MNIST: training record shows the accuracy in model.json',
      mnistRecord.accuracy === mnist.accuracy &&
        mnistRecord.text.includes(`${(mnist.accuracy * 100).toFixed(1)}%`),
      `page ${mnistRecord.accuracy}, model.json ${mnist.accuracy}`,
    );
    const digitClasses = Array.from({ length: 10 }, (_, d) => String(d));

    // Switch to Fashion-MNIST: its model, class names, record, samples and views.
    const fashion = await modelFacts('fashion');
    await switchModel(page, 'fashion');
    const fashionStatus = (await page.textContent('#status')) ?? '';
    check(
      'Fashion-MNIST: switch loads its model',
      (await page.evaluate(() => document.body.dataset['model'])) === 'fashion' &&
        fashionStatus.includes(`${fashion.params.toLocaleString('en')} parameters`) &&
        fashionStatus.includes(`${fashion.depth} blocks`),
      `${fashionStatus} (model.json: ${fashion.params} parameters, depth ${fashion.depth})`,
    );
    const shownClasses = await page.$$eval('#classes li', (lis) => lis.map((li) => li.textContent));
    check(
      'Fashion-MNIST: the ten class names are listed',
      JSON.stringify(shownClasses) === JSON.stringify(FASHION_MNIST_CLASSES),
      shownClasses.join(', '),
    );
    const fashionRecord = await page.$eval('#training', (el) => ({
      accuracy: Number((el as HTMLElement).dataset['accuracy']),
      kind: (el as HTMLElement).dataset['accuracyKind'],
      text: el.textContent ?? '',
    }));
    check(
      'Fashion-MNIST: training record shows the test accuracy in model.json',
      fashionRecord.accuracy === fashion.accuracy &&
        fashionRecord.kind === 'test' &&
        fashionRecord.text.includes(`${(fashion.accuracy * 100).toFixed(1)}%`),
      `page ${fashionRecord.accuracy} (${fashionRecord.kind}), model.json ${fashion.accuracy}`,
    );
    checkDistribution(
      check,
      'Fashion-MNIST first sample',
      await readPrediction(page),
      FASHION_MNIST_CLASSES,
    );
    const fashionStrip = await page.$$eval('#strip canvas', (cs) => cs.length);
    check(
      'Fashion-MNIST: one map per block plus the rollout',
      fashionStrip === fashion.depth + 1 &&
        Number(await page.$eval('#layer', (el) => (el as HTMLInputElement).max)) === fashion.depth,
      `${fashionStrip} maps for ${fashion.depth} blocks`,
    );
    const fashionLabels = await page.$$eval('#samples button', (bs) =>
      bs.map((b) => Number((b as HTMLElement).dataset['label'])),
    );
    // Every held-out sample through the page; the model is a ~90% classifier, so most are right.
    const misses: string[] = [];
    for (const [i, label] of fashionLabels.entries()) {
      await clickSample(page, i);
      const p = await readPrediction(page);
      if (p.top1 !== label)
        misses.push(`#${i + 1} ${FASHION_MNIST_CLASSES[label]} -> ${p.names[0]}`);
    }
    const correct = fashionLabels.length - misses.length;
    check(
      'Fashion-MNIST: at least 15 of the 20 test samples predicted as their label',
      fashionLabels.length === 20 && correct >= 15,
      `${correct}/${fashionLabels.length} right${misses.length > 0 ? `; missed ${misses.join(', ')}` : ''}`,
    );
    const fashionOverlay = await canvasPixels(page, '#overlay');
    check(
      'Fashion-MNIST: overlay canvas drawn (non-uniform)',
      fashionOverlay.std > 10 && fashionOverlay.distinct > 8,
      `grey std ${fashionOverlay.std.toFixed(1)}, ${fashionOverlay.distinct} colours`,
    );

    // A drawing: a pair of trousers as two thick strokes joined at the waist.
    await page.click('#clear');
    const fbox = await page.locator('#draw').boundingBox();
    if (fbox == null) throw new Error('#draw has no bounding box');
    const at = (fx: number, fy: number) =>
      [fbox.x + fbox.width * fx, fbox.y + fbox.height * fy] as const;
    for (const [from, to] of [
      [at(0.35, 0.1), at(0.65, 0.1)],
      [at(0.38, 0.1), at(0.33, 0.9)],
      [at(0.62, 0.1), at(0.67, 0.9)],
    ] as const) {
      await page.mouse.move(...from);
      await page.mouse.down();
      for (let i = 1; i <= 8; i++)
        await page.mouse.move(
          from[0] + ((to[0] - from[0]) * i) / 8,
          from[1] + ((to[1] - from[1]) * i) / 8,
        );
      await page.mouse.up();
    }
    await page.waitForFunction(
      () =>
        document.body.dataset['state'] !== 'busy' &&
        /drawing/.test(document.getElementById('input-info')?.textContent ?? ''),
      null,
      { timeout: READY_TIMEOUT_MS },
    );
    await waitReady(page);
    checkDistribution(
      check,
      'Fashion-MNIST drawing',
      await readPrediction(page),
      FASHION_MNIST_CLASSES,
    );
    await setLayer(page, fashion.depth);
    await page.screenshot({ path: fashionScreenshot, fullPage: true });
    console.log(`screenshot: ${fashionScreenshot}`);

    // Switch back: the digits model, its classes and its predictions again.
    await switchModel(page, 'mnist');
    const backClasses = await page.$$eval('#classes li', (lis) => lis.map((li) => li.textContent));
    const backStrip = await page.$$eval('#strip canvas', (cs) => cs.length);
    check(
      'switch back to MNIST: digit classes and one map per block plus the rollout',
      (await page.evaluate(() => document.body.dataset['model'])) === 'mnist' &&
        JSON.stringify(backClasses) === JSON.stringify(digitClasses) &&
        backStrip === mnist.depth + 1,
      `classes ${backClasses.join(',')}; ${backStrip} maps for ${mnist.depth} blocks`,
    );
    const tensorsAfterRound = await pageTensors(page);
    await clickSample(page, 7);
    const back = await readPrediction(page);
    check(
      'switch back to MNIST: sample 7 predicted as its label',
      back.top1 === labels[7],
      `label ${labels[7]}, top-3 [${back.names.join(' | ')}]`,
    );
    checkDistribution(check, 'MNIST after switching back', back, digitClasses);

    // A second round trip leaves exactly as many live tensors: nothing leaks per switch.
    await switchModel(page, 'fashion');
    await switchModel(page, 'mnist');
    const tensorsAfterSecondRound = await pageTensors(page);
    check(
      'switching models leaks no tensors',
      Number.isFinite(tensorsAfterRound) && tensorsAfterRound === tensorsAfterSecondRound,
      `${tensorsAfterRound} live tensors after the first round trip, ${tensorsAfterSecondRound} after the second`,
    );
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
