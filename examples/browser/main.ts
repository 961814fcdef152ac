/// <reference types="vite/client" />
/**
 * The browser demo: loads the MNIST ViT shipped in examples/mnist/model, classifies a held-out
 * sample or a drawing, and shows the class-token attention of every block (and the rollout)
 * over the input, with the vit-ts analysis API.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-webgl';
import { type LayersModel, loadLayersModel } from '@tensorflow/tfjs-layers';
// The library from source; the page's Vite config and tsconfig need no build of vit-ts first.
import {
  drawToCanvas,
  findVisionTransformer,
  getAttention,
  mapsFromAttentions,
  overlayHeatmap,
  rolloutFromAttentions,
  tokenLayout,
} from '../../src/index';
import modelJson from '../mnist/model/model.json';
import samplesDoc from '../mnist/samples.json';
import { attachDrawing, drawingToInput, INPUT_SIZE } from './drawing';
import {
  configureWasmPaths,
  getThreadsCount,
  liftWasmThreadCap,
  setThreadsCount,
} from './wasm_setup';

interface Sample {
  label: number;
  pixels: number[];
}

/** What the current input produced; tensors are disposed when the input changes. */
interface Analysis {
  input: tf.Tensor4D;
  attentions: tf.Tensor4D[];
  probs: Float32Array;
  /** Per-block maps `[1, depth, gh, gw]` for the current head fusion, and the rollout `[1, gh, gw]`. */
  maps: tf.Tensor4D;
  rollout: tf.Tensor3D;
}

const $ = <T extends HTMLElement>(id: string) => {
  const el = document.getElementById(id);
  if (el == null) throw new Error(`missing #${id}`);
  return el as T;
};
const statusEl = $('status');
const layerInput = $<HTMLInputElement>('layer');
const layerLabel = $('layer-label');
const headsSelect = $<HTMLSelectElement>('heads');
const smoothInput = $<HTMLInputElement>('smooth');
const overlayCanvas = $<HTMLCanvasElement>('overlay');
const strip = $('strip');
const predictionList = $('prediction');
const timing = $('timing');
const inputInfo = $('input-info');

const OVERLAY_SIZE = 224;
const STRIP_SIZE = 56;
const ALPHA = 0.55;

let model: LayersModel;
let depth = 0;
let current: Analysis | null = null;
/** Serialises renders: a new input waits for the previous drawing to finish. */
let queue: Promise<void> = Promise.resolve();

function setStatus(text: string, error = false): void {
  statusEl.textContent = text;
  statusEl.classList.toggle('error', error);
}

/**
 * Backend order: an explicit `?backend=` first; then, in a cross-origin-isolated page (the Vite
 * dev server and preview send COOP/COEP), tfjs' threaded SIMD wasm on every logical core, which
 * beats webgl for a model this small; otherwise webgl, then single-threaded wasm, then cpu.
 */
async function pickBackend(): Promise<string> {
  const wanted = new URLSearchParams(location.search).get('backend');
  configureWasmPaths();
  if (self.crossOriginIsolated) {
    const logicalCores = navigator.hardwareConcurrency;
    liftWasmThreadCap();
    setThreadsCount(logicalCores);
  }
  const order = self.crossOriginIsolated ? ['wasm', 'webgl', 'cpu'] : ['webgl', 'wasm', 'cpu'];
  for (const name of [wanted, ...order]) {
    if (name == null) continue;
    try {
      if (await tf.setBackend(name)) {
        await tf.ready();
        return name;
      }
    } catch {
      // try the next backend
    }
  }
  throw new Error('no tfjs backend could start');
}

// saveModel names the weights file after its content (weights.<hash>.bin): take the name from the
// manifest and its URL from Vite's glob of the model folder.
const weightFileUrls = import.meta.glob('../mnist/model/*.bin', {
  query: '?url',
  import: 'default',
  eager: true,
}) as Record<string, string>;

async function loadShippedModel(): Promise<LayersModel> {
  const name = modelJson.weightsManifest[0]?.paths[0];
  // saveModel writes the path as './weights.<hash>.bin'.
  const weightsUrl = weightFileUrls[`../mnist/model/${name?.replace(/^\.\//, '')}`];
  if (name == null || weightsUrl == null) {
    throw new Error(
      `model.json names weights file ${String(name)}, which is not in examples/mnist/model`,
    );
  }
  const weights = await fetch(weightsUrl);
  if (!weights.ok) throw new Error(`${name}: HTTP ${weights.status}`);
  return loadLayersModel(
    tf.io.fromMemory({
      modelTopology: modelJson.modelTopology as unknown as object,
      weightSpecs: modelJson.weightsManifest.flatMap(
        (g) => g.weights,
      ) as tf.io.WeightsManifestEntry[],
      weightData: await weights.arrayBuffer(),
    }),
  );
}

