/**
 * Deterministic pseudo-random values in [-0.5, 0.5) (a 32-bit LCG), identical in every backend and
 * runtime, for inputs and weights that several backends (or threads) must share. No imports: the
 * benchmarks use it outside the test runner.
 */
export function seededValues(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 4294967296 - 0.5;
  }
  return out;
}
