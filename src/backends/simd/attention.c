// Fused multi-head attention for vit-ts' wasm path: softmax(q k^T * scale) v for every image and
// head in one call, in WebAssembly SIMD (128-bit). tfjs' wasm backend has no such kernel; as a
// chain of its ops the attention of a batch-1 ViT-Ti/16 forward ran at 5-10 GFLOP/s plus a
// softmax, transposes and dispatch (docs/performance.md). Built with the other kernels of this folder by
// scripts/build-simd.sh into one module, src/backends/simd/simd_wasm.ts (base64).
//
// Layouts (all float32, row-major):
//   q, k, v  [B * N, H * hd]   heads side by side on the last axis (timm's order)
//   ctx      [B * N, H * hd]   output, same layout
//   probs    [N, B * H, N]     output, the probabilities p[i, c, j] with c = b * H + h: the layout
//                              vit-ts' attention gradient reads (src/ops/attention_core.ts);
//                              null (0) when no gradient needs them
//   scratch  at least hd * Np + N * Np floats, Np = N rounded up to a multiple of 8
//
// No libc: built with -nostdlib; exp comes from simd_math.h.

#include "simd_math.h"

// Scores of R query rows (R = 4 or 1) against 8 keys: s[r][j0 .. j0+8] = scale * q_r . kt[:, j].
// q rows are `qs` floats apart; kt is [hd, Np]; s rows are Np apart.
INLINE void scores_block(int R, const float *q, int qs, const float *kt, int np, int hd,
                         float *s, int j0, float scale) {
  v128_t acc[4][2];
  for (int r = 0; r < R; r++) acc[r][0] = acc[r][1] = wasm_f32x4_splat(0.0f);
  for (int d = 0; d < hd; d++) {
    const v128_t k0 = wasm_v128_load(kt + d * np + j0);
    const v128_t k1 = wasm_v128_load(kt + d * np + j0 + 4);
    for (int r = 0; r < R; r++) {
      const v128_t a = wasm_f32x4_splat(q[r * qs + d]);
      acc[r][0] = wasm_f32x4_add(acc[r][0], wasm_f32x4_mul(a, k0));
      acc[r][1] = wasm_f32x4_add(acc[r][1], wasm_f32x4_mul(a, k1));
    }
  }
  const v128_t sc = wasm_f32x4_splat(scale);
  for (int r = 0; r < R; r++) {
    wasm_v128_store(s + r * np + j0, wasm_f32x4_mul(acc[r][0], sc));
    wasm_v128_store(s + r * np + j0 + 4, wasm_f32x4_mul(acc[r][1], sc));
  }
}

// Softmax of one row s[0 .. n) in place; s[n .. np) are set to 0 so products may read them.
static void softmax_row(float *s, int n, int np) {
  float m = s[0];
  for (int j = 1; j < n; j++) m = s[j] > m ? s[j] : m;
  for (int j = n; j < np; j++) s[j] = -1e30f;  // exp underflows to the clamp's tiny value
  const v128_t mv = wasm_f32x4_splat(m);
  v128_t sum = wasm_f32x4_splat(0.0f);
  for (int j = 0; j < np; j += 4) {
    v128_t e = exp4(wasm_f32x4_sub(wasm_v128_load(s + j), mv));
    wasm_v128_store(s + j, e);
    sum = wasm_f32x4_add(sum, e);
  }
  // The padded lanes hold exp(-87.3) ~ 1e-38; remove them from the sum exactly.
  float total = 0.0f;
  for (int j = n; j < np; j++) total -= s[j];
  total += wasm_f32x4_extract_lane(sum, 0) + wasm_f32x4_extract_lane(sum, 1) +
           wasm_f32x4_extract_lane(sum, 2) + wasm_f32x4_extract_lane(sum, 3);
  const v128_t inv = wasm_f32x4_splat(1.0f / total);
  for (int j = 0; j < np; j += 4) wasm_v128_store(s + j, wasm_f32x4_mul(wasm_v128_load(s + j), inv));
  for (int j = n; j < np; j++) s[j] = 0.0f;
}

