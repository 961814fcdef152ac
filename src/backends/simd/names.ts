/**
 * Names of vit-ts' WebAssembly SIMD kernels, apart from the kernels themselves so that code which
 * only needs the names (unregistering them) does not pull the compiled module into a bundle.
 */

/**
 * Fused attention: inputs q, k, v `[B*N, D]`; outputs the context `[B*N, D]` and, when the
 * `probs` attribute is set, the probabilities `[N, B*H, N]`.
 */
export const FUSED_ATTENTION_KERNEL = 'VitTsFusedAttention';
/** Exact GELU: input `x`, output `gelu(x)`, same shape. */
export const GELU_KERNEL = 'VitTsGelu';
/** GELU gradient: inputs `x`, `dy`; output `dy * gelu'(x)`. */
export const GELU_GRAD_KERNEL = 'VitTsGeluGrad';
/**
 * LayerNorm over the last axis: inputs `x [rows, D]`, `gamma [D]`, `beta [D]`; outputs y
 * `[rows, D]` and, when the `stats` attribute is set, xhat `[rows, D]` and rstd `[rows, 1]`.
 */
export const LAYER_NORM_KERNEL = 'VitTsLayerNorm';

/** All of them. */
export const SIMD_KERNEL_NAMES = [
  FUSED_ATTENTION_KERNEL,
  GELU_KERNEL,
  GELU_GRAD_KERNEL,
  LAYER_NORM_KERNEL,
] as const;
