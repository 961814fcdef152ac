import type { serialization } from '@tensorflow/tfjs-core';
import * as tf from '@tensorflow/tfjs-core';
import type { Shape } from '@tensorflow/tfjs-layers';
import { type LayerVariable, layers } from '@tensorflow/tfjs-layers';
import {
  assertInputShape,
  requireBoolean,
  requireDivisible,
  requirePositive,
  requirePositiveInt,
  requireRate,
} from '../errors';
import {
  fusedAttentionMapsAvailable,
  fusedAttentionWithProbs,
  multiHeadAttentionCore,
} from '../ops/attention_core';
import { batchMatMul, splitLastAxis, useFastForm } from '../ops/matmul';
import type { Kwargs, LayerArgs } from '../tfjs_types';
import { ones, timmNormal, zeros } from './init';
import { readWeight } from './layer_utils';
import { dropout, layerNorm, linear } from './ops';
import { type ArgFields, layerArgs, registerLayer } from './register';

/** Configuration of {@link MultiHeadAttention}. */
export interface MultiHeadAttentionArgs extends LayerArgs {
  /** Token width D (input and output). Required; must be divisible by `numHeads`. */
  dim: number;
  /** Number of heads H. Default 8. */
  numHeads?: number;
  /** Bias on the fused qkv projection (timm `qkv_bias`). Default true. */
  qkvBias?: boolean;
  /** Dropout on the attention probabilities while training. Default 0. */
  attnDrop?: number;
  /** Dropout on the output projection while training. Default 0. */
  projDrop?: number;
  /** LayerNorm over the head dimension of q and k before q.k^T (timm `qk_norm`). Default false. */
  qkNorm?: boolean;
  /** Epsilon of the qk-norm LayerNorms (timm: the block's norm, 1e-6). Default 1e-6. */
  normEps?: number;
}

const MULTI_HEAD_ATTENTION_FIELDS = {
  dim: true,
  numHeads: true,
  qkvBias: true,
  attnDrop: true,
  projDrop: true,
  qkNorm: true,
  normEps: true,
} satisfies ArgFields<MultiHeadAttentionArgs>;

/** Output of {@link MultiHeadAttention.callWithAttention}. */
export interface AttentionOutput {
  /** Tokens after attention and output projection, `[B, N, D]`. */
  output: tf.Tensor3D;
  /** Softmax attention probabilities, `[B, H, N, N]` (rows: queries, columns: keys). */
  attention: tf.Tensor4D;
}

/**
 * Multi-head self-attention with one fused qkv projection, as timm's `Attention`:
 * `qkv = x W_qkv + b` splits as `[q | k | v]`, each head-major (`[B, N, H, D/H]`), scores are
 * `softmax(q k^T / sqrt(D/H))`. Weights: `qkv/kernel [D, 3D]`, `qkv/bias [3D]`,
 * `proj/kernel [D, D]`, `proj/bias [D]`.
 *
 * `call` returns only the tokens, so training pays nothing for attention maps; the same
 * weights give the probabilities through {@link MultiHeadAttention.callWithAttention}.
 */
export class MultiHeadAttention extends layers.Layer {
  /** @nocollapse */
  static readonly className = 'VitTs>MultiHeadAttention';
  readonly dim: number;
  readonly numHeads: number;
  readonly headDim: number;
  readonly qkvBias: boolean;
  readonly attnDrop: number;
  readonly projDrop: number;
  readonly qkNorm: boolean;
  readonly normEps: number;
  /** `headDim ** -0.5`, applied to q before the product as timm does. */
  readonly scale: number;
  private qkvKernel?: LayerVariable;
  private qkvBiasW?: LayerVariable;
  private projKernel?: LayerVariable;
  private projBias?: LayerVariable;
  /** qk-norm scale and shift: q gamma, q beta, k gamma, k beta, each `[headDim]`. */
  private qkNormW: LayerVariable[] = [];

