/** Markdown table and PNG chart of a benchmark run (bench/run.ts). */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Resvg } from '@resvg/resvg-js';
import * as vega from 'vega';
import * as vegaLite from 'vega-lite';
import type { BenchRun } from './run';

const BEGIN = '<!-- bench:results:begin (written by npm run bench; edit outside these markers) -->';
const END = '<!-- bench:results:end -->';

const LABELS: Record<string, string> = {
  vit_tiny_patch16_224: 'ViT-Ti/16',
  vit_small_patch16_224: 'ViT-S/16',
  vit_base_patch16_224: 'ViT-B/16',
  resnet18_imagenet: 'ResNet18 (ImageNet stem, 224 px)',
  resnet18_cifar: 'ResNet18 (CIFAR stem, 32 px)',
  vit_tiny_p4_32: 'ViT-Ti/4 (32 px)',
};
const label = (m: string) => LABELS[m] ?? m;
const fmt = (ms: number | undefined) =>
  ms == null ? '-' : ms >= 100 ? ms.toFixed(0) : ms >= 10 ? ms.toFixed(1) : ms.toFixed(2);

/** The results section: machine, matMul rates, forward and training tables, references. */
export function resultsMarkdown(run: BenchRun): string {
  const m = run.machine;
  const out: string[] = [];
  out.push(`### Results of \`${run.command}\` (${run.date.slice(0, 16).replace('T', ' ')} UTC)`);
  out.push('');
  if (run.loaded) {
    out.push(
      `**Loaded machine:** a wasm line measured its 1024^2 matMul below ${run.minRate} GFLOP/s. ` +
        'Absolute times are inflated and the ratios to the floor are only indicative; rerun on a quiet machine.',
    );
    out.push('');
  }
  out.push(
    `Machine: ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB, ${m.os}; Node ${m.node}, tfjs ${m.tfjs}. ` +
      `Run time ${Math.round(run.durationS / 60)} min. Every tfjs line runs in its own process and ` +
      'measures its 1024x1024 `tf.matMul` rate before and after; the floor is FLOPs / that rate ' +
      '(training: 3 x forward FLOPs).',
  );
  out.push('');
  out.push('Forward passes (224 px unless noted; median ms; floor ratio in brackets):');
  out.push('');
  out.push(
    '| engine | model | GFLOP | batch 1 | batch 8 | matMul GFLOP/s (start / end) | peak RSS MB | live tensors (model loaded) |',
  );
  out.push('|---|---|---|---|---|---|---|---|');
  const cell = (l: BenchRun['lines'][number], batch: number) => {
    const e = l.entries.find((x) => x.batch === batch);
    if (!e) return '-';
    if (e.ms == null) return `skipped: ${e.skipped}`;
    return `${fmt(e.ms)} (${(e.ms / e.floorMs).toFixed(2)}x)`;
  };
  for (const l of run.lines.filter((x) => x.mode === 'forward')) {
    out.push(
      `| tfjs ${l.backend} | ${label(l.model)} | ${l.gflops.toFixed(2)} | ${cell(l, 1)} | ${cell(l, 8)} | ` +
        `${l.matMulGflops.toFixed(1)} / ${l.matMulGflopsEnd.toFixed(1)} | ${l.peakRssMb.toFixed(0)} | ${l.liveTensorsWithModel} |`,
    );
  }
  for (const r of run.refs) {
    const who = `${r.engine}${r.version ? ` ${r.version}` : ''}${r.threads ? `, ${r.threads} threads` : ''}`;
    if (r.skipped) {
      out.push(`| ${who} | (all) | | skipped: ${r.skipped} | | | | |`);
      continue;
    }
    for (const f of r.forward) {
      const diff =
        f.maxAbsDiff != null
          ? ` (logits vs vit-ts: max abs diff ${f.maxAbsDiff.toExponential(1)})`
          : '';
      out.push(
        `| ${who} | ${label(f.model)}${diff} | | ${fmt(f.ms['1'])} | ${fmt(f.ms['8'])} | | | |`,
      );
    }
  }
  out.push('');
  const train = run.lines.filter((x) => x.mode === 'train');
  const torchTrain = run.refs.find((r) => r.engine === 'PyTorch CPU');
  if (train.length > 0 || (torchTrain && torchTrain.train.length > 0)) {
    out.push('One training step (batch 32, 32 px, AdamW, softmax cross-entropy; median ms):');
    out.push('');
    out.push(
      '| engine | model | step ms | x floor (3 x forward FLOPs) | matMul GFLOP/s (start / end) | peak RSS MB |',
    );
    out.push('|---|---|---|---|---|---|');
    for (const l of train) {
      const e = l.entries[0];
      out.push(
        `| tfjs ${l.backend} | ${label(l.model)} | ${e.ms == null ? `skipped: ${e.skipped}` : fmt(e.ms)} | ` +
          `${e.ms == null ? '-' : `${(e.ms / e.floorMs).toFixed(2)}x`} | ${l.matMulGflops.toFixed(1)} / ${l.matMulGflopsEnd.toFixed(1)} | ${l.peakRssMb.toFixed(0)} |`,
      );
    }
    if (torchTrain && !torchTrain.skipped) {
      for (const t of torchTrain.train) {
        out.push(
          `| PyTorch CPU ${torchTrain.version}, ${torchTrain.threads} threads | ${label(t.model)} | ${fmt(t.ms)} | | | |`,
        );
      }
    }
    out.push('');
  }
  for (const f of run.failed) out.push(`- FAILED line \`${f.line}\`: ${f.error}`);
  const leaks = run.lines.filter((l) => l.leakedTensors !== 0);
  out.push(
    leaks.length === 0
      ? 'No line left tensors behind after disposing its model.'
      : `Lines that left tensors behind: ${leaks.map((l) => `${l.backend} ${l.model} (${l.leakedTensors})`).join(', ')}.`,
  );
  out.push('');
  out.push('![Forward time, batch 1](img/performance.png)');
  return out.join('\n');
}

