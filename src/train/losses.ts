import * as tf from '@tensorflow/tfjs-core';
import { requireRate } from '../errors';

/** Options of {@link softmaxCrossEntropy}. */
export interface SoftmaxCrossEntropyOptions {
  /** Label smoothing in [0, 1) as PyTorch's `CrossEntropyLoss(label_smoothing=...)`. Default 0. */
  labelSmoothing?: number;
}

/**
 * Cross-entropy on logits, for `model.compile({ loss: softmaxCrossEntropy() })`.
 *
 * vit-ts models end in a linear head and output logits, like timm and torchvision. tfjs'
 * `'categoricalCrossentropy'` expects probabilities: given logits it clips negative values and
 * reports a flat, meaningless loss. This is PyTorch's `nn.CrossEntropyLoss` with one-hot
 * targets: `mean_b( -sum_c y_bc * log_softmax(z)_bc )`, computed stably from the logits.
 */
export function softmaxCrossEntropy(
  options: SoftmaxCrossEntropyOptions = {},
): (yTrue: tf.Tensor, logits: tf.Tensor) => tf.Tensor {
  const smoothing = requireRate(
    'softmaxCrossEntropy',
    'labelSmoothing',
    options.labelSmoothing ?? 0,
  );
  const loss = (yTrue: tf.Tensor, logits: tf.Tensor): tf.Tensor =>
    tf.tidy(() => {
      const classes = logits.shape[logits.rank - 1] as number;
      const target =
        smoothing > 0 ? tf.add(tf.mul(yTrue, 1 - smoothing), smoothing / classes) : yTrue;
      return tf.mean(tf.neg(tf.sum(tf.mul(target, tf.logSoftmax(logits, -1)), -1)));
    });
  return loss;
}
