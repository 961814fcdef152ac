/**
 * Reader and writer for the safetensors format (https://github.com/huggingface/safetensors),
 * the checkpoint format of timm, HF transformers and most PyTorch model hubs. Browser-safe: only
 * TypedArray / DataView / TextDecoder, no Node `Buffer`.
 *
 * Layout: 8-byte little-endian u64 header length n, n bytes of UTF-8 JSON
 * `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {key: string}}` (possibly
 * padded with spaces), then the data buffer. Offsets are relative to the buffer start, data is
 * little-endian and the tensors tile the buffer exactly (no gap, no overlap, nothing after).
 */
import * as tf from '@tensorflow/tfjs-core';
import { kindOf, SafetensorsError, showValue } from '../errors';
import {
  bfloat16ArrayToFloat32,
  float16ArrayToFloat32,
  float32ArrayToBfloat16,
  float32ArrayToFloat16,
  HOST_IS_LITTLE_ENDIAN,
  swapBytesInPlace,
} from './dtype';

/** Tensor element types vit-ts reads and writes (the common subset of the safetensors dtypes). */
export type SafetensorsDtype =
  | 'F64'
  | 'F32'
  | 'F16'
  | 'BF16'
  | 'I64'
  | 'I32'
  | 'I16'
  | 'I8'
  | 'U8'
  | 'BOOL';

/** The typed array holding a tensor's values, by dtype (F16 and BF16 are decoded to float32). */
export type SafetensorsData =
  | Float32Array
  | Float64Array
  | Int32Array
  | BigInt64Array
  | Int16Array
  | Int8Array
  | Uint8Array;

/**
 * One tensor of a safetensors file. `data` is row-major (C order) with `shape`'s element count.
 * F16 and BF16 are decoded to a `Float32Array` on read; `dtype` keeps the file's dtype, so
 * writing the entry back stores it in the same format.
 */
export interface SafetensorsEntry {
  dtype: SafetensorsDtype;
  shape: number[];
  data: SafetensorsData;
}

/** The content of a safetensors file: tensors in file (offset) order and string metadata. */
export interface SafetensorsFile {
  tensors: Map<string, SafetensorsEntry>;
  metadata: Record<string, string>;
}

export { SafetensorsError } from '../errors';

/** Bytes per element of each dtype. */
export const SAFETENSORS_DTYPE_BYTES: Readonly<Record<SafetensorsDtype, number>> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
};

/** Default bound on the JSON header size (the limit of the reference Rust implementation). */
export const DEFAULT_MAX_HEADER_BYTES = 100_000_000;

/**
 * Default bound on the strings (tensor names, keys, metadata keys and values) of a header: a
 * ViT-H checkpoint has a few thousand; the bound keeps a hostile header of millions of metadata
 * keys from costing seconds and gigabytes.
 */
export const DEFAULT_MAX_HEADER_STRINGS = 1_000_000;

const METADATA_KEY = '__metadata__';

