/**
 * An empty batch (`[0, 224, 224, 3]`) given to `model.predict` fails inside tfjs-layers before
 * any vit-ts layer runs: its batching loop makes no batch and then concatenates nothing ("Pass at
 * least one tensor to concat"); `fit` trains on nothing and `evaluate` averages nothing. The
 * models vit-ts builds or loads check the batch first, as own properties of the model object:
 * the class stays tfjs' `LayersModel` (so `instanceof`, `save`, `toJSON` and
 * `tf.loadLayersModel` are unchanged: nothing of this is serialized) and the checks are
 * re-attached by vit-ts' `loadModel`.
 */
import type { Tensor } from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { assertNonEmptyBatch, type InputShapeError } from '../errors';

type Inputs = Tensor | Tensor[] | { [name: string]: Tensor };

/** The inputs of a `predict` / `fit` / `evaluate` call as `[input name, tensor]` pairs. */
function namedInputs(model: LayersModel, x: Inputs): Array<[string, Tensor]> {
  if (Array.isArray(x)) return x.map((t, i) => [model.inputNames[i] ?? `#${i}`, t]);
  if (x != null && typeof x === 'object' && !('shape' in x)) return Object.entries(x);
  return [[model.inputNames[0] ?? '#0', x as Tensor]];
}

/**
 * Throws an {@link InputShapeError} when an input of `model` has a batch axis of size 0, naming
 * the method, the input, what was expected and what came. Anything else is left to tfjs.
 */
export function assertNonEmptyInputs(model: LayersModel, method: string, x: unknown): void {
  if (x == null || typeof x !== 'object') return;
  for (const [name, t] of namedInputs(model, x as Inputs)) {
    const shape = (t as { shape?: unknown })?.shape;
    if (!Array.isArray(shape)) continue;
    const symbolic = model.inputs[model.inputNames.indexOf(name)];
    assertNonEmptyBatch(
      method,
      shape,
      symbolic?.shape ?? shape.map(() => null),
      `input '${name}' of model '${model.name}'`,
    );
  }
}

/**
 * Makes `predict`, `predictOnBatch`, `evaluate` and `fit` of `model` refuse an empty batch with
 * an {@link InputShapeError} naming the input, before tfjs' own method runs (which would fail
 * with "Pass at least one tensor to concat", or train / evaluate on nothing). The methods become
 * own properties of `model`; its class, `save` and model.json are unchanged. Models from
 * `createViT`, `createResNet18`, `createHybridViT` and `loadModel` have it already; call it on a
 * model built with `tf.model(...)` or loaded with `tf.loadLayersModel`. Returns `model`;
 * idempotent.
 *
 * @example
 * const model = guardEmptyBatch(await tf.loadLayersModel(url));
 * model.predict(tf.zeros([0, 224, 224, 3])); // InputShapeError: ... batch >= 1 ...
 */
export function guardEmptyBatch<M extends LayersModel>(model: M): M {
  const proto = Object.getPrototypeOf(model) as LayersModel;
  for (const method of ['predict', 'predictOnBatch', 'evaluate', 'fit'] as const) {
    const original = proto[method] as (...args: unknown[]) => unknown;
    Object.defineProperty(model, method, {
      configurable: true,
      writable: true,
      value(x: unknown, ...rest: unknown[]) {
        try {
          assertNonEmptyInputs(model, `model.${method}`, x);
        } catch (e) {
          // fit is async: its errors are rejections.
          if (method === 'fit') return Promise.reject(e);
          throw e;
        }
        return original.call(model, x, ...rest);
      },
    });
  }
  return model;
}
