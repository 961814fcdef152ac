// Shared helpers of vit-ts' WebAssembly SIMD kernels (no libc: built with -nostdlib).
// The module imports its memory and may run on tfjs' own heap: kernels touch only the pointers
// they are given, and use no stack and no static data (scripts/build-simd.sh checks).
#ifndef VIT_SIMD_MATH_H
#define VIT_SIMD_MATH_H

#include <wasm_simd128.h>

#define EXPORT(name) __attribute__((export_name(name)))
#define INLINE static inline __attribute__((always_inline))

// exp(x) for 4 lanes: x = n ln2 + r, |r| <= ln2 / 2, exp(r) by the Cephes expf polynomial,
// 2^n built in the exponent bits. Relative error ~2e-7 (two float ulps). Inputs are clamped to
// [-87.3, 88.7] so 2^n stays a normal float; softmax feeds it x - max(x) <= 0.
INLINE v128_t exp4(v128_t x) {
  x = wasm_f32x4_min(x, wasm_f32x4_splat(88.3762626647949f));
  x = wasm_f32x4_max(x, wasm_f32x4_splat(-87.3365447504019f));
  const v128_t n = wasm_f32x4_nearest(wasm_f32x4_mul(x, wasm_f32x4_splat(1.44269504088896341f)));
  v128_t r = wasm_f32x4_sub(x, wasm_f32x4_mul(n, wasm_f32x4_splat(0.693359375f)));
  r = wasm_f32x4_sub(r, wasm_f32x4_mul(n, wasm_f32x4_splat(-2.12194440e-4f)));
  v128_t y = wasm_f32x4_splat(1.9875691500e-4f);
  y = wasm_f32x4_add(wasm_f32x4_mul(y, r), wasm_f32x4_splat(1.3981999507e-3f));
  y = wasm_f32x4_add(wasm_f32x4_mul(y, r), wasm_f32x4_splat(8.3334519073e-3f));
  y = wasm_f32x4_add(wasm_f32x4_mul(y, r), wasm_f32x4_splat(4.1665795894e-2f));
  y = wasm_f32x4_add(wasm_f32x4_mul(y, r), wasm_f32x4_splat(1.6666665459e-1f));
  y = wasm_f32x4_add(wasm_f32x4_mul(y, r), wasm_f32x4_splat(5.0000001201e-1f));
  y = wasm_f32x4_add(wasm_f32x4_mul(wasm_f32x4_mul(y, r), r), wasm_f32x4_add(r, wasm_f32x4_splat(1.0f)));
  const v128_t e = wasm_i32x4_shl(wasm_i32x4_add(wasm_i32x4_trunc_sat_f32x4(n), wasm_i32x4_splat(127)), 23);
  return wasm_f32x4_mul(y, e);
}

// Sum of the four lanes.
INLINE float hsum4(v128_t v) {
  return wasm_f32x4_extract_lane(v, 0) + wasm_f32x4_extract_lane(v, 1) +
         wasm_f32x4_extract_lane(v, 2) + wasm_f32x4_extract_lane(v, 3);
}

// The first m (1..3) floats at p as a vector (other lanes 0), and its first m lanes stored back:
// the kernels run in place on tfjs' heap, so nothing is read or written past a tensor's end
// (and no stack array is used: the module has no stack of its own).
INLINE v128_t load_partial(const float *p, int m) {
  return wasm_f32x4_make(p[0], m > 1 ? p[1] : 0.0f, m > 2 ? p[2] : 0.0f, 0.0f);
}
INLINE void store_partial(float *p, v128_t v, int m) {
  p[0] = wasm_f32x4_extract_lane(v, 0);
  if (m > 1) p[1] = wasm_f32x4_extract_lane(v, 1);
  if (m > 2) p[2] = wasm_f32x4_extract_lane(v, 2);
}

#endif