function headFusion(): 'mean' | 'max' {
  return headsSelect.value === 'max' ? 'max' : 'mean';
}

/** Runs the model on one 28x28 image in [0, 1] and keeps what the views need. */
function analyse(pixels01: Float32Array): Analysis {
  const input = tf.tensor4d(pixels01, [1, INPUT_SIZE, INPUT_SIZE, 1]);
  const { attentions, logits } = getAttention(model, input);
  const probs = tf.tidy(() => tf.softmax(logits).dataSync() as Float32Array);
  logits.dispose();
  const layout = tokenLayout(model);
  const maps = mapsFromAttentions(attentions, { ...layout, heads: headFusion() });
  const rollout = rolloutFromAttentions(attentions, { ...layout, headFusion: headFusion() });
  return { input, attentions, probs, maps, rollout };
}

function disposeAnalysis(a: Analysis | null): void {
  if (a != null) tf.dispose([a.input, ...a.attentions, a.maps, a.rollout]);
}

/** The grid `[gh, gw]` for a slider position: a block, or the rollout at position `depth`. */
function mapAt(a: Analysis, position: number): tf.Tensor2D {
  return tf.tidy(() => {
    if (position >= depth) return tf.squeeze(a.rollout, [0]) as tf.Tensor2D;
    const [, , gh, gw] = a.maps.shape;
    return tf.reshape(tf.slice(a.maps, [0, position, 0, 0], [1, 1, gh, gw]), [
      gh,
      gw,
    ]) as tf.Tensor2D;
  });
}

function positionName(position: number): string {
  return position >= depth ? `rollout (blocks 1-${depth})` : `block ${position + 1} of ${depth}`;
}

async function drawOverlay(
  a: Analysis,
  position: number,
  canvas: HTMLCanvasElement,
  size: number,
): Promise<void> {
  const rgba = tf.tidy(() => {
    const image = tf.reshape(tf.image.resizeNearestNeighbor(a.input, [size, size]), [
      size,
      size,
      1,
    ]);
    return overlayHeatmap(image, mapAt(a, position), {
      alpha: ALPHA,
      imageMax: 1,
      colormap: 'jet',
      upsample: smoothInput.checked ? 'bilinear' : 'nearest',
    });
  });
  try {
    await drawToCanvas(rgba, canvas);
  } finally {
    rgba.dispose();
  }
}

function buildStrip(): void {
  strip.replaceChildren();
  for (let p = 0; p <= depth; p++) {
    const fig = document.createElement('figure');
    fig.dataset['position'] = String(p);
    const c = document.createElement('canvas');
    c.width = STRIP_SIZE;
    c.height = STRIP_SIZE;
    const cap = document.createElement('figcaption');
    cap.textContent = p >= depth ? 'rollout' : `block ${p + 1}`;
    fig.append(c, cap);
    fig.addEventListener('click', () => {
      layerInput.value = String(p);
      void schedule(renderViews);
    });
    strip.append(fig);
  }
}

async function renderViews(): Promise<void> {
  if (current == null) return;
  const position = Number(layerInput.value);
  layerLabel.textContent = positionName(position);
  await drawOverlay(current, position, overlayCanvas, OVERLAY_SIZE);
  const figures = Array.from(strip.querySelectorAll('figure'));
  for (const [p, fig] of figures.entries()) {
    fig.classList.toggle('active', p === position);
    await drawOverlay(current, p, fig.querySelector('canvas') as HTMLCanvasElement, STRIP_SIZE);
  }
}

function renderPrediction(probs: Float32Array): void {
  const ranked = [...probs]
    .map((p, digit) => ({ p, digit }))
    .sort((a, b) => b.p - a.p)
    .slice(0, 3);
  predictionList.replaceChildren(
    ...ranked.map(({ p, digit }) => {
      const li = document.createElement('li');
      li.dataset['digit'] = String(digit);
      const d = document.createElement('span');
      d.className = 'digit';
      d.textContent = String(digit);
      const bar = document.createElement('span');
      bar.className = 'bar';
      bar.style.width = `${(p * 100).toFixed(1)}%`;
      const pct = document.createElement('span');
      pct.className = 'p';
      pct.textContent = `${(p * 100).toFixed(1)}%`;
      li.append(d, bar, pct);
      return li;
    }),
  );
  predictionList.dataset['top1'] = String(ranked[0].digit);
}

