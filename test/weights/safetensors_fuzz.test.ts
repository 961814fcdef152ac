/**
 * Fuzzing of the safetensors reader: thousands of seeded random mutations of valid files must
 * each either parse to tensors lying inside the file or throw a SafetensorsError, never anything
 * else (no RangeError, TypeError, hang or huge allocation). Plus a writer -> reader property test.
 */
import { describe, expect, it } from 'vitest';
import { mulberry32 } from '../../src/random';
import {
  readSafetensors,
  SAFETENSORS_DTYPE_BYTES,
  type SafetensorsDtype,
  type SafetensorsEntry,
  SafetensorsError,
  writeSafetensors,
} from '../../src/weights/safetensors';

/** The library's seeded PRNG (mulberry32), floats in [0, 1). */
const prng = mulberry32;

const DTYPES = Object.keys(SAFETENSORS_DTYPE_BYTES) as SafetensorsDtype[];

function randomEntry(rand: () => number, dtype: SafetensorsDtype): SafetensorsEntry {
  const rank = Math.floor(rand() * 4);
  const shape = Array.from({ length: rank }, () => Math.floor(rand() * 4));
  const n = shape.reduce((a, b) => a * b, 1);
  const ints = Array.from({ length: n }, () => Math.floor(rand() * 256) - 128);
  switch (dtype) {
    case 'F64':
      return { dtype, shape, data: Float64Array.from(ints, (v) => v * rand()) };
    case 'F32':
      return { dtype, shape, data: Float32Array.from(ints, (v) => v * rand()) };
    case 'F16':
    case 'BF16':
      // Values exactly representable in both 16-bit formats, so the round trip is exact.
      return { dtype, shape, data: Float32Array.from(ints, (v) => v / 4) };
    case 'I64':
      return { dtype, shape, data: BigInt64Array.from(ints, (v) => BigInt(v) * 2n ** 40n) };
    case 'I32':
      return { dtype, shape, data: Int32Array.from(ints, (v) => v * 1e6) };
    case 'I16':
      return { dtype, shape, data: Int16Array.from(ints, (v) => v * 200) };
    case 'I8':
      return { dtype, shape, data: Int8Array.from(ints) };
    case 'U8':
      return { dtype, shape, data: Uint8Array.from(ints, (v) => v + 128) };
    case 'BOOL':
      return { dtype, shape, data: Uint8Array.from(ints, (v) => (v > 0 ? 1 : 0)) };
  }
}

function baseFile(rand: () => number): Uint8Array {
  const tensors = new Map<string, SafetensorsEntry>();
  const count = 1 + Math.floor(rand() * 5);
  for (let i = 0; i < count; i++) {
    tensors.set(
      `blocks.${i}.w${Math.floor(rand() * 10)}`,
      randomEntry(rand, DTYPES[Math.floor(rand() * DTYPES.length)]),
    );
  }
  return writeSafetensors(tensors, rand() < 0.5 ? { format: 'pt', note: 'fuzz' } : undefined);
}

const JSON_NOISE = [
  '{',
  '}',
  '[',
  ']',
  '"',
  ':',
  ',',
  '-1',
  '0',
  '1e309',
  '4294967296',
  '2.5',
  'null',
  'true',
  '\\u0000',
  '"F16"',
  '"Q4"',
  ' ',
  '\\',
  'é',
];

function headerLength(bytes: Uint8Array): number {
  const v = new DataView(bytes.buffer, bytes.byteOffset, 8);
  return v.getUint32(4, true) * 2 ** 32 + v.getUint32(0, true);
}

function setHeaderLength(bytes: Uint8Array, n: number): void {
  const v = new DataView(bytes.buffer, bytes.byteOffset, 8);
  v.setUint32(0, n % 2 ** 32, true);
  v.setUint32(4, Math.floor(n / 2 ** 32) % 2 ** 32, true);
}