// Context of R query rows for head-dim columns [e0, e0 + W) (W = 8 or 4):
// out[r][e] = sum_j p[r][j] v[j][e]; v rows are `vs` floats apart, p rows Np apart.
INLINE void context_block(int R, int W, const float *p, int np, int n, const float *v, int vs,
                          float *out, int os, int e0) {
  v128_t acc[4][2];
  for (int r = 0; r < R; r++) acc[r][0] = acc[r][1] = wasm_f32x4_splat(0.0f);
  for (int j = 0; j < n; j++) {
    const v128_t v0 = wasm_v128_load(v + j * vs + e0);
    const v128_t v1 = W == 8 ? wasm_v128_load(v + j * vs + e0 + 4) : v0;
    for (int r = 0; r < R; r++) {
      const v128_t a = wasm_f32x4_splat(p[r * np + j]);
      acc[r][0] = wasm_f32x4_add(acc[r][0], wasm_f32x4_mul(a, v0));
      if (W == 8) acc[r][1] = wasm_f32x4_add(acc[r][1], wasm_f32x4_mul(a, v1));
    }
  }
  for (int r = 0; r < R; r++) {
    wasm_v128_store(out + r * os + e0, acc[r][0]);
    if (W == 8) wasm_v128_store(out + r * os + e0 + 4, acc[r][1]);
  }
}

EXPORT("vit_attention")
void vit_attention(const float *q, const float *k, const float *v, float *ctx, float *probs,
                   float *scratch, int batch, int n, int heads, int hd, float scale) {
  const int dim = heads * hd;
  const int np = (n + 7) & ~7;
  const int c_total = batch * heads;
  float *kt = scratch;            // [hd, Np]
  float *s = scratch + hd * np;   // [N, Np]
  for (int b = 0; b < batch; b++) {
    for (int h = 0; h < heads; h++) {
      const int c = b * heads + h;
      const float *qb = q + b * n * dim + h * hd;
      const float *kb = k + b * n * dim + h * hd;
      const float *vb = v + b * n * dim + h * hd;
      float *ob = ctx + b * n * dim + h * hd;
      // Keys transposed (and zero-padded to Np) so the score loop runs along keys in vectors.
      for (int d = 0; d < hd; d++) {
        for (int j = 0; j < n; j++) kt[d * np + j] = kb[j * dim + d];
        for (int j = n; j < np; j++) kt[d * np + j] = 0.0f;
      }
      int i = 0;
      for (; i + 4 <= n; i += 4)
        for (int j0 = 0; j0 < np; j0 += 8)
          scores_block(4, qb + i * dim, dim, kt, np, hd, s + i * np, j0, scale);
      for (; i < n; i++)
        for (int j0 = 0; j0 < np; j0 += 8)
          scores_block(1, qb + i * dim, dim, kt, np, hd, s + i * np, j0, scale);
      for (i = 0; i < n; i++) {
        float *row = s + i * np;
        softmax_row(row, n, np);
        if (probs) {
          float *dst = probs + (i * c_total + c) * n;
          for (int j = 0; j < n; j++) dst[j] = row[j];
        }
      }
      // Context: vector columns in blocks of 8 and 4, a scalar tail for the rest.
      const int e8 = hd & ~7;
      const int e4 = hd & ~3;
      for (i = 0; i + 4 <= n; i += 4) {
        for (int e0 = 0; e0 < e8; e0 += 8)
          context_block(4, 8, s + i * np, np, n, vb, dim, ob + i * dim, dim, e0);
        if (e4 > e8) context_block(4, 4, s + i * np, np, n, vb, dim, ob + i * dim, dim, e8);
      }
      for (; i < n; i++) {
        for (int e0 = 0; e0 < e8; e0 += 8)
          context_block(1, 8, s + i * np, np, n, vb, dim, ob + i * dim, dim, e0);
        if (e4 > e8) context_block(1, 4, s + i * np, np, n, vb, dim, ob + i * dim, dim, e8);
      }
      for (int e = e4; e < hd; e++)
        for (i = 0; i < n; i++) {
          float acc = 0.0f;
          for (int j = 0; j < n; j++) acc += s[i * np + j] * vb[j * dim + e];
          ob[i * dim + e] = acc;
        }
    }
  }
}
