/// <reference types="vite/client" />
/**
 * The browser demo: loads one of the ViTs shipped with the examples (MNIST digits in
 * examples/mnist/model, Fashion-MNIST clothing in examples/fashion/model; a switch picks one),
 * classifies a held-out sample or a drawing, and shows the class-token attention of every block
 * (and the rollout) over the input, with the vit-ts analysis API.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-webgl';
import { type LayersModel, loadLayersModel } from '@tensorflow/tfjs-layers';
// The library from source; the page's Vite config and tsconfig need no build of vit-ts first.
// Importing it registers the vit-ts layer classes that tf.loadLayersModel looks up by name.
import {
  drawToCanvas,
  FASHION_MNIST_CLASSES,
  findVisionTransformer,
  getAttention,
  HybridVisionTransformer,
  mapsFromAttentions,
  overlayHeatmap,
  rolloutFromAttentions,
  tokenLayout,
} from '../../src/index';
import fashionSamplesDoc from '../fashion/samples.json';
import mnistSamplesDoc from '../mnist/samples.json';
import {
  attachDrawing,
  type DrawingLayout,
  drawingToInput,
  FASHION_MNIST_LAYOUT,
  INPUT_SIZE,
  MNIST_LAYOUT,
} from './drawing';
import { type ShippedModelJson, summariseTraining, type TrainingSummary } from './model_files';
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

/** A model the page can switch to: where its files are and how its data looks. */
interface ShippedModel {
  /** The `<option>` value and `?model=` parameter. */
  id: 'mnist' | 'fashion';
  /** Folder under examples/ holding `model/` (model.json + weights) and `samples.json`. */
  folder: string;
  /** Class names by output index. */
  classNames: readonly string[];
  samples: readonly Sample[];
  /** What the training data is, for the description line. */
  dataName: string;
  /** What a sample is called ("digit", "item"). */
  thing: string;
  samplesHint: string;
  drawHint: string;
  /** How the training data placed objects in the 28x28 field; drawings are converted the same way. */
  layout: DrawingLayout;
  /** Stroke width as a fraction of the drawing area's width. */
  brush: number;
  /** The command that writes its model files. */
  trainCommand: string;
}

const SHIPPED_MODELS: readonly ShippedModel[] = [
  {
    id: 'mnist',
    folder: 'mnist',
    classNames: Array.from({ length: 10 }, (_, d) => String(d)),
    samples: (mnistSamplesDoc as { samples: Sample[] }).samples,
    dataName: 'MNIST handwritten digits',
    thing: 'digit',
    samplesHint: 'Held-out digits (never seen in training):',
    drawHint: 'Or draw a digit (mouse or touch):',
    layout: MNIST_LAYOUT,
    brush: 1 / 12,
    trainCommand: 'npm run train:mnist',
  },
  {
    id: 'fashion',
    folder: 'fashion',
    classNames: FASHION_MNIST_CLASSES,
    samples: (fashionSamplesDoc as { samples: Sample[] }).samples,
    dataName: 'Fashion-MNIST clothing images',
    thing: 'item',
    samplesHint: 'Fashion-MNIST test images (never seen in training):',
    drawHint:
      'Or draw a piece of clothing as a filled white silhouette, e.g. trousers or a T-shirt (mouse or touch):',
    layout: FASHION_MNIST_LAYOUT,
    brush: 1 / 6,
    trainCommand: 'npm run train:fashion',
  },
];

/**
 * The shipped model files, found at build time. model.json is loaded on demand (one chunk per
 * model); the weights files become assets with hashed URLs. saveModel names the weights file
 * after its content (`weights.<hash>.bin`), so the page reads the name from model.json's
 * weightsManifest and looks the URL up here instead of importing a fixed file name.
 */
