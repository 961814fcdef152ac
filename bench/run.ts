/**
 * `npm run bench`: vit-ts on tfjs' cpu and wasm backends side by side with onnxruntime-node and
 * PyTorch CPU on the same weights. Every line (backend x model) runs in its own process
 * (bench/line.ts) and measures the 1024^2 wasm/cpu matMul rate it is compared against.
 *
 *   npm run bench                                   # everything (see docs/performance.md)
 *   npm run bench -- --backends wasm --models vit_tiny --quick
 *   npm run bench -- --no-refs --no-train           # tfjs forward passes only
 * Flags:
 *   --backends cpu,wasm       tfjs backends (default both)
 *   --models a,b              vit_tiny, vit_small, vit_base, resnet18, resnet18_cifar (or the
 *                             preset names); default all five
 *   --batches 1,8             forward batch sizes (default 1,8)
 *   --runs N                  timed runs per entry after one warm-up (default 5; cpu 3)
 *   --quick                   batch 1 only, 3 runs, no references, no training, no docs
 *   --no-train / --no-refs    leave out the training steps / ONNX Runtime and PyTorch
 *   --cpu-budget S            skip a cpu entry whose estimate exceeds S seconds (default 150)
 *   --min-rate G              wasm matMul GFLOP/s below which a run counts as loaded (default 20)
 *   --from-cache              no measuring: write the docs from bench/.cache/last-run.json
 *                             (the last run), e.g. after reading its figures first
 *   --write / --no-write      write docs/performance.{md,json} + docs/img/performance.png
 *                             (default: write unless --quick); a loaded run needs --force
 *   --ref-models a,b          models for the references (default: --models)
 *   --torch-threads N         PyTorch threads (default: all cores)
 *   --python PATH             Python with torch + torchvision (default /usr/bin/python3)
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { readSafetensors, writeSafetensors } from '../src/index';
import type { LineResult } from './line';
import { writeChart, writeReport } from './report';

const args = process.argv.slice(2);
const has = (name: string) => args.includes(`--${name}`);
const opt = (name: string, fallback: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? args[i + 1] : fallback;
};

const ALIASES: Record<string, string> = {
  vit_tiny: 'vit_tiny_patch16_224',
  vit_small: 'vit_small_patch16_224',
  vit_base: 'vit_base_patch16_224',
  resnet18: 'resnet18_imagenet',
  resnet18_cifar: 'resnet18_cifar',
};
const quick = has('quick');
const backends = opt('backends', 'wasm,cpu').split(',');
const models = opt('models', 'vit_tiny,vit_small,vit_base,resnet18,resnet18_cifar')
  .split(',')
  .map((m) => ALIASES[m] ?? m);
const batches = quick ? '1' : opt('batches', '1,8');
const runsArg = opt('runs', quick ? '3' : '');
const doTrain = !quick && !has('no-train');
const doRefs = !quick && !has('no-refs');
const cpuBudget = Number(opt('cpu-budget', '150'));
const minRate = Number(opt('min-rate', '20'));
const write = has('write') || (!quick && !has('no-write'));
const python = opt('python', '/usr/bin/python3');
const refModelsArg = opt('ref-models', '');
const torchThreads = Number(opt('torch-threads', String(os.cpus().length)));
const cache = path.resolve('bench/.cache');
mkdirSync(cache, { recursive: true });

/** A reference engine's result (or why it was skipped). */
export interface RefResult {
  engine: string;
  version?: string;
  threads?: number;
  forward: Array<{ model: string; ms: Record<string, number>; maxAbsDiff?: number }>;
  train: Array<{ model: string; batch: number; ms: number }>;
  skipped?: string;
}

/** The whole run, as written to docs/performance.json. */
export interface BenchRun {
  date: string;
  machine: Record<string, string | number>;
  command: string;
  minRate: number;
  loaded: boolean;
  lines: LineResult[];
  failed: Array<{ line: string; error: string }>;
  refs: RefResult[];
  durationS: number;
}

const TRAIN_LINES = [
  { model: 'vit_tiny_p4_32', batch: 32 },
  { model: 'resnet18_cifar', batch: 32 },
];

