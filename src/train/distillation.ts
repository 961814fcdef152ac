/**
 * DeiT's hard-label distillation (Touvron et al. 2021, "Training data-efficient image
 * transformers & distillation through attention"): the class head learns the true labels, the
 * distillation head learns the teacher's argmax.
 */
import * as tf from '@tensorflow/tfjs-core';
import { ConfigError, InputShapeError, requireRate } from '../errors';

/** Options of {@link hardDistillationLoss}. */
export interface HardDistillationOptions {
  /**
   * Weight of the distillation term in [0, 1]: `(1 - alpha) * CE(logits, labels) + alpha *
   * CE(distLogits, argmax(teacher))`. Default 0.5 (DeiT's `distillation_alpha`).
   */
  alpha?: number;
  /** Label smoothing of the class term only (DeiT uses 0.1; the teacher term has none). Default 0. */
  labelSmoothing?: number;
}

/** Per-sample cross-entropy `-sum_c target * log_softmax(logits)`, `[B]`. */
function crossEntropyRows(target: tf.Tensor, logits: tf.Tensor): tf.Tensor {
  return tf.neg(tf.sum(tf.mul(target, tf.logSoftmax(logits, -1)), -1));
}

/**
 * DeiT's hard distillation loss (its `DistillationLoss` with `distillation_type='hard'`), a pure
 * function of tensors for a custom training loop:
 *
 * `(1 - alpha) * CE(logits, labels) + alpha * CE(distLogits, argmax_c teacherLogits)`,
 * each cross-entropy the batch mean, as PyTorch's `F.cross_entropy`.
 *
 * - `labels`: one-hot (or soft, e.g. mixup) targets `[B, C]`, or class indices `[B]` (int32).
 * - `logits`, `distLogits`: the student's class-token and distillation-token heads `[B, C]`,
 *   from {@link VisionTransformer.forwardDistillation} of a `distilled: true` model.
 * - `teacherLogits`: the teacher's output `[B, C]` (e.g. a ResNet18's `predict`); only its
 *   argmax is used, so no gradient flows into the teacher.
 *
 * Returns a scalar; allocates nothing else that outlives the call.
 *
 * @example
 * // One step of DeiT training with a frozen teacher (a sketch; see docs/vit-options.md).
 * const teacherLogits = teacher.predict(x) as tf.Tensor;          // outside the gradient
 * optimizer.minimize(() => {
 *   const { logits, distLogits } = vit.forwardDistillation(x, { training: true });
 *   return hardDistillationLoss(y, logits, distLogits, teacherLogits) as tf.Scalar;
 * });
 * teacherLogits.dispose();
 */
export function hardDistillationLoss(
  labels: tf.Tensor,
  logits: tf.Tensor,
  distLogits: tf.Tensor,
  teacherLogits: tf.Tensor,
  options: HardDistillationOptions = {},
): tf.Scalar {
  const owner = 'hardDistillationLoss';
  const alpha = options.alpha ?? 0.5;
  if (typeof alpha !== 'number' || !(alpha >= 0 && alpha <= 1)) {
    throw new ConfigError(`${owner}: alpha must be a number in [0, 1], got ${String(alpha)}`);
  }
  const smoothing = requireRate(owner, 'labelSmoothing', options.labelSmoothing ?? 0);
  for (const [name, t] of [
    ['logits', logits],
    ['distLogits', distLogits],
    ['teacherLogits', teacherLogits],
  ] as const) {
    if (!(t instanceof tf.Tensor) || t.rank !== 2) {
      throw new InputShapeError(
        `${owner}: ${name} must be a [batch, classes] tensor, got ${t instanceof tf.Tensor ? `[${t.shape.join(', ')}]` : String(t)}`,
      );
    }
    if (t.shape[0] !== logits.shape[0] || t.shape[1] !== logits.shape[1]) {
      throw new InputShapeError(
        `${owner}: ${name} must have the shape of logits [${logits.shape.join(', ')}], got [${t.shape.join(', ')}]`,
      );
    }
  }
  const [batch, classes] = logits.shape as [number, number];
  const labelsOk =
    labels instanceof tf.Tensor &&
    ((labels.rank === 2 && labels.shape[0] === batch && labels.shape[1] === classes) ||
      (labels.rank === 1 && labels.shape[0] === batch));
  if (!labelsOk) {
    throw new InputShapeError(
      `${owner}: labels must be one-hot [${batch}, ${classes}] or class indices [${batch}], got ${labels instanceof tf.Tensor ? `[${labels.shape.join(', ')}]` : String(labels)}`,
    );
  }
  return tf.tidy(() => {
    const target =
      labels.rank === 1 ? tf.oneHot(tf.cast(labels, 'int32'), classes) : tf.cast(labels, 'float32');
    const smoothed =
      smoothing > 0 ? tf.add(tf.mul(target, 1 - smoothing), smoothing / classes) : target;
    const base = tf.mean(crossEntropyRows(smoothed, logits));
    const teacherLabels = tf.oneHot(tf.argMax(teacherLogits, -1), classes);
    const distill = tf.mean(crossEntropyRows(teacherLabels, distLogits));
    return tf.add(tf.mul(base, 1 - alpha), tf.mul(distill, alpha)) as tf.Scalar;
  });
}
