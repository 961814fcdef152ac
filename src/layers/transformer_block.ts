import type { serialization } from '@tensorflow/tfjs-core';
import * as tf from '@tensorflow/tfjs-core';
import type { LayerVariable, Shape } from '@tensorflow/tfjs-layers';
import { initializers } from '@tensorflow/tfjs-layers';
import {
  assertInputShape,
  requireBoolean,
  requireDivisible,
  requirePositive,
  requirePositiveInt,
  requireRate,
} from '../errors';
import type { Kwargs, LayerArgs } from '../tfjs_types';
import { type AttentionOutput, MultiHeadAttention } from './attention';
import { CompositeLayer } from './composite';
import { LayerNorm } from './layer_norm';
import { MLP } from './mlp';
import { dropPath } from './ops';
import { type ArgFields, layerArgs, registerLayer } from './register';

/** Configuration of {@link TransformerBlock}. */
export interface TransformerBlockArgs extends LayerArgs {
  /** Token width D. Required; divisible by `numHeads`. */
  dim: number;
  /** Attention heads. Default 8. */
  numHeads?: number;
  /** MLP hidden width as a multiple of D. Default 4. */
  mlpRatio?: number;
  /** Bias on the fused qkv projection. Default true. */
  qkvBias?: boolean;
  /** Dropout after the attention projection and in the MLP. Default 0. */
  projDrop?: number;
  /** Dropout on attention probabilities. Default 0. */
  attnDrop?: number;
  /** Stochastic depth: probability of dropping this block's residual branches per sample. Default 0. */
  dropPathRate?: number;
  /** LayerScale init value (per-channel learned gamma on each branch); null = off. Default null. */
  initValues?: number | null;
  /** LayerNorm epsilon (timm 1e-6, HF 1e-12). Default 1e-6. */
  normEps?: number;
  /** LayerNorm over the head dimension of q and k (timm `qk_norm`). Default false. */
  qkNorm?: boolean;
}

const TRANSFORMER_BLOCK_FIELDS = {
  dim: true,
  numHeads: true,
  mlpRatio: true,
  qkvBias: true,
  projDrop: true,
  attnDrop: true,
  dropPathRate: true,
  initValues: true,
  normEps: true,
  qkNorm: true,
} satisfies ArgFields<TransformerBlockArgs>;

/**
 * Pre-norm transformer encoder block, timm's `Block`:
 * `x = x + dropPath(ls1 * attn(norm1(x)))`, then `x = x + dropPath(ls2 * mlp(norm2(x)))`.
 * Input and output are tokens `[B, N, D]`. Children: `norm1`, `attn`, `norm2`, `mlp`
 * (plus `ls1/gamma`, `ls2/gamma` when LayerScale is on).
 */
export class TransformerBlock extends CompositeLayer {
  /** @nocollapse */
  static readonly className = 'VitTs>TransformerBlock';
  readonly dim: number;
  readonly numHeads: number;
  readonly mlpRatio: number;
  readonly qkvBias: boolean;
  readonly projDrop: number;
  readonly attnDrop: number;
  readonly dropPathRate: number;
  readonly initValues: number | null;
  readonly normEps: number;
  readonly qkNorm: boolean;
  /** Child layers, created by `build`. */
  norm1!: LayerNorm;
  attn!: MultiHeadAttention;
  norm2!: LayerNorm;
  mlp!: MLP;
  private ls1?: LayerVariable;
  private ls2?: LayerVariable;

  constructor(args: TransformerBlockArgs) {
    super(layerArgs('TransformerBlock', args, TRANSFORMER_BLOCK_FIELDS, 'transformer_block'));
    const owner = 'TransformerBlock';
    this.dim = requirePositiveInt(owner, 'dim', args.dim);
    this.numHeads = requirePositiveInt(owner, 'numHeads', args.numHeads ?? 8);
    this.mlpRatio = requirePositive(owner, 'mlpRatio', args.mlpRatio ?? 4);
    this.qkvBias = requireBoolean(owner, 'qkvBias', args.qkvBias, true);
    this.projDrop = requireRate(owner, 'projDrop', args.projDrop ?? 0);
    this.attnDrop = requireRate(owner, 'attnDrop', args.attnDrop ?? 0);
    this.dropPathRate = requireRate(owner, 'dropPathRate', args.dropPathRate ?? 0);
    this.initValues =
      args.initValues == null ? null : requirePositive(owner, 'initValues', args.initValues);
    this.normEps = requirePositive(owner, 'normEps', args.normEps ?? 1e-6);
    this.qkNorm = requireBoolean(owner, 'qkNorm', args.qkNorm, false);
    requireDivisible(owner, 'dim', this.dim, 'numHeads', this.numHeads);
  }

