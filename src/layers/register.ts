import { serialization } from '@tensorflow/tfjs-core';
import { ConfigError } from '../errors';

/** Package prefix of every vit-ts class name in saved model JSON (`VitTs>PatchEmbed`). */
export const CLASS_PREFIX = 'VitTs';

/** A class name without the vit-ts package prefix: `VitTs>PatchEmbed` -> `PatchEmbed`. */
export function shortClassName(className: string): string {
  return className.startsWith(`${CLASS_PREFIX}>`)
    ? className.slice(CLASS_PREFIX.length + 1)
    : className;
}

/**
 * Registers a vit-ts layer for (de)serialization. Class names carry the `VitTs>` prefix because
 * tfjs-layers already registers classes such as `MultiHeadAttention` and `PositionEmbedding`:
 * an unprefixed name would replace tfjs' own class in its registry. The prefix is used both as
 * the static `className` and as the registered name, so saved JSON says `VitTs>PatchEmbed`.
 */
export function registerLayer<
  T extends serialization.SerializableConstructor<serialization.Serializable>,
>(cls: T): T {
  const className = (cls as unknown as { className: string }).className;
  const [pkg, name] = className.split('>');
  if (pkg !== CLASS_PREFIX || name == null) {
    throw new ConfigError(
      `registerLayer: className must look like '${CLASS_PREFIX}>Name', got '${className}'`,
    );
  }
  serialization.registerClass(cls, pkg, name);
  return cls;
}

const nameCounters = new Map<string, number>();

/**
 * Returns layer args with a default name (`patch_embed_1`, `patch_embed_2`, ...) when none is
 * given. tfjs derives default names from `className`, and the `>` in ours is not allowed in
 * tensor names, so every vit-ts layer names itself.
 */
export function withDefaultName<T extends { name?: string }>(args: T | undefined, base: string): T {
  const a = (args ?? {}) as T;
  if (a.name != null) return a;
  const n = (nameCounters.get(base) ?? 0) + 1;
  nameCounters.set(base, n);
  return { ...a, name: `${base}_${n}` };
}
