// LayerNorm over the last axis in one pass per row, in WebAssembly SIMD: y = xhat * gamma + beta
// with xhat = (x - mean) * rstd, rstd = 1 / sqrt(var + eps) (biased variance, as PyTorch). Also
// writes xhat and rstd, which vit-ts' LayerNorm gradient reads (src/ops/layer_norm.ts). tfjs' wasm
// path ran it as seven kernels over the activations.
//
// Mean and variance in two passes over the row (the row is in cache): the centred variance, as
// PyTorch computes it, not E[x^2] - E[x]^2, which cancels badly for large means.

#include "simd_math.h"

// Rows of `d` floats; d need not be a multiple of 4 (scalar tail). xhat and rstd may be null (0)
// when no gradient needs them.
EXPORT("vit_layer_norm")
void vit_layer_norm(const float *x, const float *gamma, const float *beta, float *y, float *xhat,
                    float *rstd, int rows, int d, float eps) {
  const int d4 = d & ~3;
  for (int r = 0; r < rows; r++) {
    const float *xr = x + r * d;
    v128_t s = wasm_f32x4_splat(0.0f);
    int i = 0;
    for (; i < d4; i += 4) s = wasm_f32x4_add(s, wasm_v128_load(xr + i));
    float sum = hsum4(s);
    for (; i < d; i++) sum += xr[i];
    const float mean = sum / (float)d;
    const v128_t mv = wasm_f32x4_splat(mean);
    v128_t q = wasm_f32x4_splat(0.0f);
    for (i = 0; i < d4; i += 4) {
      const v128_t c = wasm_f32x4_sub(wasm_v128_load(xr + i), mv);
      q = wasm_f32x4_add(q, wasm_f32x4_mul(c, c));
    }
    float sq = hsum4(q);
    for (; i < d; i++) sq += (xr[i] - mean) * (xr[i] - mean);
    const float rs = 1.0f / __builtin_sqrtf(sq / (float)d + eps);
    if (rstd) rstd[r] = rs;
    const v128_t rv = wasm_f32x4_splat(rs);
    float *yr = y + r * d;
    float *hr = xhat ? xhat + r * d : 0;
    for (i = 0; i < d4; i += 4) {
      const v128_t h = wasm_f32x4_mul(wasm_f32x4_sub(wasm_v128_load(xr + i), mv), rv);
      if (xhat) wasm_v128_store(hr + i, h);
      wasm_v128_store(yr + i, wasm_f32x4_add(wasm_f32x4_mul(h, wasm_v128_load(gamma + i)),
                                             wasm_v128_load(beta + i)));
    }
    for (; i < d; i++) {
      const float h = (xr[i] - mean) * rs;
      if (xhat) hr[i] = h;
      yr[i] = h * gamma[i] + beta[i];
    }
  }
}
