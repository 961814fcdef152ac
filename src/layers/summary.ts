import type { LayersModel, layers } from '@tensorflow/tfjs-layers';
import { CompositeLayer } from './composite';
import { shortClassName } from './register';

/** One row of {@link summarize}: a layer at some depth of the layer tree. */
export interface SummaryRow {
  /** Path of the layer, e.g. `vit/blocks/3/attn`. */
  path: string;
  /** The layer's own name, e.g. `attn`. */
  name: string;
  /** The layer's class name, e.g. `VitTs>MultiHeadAttention`. */
  className: string;
  /** Depth in the tree (0 = a top-level layer of the model). */
  depth: number;
  /** Output shape, when the layer has been applied. */
  outputShape: Array<number | null> | null;
  /** Parameters of this layer including its children (trainable and not). */
  params: number;
  /** Trainable parameters of this layer including its children. */
  trainableParams: number;
}

const size = (shape: Array<number | null>) => shape.reduce<number>((a, b) => a * (b ?? 1), 1);

function outputShapeOf(layer: layers.Layer): Array<number | null> | null {
  try {
    const s = layer.outputShape as unknown;
    return Array.isArray(s) && !Array.isArray(s[0]) ? (s as Array<number | null>) : null;
  } catch {
    return null;
  }
}

function childrenOf(layer: layers.Layer): layers.Layer[] {
  return layer instanceof CompositeLayer ? [...layer.subLayers] : [];
}

/**
 * Walks a model (or a layer) and its vit-ts child layers, which tfjs' own `model.summary()`
 * does not show, down to `maxDepth`. Counts come from the layers' weights.
 */
export function summarize(target: LayersModel | layers.Layer, maxDepth = 2): SummaryRow[] {
  const rows: SummaryRow[] = [];
  const visit = (layer: layers.Layer, path: string, depth: number) => {
    rows.push({
      path,
      name: layer.name,
      className:
        (layer.constructor as unknown as { className?: string }).className ?? layer.getClassName(),
      depth,
      outputShape: outputShapeOf(layer),
      params: layer.weights.reduce((a, w) => a + size(w.shape as number[]), 0),
      trainableParams: layer.trainableWeights.reduce((a, w) => a + size(w.shape as number[]), 0),
    });
    if (depth < maxDepth)
      for (const c of childrenOf(layer)) visit(c, `${path}/${c.name}`, depth + 1);
  };
  const top = (target as LayersModel).layers;
  if (Array.isArray(top)) for (const l of top) visit(l, l.name, 0);
  else visit(target as layers.Layer, (target as layers.Layer).name, 0);
  return rows;
}

/** Formats {@link summarize} rows as an indented text table. */
export function formatSummary(rows: SummaryRow[]): string {
  const fmt = (n: number) => n.toLocaleString('en-US');
  const lines = rows.map((r) => {
    const name = `${'  '.repeat(r.depth)}${r.name}`;
    // B: the batch axis; ?: another axis the layer leaves open (e.g. the token count of blocks
    // built for any sequence length).
    const shape = r.outputShape
      ? `[${r.outputShape.map((d, i) => d ?? (i === 0 ? 'B' : '?')).join(', ')}]`
      : '';
    return `${name.padEnd(34)} ${shortClassName(r.className).padEnd(22)} ${shape.padEnd(18)} ${fmt(r.params).padStart(13)}`;
  });
  const header = `${'layer'.padEnd(34)} ${'type'.padEnd(22)} ${'output'.padEnd(18)} ${'params'.padStart(13)}`;
  const top = rows.filter((r) => r.depth === 0);
  const total = top.reduce((a, r) => a + r.params, 0);
  const trainable = top.reduce((a, r) => a + r.trainableParams, 0);
  return [
    header,
    '-'.repeat(header.length),
    ...lines,
    '-'.repeat(header.length),
    `total params: ${fmt(total)}   trainable: ${fmt(trainable)}   non-trainable: ${fmt(total - trainable)}`,
  ].join('\n');
}

/** Number of trainable parameters (what PyTorch's `sum(p.numel() for p in parameters())` counts). */
export function countTrainableParams(target: LayersModel | layers.Layer): number {
  return target.trainableWeights.reduce((a, w) => a + size(w.shape as number[]), 0);
}