/** Replaces the results section of `file` (between the markers), appending it if absent. */
export function writeReport(run: BenchRun, file: string): void {
  const section = `${BEGIN}\n${resultsMarkdown(run)}\n${END}`;
  const current = existsSync(file) ? readFileSync(file, 'utf8') : '# Performance\n';
  const a = current.indexOf(BEGIN);
  const b = current.indexOf(END);
  const next =
    a >= 0 && b > a
      ? `${current.slice(0, a)}${section}${current.slice(b + END.length)}`
      : `${current.trimEnd()}\n\n${section}\n`;
  writeFileSync(file, next);
}

/** Bar chart (log scale) of forward batch-1 times per model and engine, as a PNG. */
export async function writeChart(run: BenchRun, file: string): Promise<void> {
  const values: Array<{ model: string; engine: string; ms: number }> = [];
  for (const l of run.lines.filter((x) => x.mode === 'forward')) {
    const e = l.entries.find((x) => x.batch === 1);
    if (e?.ms != null)
      values.push({ model: label(l.model), engine: `tfjs ${l.backend}`, ms: e.ms });
  }
  for (const r of run.refs) {
    for (const f of r.forward) {
      if (f.ms['1'] != null)
        values.push({ model: label(f.model), engine: r.engine, ms: f.ms['1'] });
    }
  }
  const spec: vegaLite.TopLevelSpec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: `Forward pass, batch 1 (ms, log scale)${run.loaded ? ' - LOADED MACHINE' : ''}`,
    width: 520,
    background: 'white',
    data: { values },
    mark: 'bar',
    encoding: {
      y: { field: 'model', type: 'nominal', title: null, axis: { labelLimit: 320 } },
      yOffset: { field: 'engine' },
      x: { field: 'ms', type: 'quantitative', scale: { type: 'log', domainMin: 1 }, title: 'ms' },
      color: { field: 'engine', type: 'nominal' },
    },
  };
  const view = new vega.View(vega.parse(vegaLite.compile(spec).spec), { renderer: 'none' });
  const svg = await view.toSVG();
  const png = new Resvg(svg, { fitTo: { mode: 'zoom', value: 2 }, font: { loadSystemFonts: true } })
    .render()
    .asPng();
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, png);
}