function isDtype(value: unknown): value is SafetensorsDtype {
  return typeof value === 'string' && Object.hasOwn(SAFETENSORS_DTYPE_BYTES, value);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

// ---------------------------------------------------------------------------------------------
// Reading

/**
 * Throws if any JSON object in `json` (already known to be valid JSON) has a repeated key.
 * `JSON.parse` silently keeps the last duplicate, which would hide a conflicting tensor entry.
 * Keys are compared after unescaping, so `"a"` and `"\u0061"` count as the same name.
 */
function assertNoDuplicateKeys(json: string): void {
  // One entry per open container: the keys seen so far for an object, null for an array.
  const stack: Array<Set<string> | null> = [];
  let topLevelKey = '';
  let expectKey = false;
  let i = 0;
  while (i < json.length) {
    const c = json.charCodeAt(i);
    if (c === 0x22 /* " */) {
      let j = i + 1;
      while (json.charCodeAt(j) !== 0x22) j += json.charCodeAt(j) === 0x5c /* \ */ ? 2 : 1;
      const keys = stack.length > 0 ? stack[stack.length - 1] : null;
      if (expectKey && keys != null) {
        const key = JSON.parse(json.slice(i, j + 1)) as string;
        if (keys.has(key)) {
          throw new SafetensorsError(
            stack.length === 1
              ? `header: duplicate tensor name ${showValue(key)}`
              : `header: duplicate key ${showValue(key)} inside the entry ${showValue(topLevelKey)}`,
          );
        }
        keys.add(key);
        if (stack.length === 1) topLevelKey = key;
        expectKey = false;
      }
      i = j + 1;
      continue;
    }
    if (c === 0x7b /* { */) {
      stack.push(new Set());
      expectKey = true;
    } else if (c === 0x5b /* [ */) {
      stack.push(null);
      expectKey = false;
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      stack.pop();
      expectKey = false;
    } else if (c === 0x2c /* , */) {
      expectKey = stack.length > 0 && stack[stack.length - 1] != null;
    }
    i++;
  }
}

/** A character of a JSON number after its first: digit, `.`, `e`, `E`, `+`, `-`. */
function isNumberChar(c: number): boolean {
  return (
    (c >= 0x30 && c <= 0x39) || c === 0x2e || c === 0x65 || c === 0x45 || c === 0x2b || c === 0x2d
  );
}

/**
 * `header` (parsed from `text`) with every integer literal of `text` that is not a safe
 * integer (beyond +-(2^53 - 1), e.g. a u64 offset of 2^63) as an exact BigInt instead of a
 * rounded double, so that error messages print what the file says. Returns `header` itself when
 * there is none (the usual case: one scan of the text, no second parse).
 */
function withExactIntegers(text: string, header: unknown): unknown {
  const huge: Array<[number, number]> = [];
  let i = 0;
  while (i < text.length) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      i++;
      while (text.charCodeAt(i) !== 0x22) i += text.charCodeAt(i) === 0x5c /* \ */ ? 2 : 1;
      i++;
      continue;
    }
    if (c === 0x2d /* - */ || (c >= 0x30 && c <= 0x39)) {
      let j = i + 1;
      while (j < text.length && isNumberChar(text.charCodeAt(j))) j++;
      // Safe integers have at most 16 digits (plus a sign): shorter tokens need no look.
      if (j - i >= 16) {
        const token = text.slice(i, j);
        if (/^-?\d+$/.test(token) && !Number.isSafeInteger(Number(token))) huge.push([i, j]);
      }
      i = j;
      continue;
    }
    i++;
  }
  if (huge.length === 0) return header;
  // Re-parse with each huge literal as a string "<mark>digits" that the reviver turns into a
  // BigInt. The mark is a lone high surrogate: the (valid UTF-8) text cannot hold one raw, and
  // one whose \uXXXX escape the text uses is skipped, so no string of the file can pass for it.
  const used = new Set(
    Array.from(text.matchAll(/\\u(d[89ab][0-9a-f]{2})/gi), (m) => m[1].toLowerCase()),
  );
  let code = 0xd800;
  while (code <= 0xdbff && used.has(code.toString(16))) code++;
  if (code > 0xdbff) return header; // every mark taken: keep the rounded values
  const mark = String.fromCharCode(code);
  let marked = '';
  let last = 0;
  for (const [start, end] of huge) {
    marked += `${text.slice(last, start)}"\\u${code.toString(16)}${text.slice(start, end)}"`;
    last = end;
  }
  marked += text.slice(last);
  return JSON.parse(marked, (_key, value: unknown) =>
    typeof value === 'string' && value.startsWith(mark) && /^-?\d+$/.test(value.slice(1))
      ? BigInt(value.slice(1))
      : value,
  );
}

interface EntryLayout {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  begin: number;
  end: number;
}

