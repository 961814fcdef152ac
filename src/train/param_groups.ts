import type { LayerVariable } from '@tensorflow/tfjs-layers';
import { ConfigError, requirePositive } from '../errors';
import { DEFAULT_NO_WEIGHT_DECAY } from './optimizers';

/** Anything that exposes its weights in a fixed order: a `tf.LayersModel` or a layer. */
export interface HasWeights {
  readonly weights: LayerVariable[];
}

/** One parameter group: weights that share a learning-rate multiplier and a weight decay. */
export interface ParamGroup {
  /** Name for logs, e.g. `'blocks.3/decay'`. */
  name: string;
  /** The weights of the group (runtime variable names are `weights[i].name`). */
  weights: LayerVariable[];
  /** Multiplier applied to the schedule's learning rate for this group. */
  lrScale: number;
  /** Decoupled weight decay of the group (AdamW). */
  weightDecay: number;
}

/** A user rule that overrides the learning-rate scale or weight decay of matching weights. */
export interface ParamGroupRule {
  /** Matches a weight name (`vit/head/kernel`): a substring, a RegExp or a predicate. */
  match: string | RegExp | ((name: string) => boolean);
  /** Learning-rate multiplier for matching weights (replaces the layer-decay scale). */
  lrScale?: number;
  /** Weight decay for matching weights. */
  weightDecay?: number;
}

/** Options of {@link createParamGroups}. */
export interface ParamGroupOptions {
  /** Weight decay of decayed weights. Default 0.05 (timm's ViT recipes). */
  weightDecay?: number;
  /**
   * Name segments never decayed (besides every weight of rank <= 1).
   * Default `DEFAULT_NO_WEIGHT_DECAY` (`cls_token`, `reg_token`, `dist_token`, `pos_embed`).
   */
  noWeightDecay?: readonly string[];
  /**
   * Layer-wise learning-rate decay (timm `layer_decay`, BEiT / MAE fine-tuning): a weight at
   * depth `id` gets `lrScale = layerDecay ** (numLayers + 1 - id)` where the embeddings have
   * id 0, block `i` has id `i + 1` and the final norm / head have id `numLayers + 1` (scale 1).
   * Default: no decay (every scale 1).
   */
  layerDecay?: number;
  /**
   * Rules applied in order after the defaults; the last matching rule wins per field. The
   * lecture's "1e-5 for the blocks, 1e-3 for the head" is base lr 1e-3 with
   * `rules: [{ match: /./, lrScale: 0.01 }, { match: '/head/', lrScale: 1 }]`.
   */
  rules?: readonly ParamGroupRule[];
}

/** Segments of a weight name without tfjs' `_<n>` uniqueness suffixes. */
function segments(name: string): string[] {
  return name.split('/').map((s) => s.replace(/_\d+$/, ''));
}

/**
 * Depth id of a weight for layer-wise decay, from its name: 0 for the stem / embeddings
 * (`patch_embed`, `embed`, `cls_token`, `pos_embed`, ResNet `conv1` / `bn1`), `i + 1` for ViT
 * block `i` (`blocks/i/...`) or the `i`-th ResNet basic block (`layer1/0` is 1, `layer4/1` is
 * 8), and `numLayers + 1` for everything after the blocks (final norm, head).
 * `numLayers` is the number of blocks.
 */
export function layerIdOf(name: string, numLayers: number): number {
  const segs = segments(name);
  const b = segs.indexOf('blocks');
  if (b >= 0 && /^\d+$/.test(segs[b + 1] ?? '')) return Number(segs[b + 1]) + 1;
  for (let i = 0; i < segs.length - 1; i++) {
    const stage = /^layer(\d+)$/.exec(segs[i]);
    if (stage && /^\d+$/.test(segs[i + 1]))
      return (Number(stage[1]) - 1) * 2 + Number(segs[i + 1]) + 1;
  }
  const stem = ['patch_embed', 'embed', 'cls_token', 'pos_embed', 'reg_token', 'dist_token'];
  if (segs.some((s) => stem.includes(s))) return 0;
  // ResNet stem: the model's own conv1 / bn1 (directly under the model prefix).
  if (segs.length >= 2 && (segs[1] === 'conv1' || segs[1] === 'bn1')) return 0;
  return numLayers + 1;
}