  /** Creates the attention child from this block's settings. */
  private createAttention(): MultiHeadAttention {
    return new MultiHeadAttention({
      name: 'attn',
      dim: this.dim,
      numHeads: this.numHeads,
      qkvBias: this.qkvBias,
      attnDrop: this.attnDrop,
      projDrop: this.projDrop,
      qkNorm: this.qkNorm,
      normEps: this.normEps,
    });
  }

  /** Hidden width of the MLP, `round(mlpRatio * dim)` (timm: `int(dim * mlp_ratio)`). */
  get mlpHidden(): number {
    return Math.floor(this.dim * this.mlpRatio);
  }

  private checkShape(shape: ReadonlyArray<number | null>): void {
    assertInputShape(
      'TransformerBlock',
      shape,
      [null, null, this.dim],
      'tokens [batch, tokens, dim]',
    );
  }

  override build(inputShape: Shape | Shape[]): void {
    const shape = inputShape as Array<number | null>;
    this.checkShape(shape);
    if (this.initValues != null) {
      const init = initializers.constant({ value: this.initValues });
      this.ls1 = this.addWeight('ls1/gamma', [this.dim], 'float32', init);
      this.ls2 = this.addWeight('ls2/gamma', [this.dim], 'float32', init);
    }
    this.norm1 = new LayerNorm({ name: 'norm1', epsilon: this.normEps });
    this.buildChild(this.norm1, shape);
    this.attn = this.createAttention();
    this.buildChild(this.attn, shape);
    this.norm2 = new LayerNorm({ name: 'norm2', epsilon: this.normEps });
    this.buildChild(this.norm2, shape);
    this.mlp = new MLP({
      name: 'mlp',
      inFeatures: this.dim,
      hiddenFeatures: this.mlpHidden,
      drop: this.projDrop,
    });
    this.buildChild(this.mlp, shape);
    this.built = true;
  }

  private residual(
    x: tf.Tensor,
    branch: tf.Tensor,
    gamma: LayerVariable | undefined,
    training: boolean,
  ) {
    const scaled = gamma ? tf.mul(branch, gamma.read()) : branch;
    return tf.add(x, dropPath(scaled, this.dropPathRate, training));
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Kwargs): tf.Tensor {
    const x = Array.isArray(inputs) ? inputs[0] : inputs;
    this.checkShape(x.shape);
    const training = kwargs?.['training'] === true;
    return tf.tidy(() => {
      const a = this.attn.call(this.norm1.call(x, kwargs), kwargs) as tf.Tensor;
      const x1 = this.residual(x, a, this.ls1, training);
      const m = this.mlp.call(this.norm2.call(x1, kwargs), kwargs) as tf.Tensor;
      return this.residual(x1, m, this.ls2, training);
    });
  }

  /**
   * Inference pass returning the block output and the attention probabilities `[B, H, N, N]`.
   * Same numbers as `call` without training; the caller disposes both tensors.
   */
  callWithAttention(x: tf.Tensor): AttentionOutput {
    this.checkShape(x.shape);
    return tf.tidy(() => {
      const { output: a, attention } = this.attn.callWithAttention(
        this.norm1.call(x, {}) as tf.Tensor,
      );
      const x1 = this.residual(x, a, this.ls1, false);
      const m = this.mlp.call(this.norm2.call(x1, {}), {}) as tf.Tensor;
      return { output: this.residual(x1, m, this.ls2, false) as tf.Tensor3D, attention };
    });
  }

  override computeOutputShape(inputShape: Shape | Shape[]): Shape {
    this.checkShape(inputShape as Shape);
    return inputShape as Shape;
  }

  override getConfig(): serialization.ConfigDict {
    return {
      ...super.getConfig(),
      dim: this.dim,
      numHeads: this.numHeads,
      mlpRatio: this.mlpRatio,
      qkvBias: this.qkvBias,
      projDrop: this.projDrop,
      attnDrop: this.attnDrop,
      dropPathRate: this.dropPathRate,
      initValues: this.initValues,
      normEps: this.normEps,
      qkNorm: this.qkNorm,
    };
  }
}
registerLayer(TransformerBlock);