/** Validates one header entry against the data buffer length; returns its layout. */
function parseEntry(name: string, info: unknown, dataLength: number): EntryLayout {
  const where = `tensor ${showValue(name)}`;
  if (!isPlainObject(info)) {
    throw new SafetensorsError(
      `${where}: entry must be an object {dtype, shape, data_offsets}, got ${kindOf(info)}`,
    );
  }
  for (const field of ['dtype', 'shape', 'data_offsets']) {
    if (!Object.hasOwn(info, field))
      throw new SafetensorsError(`${where}: entry is missing the field "${field}"`);
  }
  const { dtype, shape, data_offsets: offsets } = info;
  if (typeof dtype !== 'string')
    throw new SafetensorsError(`${where}: dtype must be a string, got ${kindOf(dtype)}`);
  if (!isDtype(dtype)) {
    throw new SafetensorsError(
      `${where}: unsupported dtype ${showValue(dtype)} (expected one of ${Object.keys(SAFETENSORS_DTYPE_BYTES).join(', ')})`,
    );
  }
  if (!Array.isArray(shape))
    throw new SafetensorsError(`${where}: shape must be an array, got ${kindOf(shape)}`);
  let count = 1;
  for (let k = 0; k < shape.length; k++) {
    const d: unknown = shape[k];
    if (typeof d === 'bigint' && d > 0n) {
      throw new SafetensorsError(
        `${where}: shape dimension ${k} is ${d}, above ${Number.MAX_SAFE_INTEGER} (shape ${showValue(shape)})`,
      );
    }
    if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0) {
      throw new SafetensorsError(
        `${where}: shape dimension ${k} must be an integer >= 0, got ${showValue(d)} (shape ${showValue(shape)})`,
      );
    }
    count *= d;
    // Anything past the buffer size fails the span check below; stop before losing precision.
    if (count > Number.MAX_SAFE_INTEGER) {
      throw new SafetensorsError(`${where}: shape ${showValue(shape)} has too many elements`);
    }
  }
  if (!Array.isArray(offsets) || offsets.length !== 2) {
    throw new SafetensorsError(
      `${where}: data_offsets must be an array [begin, end], got ${showValue(offsets)}`,
    );
  }
  const [begin, end] = offsets as unknown[];
  for (const v of [begin, end]) {
    // Integers beyond 2^53 arrive as BigInts (see withExactIntegers): refused below as past
    // the end, with their exact digits.
    const isInteger = typeof v === 'bigint' || (typeof v === 'number' && Number.isSafeInteger(v));
    if (!isInteger || (v as number | bigint) < 0) {
      throw new SafetensorsError(
        `${where}: data_offsets must be integers >= 0, got ${showValue(offsets)}`,
      );
    }
  }
  // Exact comparisons: either offset may be a BigInt.
  const [bigBegin, bigEnd] = [BigInt(begin as number | bigint), BigInt(end as number | bigint)];
  if (bigEnd < bigBegin)
    throw new SafetensorsError(
      `${where}: data_offsets ${showValue(offsets)} are reversed (end < begin)`,
    );
  if (bigEnd > BigInt(dataLength)) {
    throw new SafetensorsError(
      `${where}: data_offsets ${showValue(offsets)} run past the end of the data buffer (${dataLength} bytes)`,
    );
  }
  const b = Number(bigBegin);
  const e = Number(bigEnd);
  // count * bytes per element may pass 2^53: computed exactly so the message is exact too.
  const bytes = BigInt(count) * BigInt(SAFETENSORS_DTYPE_BYTES[dtype]);
  if (bytes !== BigInt(e - b)) {
    throw new SafetensorsError(
      `${where}: shape ${showValue(shape)} of ${dtype} needs ${bytes} bytes but data_offsets ${showValue(offsets)} span ${e - b}`,
    );
  }
  return { name, dtype, shape: shape as number[], begin: b, end: e };
}

