/**
 * Declarative config schemas: one table of fields (type, range, default) drives both the
 * validation of a config and its serialization, so a field cannot be validated but forgotten in
 * saved JSON, or saved but never read. Unknown keys are refused: a config field nobody reads is a
 * silent bug (a typo such as `numHead: 6` would otherwise build the default model).
 */
import { ConfigError } from '../errors';

/**
 * Keys of tfjs' `LayerArgs` that every layer accepts (and `getConfig` may emit), plus
 * `customObjects`, which tfjs' deserializer adds to a layer's config when loading a model.
 */
export const LAYER_ARG_KEYS = [
  'customObjects',
  'name',
  'trainable',
  'inputShape',
  'batchInputShape',
  'batchSize',
  'dtype',
  'weights',
  'inputDType',
] as const;

interface FieldBase {
  /** One line for error messages and docs. */
  doc: string;
  /** `null` is a valid value (besides the default); e.g. `initValues: null` = LayerScale off. */
  nullable?: boolean;
}

/** An integer in `[min, max]`. */
export interface IntField extends FieldBase {
  kind: 'int';
  min: number;
  max?: number;
  default: number | null;
}
/** A finite number, optionally bounded (`minExclusive` / `maxExclusive` make a bound open). */
export interface NumberField extends FieldBase {
  kind: 'number';
  min?: number;
  minExclusive?: boolean;
  max?: number;
  maxExclusive?: boolean;
  default: number | null;
}
/** `true` or `false` (no truthy strings). */
export interface BooleanField extends FieldBase {
  kind: 'boolean';
  default: boolean;
}
/** One of a fixed list of strings. */
export interface EnumField extends FieldBase {
  kind: 'enum';
  values: readonly string[];
  default: string | null;
}
/** A positive integer or a `[height, width]` pair of them; resolves to a pair. */
export interface Size2DField extends FieldBase {
  kind: 'size2d';
  default: number | readonly [number, number];
}
/** Anything else: `validate` returns the resolved value or throws a {@link ConfigError}. */
export interface CustomField extends FieldBase {
  kind: 'custom';
  default: unknown;
  validate: (owner: string, name: string, value: unknown) => unknown;
}

/** One field of a config schema. */
export type FieldSpec =
  | IntField
  | NumberField
  | BooleanField
  | EnumField
  | Size2DField
  | CustomField;

/** A schema: field name -> spec, in the order fields are saved. */
export type ConfigSchema = Readonly<Record<string, FieldSpec>>;

function show(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'bigint') return `${value}n`;
  if (Array.isArray(value)) return `[${value.map(show).join(', ')}]`;
  if (value !== null && typeof value === 'object') {
    try {
      return JSON.stringify(value);
    } catch {
      return String(value);
    }
  }
  return String(value);
}

function rangeText(f: NumberField | IntField): string {
  const parts: string[] = [];
  if (f.min !== undefined)
    parts.push(`${'minExclusive' in f && f.minExclusive ? '>' : '>='} ${f.min}`);
  if (f.max !== undefined)
    parts.push(`${'maxExclusive' in f && f.maxExclusive ? '<' : '<='} ${f.max}`);
  return parts.join(' and ');
}

/**
 * Validates one value against its spec and returns the resolved value (`undefined` -> the
 * default). Throws a {@link ConfigError} naming `owner`, the field, what was expected and what came.
 */