  constructor(args: MultiHeadAttentionArgs) {
    super(
      layerArgs('MultiHeadAttention', args, MULTI_HEAD_ATTENTION_FIELDS, 'multi_head_attention'),
    );
    this.dim = requirePositiveInt('MultiHeadAttention', 'dim', args.dim);
    this.numHeads = requirePositiveInt('MultiHeadAttention', 'numHeads', args.numHeads ?? 8);
    this.headDim = requireDivisible(
      'MultiHeadAttention',
      'dim',
      this.dim,
      'numHeads',
      this.numHeads,
    );
    this.scale = this.headDim ** -0.5;
    this.qkvBias = requireBoolean('MultiHeadAttention', 'qkvBias', args.qkvBias, true);
    this.attnDrop = requireRate('MultiHeadAttention', 'attnDrop', args.attnDrop ?? 0);
    this.projDrop = requireRate('MultiHeadAttention', 'projDrop', args.projDrop ?? 0);
    this.qkNorm = requireBoolean('MultiHeadAttention', 'qkNorm', args.qkNorm, false);
    this.normEps = requirePositive('MultiHeadAttention', 'normEps', args.normEps ?? 1e-6);
  }

  private checkShape(shape: ReadonlyArray<number | null>): void {
    assertInputShape(
      'MultiHeadAttention',
      shape,
      [null, null, this.dim],
      'tokens [batch, tokens, dim]',
    );
  }

  override build(inputShape: Shape | Shape[]): void {
    this.checkShape(inputShape as Shape);
    const d = this.dim;
    this.qkvKernel = this.addWeight('qkv/kernel', [d, 3 * d], 'float32', timmNormal());
    if (this.qkvBias) this.qkvBiasW = this.addWeight('qkv/bias', [3 * d], 'float32', zeros());
    this.projKernel = this.addWeight('proj/kernel', [d, d], 'float32', timmNormal());
    this.projBias = this.addWeight('proj/bias', [d], 'float32', zeros());
    if (this.qkNorm) {
      const hd = this.headDim;
      this.qkNormW = ['q_norm', 'k_norm'].flatMap((n) => [
        this.addWeight(`${n}/gamma`, [hd], 'float32', ones()),
        this.addWeight(`${n}/beta`, [hd], 'float32', zeros()),
      ]);
    }
    this.built = true;
  }

  /** Shared forward pass; keeps the probabilities only when asked. */
  private forward(
    x: tf.Tensor,
    training: boolean,
    keepAttention: boolean,
  ): [tf.Tensor3D, tf.Tensor4D | null] {
    this.checkShape(x.shape);
    const [b, n] = x.shape;
    const fast = useFastForm() && !this.qkNorm && !(training && this.attnDrop > 0);
    // Maps from the fused wasm kernel when it can give them: the same numbers as the pass that
    // does not keep them (tfjs ops would differ by float rounding).
    const [merged, probs] =
      fast && (!keepAttention || fusedAttentionMapsAvailable())
        ? this.fusedContext(x, b, n, keepAttention)
        : this.plainContext(x, b, n, training);
    const out = linear(
      merged,
      readWeight(this.projKernel, 'MultiHeadAttention', 'proj/kernel'),
      this.projBias?.read(),
    );
    const y = dropout(out, this.projDrop, training) as tf.Tensor3D;
    return [
      y,
      keepAttention && probs ? (tf.reshape(probs, [b, this.numHeads, n, n]) as tf.Tensor4D) : null,
    ];
  }