/** Checks that the entries tile [0, dataLength) exactly; returns them sorted by offset. */
function checkTiling(entries: EntryLayout[], dataLength: number): EntryLayout[] {
  const sorted = [...entries].sort((x, y) => x.begin - y.begin || x.end - y.end);
  let covered = 0;
  let previous: EntryLayout | null = null;
  for (const entry of sorted) {
    if (entry.begin > covered) {
      throw new SafetensorsError(
        `data buffer: bytes [${covered}, ${entry.begin}) belong to no tensor (gap before tensor ${showValue(entry.name)})`,
      );
    }
    if (entry.begin < covered && previous != null) {
      throw new SafetensorsError(
        `tensor ${showValue(entry.name)} (data_offsets [${entry.begin}, ${entry.end}]) overlaps tensor ` +
          `${showValue(previous.name)} (data_offsets [${previous.begin}, ${previous.end}])`,
      );
    }
    covered = entry.end;
    previous = entry;
  }
  if (covered !== dataLength) {
    throw new SafetensorsError(
      `data buffer: ${dataLength - covered} trailing bytes after the last tensor belong to no tensor ` +
        `(buffer is ${dataLength} bytes, tensors cover ${covered})`,
    );
  }
  return sorted;
}

/**
 * Bytes of `length` at `start` of `u8` as an ArrayBuffer region whose offset is a multiple of
 * `elementBytes`, in host byte order: a view when possible, else a copy (unaligned offsets, or a
 * big-endian host that needs the bytes swapped).
 */
function alignedRegion(
  u8: Uint8Array,
  start: number,
  length: number,
  elementBytes: number,
): { buffer: ArrayBufferLike; byteOffset: number } {
  const absolute = u8.byteOffset + start;
  if (HOST_IS_LITTLE_ENDIAN && absolute % elementBytes === 0)
    return { buffer: u8.buffer, byteOffset: absolute };
  // Not u8.slice(): on a Node Buffer, slice() is a view, not a copy.
  const copy = new Uint8Array(length);
  copy.set(u8.subarray(start, start + length));
  if (!HOST_IS_LITTLE_ENDIAN) swapBytesInPlace(copy, elementBytes);
  return { buffer: copy.buffer, byteOffset: 0 };
}

function decodeData(u8: Uint8Array, start: number, layout: EntryLayout): SafetensorsData {
  const size = SAFETENSORS_DTYPE_BYTES[layout.dtype];
  const length = layout.end - layout.begin;
  const count = length / size;
  const { buffer, byteOffset } = alignedRegion(u8, start, length, size);
  switch (layout.dtype) {
    case 'F64':
      return new Float64Array(buffer, byteOffset, count);
    case 'F32':
      return new Float32Array(buffer, byteOffset, count);
    case 'F16':
      return float16ArrayToFloat32(new Uint16Array(buffer, byteOffset, count));
    case 'BF16':
      return bfloat16ArrayToFloat32(new Uint16Array(buffer, byteOffset, count));
    case 'I64':
      return new BigInt64Array(buffer, byteOffset, count);
    case 'I32':
      return new Int32Array(buffer, byteOffset, count);
    case 'I16':
      return new Int16Array(buffer, byteOffset, count);
    case 'I8':
      return new Int8Array(buffer, byteOffset, count);
    case 'U8':
    case 'BOOL':
      return new Uint8Array(buffer, byteOffset, count);
  }
}

function parseMetadata(value: unknown): Record<string, string> {
  if (value == null) return {};
  if (!isPlainObject(value)) {
    throw new SafetensorsError(
      `header: __metadata__ must be an object of strings, got ${kindOf(value)}`,
    );
  }
  for (const [key, v] of Object.entries(value)) {
    if (typeof v !== 'string') {
      throw new SafetensorsError(
        `header: __metadata__ value of ${showValue(key)} must be a string, got ${kindOf(v)}`,
      );
    }
  }
  // A fresh object from JSON.parse: safe to hand out (keys like "__proto__" are own properties).
  return value as Record<string, string>;
}

