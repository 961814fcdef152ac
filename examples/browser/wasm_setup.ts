/**
 * Registers tfjs' wasm backend for a Vite-built page and tells it where Vite put the three
 * .wasm binaries (a bundler does not copy them by itself). With the files mapped one by one,
 * tfjs picks the binary itself: the threaded SIMD build when the page is cross-origin isolated
 * (SharedArrayBuffer available), otherwise the SIMD build.
 */
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import plainUrl from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm?url';
import simdUrl from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm?url';
import threadedSimdUrl from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-threaded-simd.wasm?url';

export { getThreadsCount, setThreadsCount } from '@tensorflow/tfjs-backend-wasm';

// Absolute URLs: a module worker resolves relative paths against its own script.
const absolute = (url: string) => new URL(url, import.meta.url).href;

/**
 * Call before the wasm backend starts. (A function, not a side effect of importing this
 * module: the package is `"sideEffects": false`, so a bundler drops side-effect-only imports.)
 */
export function configureWasmPaths(): void {
  setWasmPaths({
    'tfjs-backend-wasm.wasm': absolute(plainUrl),
    'tfjs-backend-wasm-simd.wasm': absolute(simdUrl),
    'tfjs-backend-wasm-threaded-simd.wasm': absolute(threadedSimdUrl),
  });
}

/**
 * Lets tfjs' threaded wasm use every logical core. tfjs-backend-wasm 4.22 caps its XNNPACK
 * thread pool at `navigator.hardwareConcurrency / 2` (its C++ `init_with_threads_count` assumes
 * two hyper-threads per core), whatever `setThreadsCount` asks: on a 2-logical-core machine the
 * pool has 1 thread and the second core idles. Reporting twice the logical cores to the wasm
 * module before the backend starts lifts the cap to the real count; `setThreadsCount` still
 * chooses the number. Call before `tf.setBackend('wasm')`; affects only this page.
 */
export function liftWasmThreadCap(): void {
  const logical = navigator.hardwareConcurrency;
  Object.defineProperty(navigator, 'hardwareConcurrency', {
    configurable: true,
    get: () => logical * 2,
  });
}
