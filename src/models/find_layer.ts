/**
 * Finds the one architecture layer (a VisionTransformer, a ResNet18, ...) inside a model built by
 * `createViT` / `createResNet18` or loaded from disk. Weight loading, weight export and the
 * attention tools all accept "a model or the layer itself"; this is the one place that search
 * lives.
 */
import { ConfigError, describeValue } from '../errors';

// A constructor of any arity: tfjs layer constructors take different args.
// biome-ignore lint/suspicious/noExplicitAny: matching any class constructor needs `any` args.
type LayerClass<T> = abstract new (...args: any[]) => T;

/**
 * Returns `target` when it is an instance of one of `kinds`, otherwise the single layer of
 * `target.layers` that is. Throws a {@link ConfigError} naming `caller`, what was wanted
 * (`wanted`, e.g. "a VisionTransformer layer") and what came when there is none or more than one.
 */
export function findArchitectureLayer<T>(
  target: unknown,
  kinds: ReadonlyArray<LayerClass<T>>,
  caller: string,
  wanted: string,
): T {
  const isKind = (x: unknown): x is T => kinds.some((k) => x instanceof k);
  if (isKind(target)) return target;
  const layers = (target as { layers?: unknown } | null | undefined)?.layers;
  if (!Array.isArray(layers)) {
    throw new ConfigError(
      `${caller}: model must be a tf.LayersModel holding one ${wanted}, or that layer itself, got ${describeValue(target)}`,
    );
  }
  const found = layers.filter(isKind);
  if (found.length !== 1) {
    const names = layers.map((l) => {
      const layer = l as { name?: string; getClassName?: () => string };
      return `${layer.name}:${layer.getClassName?.() ?? describeValue(l)}`;
    });
    throw new ConfigError(
      `${caller}: model must hold exactly one ${wanted}, found ${found.length} (layers: ${names.join(', ')})`,
    );
  }
  return found[0] as T;
}