/**
 * Parses safetensors bytes. Every malformed input (truncated file, oversized or invalid header,
 * bad entry, unknown dtype, shape/offset mismatch, gap, overlap, duplicate name, non-string
 * metadata) throws a {@link SafetensorsError} naming the tensor and what was expected; nothing
 * is allocated beyond the file's size (F16/BF16 decode to float32, twice their bytes).
 *
 * Tensor data is a view into `bytes` when its offset is aligned (zero copy; do not overwrite
 * `bytes` while the entries are in use) and a copy otherwise.
 *
 * @param bytes the whole file.
 * @param options.maxHeaderBytes largest JSON header accepted (default 100,000,000 bytes).
 */
export function readSafetensors(
  bytes: ArrayBuffer | Uint8Array,
  options: { maxHeaderBytes?: number; maxHeaderStrings?: number } = {},
): SafetensorsFile {
  let u8: Uint8Array;
  // Tags rather than instanceof, so buffers from another realm (iframe, worker, vm) work too.
  const tag = Object.prototype.toString.call(bytes);
  if (ArrayBuffer.isView(bytes))
    u8 = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  else if (tag === '[object ArrayBuffer]' || tag === '[object SharedArrayBuffer]')
    u8 = new Uint8Array(bytes);
  else
    throw new SafetensorsError(
      `readSafetensors: bytes must be an ArrayBuffer or a Uint8Array, got ${kindOf(bytes)}`,
    );
  const maxHeaderBytes = options.maxHeaderBytes ?? DEFAULT_MAX_HEADER_BYTES;
  if (!Number.isSafeInteger(maxHeaderBytes) || maxHeaderBytes <= 0) {
    throw new SafetensorsError(
      `readSafetensors: maxHeaderBytes must be a positive integer, got ${showValue(maxHeaderBytes)}`,
    );
  }
  if (u8.length < 8) {
    throw new SafetensorsError(
      `file is ${u8.length} bytes, shorter than the 8-byte header length field`,
    );
  }
  // A u64: read exactly (a length near 2^64 is reported with its digits, not rounded).
  const rawHeaderLength = new DataView(u8.buffer, u8.byteOffset, 8).getBigUint64(0, true);
  if (rawHeaderLength > BigInt(maxHeaderBytes)) {
    throw new SafetensorsError(
      `header length ${rawHeaderLength} exceeds maxHeaderBytes (${maxHeaderBytes})`,
    );
  }
  if (rawHeaderLength > BigInt(u8.length - 8)) {
    throw new SafetensorsError(
      `header length ${rawHeaderLength} runs past the end of the file (${u8.length} bytes, ${u8.length - 8} after the length field)`,
    );
  }
  const headerLength = Number(rawHeaderLength);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(
      u8.subarray(8, 8 + headerLength),
    );
  } catch {
    throw new SafetensorsError(`header (${headerLength} bytes) is not valid UTF-8`);
  }
  // Bound the work before parsing: a 100 MB header of millions of metadata keys would otherwise
  // cost tens of seconds and gigabytes in JSON.parse and the duplicate-key check.
  const maxStrings = options.maxHeaderStrings ?? DEFAULT_MAX_HEADER_STRINGS;
  let quotes = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x5c /* \ */) i++;
    else if (c === 0x22 /* " */ && ++quotes > 2 * maxStrings) {
      throw new SafetensorsError(
        `header has more than ${maxStrings} strings (names, keys, metadata); raise maxHeaderStrings to read it`,
      );
    }
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (e) {
    throw new SafetensorsError(`header is not valid JSON: ${(e as Error).message}`);
  }
  header = withExactIntegers(text, header);
  if (!isPlainObject(header))
    throw new SafetensorsError(`header must be a JSON object, got ${kindOf(header)}`);
  assertNoDuplicateKeys(text);

  const dataStart = 8 + headerLength;
  const dataLength = u8.length - dataStart;
  const metadata = parseMetadata(header[METADATA_KEY]);
  const layouts: EntryLayout[] = [];
  for (const [name, info] of Object.entries(header)) {
    if (name !== METADATA_KEY) layouts.push(parseEntry(name, info, dataLength));
  }
  const tensors = new Map<string, SafetensorsEntry>();
  for (const layout of checkTiling(layouts, dataLength)) {
    tensors.set(layout.name, {
      dtype: layout.dtype,
      shape: layout.shape,
      data: decodeData(u8, dataStart + layout.begin, layout),
    });
  }
  return { tensors, metadata };
}