const modelJsonLoaders = import.meta.glob<ShippedModelJson>(
  ['../mnist/model/model.json', '../fashion/model/model.json'],
  { import: 'default' },
);
const weightUrls = import.meta.glob<string>(['../mnist/model/*.bin', '../fashion/model/*.bin'], {
  query: '?url',
  import: 'default',
  eager: true,
});

/** A loaded model with what the views need about it. */
interface LoadedModel {
  model: LayersModel;
  depth: number;
  training: TrainingSummary;
  loadMs: number;
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
const modelSelect = $<HTMLSelectElement>('model');
const modelInfo = $('model-info');
const trainingList = $('training');
const classList = $('classes');
const samplesContainer = $('samples');
const samplesHint = $('samples-hint');
const drawHint = $('draw-hint');
const drawCanvas = $<HTMLCanvasElement>('draw');

const OVERLAY_SIZE = 224;
const STRIP_SIZE = 56;
const ALPHA = 0.55;

let model: LayersModel;
let depth = 0;
let shipped: ShippedModel = SHIPPED_MODELS[0];
let current: Analysis | null = null;
/** Loaded models by id, kept so that switching back is instant. */
const loaded = new Map<string, Promise<LoadedModel>>();
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

async function fetchWeights(folder: string, manifestPath: string): Promise<ArrayBuffer> {
  const name = manifestPath.replace(/^\.\//, '');
  const url = weightUrls[`../${folder}/model/${name}`];
  if (url == null) {
    throw new Error(
      `examples/${folder}/model/model.json names the weights file '${manifestPath}', which is not in examples/${folder}/model`,
    );
  }
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${name}: HTTP ${response.status}`);
  return response.arrayBuffer();
}

/** Loads a shipped model: its model.json, then every weights file its manifest names, in order. */
async function loadShippedModel(info: ShippedModel): Promise<LoadedModel> {
  const t0 = performance.now();
  const loadJson = modelJsonLoaders[`../${info.folder}/model/model.json`];
  if (loadJson == null) {
    throw new Error(
      `examples/${info.folder}/model/model.json is missing: \`${info.trainCommand}\` writes it`,
    );
  }
  const json = await loadJson();
  const paths = json.weightsManifest.flatMap((group) => group.paths);
  const weightData = await Promise.all(paths.map((p) => fetchWeights(info.folder, p)));
  const loadedModel = await loadLayersModel(
    tf.io.fromMemory({
      modelTopology: json.modelTopology,
      weightSpecs: json.weightsManifest.flatMap((group) => group.weights),
      weightData: weightData.length === 1 ? weightData[0] : weightData,
    }),
  );
  const outputs = loadedModel.outputs[0].shape[1];
  if (outputs !== info.classNames.length) {
    loadedModel.dispose();
    throw new Error(
      `examples/${info.folder}/model has ${outputs} outputs, expected ${info.classNames.length} (one per class)`,
    );
  }
  return {
    model: loadedModel,
    depth: findVisionTransformer(loadedModel).config.depth,
    training: summariseTraining(json.userDefinedMetadata?.training),
    loadMs: performance.now() - t0,
  };
}