export function validateField(
  owner: string,
  name: string,
  spec: FieldSpec,
  value: unknown,
): unknown {
  if (value === undefined) {
    if (spec.kind === 'size2d') return validateField(owner, name, spec, spec.default);
    return spec.default;
  }
  if (value === null && (spec.nullable || spec.default === null)) return null;
  const fail = (expected: string): never => {
    throw new ConfigError(`${owner}: ${name} must be ${expected}, got ${show(value)}`);
  };
  switch (spec.kind) {
    case 'int': {
      const ok =
        typeof value === 'number' &&
        Number.isSafeInteger(value) &&
        value >= spec.min &&
        (spec.max === undefined || value <= spec.max);
      if (!ok) {
        const what =
          spec.min === 1 && spec.max === undefined
            ? 'a positive integer'
            : `an integer ${rangeText(spec)}`;
        fail(`${what}${spec.nullable ? ' or null' : ''}`);
      }
      return value;
    }
    case 'number': {
      let ok = typeof value === 'number' && Number.isFinite(value);
      const v = value as number;
      if (ok && spec.min !== undefined) ok = spec.minExclusive ? v > spec.min : v >= spec.min;
      if (ok && spec.max !== undefined) ok = spec.maxExclusive ? v < spec.max : v <= spec.max;
      if (!ok) {
        const range = rangeText(spec);
        const what =
          spec.min !== undefined && spec.max !== undefined
            ? `a number in ${spec.minExclusive ? '(' : '['}${spec.min}, ${spec.max}${spec.maxExclusive ? ')' : ']'}`
            : `a finite number${range ? ` ${range}` : ''}`;
        fail(`${what}${spec.nullable ? ' or null' : ''}`);
      }
      return value;
    }
    case 'boolean':
      if (typeof value !== 'boolean') fail('true or false');
      return value;
    case 'enum':
      if (typeof value !== 'string' || !spec.values.includes(value)) {
        fail(`one of ${spec.values.map((v) => `'${v}'`).join(', ')}`);
      }
      return value;
    case 'size2d': {
      const isDim = (d: unknown) => typeof d === 'number' && Number.isSafeInteger(d) && d > 0;
      if (isDim(value)) return [value, value];
      if (Array.isArray(value) && value.length === 2 && value.every(isDim)) {
        return [value[0], value[1]];
      }
      return fail('a positive integer or a [height, width] pair of positive integers');
    }
    case 'custom':
      return spec.validate(owner, name, value);
  }
}

/** Throws a {@link ConfigError} unless `config` is a plain (non-null, non-array) object. */
export function requireConfigObject(owner: string, config: unknown): Record<string, unknown> {
  if (config === null || typeof config !== 'object' || Array.isArray(config)) {
    throw new ConfigError(
      `${owner}: config must be an object, got ${config === null ? 'null' : Array.isArray(config) ? 'an array' : show(config)}`,
    );
  }
  return config as Record<string, unknown>;
}

/**
 * Throws a {@link ConfigError} if `config` has an own key (with a defined value) outside `known`,
 * naming the key and listing the known ones. Also refuses null / non-object configs.
 */
export function checkKnownKeys(
  owner: string,
  config: unknown,
  known: readonly string[],
  what = 'config field',
): Record<string, unknown> {
  const obj = requireConfigObject(owner, config);
  for (const key of Object.keys(obj)) {
    if (!known.includes(key) && obj[key] !== undefined) {
      throw new ConfigError(
        `${owner}: unknown ${what} '${key}'; known ${what}s: ${known.join(', ')}`,
      );
    }
  }
  return obj;
}

/**
 * Checks the args of a layer constructor: a non-null object whose keys are `fields` or tfjs'
 * layer args (`name`, `trainable`, ...). Returns the args as a record.
 */
export function checkLayerArgs(
  owner: string,
  args: unknown,
  fields: readonly string[],
): Record<string, unknown> {
  return checkKnownKeys(owner, args, [...fields, ...LAYER_ARG_KEYS]);
}

/**
 * Validates `config` against `schema`: refuses unknown keys (besides `extraKeys`, e.g. layer
 * args), validates every field and fills defaults. Cross-field rules are the caller's.
 */
export function resolveSchema(
  owner: string,
  schema: ConfigSchema,
  config: unknown,
  extraKeys: readonly string[] = [],
): Record<string, unknown> {
  const obj = checkKnownKeys(owner, config, [...Object.keys(schema), ...extraKeys]);
  const out: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(schema)) {
    out[name] = validateField(owner, name, spec, obj[name]);
  }
  return out;
}

/** A JSON-safe copy of a resolved value for `getConfig` (arrays and objects copied). */
export function serializeValue(value: unknown): unknown {
  if (Array.isArray(value) || (value !== null && typeof value === 'object')) {
    return JSON.parse(JSON.stringify(value));
  }
  return value;
}

/** Every field of `schema` taken from `resolved`, ready to merge into `getConfig()`. */
export function serializeSchema(
  schema: ConfigSchema,
  resolved: Readonly<Record<string, unknown>>,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const name of Object.keys(schema)) out[name] = serializeValue(resolved[name]);
  return out;
}

/** `Object.hasOwn` lookup in a name-keyed table: `'toString'` / `'__proto__'` are not entries. */
export function ownEntry<T>(table: Readonly<Record<string, T>>, key: string): T | undefined {
  return typeof key === 'string' && Object.hasOwn(table, key) ? table[key] : undefined;
}