// ---------------------------------------------------------------------------------------------
// Writing

const FLOAT32_FAMILY: ReadonlySet<SafetensorsDtype> = new Set(['F32', 'F16', 'BF16']);

/** Which typed array each dtype's `data` must be. */
function expectedArrayName(dtype: SafetensorsDtype): string {
  switch (dtype) {
    case 'F32':
    case 'F16':
    case 'BF16':
      return 'Float32Array';
    case 'F64':
      return 'Float64Array';
    case 'I64':
      return 'BigInt64Array';
    case 'I32':
      return 'Int32Array';
    case 'I16':
      return 'Int16Array';
    case 'I8':
      return 'Int8Array';
    case 'U8':
    case 'BOOL':
      return 'Uint8Array';
  }
}

function elementCount(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Little-endian bytes of a typed array (a view on little-endian hosts). */
function littleEndianBytes(array: ArrayBufferView & { BYTES_PER_ELEMENT: number }): Uint8Array {
  const bytes = new Uint8Array(array.buffer, array.byteOffset, array.byteLength);
  if (HOST_IS_LITTLE_ENDIAN || array.BYTES_PER_ELEMENT === 1) return bytes;
  const copy = bytes.slice();
  swapBytesInPlace(copy, array.BYTES_PER_ELEMENT);
  return copy;
}

interface PreparedTensor {
  dtype: SafetensorsDtype;
  shape: number[];
  bytes: Uint8Array;
}

function encode(
  name: string,
  dtype: SafetensorsDtype,
  data: SafetensorsData | ArrayLike<number>,
): Uint8Array {
  switch (dtype) {
    case 'F16':
      return littleEndianBytes(float32ArrayToFloat16(data as ArrayLike<number>));
    case 'BF16':
      return littleEndianBytes(float32ArrayToBfloat16(data as ArrayLike<number>));
    case 'F32':
      return littleEndianBytes(
        data instanceof Float32Array ? data : Float32Array.from(data as ArrayLike<number>),
      );
    default:
      if (!ArrayBuffer.isView(data))
        throw new SafetensorsError(`tensor ${showValue(name)}: data is not a typed array`);
      return littleEndianBytes(data as Exclude<SafetensorsData, Float32Array>);
  }
}

function prepareTensor(
  name: string,
  value: tf.Tensor | SafetensorsEntry,
  floatDtype?: 'F32' | 'F16' | 'BF16',
): PreparedTensor {
  const where = `tensor ${showValue(name)}`;
  if (value instanceof tf.Tensor) {
    if (value.isDisposed) throw new SafetensorsError(`${where}: the tf.Tensor is disposed`);
    let dtype: SafetensorsDtype;
    if (value.dtype === 'float32') dtype = floatDtype ?? 'F32';
    else if (value.dtype === 'int32') dtype = 'I32';
    else if (value.dtype === 'bool') dtype = 'BOOL';
    else
      throw new SafetensorsError(
        `${where}: cannot write a tf.Tensor of dtype ${value.dtype} (float32, int32 or bool)`,
      );
    const data = value.dataSync() as Float32Array | Int32Array | Uint8Array;
    return { dtype, shape: [...value.shape], bytes: encode(name, dtype, data) };
  }
  if (!isPlainObject(value)) {
    throw new SafetensorsError(
      `${where}: expected a tf.Tensor or a SafetensorsEntry, got ${kindOf(value)}`,
    );
  }
  const { dtype, shape, data } = value;
  if (!isDtype(dtype))
    throw new SafetensorsError(`${where}: unsupported dtype ${showValue(dtype)}`);
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw new SafetensorsError(
      `${where}: shape must be an array of integers >= 0, got ${showValue(shape)}`,
    );
  }
  const arrayName = expectedArrayName(dtype);
  // The toString tag names the typed array kind even across realms and for subclasses (Buffer).
  const tag = Object.prototype.toString.call(data).slice(8, -1);
  if (tag !== arrayName) {
    throw new SafetensorsError(
      `${where}: ${dtype} data must be a ${arrayName}, got ${ArrayBuffer.isView(data) ? tag : kindOf(data)}`,
    );
  }
  if (data.length !== elementCount(shape)) {
    throw new SafetensorsError(
      `${where}: shape ${showValue(shape)} has ${elementCount(shape)} elements but data has ${data.length}`,
    );
  }
  const target = floatDtype != null && FLOAT32_FAMILY.has(dtype) ? floatDtype : dtype;
  return { dtype: target, shape: [...shape], bytes: encode(name, target, data) };
}

