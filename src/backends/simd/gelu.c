// Exact GELU, 0.5 x (1 + erf(x / sqrt 2)) (PyTorch's default nn.GELU), and its gradient, in
// WebAssembly SIMD. tfjs' wasm path ran it as Erf plus three elementwise kernels (four passes,
// four dispatches); here it is one pass.
//
// erf by Abramowitz & Stegun 7.1.26: erf(z) = 1 - (a1 t + ... + a5 t^5) exp(-z^2), t = 1 / (1 + p z),
// z >= 0, odd extension for z < 0; absolute error <= 1.5e-7 (about one float ulp at 1).

#include "simd_math.h"

// erf of 4 lanes (see above).
INLINE v128_t erf4(v128_t x) {
  const v128_t z = wasm_f32x4_abs(x);
  const v128_t t = wasm_f32x4_div(wasm_f32x4_splat(1.0f),
                                  wasm_f32x4_add(wasm_f32x4_splat(1.0f),
                                                 wasm_f32x4_mul(wasm_f32x4_splat(0.3275911f), z)));
  v128_t y = wasm_f32x4_splat(1.061405429f);
  y = wasm_f32x4_add(wasm_f32x4_mul(y, t), wasm_f32x4_splat(-1.453152027f));
  y = wasm_f32x4_add(wasm_f32x4_mul(y, t), wasm_f32x4_splat(1.421413741f));
  y = wasm_f32x4_add(wasm_f32x4_mul(y, t), wasm_f32x4_splat(-0.284496736f));
  y = wasm_f32x4_add(wasm_f32x4_mul(y, t), wasm_f32x4_splat(0.254829592f));
  y = wasm_f32x4_mul(y, t);
  const v128_t e = exp4(wasm_f32x4_neg(wasm_f32x4_mul(z, z)));
  const v128_t r = wasm_f32x4_sub(wasm_f32x4_splat(1.0f), wasm_f32x4_mul(y, e));
  // Put x's sign on the result.
  const v128_t sign = wasm_v128_and(x, wasm_i32x4_splat((int)0x80000000));
  return wasm_v128_or(r, sign);
}

// gelu of 4 lanes.
INLINE v128_t gelu4(v128_t v) {
  const v128_t cdf = wasm_f32x4_mul(wasm_f32x4_splat(0.5f),
                                    wasm_f32x4_add(wasm_f32x4_splat(1.0f),
                                                   erf4(wasm_f32x4_mul(v, wasm_f32x4_splat(0.70710678118654752f)))));
  return wasm_f32x4_mul(v, cdf);
}

// y[i] = gelu(x[i]) for i < n.
EXPORT("vit_gelu")
void vit_gelu(const float *x, float *y, int n) {
  int i = 0;
  for (; i + 4 <= n; i += 4) wasm_v128_store(y + i, gelu4(wasm_v128_load(x + i)));
  if (i < n) store_partial(y + i, gelu4(load_partial(x + i, n - i)), n - i);
}

// dy * gelu'(x) = dy * (Phi(x) + x phi(x)) for 4 lanes, phi the standard normal density.
INLINE v128_t gelu_grad4(v128_t v, v128_t g) {
  const v128_t cdf = wasm_f32x4_mul(wasm_f32x4_splat(0.5f),
                                    wasm_f32x4_add(wasm_f32x4_splat(1.0f),
                                                   erf4(wasm_f32x4_mul(v, wasm_f32x4_splat(0.70710678118654752f)))));
  const v128_t pdf = wasm_f32x4_mul(wasm_f32x4_splat(0.39894228040143268f),
                                    exp4(wasm_f32x4_mul(wasm_f32x4_mul(v, v), wasm_f32x4_splat(-0.5f))));
  return wasm_f32x4_mul(g, wasm_f32x4_add(cdf, wasm_f32x4_mul(v, pdf)));
}

// dx[i] = dy[i] * gelu'(x[i]) for i < n.
EXPORT("vit_gelu_grad")
void vit_gelu_grad(const float *x, const float *dy, float *dx, int n) {
  int i = 0;
  for (; i + 4 <= n; i += 4)
    wasm_v128_store(dx + i, gelu_grad4(wasm_v128_load(x + i), wasm_v128_load(dy + i)));
  if (i < n)
    store_partial(dx + i, gelu_grad4(load_partial(x + i, n - i), load_partial(dy + i, n - i)), n - i);
}