/** A header-text edit; the length field is fixed up most of the time so the JSON gets parsed. */
function editHeader(file: Uint8Array, rand: () => number): Uint8Array {
  const n = headerLength(file);
  let text = new TextDecoder().decode(file.subarray(8, 8 + n));
  const pos = Math.floor(rand() * (text.length + 1));
  const kind = Math.floor(rand() * 5);
  if (kind === 0)
    text =
      text.slice(0, pos) + JSON_NOISE[Math.floor(rand() * JSON_NOISE.length)] + text.slice(pos);
  else if (kind === 1) text = text.slice(0, pos) + text.slice(pos + 1 + Math.floor(rand() * 8));
  else if (kind === 2) {
    // Change a number somewhere (a shape dim or an offset).
    const numbers = [...text.matchAll(/\d+/g)];
    if (numbers.length > 0) {
      const m = numbers[Math.floor(rand() * numbers.length)];
      const replacement = String(
        [0, 1, 2, 3, 7, 8, 9, 1e9, 2 ** 53, 2 ** 60][Math.floor(rand() * 10)],
      );
      text = text.slice(0, m.index) + replacement + text.slice((m.index ?? 0) + m[0].length);
    }
  } else if (kind === 3) {
    // Swap one dtype for another.
    text = text.replace(
      /"(F64|F32|F16|BF16|I64|I32|I16|I8|U8|BOOL)"/,
      `"${DTYPES[Math.floor(rand() * DTYPES.length)]}"`,
    );
  } else {
    // Duplicate an entry (a duplicate key) or rename one.
    const m = /"[^"]+":\{[^}]*\}/.exec(text);
    if (m)
      text = rand() < 0.5 ? `{${m[0]},${text.slice(1)}` : text.replace(/"blocks\.\d/, '"blocks.0');
  }
  const header = new TextEncoder().encode(text);
  const data = file.subarray(8 + n);
  const out = new Uint8Array(8 + header.length + data.length);
  out.set(header, 8);
  out.set(data, 8 + header.length);
  setHeaderLength(out, rand() < 0.9 ? header.length : header.length + Math.floor(rand() * 16) - 8);
  return out;
}

function mutate(base: Uint8Array, rand: () => number): Uint8Array {
  const kind = Math.floor(rand() * 6);
  if (kind === 0) {
    const out = base.slice();
    const flips = 1 + Math.floor(rand() * 4);
    // Bias the flips towards the header, where the structure is.
    for (let i = 0; i < flips; i++) {
      const limit = rand() < 0.8 ? Math.min(out.length, 8 + headerLength(base)) : out.length;
      out[Math.floor(rand() * limit)] ^= 1 << Math.floor(rand() * 8);
    }
    return out;
  }
  if (kind === 1) return base.slice(0, Math.floor(rand() * base.length));
  if (kind === 2) {
    const out = base.slice();
    const n = headerLength(base);
    const choices = [
      0,
      1,
      7,
      n - 1,
      n + 1,
      n + 8,
      out.length,
      2 ** 31,
      2 ** 32 + n,
      2 ** 52,
      2 ** 63,
      Math.floor(rand() * 2 ** 32),
    ];
    setHeaderLength(out, choices[Math.floor(rand() * choices.length)]);
    return out;
  }
  if (kind === 3) {
    // Insert or remove bytes at a random place (shifts the data against its offsets).
    const pos = Math.floor(rand() * base.length);
    if (rand() < 0.5)
      return Uint8Array.from([
        ...base.subarray(0, pos),
        ...base.subarray(pos + 1 + Math.floor(rand() * 4)),
      ]);
    return Uint8Array.from([
      ...base.subarray(0, pos),
      Math.floor(rand() * 256),
      ...base.subarray(pos),
    ]);
  }
  return editHeader(base, rand);
}

/** For a successful parse: every tensor's bytes lie in the data buffer and add up to it. */
function checkParsed(bytes: Uint8Array, file: ReturnType<typeof readSafetensors>): void {
  const dataLength = bytes.length - 8 - headerLength(bytes);
  let total = 0;
  for (const [name, entry] of file.tensors) {
    const count = entry.shape.reduce((a, b) => a * b, 1);
    if (entry.data.length !== count)
      throw new Error(`${name}: data length ${entry.data.length} != ${count}`);
    total += count * SAFETENSORS_DTYPE_BYTES[entry.dtype];
  }
  if (total !== dataLength)
    throw new Error(`tensors cover ${total} bytes, data buffer is ${dataLength}`);
  for (const v of Object.values(file.metadata))
    if (typeof v !== 'string') throw new Error('non-string metadata');
}

