/**
 * Error types thrown by vit-ts. Every message names the argument, what was expected and what
 * came, so that a bad config or a bad input can be fixed from the message alone.
 */

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
 * Thrown when a saved model cannot be trusted: a manifest path leaving the model directory, a
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

/** Throws a {@link ConfigError} unless `value` is a finite number > 0. */
export function requirePositive(owner: string, name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new ConfigError(`${owner}: ${name} must be a finite number > 0, got ${String(value)}`);
  }
  return value;
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