/** Classifies and draws a new input. */
async function showInput(pixels01: Float32Array, description: string): Promise<void> {
  const t0 = performance.now();
  const next = analyse(pixels01);
  await next.maps.data(); // wait for the GPU before timing
  const ms = performance.now() - t0;
  disposeAnalysis(current);
  current = next;
  renderPrediction(next.probs);
  inputInfo.textContent = description;
  timing.textContent = `forward pass with attention of all ${depth} blocks: ${ms.toFixed(0)} ms on ${tf.getBackend()}`;
  await renderViews();
}

/** Runs UI work one task at a time and exposes the page state for tests (`body[data-state]`). */
function schedule(task: () => Promise<void>): Promise<void> {
  queue = queue.then(async () => {
    document.body.dataset['state'] = 'busy';
    try {
      await task();
      document.body.dataset['state'] = 'ready';
    } catch (e) {
      document.body.dataset['state'] = 'error';
      setStatus(`Error: ${(e as Error).message}`, true);
      console.error(e);
    }
  });
  return queue;
}

function buildSamples(samples: readonly Sample[]): void {
  const container = $('samples');
  samples.forEach((s, i) => {
    const button = document.createElement('button');
    button.type = 'button';
    button.setAttribute('role', 'option');
    button.setAttribute('aria-selected', 'false');
    button.dataset['sampleIndex'] = String(i);
    button.dataset['label'] = String(s.label);
    button.title = `held-out digit, label ${s.label}`;
    const c = document.createElement('canvas');
    c.width = INPUT_SIZE;
    c.height = INPUT_SIZE;
    const ctx = c.getContext('2d');
    if (ctx != null) {
      const img = ctx.createImageData(INPUT_SIZE, INPUT_SIZE);
      s.pixels.forEach((v, k) => {
        img.data.set([v, v, v, 255], k * 4);
      });
      ctx.putImageData(img, 0, 0);
    }
    button.append(c);
    button.addEventListener('click', () => {
      for (const b of Array.from(container.querySelectorAll('button')))
        b.setAttribute('aria-selected', String(b === button));
      const pixels = Float32Array.from(s.pixels, (v) => v / 255);
      void schedule(() => showInput(pixels, `held-out sample #${i + 1}, label ${s.label}`));
    });
    container.append(button);
  });
}

async function main(): Promise<void> {
  const backend = await pickBackend();
  const t0 = performance.now();
  model = await loadShippedModel();
  const vit = findVisionTransformer(model);
  depth = vit.config.depth;
  layerInput.max = String(depth);
  const [gh, gw] = vit.gridSize;
  setStatus(
    `Model loaded in ${(performance.now() - t0).toFixed(0)} ms: ${model.countParams().toLocaleString('en')} parameters, ` +
      `${depth} blocks, ${vit.config.numHeads} heads, ${gh}x${gw} patches; backend ${backend}` +
      `${backend === 'wasm' ? ` (${getThreadsCount()} thread${getThreadsCount() === 1 ? '' : 's'})` : ''}.`,
  );
  document.body.dataset['backend'] = backend;
  buildStrip();
  const samples = (samplesDoc as { samples: Sample[] }).samples;
  buildSamples(samples);

  const drawCanvas = $<HTMLCanvasElement>('draw');
  const drawing = attachDrawing(drawCanvas, () => {
    const pixels = drawingToInput(drawCanvas);
    if (pixels == null) return;
    for (const b of Array.from(document.querySelectorAll('#samples button')))
      b.setAttribute('aria-selected', 'false');
    void schedule(() => showInput(pixels, 'your drawing (centred like MNIST)'));
  });
  $('clear').addEventListener('click', () => drawing.clear());
  layerInput.addEventListener('input', () => void schedule(renderViews));
  smoothInput.addEventListener('change', () => void schedule(renderViews));
  headsSelect.addEventListener('change', () => {
    void schedule(async () => {
      if (current == null) return;
      const layout = tokenLayout(model);
      tf.dispose([current.maps, current.rollout]);
      current.maps = mapsFromAttentions(current.attentions, { ...layout, heads: headFusion() });
      current.rollout = rolloutFromAttentions(current.attentions, {
        ...layout,
        headFusion: headFusion(),
      });
      await renderViews();
    });
  });
  (document.querySelector('#samples button') as HTMLButtonElement | null)?.click();
}

main().catch((e) => {
  document.body.dataset['state'] = 'error';
  setStatus(`Could not start: ${(e as Error).message}`, true);
  console.error(e);
});
