import { serialization } from '@tensorflow/tfjs-core';
import { checkLayerArgs, type LAYER_ARG_KEYS } from '../config/schema';
import { ConfigError } from '../errors';
import type { LayerArgs } from '../tfjs_types';

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

/**
 * Every field of a layer's args interface besides tfjs' {@link LayerArgs}, as an object of
 * `true`s: written with `satisfies ArgFields<XxxArgs>`, the compiler fails when a field is added
 * to the interface but not to the list (it would then be refused as unknown) or listed but gone.
 */
export type ArgFields<Args> = Record<Exclude<keyof Args, keyof LayerArgs>, true>;

// Compile-time check: every key of tfjs' LayerArgs is accepted by checkLayerArgs (a tfjs upgrade
// adding one would otherwise make saved models with it fail to load).
const layerArgKeysCovered: Exclude<keyof LayerArgs, (typeof LAYER_ARG_KEYS)[number]> extends never
  ? true
  : false = true;
void layerArgKeysCovered;

/**
 * The constructor args of a vit-ts layer, checked and named: throws a {@link ConfigError}
 * naming `owner` unless `args` is a non-null object whose keys are `fields` or tfjs' layer args
 * (what `getConfig` emits and `fromConfig` passes back), then gives it a default name
 * ({@link withDefaultName}).
 */
export function layerArgs<T extends LayerArgs>(
  owner: string,
  args: T | undefined,
  fields: ArgFields<T>,
  defaultName: string,
): T {
  checkLayerArgs(owner, args, Object.keys(fields));
  return withDefaultName(args, defaultName);
}