function runLine(lineArgs: string[]): LineResult | { error: string } {
  const label = lineArgs.join(' ');
  process.stdout.write(`  ${label} ... `);
  const t0 = Date.now();
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'bench/line.ts', ...lineArgs], {
    encoding: 'utf8',
    maxBuffer: 64 << 20,
  });
  const line = (r.stdout ?? '').split('\n').find((l) => l.startsWith('BENCH_LINE '));
  if (r.status !== 0 || !line) {
    const error = `exit ${r.status}: ${(r.stderr ?? '').trim().split('\n').slice(-3).join(' | ')}`;
    console.log(`FAILED (${error})`);
    return { error };
  }
  const result = JSON.parse(line.slice('BENCH_LINE '.length)) as LineResult;
  const parts = result.entries.map((e) =>
    e.ms != null
      ? `b${e.batch} ${e.ms.toFixed(0)} ms = ${(e.ms / e.floorMs).toFixed(2)}x floor`
      : `b${e.batch} skipped`,
  );
  console.log(
    `${parts.join(', ')} (matMul ${result.matMulGflops.toFixed(1)}/${result.matMulGflopsEnd.toFixed(1)} GFLOP/s, ${((Date.now() - t0) / 1000).toFixed(0)} s)`,
  );
  return result;
}

function seededInput(shape: number[]): Float32Array {
  const n = shape.reduce((p, d) => p * d, 1);
  const out = new Float32Array(n);
  let s = 12345;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = (s / 4294967296 - 0.5) * 2;
  }
  return out;
}

function inputSize(model: string): number {
  return model === 'resnet18_cifar' || model === 'vit_tiny_p4_32' ? 32 : 224;
}