/**
 * Serializes tensors to safetensors bytes: tensors in sorted name order, header padded with
 * spaces so the data starts at a multiple of 8, data little-endian.
 *
 * `tf.Tensor`s are read synchronously (`dataSync`): float32 is written as `options.dtype`
 * (F32 by default; F16 or BF16 round to nearest even, as PyTorch's casts), int32 as I32, bool as
 * BOOL. A {@link SafetensorsEntry} keeps its own dtype, except that F32/F16/BF16 entries take
 * `options.dtype` when it is given.
 *
 * @param tensors name -> tensor or entry (the name `__metadata__` is reserved).
 * @param metadata string -> string pairs stored under `__metadata__` (e.g. `{format: 'pt'}`).
 */
export function writeSafetensors(
  tensors: Record<string, tf.Tensor | SafetensorsEntry> | Map<string, tf.Tensor | SafetensorsEntry>,
  metadata?: Record<string, string>,
  options: { dtype?: 'F32' | 'F16' | 'BF16' } = {},
): Uint8Array {
  if (options.dtype != null && !FLOAT32_FAMILY.has(options.dtype)) {
    throw new SafetensorsError(
      `writeSafetensors: options.dtype must be 'F32', 'F16' or 'BF16', got ${showValue(options.dtype)}`,
    );
  }
  if (tensors == null || typeof tensors !== 'object') {
    throw new SafetensorsError(
      `writeSafetensors: tensors must be a Map or an object, got ${kindOf(tensors)}`,
    );
  }
  const pairs: Array<[string, tf.Tensor | SafetensorsEntry]> =
    tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors);
  pairs.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));

  // The header is assembled as text so that any name (even "__proto__") is written verbatim.
  const parts: string[] = [];
  if (metadata != null) {
    if (!isPlainObject(metadata)) {
      throw new SafetensorsError(
        `writeSafetensors: metadata must be an object of strings, got ${kindOf(metadata)}`,
      );
    }
    const items = Object.entries(metadata).map(([key, v]) => {
      if (typeof v !== 'string') {
        throw new SafetensorsError(
          `writeSafetensors: metadata value of ${showValue(key)} must be a string, got ${kindOf(v)}`,
        );
      }
      return `${JSON.stringify(key)}:${JSON.stringify(v)}`;
    });
    if (items.length > 0) parts.push(`${JSON.stringify(METADATA_KEY)}:{${items.join(',')}}`);
  }
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const [name, value] of pairs) {
    if (typeof name !== 'string')
      throw new SafetensorsError(
        `writeSafetensors: tensor names must be strings, got ${kindOf(name)}`,
      );
    if (name === METADATA_KEY)
      throw new SafetensorsError(
        `writeSafetensors: "${METADATA_KEY}" is reserved, not a tensor name`,
      );
    const prepared = prepareTensor(name, value, options.dtype);
    const end = offset + prepared.bytes.length;
    parts.push(
      `${JSON.stringify(name)}:{"dtype":"${prepared.dtype}","shape":${JSON.stringify(prepared.shape)},"data_offsets":[${offset},${end}]}`,
    );
    chunks.push(prepared.bytes);
    offset = end;
  }
  const headerText = `{${parts.join(',')}}`;
  const encoded = new TextEncoder().encode(headerText);
  const headerLength = Math.ceil(encoded.length / 8) * 8;
  const out = new Uint8Array(8 + headerLength + offset);
  const view = new DataView(out.buffer);
  view.setUint32(0, headerLength % 2 ** 32, true);
  view.setUint32(4, Math.floor(headerLength / 2 ** 32), true);
  out.set(encoded, 8);
  out.fill(0x20, 8 + encoded.length, 8 + headerLength);
  let position = 8 + headerLength;
  for (const chunk of chunks) {
    out.set(chunk, position);
    position += chunk.length;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Conversion to tfjs

const INT32_MIN = -(2 ** 31);
const INT32_MAX = 2 ** 31 - 1;

/**
 * A tf.Tensor holding an entry's values: float32 for F64/F32/F16/BF16 (F64 is rounded), int32
 * for I64/I32/I16/I8/U8 (I64 values must fit int32, else a {@link SafetensorsError} names the
 * value), bool for BOOL. The caller owns (disposes) the tensor.
 *
 * @param name used in error messages only.
 */
export function entryToTensor(entry: SafetensorsEntry, name = 'entry'): tf.Tensor {
  const where = `tensor ${showValue(name)}`;
  if (
    !isPlainObject(entry) ||
    !isDtype(entry.dtype) ||
    !Array.isArray(entry.shape) ||
    !ArrayBuffer.isView(entry.data)
  ) {
    throw new SafetensorsError(
      `${where}: expected a SafetensorsEntry {dtype, shape, data}, got ${kindOf(entry)}`,
    );
  }
  const { dtype, shape, data } = entry;
  if (data.length !== elementCount(shape)) {
    throw new SafetensorsError(
      `${where}: shape ${showValue(shape)} has ${elementCount(shape)} elements but data has ${data.length}`,
    );
  }
  switch (dtype) {
    case 'F32':
    case 'F16':
    case 'BF16':
    case 'F64':
      return tf.tensor(
        data instanceof Float32Array ? data : Float32Array.from(data as Float64Array),
        shape,
        'float32',
      );
    case 'I64': {
      const values = data as BigInt64Array;
      const out = new Int32Array(values.length);
      for (let i = 0; i < values.length; i++) {
        const v = values[i];
        if (v < INT32_MIN || v > INT32_MAX) {
          throw new SafetensorsError(
            `${where}: I64 value ${v} at flat index ${i} does not fit int32 (tfjs has no int64); range is [${INT32_MIN}, ${INT32_MAX}]`,
          );
        }
        out[i] = Number(v);
      }
      return tf.tensor(out, shape, 'int32');
    }
    case 'I32':
      return tf.tensor(data as Int32Array, shape, 'int32');
    case 'I16':
    case 'I8':
    case 'U8':
      return tf.tensor(Int32Array.from(data as Int16Array), shape, 'int32');
    case 'BOOL':
      return tf.tensor(
        Uint8Array.from(data as Uint8Array, (v) => (v !== 0 ? 1 : 0)),
        shape,
        'bool',
      );
  }
}