/** The loaded model for `info`, loading it on first use; a failed load is retried next time. */
function getModel(info: ShippedModel): Promise<LoadedModel> {
  let pending = loaded.get(info.id);
  if (pending == null) {
    pending = loadShippedModel(info);
    loaded.set(info.id, pending);
    pending.catch(() => loaded.delete(info.id));
  }
  return pending;
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
  const names = shipped.classNames;
  const ranked = [...probs]
    .map((p, index) => ({ p, index }))
    .sort((a, b) => b.p - a.p)
    .slice(0, 3);
  predictionList.replaceChildren(
    ...ranked.map(({ p, index }) => {
      const li = document.createElement('li');
      li.dataset['class'] = String(index);
      const name = document.createElement('span');
      name.className = 'name';
      name.textContent = names[index];
      const bar = document.createElement('span');
      bar.className = 'bar';
      bar.style.width = `${(p * 100).toFixed(1)}%`;
      const pct = document.createElement('span');
      pct.className = 'p';
      pct.textContent = `${(p * 100).toFixed(1)}%`;
      li.append(name, bar, pct);
      return li;
    }),
  );
  predictionList.dataset['top1'] = String(ranked[0].index);
  // Every class probability, for tests and for anyone reading the DOM.
  predictionList.dataset['probs'] = JSON.stringify(Array.from(probs));
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

/**
 * Runs UI work one task at a time and exposes the page state for tests: `body[data-state]`, and
 * `body[data-tensors]`, the live tensor count after the task (it must not grow as inputs and
 * models change).
 */
function schedule(task: () => Promise<void>): Promise<void> {
  queue = queue.then(async () => {
    document.body.dataset['state'] = 'busy';
    try {
      await task();
      document.body.dataset['tensors'] = String(tf.memory().numTensors);
      document.body.dataset['state'] = 'ready';
    } catch (e) {
      document.body.dataset['state'] = 'error';
      setStatus(`Error: ${(e as Error).message}`, true);
      console.error(e);
    }
  });
  return queue;
}

function sampleDescription(s: Sample, i: number): string {
  return `held-out sample #${i + 1}, label ${s.label} (${shipped.classNames[s.label]})`;
}

function selectSample(button: HTMLButtonElement | null): void {
  for (const b of Array.from(samplesContainer.querySelectorAll('button')))
    b.setAttribute('aria-selected', String(b === button));
}

function buildSamples(samples: readonly Sample[]): void {
  samplesContainer.replaceChildren();
  samples.forEach((s, i) => {
    const button = document.createElement('button');
    button.type = 'button';
    button.setAttribute('role', 'option');
    button.setAttribute('aria-selected', 'false');
    button.dataset['sampleIndex'] = String(i);
    button.dataset['label'] = String(s.label);
    button.title = `held-out ${shipped.thing}, label ${s.label} (${shipped.classNames[s.label]})`;
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
      selectSample(button);
      const pixels = Float32Array.from(s.pixels, (v) => v / 255);
      void schedule(() => showInput(pixels, sampleDescription(s, i)));
    });
    samplesContainer.append(button);
  });
}

function renderModelInfo(loadedModel: LoadedModel, backend: string): void {
  const vit = findVisionTransformer(model);
  const [gh, gw] = vit.gridSize;
  const [ph] = vit.config.patchSize as number[];
  const params = model.countParams().toLocaleString('en');
  // A hybrid's tokens are cells of its CNN's feature map, not image patches.
  const tokens =
    vit instanceof HybridVisionTransformer
      ? `hybrid ViT (a convolutional stem makes its ${gh}×${gw} tokens`
      : `ViT (patch ${ph}, ${gh}×${gw} patch grid`;
  modelInfo.textContent =
    `A ${depth}-block ${tokens}, ${params} parameters) trained on ` +
    `${shipped.dataName} with vit-ts runs in your browser. Pick a held-out ${shipped.thing} or draw ` +
    'one; the overlay shows how much the class token attends to each patch, block by block, or ' +
    'the attention rollout through all blocks.';
  setStatus(
    `Model loaded in ${loadedModel.loadMs.toFixed(0)} ms: ${params} parameters, ` +
      `${depth} blocks, ${vit.config.numHeads} heads, ${gh}x${gw} patches; backend ${backend}` +
      `${backend === 'wasm' ? ` (${getThreadsCount()} thread${getThreadsCount() === 1 ? '' : 's'})` : ''}.`,
  );
  const { accuracy, items } = loadedModel.training;
  $('training-headline').textContent =
    accuracy == null
      ? 'no accuracy recorded'
      : `${accuracy.kind} accuracy ${(accuracy.value * 100).toFixed(1)}%`;
  trainingList.dataset['accuracy'] = accuracy == null ? '' : String(accuracy.value);
  trainingList.dataset['accuracyKind'] = accuracy == null ? '' : accuracy.kind;
  trainingList.replaceChildren(
    ...items.flatMap(([term, description]) => {
      const dt = document.createElement('dt');
      dt.textContent = term;
      const dd = document.createElement('dd');
      dd.textContent = description;
      return [dt, dd];
    }),
  );
  classList.replaceChildren(
    ...shipped.classNames.map((name) => {
      const li = document.createElement('li');
      li.textContent = name;
      return li;
    }),
  );
  predictionList.classList.toggle(
    'named',
    shipped.classNames.some((n) => n.length > 2),
  );
}