/** timm / torchvision / CIFAR builder arguments of the PyTorch twin of a bench model. */
function torchSpec(model: string): { kind: string; args: Record<string, unknown> } {
  if (model === 'resnet18_imagenet') return { kind: 'tv_resnet', args: { num_classes: 1000 } };
  if (model === 'resnet18_cifar') return { kind: 'cifar_resnet', args: { num_classes: 10 } };
  const dims: Record<string, [number, number]> = {
    vit_tiny: [192, 3],
    vit_small: [384, 6],
    vit_base: [768, 12],
  };
  const key = Object.keys(dims).find((k) => model.startsWith(k)) as string;
  const [embed, heads] = dims[key];
  const p4 = model === 'vit_tiny_p4_32';
  return {
    kind: 'timm',
    args: {
      img_size: p4 ? 32 : 224,
      patch_size: p4 ? 4 : 16,
      embed_dim: embed,
      depth: 12,
      num_heads: heads,
      num_classes: p4 ? 10 : 1000,
    },
  };
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

function readLogits(file: string): Float32Array {
  const entry = readSafetensors(new Uint8Array(readFileSync(file))).tensors.get('logits');
  if (!entry) throw new Error(`${file}: no logits`);
  return entry.data as Float32Array;
}

async function runOnnx(refModels: string[]): Promise<RefResult> {
  const result: RefResult = { engine: 'onnxruntime-node', forward: [], train: [] };
  let ort: typeof import('onnxruntime-node');
  try {
    ort = await import('onnxruntime-node');
  } catch (e) {
    return { ...result, skipped: `onnxruntime-node did not load: ${(e as Error).message}` };
  }
  const pkg = JSON.parse(readFileSync('node_modules/onnxruntime-node/package.json', 'utf8'));
  result.version = pkg.version;
  result.threads = os.cpus().length;
  const runs = Number(runsArg || '7');
  for (const model of refModels) {
    const file = path.join(cache, `${model}.onnx`);
    if (!existsSync(file)) continue;
    const session = await ort.InferenceSession.create(file, {
      intraOpNumThreads: os.cpus().length,
    });
    const size = inputSize(model);
    const ms: Record<string, number> = {};
    for (const b of batches.split(',').map(Number)) {
      const x = new ort.Tensor('float32', seededInput([b, 3, size, size]), [b, 3, size, size]);
      await session.run({ input: x });
      const times: number[] = [];
      for (let i = 0; i < runs; i++) {
        const t0 = performance.now();
        await session.run({ input: x });
        times.push(performance.now() - t0);
      }
      ms[String(b)] = times.sort((p, q) => p - q)[Math.floor(times.length / 2)];
    }
    // Same fixed image as vit-ts and PyTorch: NHWC there, NCHW here.
    const nhwc = seededInput([1, size, size, 3]);
    const nchw = new Float32Array(nhwc.length);
    for (let y = 0; y < size; y++)
      for (let x = 0; x < size; x++)
        for (let c = 0; c < 3; c++)
          nchw[c * size * size + y * size + x] = nhwc[(y * size + x) * 3 + c];
    const out = await session.run({ input: new ort.Tensor('float32', nchw, [1, 3, size, size]) });
    const logits = out['logits'].data as Float32Array;
    const vitTs = path.join(cache, `${model}.vitts.logits.safetensors`);
    result.forward.push({
      model,
      ms,
      maxAbsDiff: existsSync(vitTs) ? maxAbsDiff(logits, readLogits(vitTs)) : undefined,
    });
    await session.release();
    console.log(`  onnxruntime-node ${model}: ${JSON.stringify(ms)} ms`);
  }
  return result;
}

function runTorch(refModels: string[]): RefResult {
  const result: RefResult = { engine: 'PyTorch CPU', forward: [], train: [] };
  const check = spawnSync(python, ['-c', 'import torch, torchvision; print(torch.__version__)'], {
    encoding: 'utf8',
  });
  if (check.status !== 0) {
    return { ...result, skipped: `${python} cannot import torch + torchvision` };
  }
  const spec = {
    threads: torchThreads,
    runs: Number(runsArg || '5'),
    models: refModels.map((model) => ({
      name: model,
      ...torchSpec(model),
      weights: path.join(cache, `${model}.safetensors`),
      input: path.join(cache, `${model}.input.safetensors`),
      batches: batches.split(',').map(Number),
      onnx: path.join(cache, `${model}.onnx`),
      logits: path.join(cache, `${model}.torch.logits.safetensors`),
    })),
    train: doTrain
      ? TRAIN_LINES.map((t) => ({
          name: t.model,
          ...torchSpec(t.model),
          batch: t.batch,
          size: 32,
          classes: 10,
          steps: 3,
        }))
      : [],
  };
  const specFile = path.join(cache, 'torch_spec.json');
  writeFileSync(specFile, JSON.stringify(spec, null, 2));
  console.log('  PyTorch (forward, ONNX export, training steps) ...');
  const r = spawnSync(python, ['bench/torch_ref.py', specFile], {
    encoding: 'utf8',
    maxBuffer: 64 << 20,
  });
  if (r.status !== 0) {
    return {
      ...result,
      skipped: `torch_ref.py failed: ${(r.stderr ?? '').trim().split('\n').slice(-2).join(' | ')}`,
    };
  }
  const out = JSON.parse(r.stdout.trim().split('\n').pop() as string);
  result.version = out.torch;
  result.threads = out.threads;
  for (const f of out.forward as Array<{ name: string; ms: Record<string, number> }>) {
    const vitTs = path.join(cache, `${f.name}.vitts.logits.safetensors`);
    const torchLogits = path.join(cache, `${f.name}.torch.logits.safetensors`);
    result.forward.push({
      model: f.name,
      ms: f.ms,
      maxAbsDiff: existsSync(vitTs)
        ? maxAbsDiff(readLogits(torchLogits), readLogits(vitTs))
        : undefined,
    });
    console.log(`  PyTorch ${f.name}: ${JSON.stringify(f.ms)} ms`);
  }
  for (const t of out.train as Array<{ name: string; ms: number }>) {
    result.train.push({ model: t.name, batch: 32, ms: t.ms });
    console.log(`  PyTorch train ${t.name}: ${t.ms.toFixed(0)} ms`);
  }
  return result;
}

function tfjsVersion(): string {
  return JSON.parse(readFileSync('node_modules/@tensorflow/tfjs-core/package.json', 'utf8'))
    .version;
}

/** Writes the docs (JSON, results section, chart) from one run. */
async function writeDocs(run: BenchRun): Promise<void> {
  writeFileSync('docs/performance.json', `${JSON.stringify(run, null, 2)}\n`);
  await writeChart(run, 'docs/img/performance.png');
  writeReport(run, 'docs/performance.md');
  console.log(
    'wrote docs/performance.json, docs/performance.md (results section), docs/img/performance.png',
  );
}

async function main() {
  if (has('from-cache')) {
    const cached = JSON.parse(readFileSync(path.join(cache, 'last-run.json'), 'utf8')) as BenchRun;
    if (cached.loaded && !has('force')) {
      throw new Error(
        `the cached run (${cached.date}) was loaded (a wasm matMul rate below ${cached.minRate} GFLOP/s): pass --force to write it anyway, flagged`,
      );
    }
    await writeDocs(cached);
    return;
  }
  const t0 = Date.now();
  const lines: LineResult[] = [];
  const failed: BenchRun['failed'] = [];
  const refModels = doRefs
    ? refModelsArg
      ? refModelsArg.split(',').map((m) => ALIASES[m] ?? m)
      : models
    : [];
  for (const model of refModels) {
    const size = inputSize(model);
    writeFileSync(
      path.join(cache, `${model}.input.safetensors`),
      writeSafetensors({
        input_nhwc: {
          dtype: 'F32',
          shape: [1, size, size, 3],
          data: seededInput([1, size, size, 3]),
        },
      }),
    );
  }
  for (const backend of backends) {
    console.log(`\n[${backend}]`);
    const runs = runsArg || (backend === 'cpu' ? '3' : '5');
    const budget = backend === 'cpu' ? String(cpuBudget) : '1e9';
    for (const model of models) {
      const lineArgs = [
        '--backend',
        backend,
        '--model',
        model,
        '--batches',
        batches,
        '--runs',
        runs,
        '--budget',
        budget,
      ];
      if (backend === 'wasm' && refModels.includes(model)) {
        lineArgs.push(
          '--logits-input',
          path.join(cache, `${model}.input.safetensors`),
          '--logits-output',
          path.join(cache, `${model}.vitts.logits.safetensors`),
          '--export-weights',
          path.join(cache, `${model}.safetensors`),
        );
      }
      const r = runLine(lineArgs);
      if ('error' in r) failed.push({ line: lineArgs.join(' '), error: r.error });
      else lines.push(r);
    }
    if (doTrain) {
      for (const t of TRAIN_LINES) {
        const lineArgs = [
          '--backend',
          backend,
          '--model',
          t.model,
          '--train',
          String(t.batch),
          '--runs',
          runsArg || '3',
          '--budget',
          budget,
        ];
        const r = runLine(lineArgs);
        if ('error' in r) failed.push({ line: lineArgs.join(' '), error: r.error });
        else lines.push(r);
      }
    }
  }
  const refs: RefResult[] = [];
  if (doRefs) {
    console.log('\n[references]');
    const torch = runTorch(refModels);
    const onnx = torch.skipped
      ? {
          engine: 'onnxruntime-node',
          forward: [],
          train: [],
          skipped: 'no ONNX export (PyTorch skipped)',
        }
      : await runOnnx(refModels);
    refs.push(onnx, torch);
  } else {
    refs.push(
      {
        engine: 'onnxruntime-node',
        forward: [],
        train: [],
        skipped: 'not run (--no-refs or --quick)',
      },
      { engine: 'PyTorch CPU', forward: [], train: [], skipped: 'not run (--no-refs or --quick)' },
    );
  }
  const wasmRates = lines
    .filter((l) => l.backend === 'wasm')
    .map((l) => Math.min(l.matMulGflops, l.matMulGflopsEnd));
  const loaded = wasmRates.some((r) => r < minRate);
  const run: BenchRun = {
    date: new Date().toISOString(),
    machine: {
      cpu: os.cpus()[0]?.model ?? 'unknown',
      cores: os.cpus().length,
      memoryGiB: Math.round(os.totalmem() / 2 ** 30),
      os: `${os.type()} ${os.release()}`,
      node: process.version,
      tfjs: tfjsVersion(),
    },
    command: `npm run bench${args.length ? ` -- ${args.join(' ')}` : ''}`,
    minRate,
    loaded,
    lines,
    failed,
    refs,
    durationS: Math.round((Date.now() - t0) / 1000),
  };
  const json = path.join(cache, 'last-run.json');
  writeFileSync(json, `${JSON.stringify(run, null, 2)}\n`);
  console.log(`\nwrote ${json} (${run.durationS} s)`);
  if (loaded) {
    console.log(
      `\nLOADED MACHINE: a wasm line measured a 1024^2 matMul rate below ${minRate} GFLOP/s ` +
        `(${Math.min(...wasmRates).toFixed(1)}); ratios to the floor are not comparable with a quiet run.`,
    );
  }
  if (write && (!loaded || has('force'))) {
    await writeDocs(run);
  } else if (write) {
    console.log(
      'docs not written: the run was loaded (pass --force to write them anyway, flagged)',
    );
  }
  for (const f of failed) console.log(`FAILED line: ${f.line}: ${f.error}`);
  process.exitCode = failed.length > 0 ? 1 : 0;
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
