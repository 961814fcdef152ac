/**
 * Every error class vit-ts throws, under one base class {@link VitTsError}, and the checks and
 * value descriptions their messages are built from. Every message names the argument, what was
 * expected and what came, so that a bad config or a bad input can be fixed from the message alone.
 */
import type { Tensor } from '@tensorflow/tfjs-core';
import type { LoadReport } from './weights/load';

/** Base class of every error vit-ts throws: `err instanceof VitTsError` catches them all. */
export class VitTsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'VitTsError';
  }
}

/** Thrown at construction when a layer or model config is invalid. */
export class ConfigError extends VitTsError {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/** Thrown at call (or symbolic build) time when an input tensor has the wrong shape. */
export class InputShapeError extends VitTsError {
  constructor(message: string) {
    super(message);
    this.name = 'InputShapeError';
  }
}

/** Thrown for malformed safetensors bytes and for tensors that cannot be written or converted. */
export class SafetensorsError extends VitTsError {
  constructor(message: string) {
    super(message);
    this.name = 'SafetensorsError';
  }
}

/** Thrown by `loadPretrained` (strict mode) listing every problem of a checkpoint at once. */
export class CheckpointError extends VitTsError {
  /** The full analysis, as a non-strict load would have reported it (nothing was loaded). */
  readonly report: LoadReport;
  constructor(message: string, report: LoadReport) {
    super(message);
    this.name = 'CheckpointError';
    this.report = report;
  }
}

/**
 * Thrown when the tfjs backend cannot do what was asked (for example a gradient kernel that
 * cannot be built from the backend's forward kernels).
 */
export class BackendError extends VitTsError {
  constructor(message: string) {
    super(message);
    this.name = 'BackendError';
  }
}

/** Thrown when a layer is used before `build()` created its weights. */
export class NotBuiltError extends VitTsError {
  constructor(message: string) {
    super(message);
    this.name = 'NotBuiltError';
  }
}

// Stands for a BigInt inside JSON.stringify's output until it is replaced by its digits.
const BIGINT_MARK = '\u0000bigint:';

/** JSON.stringify that writes BigInts as their exact digits (`[0, 9223372036854775808]`). */
function stringifyExact(value: unknown): string | undefined {
  let hasBigInt = false;
  const text = JSON.stringify(value, (_key, v) => {
    if (typeof v !== 'bigint') return v;
    hasBigInt = true;
    return `${BIGINT_MARK}${v}`;
  });
  return hasBigInt ? text?.replace(/"\\u0000bigint:(-?\d+)"/g, '$1') : text;
}

/**
 * Short JSON rendering of an (untrusted) value for error messages, cut to 80 characters.
 * BigInts (huge integers from a file header) are written with their exact digits.
 */
export function showValue(value: unknown): string {
  let text: string;
  try {
    text = value === undefined ? 'undefined' : (stringifyExact(value) ?? String(value));
  } catch {
    text = String(value);
  }
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

/**
 * What a value is, for error messages: `a tensor of shape [1, 3]`, `an array of length 2`,
 * `'text'`, `null`, `42`, or the class name of an object (`LayersModel`).
 */
export function describeValue(value: unknown): string {
  if (isTensor(value)) return `a tensor of shape ${formatShape(value.shape)}`;
  if (Array.isArray(value)) return `an array of length ${value.length}`;
  if (typeof value === 'string')
    return `'${value.length > 60 ? `${value.slice(0, 57)}...` : value}'`;
  if (value === null || typeof value !== 'object') return String(value);
  const name = (value as object).constructor?.name;
  return name != null && name !== 'Object' ? name : 'an object';
}

/** The kind of a parsed JSON value, for error messages: `null`, `an array`, `an object`, `number 3`. */
export function kindOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : `${typeof value} ${showValue(value)}`;
}

function isTensor(value: unknown): value is Tensor {
  // Duck-typed so that this module needs no tfjs at run time.
  return (
    typeof value === 'object' &&
    value !== null &&
    Array.isArray((value as { shape?: unknown }).shape) &&
    typeof (value as { dtype?: unknown }).dtype === 'string' &&
    typeof (value as { dataId?: unknown }).dataId === 'object'
  );
}

/**
 * Thrown when a data file (IDX, CIFAR-10 batch) is missing, truncated or not in the expected
 * format. The message names the file, what was expected and what was found (e.g. byte counts).
 */
export class DataError extends VitTsError {
  constructor(message: string) {
    super(message);
    this.name = 'DataError';
  }
}

/**
 * Thrown when a crash-safe write (`vit-ts/node`: `saveModel`, `writeFileAtomic`,
 * `commitVersioned`) cannot complete. The previous file or model is left intact.
 */
export class AtomicWriteError extends VitTsError {
  constructor(message: string) {
    super(message);
    this.name = 'AtomicWriteError';
  }
}

/**
 * Thrown when a saved model cannot be read or trusted: a missing or unreadable file, a manifest path leaving the model directory, a
 * file that is not a regular file, a byte count that disagrees with the manifest, a config
 * above the size limits. The message names the file, what was expected and what was found.
 */
export class ModelFileError extends VitTsError {
  constructor(message: string) {
    super(message);
    this.name = 'ModelFileError';
  }
}

/** Formats a shape such as `[null, 224, 224, 3]` for error messages. */
export function formatShape(shape: ReadonlyArray<number | null | undefined>): string {
  return `[${shape.map((d) => (d == null ? 'null' : String(d))).join(', ')}]`;
}

/** Throws a {@link ConfigError} unless `value` is a positive integer. */
export function requirePositiveInt(owner: string, name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0) {
    throw new ConfigError(`${owner}: ${name} must be a positive integer, got ${String(value)}`);
  }
  return value;
}