/** Number of blocks of a model, from its weight names (ViT `blocks/i`, ResNet `layerS/i`). */
export function countBlocks(model: HasWeights): number {
  let max = 0;
  for (const w of model.weights) {
    const id = layerIdOf(w.name, Number.POSITIVE_INFINITY);
    if (Number.isFinite(id)) max = Math.max(max, id);
  }
  return max;
}

function matches(rule: ParamGroupRule, name: string): boolean {
  if (typeof rule.match === 'string') return name.includes(rule.match);
  if (rule.match instanceof RegExp) return rule.match.test(name);
  if (typeof rule.match === 'function') return rule.match(name);
  throw new ConfigError(
    `createParamGroups: rule.match must be a string, RegExp or function, got ${String(rule.match)}`,
  );
}

/**
 * Splits a model's trainable-kind weights (everything except BatchNorm running statistics)
 * into parameter groups, as timm's `param_groups_weight_decay` / `param_groups_layer_decay`:
 * decayed vs not decayed weights, optionally one pair per depth with layer-wise decay, then
 * user rules. Weights currently frozen are included, so unfreezing later needs no new groups.
 *
 * @example
 * // Fine-tuning: blocks learn at 0.75^(depth+1-i) of the head's rate.
 * const groups = createParamGroups(model, { weightDecay: 0.05, layerDecay: 0.75 });
 */
export function createParamGroups(
  model: HasWeights,
  options: ParamGroupOptions = {},
): ParamGroup[] {
  const o = 'createParamGroups';
  if (model == null || !Array.isArray((model as HasWeights).weights)) {
    throw new ConfigError(
      `${o}: model must be a LayersModel or layer with weights, got ${String(model)}`,
    );
  }
  const decay = options.weightDecay ?? 0.05;
  if (typeof decay !== 'number' || !Number.isFinite(decay) || decay < 0) {
    throw new ConfigError(`${o}: weightDecay must be a finite number >= 0, got ${String(decay)}`);
  }
  const layerDecay =
    options.layerDecay == null ? null : requirePositive(o, 'layerDecay', options.layerDecay);
  if (layerDecay != null && layerDecay > 1) {
    throw new ConfigError(`${o}: layerDecay must be in (0, 1], got ${layerDecay}`);
  }
  const noDecay = new Set(options.noWeightDecay ?? DEFAULT_NO_WEIGHT_DECAY);
  const rules = options.rules ?? [];
  const numLayers = countBlocks(model);
  const groups = new Map<string, ParamGroup>();
  for (const w of model.weights) {
    if (isRunningStatistic(w)) continue;
    const decayed = w.shape.length > 1 && !segments(w.name).some((s) => noDecay.has(s));
    const id = layerIdOf(w.name, numLayers);
    let lrScale = layerDecay == null ? 1 : layerDecay ** (numLayers + 1 - id);
    let weightDecay = decayed ? decay : 0;
    for (const rule of rules) {
      if (!matches(rule, w.name)) continue;
      if (rule.lrScale != null) lrScale = requirePositive(o, 'rule.lrScale', rule.lrScale);
      if (rule.weightDecay != null) weightDecay = rule.weightDecay;
    }
    const key = `${layerDecay == null ? 'all' : `layer_${id}`}/${weightDecay}/${lrScale}`;
    let group = groups.get(key);
    if (group == null) {
      const where = layerDecay == null ? '' : `layer ${id}, `;
      group = {
        name: `${where}lr x${lrScale.toPrecision(3)}, wd ${weightDecay}`,
        weights: [],
        lrScale,
        weightDecay,
      };
      groups.set(key, group);
    }
    group.weights.push(w);
  }
  return [...groups.values()];
}

/** BatchNorm running mean / variance: state, never trained. */
export function isRunningStatistic(w: LayerVariable): boolean {
  const last = segments(w.name).at(-1) ?? '';
  return last === 'moving_mean' || last === 'moving_variance';
}
