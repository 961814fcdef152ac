import { initializers } from '@tensorflow/tfjs-layers';

/**
 * timm's default weight init is `trunc_normal_(std=0.02)` with cut-offs at absolute +-2, i.e. at
 * +-100 standard deviations: in practice a plain normal. tfjs' truncatedNormal cuts at +-2
 * standard deviations instead, which shrinks the spread by about 12%, so a normal is the
 * faithful choice here.
 */
export function timmNormal(stddev = 0.02) {
  return initializers.randomNormal({ mean: 0, stddev });
}

/** Zeros, used for every bias as in timm. */
export function zeros() {
  return initializers.zeros();
}

/** Ones, used for LayerNorm scales. */
export function ones() {
  return initializers.ones();
}