/**
 * Throws a {@link ConfigError} unless `value` is divisible by `divisor`, e.g.
 * `requireDivisible('MultiHeadAttention', 'dim', 100, 'numHeads', 12)` ->
 * "MultiHeadAttention: dim (100) must be divisible by numHeads (12); got remainder 4".
 * Returns the quotient.
 */
export function requireDivisible(
  owner: string,
  name: string,
  value: number,
  divisorName: string,
  divisor: number,
): number {
  if (value % divisor !== 0) {
    throw new ConfigError(
      `${owner}: ${name} (${value}) must be divisible by ${divisorName} (${divisor}); got remainder ${value % divisor}`,
    );
  }
  return value / divisor;
}

/** Throws a {@link ConfigError} unless `value` is an integer >= 0. */
export function requireNonNegativeInt(owner: string, name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
    throw new ConfigError(`${owner}: ${name} must be an integer >= 0, got ${String(value)}`);
  }
  return value;
}

/** Throws a {@link ConfigError} unless `value` is a rate in [0, 1). */
export function requireRate(owner: string, name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value >= 1) {
    throw new ConfigError(`${owner}: ${name} must be a number in [0, 1), got ${String(value)}`);
  }
  return value;
}

/**
 * `value` if it is `true` or `false`, `fallback` if it is `undefined`; anything else (a truthy
 * string such as `'no'`, `1`, `null`) throws a {@link ConfigError}.
 */
export function requireBoolean(
  owner: string,
  name: string,
  value: unknown,
  fallback: boolean,
): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') {
    throw new ConfigError(`${owner}: ${name} must be true or false, got ${showValue(value)}`);
  }
  return value;
}

/** Throws a {@link ConfigError} unless `value` is a finite number > 0. */
export function requirePositive(owner: string, name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new ConfigError(`${owner}: ${name} must be a finite number > 0, got ${String(value)}`);
  }
  return value;
}

/**
 * Throws an {@link InputShapeError} when the batch axis (axis 0) of `shape` is 0: an empty batch
 * is a caller's mistake (tfjs' own `predict` fails on it with "Pass at least one tensor to
 * concat"), so every vit-ts layer refuses it by name. `expected` (batch axis included) and
 * `meaning` describe the input for the message.
 */
export function assertNonEmptyBatch(
  owner: string,
  shape: ReadonlyArray<number | null | undefined>,
  expected: ReadonlyArray<number | null>,
  meaning: string,
): void {
  if (shape.length === 0 || shape[0] !== 0) return;
  const rest = expected.slice(1).map((d) => (d == null ? 'null' : String(d)));
  throw new InputShapeError(
    `${owner}: expected input of shape [batch >= 1${rest.map((d) => `, ${d}`).join('')}] (${meaning}), got a batch of 0: ${formatShape(shape)}`,
  );
}

/**
 * Checks an input shape against an expected pattern (`null` = any size) and throws an
 * {@link InputShapeError} naming the layer, the expected and the received shape.
 */
export function assertInputShape(
  owner: string,
  shape: ReadonlyArray<number | null | undefined>,
  expected: ReadonlyArray<number | null>,
  meaning: string,
): void {
  assertNonEmptyBatch(owner, shape, expected, meaning);
  const ok =
    shape.length === expected.length &&
    expected.every((d, i) => d == null || shape[i] == null || shape[i] === d);
  if (!ok) {
    throw new InputShapeError(
      `${owner}: expected input of shape ${formatShape(expected)} (${meaning}), got ${formatShape(shape)}`,
    );
  }
}

/**
 * Thrown in the calling thread when a vit-ts worker thread fails (a task threw, the model did
 * not load, the thread died). `cause` holds the worker's own error.
 */
export class ParallelWorkerError extends VitTsError {
  constructor(message: string, cause?: Error) {
    super(message);
    this.name = 'ParallelWorkerError';
    if (cause !== undefined) (this as { cause?: unknown }).cause = cause;
  }
}