/**
 * Makes `info` the page's model: loads it (or takes it from the cache), rebuilds the views that
 * depend on it and shows its first sample. Runs inside {@link schedule}.
 */
async function activate(
  info: ShippedModel,
  backend: string,
  drawing: { clear(): void },
): Promise<void> {
  if (!loaded.has(info.id)) setStatus(`Loading the ${info.dataName} model…`);
  const loadedModel = await getModel(info);
  disposeAnalysis(current);
  current = null;
  shipped = info;
  model = loadedModel.model;
  depth = loadedModel.depth;
  document.body.dataset['model'] = info.id;
  modelSelect.value = info.id;
  const url = new URL(location.href);
  url.searchParams.set('model', info.id);
  history.replaceState(null, '', url);
  layerInput.max = String(depth);
  if (Number(layerInput.value) > depth) layerInput.value = String(depth);
  samplesHint.textContent = info.samplesHint;
  drawHint.textContent = info.drawHint;
  drawing.clear();
  renderModelInfo(loadedModel, backend);
  buildStrip();
  buildSamples(info.samples);
  predictionList.replaceChildren();
  const first = info.samples[0];
  if (first != null) {
    selectSample(samplesContainer.querySelector('button'));
    await showInput(
      Float32Array.from(first.pixels, (v) => v / 255),
      sampleDescription(first, 0),
    );
  }
}

async function main(): Promise<void> {
  const backend = await pickBackend();
  document.body.dataset['backend'] = backend;
  for (const info of SHIPPED_MODELS) {
    const option = modelSelect.querySelector<HTMLOptionElement>(`option[value="${info.id}"]`);
    // A checkout without the model files still builds; its option says what to run.
    if (option != null && modelJsonLoaders[`../${info.folder}/model/model.json`] == null) {
      option.disabled = true;
      option.textContent += ` (not trained: ${info.trainCommand})`;
    }
  }
  const wanted = new URLSearchParams(location.search).get('model');
  const initial =
    SHIPPED_MODELS.find((m) => m.id === wanted && !isDisabled(m.id)) ?? SHIPPED_MODELS[0];

  const drawing = attachDrawing(drawCanvas, () => {
    const pixels = drawingToInput(drawCanvas, shipped.layout);
    if (pixels == null) return;
    selectSample(null);
    void schedule(() => showInput(pixels, `your drawing (placed like ${shipped.dataName})`));
  });
  const switchTo = (info: ShippedModel) =>
    schedule(async () => {
      try {
        await activate(info, backend, drawing);
        drawing.setBrush(info.brush);
      } catch (e) {
        modelSelect.value = shipped.id; // the switch shows the model still in use
        throw e;
      }
    });
  $('clear').addEventListener('click', () => drawing.clear());
  modelSelect.addEventListener('change', () => {
    const info = SHIPPED_MODELS.find((m) => m.id === modelSelect.value);
    if (info != null) void switchTo(info);
  });
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
  await switchTo(initial);
}

function isDisabled(id: string): boolean {
  return modelSelect.querySelector<HTMLOptionElement>(`option[value="${id}"]`)?.disabled ?? true;
}

main().catch((e) => {
  document.body.dataset['state'] = 'error';
  setStatus(`Could not start: ${(e as Error).message}`, true);
  console.error(e);
});