describe('safetensors reader fuzzing', () => {
  it('every mutated file parses within bounds or throws SafetensorsError', () => {
    const rand = prng(20240611);
    const cases = 6000;
    const outcome = { parsed: 0, rejected: 0 };
    const messages = new Set<string>();
    for (let c = 0; c < cases; c++) {
      const base = baseFile(rand);
      const bytes = mutate(base, rand);
      let file: ReturnType<typeof readSafetensors> | null = null;
      try {
        file = readSafetensors(bytes);
      } catch (e) {
        if (!(e instanceof SafetensorsError)) {
          throw new Error(
            `case ${c}: ${(e as Error).name}: ${(e as Error).message} (not a SafetensorsError)`,
          );
        }
        outcome.rejected++;
        messages.add((e as Error).message.replace(/"[^"]*"|\d+/g, '#').slice(0, 40));
      }
      if (file != null) {
        checkParsed(bytes, file);
        outcome.parsed++;
      }
    }
    // The mutations must reach both outcomes and many distinct checks.
    expect(outcome.parsed).toBeGreaterThan(100);
    expect(outcome.rejected).toBeGreaterThan(cases / 2);
    expect(messages.size).toBeGreaterThan(15);
  });

  it('every random file written is read back identically', () => {
    const rand = prng(99);
    for (let c = 0; c < 500; c++) {
      const tensors = new Map<string, SafetensorsEntry>();
      const count = Math.floor(rand() * 6);
      for (let i = 0; i < count; i++) {
        const name = String.fromCodePoint(
          ...Array.from(
            { length: 1 + Math.floor(rand() * 6) },
            () => 32 + Math.floor(rand() * 400),
          ),
        );
        tensors.set(name, randomEntry(rand, DTYPES[Math.floor(rand() * DTYPES.length)]));
      }
      const metadata = rand() < 0.5 ? { k: String(rand()), 'ü"\\': '\n' } : undefined;
      const back = readSafetensors(writeSafetensors(tensors, metadata));
      expect(back.metadata).toEqual(metadata ?? {});
      expect(new Set(back.tensors.keys())).toEqual(new Set(tensors.keys()));
      for (const [name, entry] of tensors) {
        const got = back.tensors.get(name) as SafetensorsEntry;
        expect(got.dtype).toBe(entry.dtype);
        expect(got.shape).toEqual(entry.shape);
        expect(Array.from(got.data as ArrayLike<number>)).toEqual(
          Array.from(entry.data as ArrayLike<number>),
        );
      }
    }
  });
});

describe('header size bounds', () => {
  it('a header with more strings than maxHeaderStrings is refused before parsing', () => {
    const meta: Record<string, string> = {};
    for (let i = 0; i < 300; i++) meta[`k${i}`] = 'v';
    const file = writeSafetensors(new Map(), meta);
    expect(() => readSafetensors(file, { maxHeaderStrings: 100 })).toThrow(
      /header has more than 100 strings .*raise maxHeaderStrings/,
    );
    expect(readSafetensors(file, { maxHeaderStrings: 1000 }).metadata).toEqual(meta);
  });

  it('the default bound refuses a header of 1.2 million metadata keys', () => {
    const parts: string[] = [];
    for (let i = 0; i < 600_000; i++) parts.push(`"${i}":"x"`);
    const header = new TextEncoder().encode(`{"__metadata__":{${parts.join(',')}}}`);
    const file = new Uint8Array(8 + header.length);
    new DataView(file.buffer).setUint32(0, header.length, true);
    file.set(header, 8);
    expect(() => readSafetensors(file)).toThrow(/header has more than 1000000 strings/);
  });
});