  /**
   * wasm: the context `[B, N, D]` from one attention op in the layouts wasm's kernels run fastest
   * (src/ops/attention_core.ts); q, k, v from column blocks of the fused weights (slicing
   * weights, not activations). With `keepMaps` (only where `fusedAttentionMapsAvailable`) also
   * the probabilities `[B, H, N, N]` from the same kernel call.
   */
  private fusedContext(
    x: tf.Tensor,
    b: number,
    n: number,
    keepMaps: boolean,
  ): [tf.Tensor, tf.Tensor | null] {
    const x2 = tf.reshape(x, [b * n, this.dim]);
    const kernels = tf.split(readWeight(this.qkvKernel, 'MultiHeadAttention', 'qkv/kernel'), 3, 1);
    const biases = this.qkvBiasW ? tf.split(this.qkvBiasW.read(), 3, 0) : [null, null, null];
    const [q, k, v] = kernels.map((w, i) => linear(x2, w, biases[i]) as tf.Tensor2D) as [
      tf.Tensor2D,
      tf.Tensor2D,
      tf.Tensor2D,
    ];
    if (keepMaps) {
      const [ctx, maps] = fusedAttentionWithProbs(q, k, v, b, n, this.numHeads, this.scale) as [
        tf.Tensor2D,
        tf.Tensor4D,
      ];
      return [tf.reshape(ctx, [b, n, this.dim]), maps];
    }
    const ctx = multiHeadAttentionCore(q, k, v, b, n, this.numHeads, this.scale);
    return [tf.reshape(ctx, [b, n, this.dim]), null];
  }

  /** The context `[B, N, D]` and the probabilities `[B*H, N, N]`, with tfjs-differentiated ops. */
  private plainContext(
    x: tf.Tensor,
    b: number,
    n: number,
    training: boolean,
  ): [tf.Tensor, tf.Tensor] {
    const h = this.numHeads;
    const hd = this.headDim;
    const qkv = linear(
      x,
      readWeight(this.qkvKernel, 'MultiHeadAttention', 'qkv/kernel'),
      this.qkvBiasW?.read(),
    );
    // [B, N, 3D] -> three [B, N, D] parts -> per head [B*H, N, hd]. Rank-3 batched products keep
    // clear of tfjs' broken broadcasting matMul gradients; batchMatMul picks each backend's fast
    // form (on wasm a depthwise convolution, forward and backward).
    let [q, k, v] = splitLastAxis(qkv, 3).map((t) =>
      tf.reshape(tf.transpose(tf.reshape(t, [b, n, h, hd]), [0, 2, 1, 3]), [b * h, n, hd]),
    );
    if (this.qkNorm) {
      // timm qk_norm: LayerNorm over the head dimension, before the scale.
      const [qg, qb, kg, kb] = this.qkNormW.map((w) => w.read());
      q = layerNorm(q, qg, qb, this.normEps);
      k = layerNorm(k, kg, kb, this.normEps);
    }
    const scores = batchMatMul(tf.mul(q, this.scale) as tf.Tensor3D, k as tf.Tensor3D, false, true);
    const probs = tf.softmax(scores, -1);
    const attn = dropout(probs, this.attnDrop, training);
    const ctx = batchMatMul(attn as tf.Tensor3D, v as tf.Tensor3D); // [B*H, N, hd]
    const context = tf.reshape(tf.transpose(tf.reshape(ctx, [b, h, n, hd]), [0, 2, 1, 3]), [
      b,
      n,
      this.dim,
    ]);
    return [context, probs];
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Kwargs): tf.Tensor {
    const x = Array.isArray(inputs) ? inputs[0] : inputs;
    return tf.tidy(() => this.forward(x, kwargs?.['training'] === true, false)[0]);
  }

  /**
   * Inference pass that also returns the attention probabilities `[B, H, N, N]`. Dropout is
   * off. The caller owns (and must dispose) both returned tensors.
   */
  callWithAttention(x: tf.Tensor): AttentionOutput {
    return tf.tidy(() => {
      const [output, attention] = this.forward(x, false, true);
      return { output, attention: attention as tf.Tensor4D };
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
      qkvBias: this.qkvBias,
      attnDrop: this.attnDrop,
      projDrop: this.projDrop,
      qkNorm: this.qkNorm,
      normEps: this.normEps,
    };
  }
}
registerLayer(MultiHeadAttention);
