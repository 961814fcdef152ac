import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runInNewContext } from 'node:vm';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  bfloat16BitsToFloat32,
  float16BitsToFloat32,
  float32ArrayToBfloat16,
  float32ArrayToFloat16,
  float32ToBfloat16Bits,
  float32ToFloat16Bits,
} from '../../src/weights/dtype';
import {
  entryToTensor,
  readSafetensors,
  type SafetensorsData,
  type SafetensorsEntry,
  SafetensorsError,
  writeSafetensors,
} from '../../src/weights/safetensors';
import { readSafetensorsFile, writeSafetensorsFile } from '../../src/weights/safetensors_node';
import { describeBackends } from '../helpers/backends';

const FIXTURE = new URL('../fixtures/weights/safetensors_ref.safetensors', import.meta.url);

/** Builds a safetensors file from raw header text (or an object) and data bytes. */
function makeFile(
  header: string | object,
  data: Uint8Array | number = 0,
  headerLength?: number | bigint,
): Uint8Array {
  const text = typeof header === 'string' ? header : JSON.stringify(header);
  const h = new TextEncoder().encode(text);
  const bytes = typeof data === 'number' ? new Uint8Array(data) : data;
  const out = new Uint8Array(8 + h.length + bytes.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLength ?? h.length), true);
  out.set(h, 8);
  out.set(bytes, 8 + h.length);
  return out;
}

function f32Entry(begin: number, end: number, shape = [(end - begin) / 4]) {
  return { dtype: 'F32', shape, data_offsets: [begin, end] };
}

function headerLengthOf(bytes: Uint8Array): number {
  return Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
}

function headerOf(bytes: Uint8Array): string {
  return new TextDecoder().decode(bytes.subarray(8, 8 + headerLengthOf(bytes)));
}

function expectError(
  bytes: Uint8Array | ArrayBuffer,
  pattern: RegExp,
  options?: { maxHeaderBytes?: number },
): void {
  let caught: unknown;
  try {
    readSafetensors(bytes, options);
  } catch (e) {
    caught = e;
  }
  expect(caught, `expected a SafetensorsError matching ${pattern}`).toBeInstanceOf(
    SafetensorsError,
  );
  expect((caught as Error).message).toMatch(pattern);
}

/** Values of a non-I64 entry's data as numbers. */
function nums(data: SafetensorsData | undefined): number[] {
  return Array.from((data ?? []) as ArrayLike<number>);
}

function u16(values: number[]): number[] {
  return values.map((v) => v & 0xffff);
}

describe('float16 / bfloat16 bit conversions (hand-computed bits)', () => {
  it('encodes float16 with round to nearest even', () => {
    const cases: Array<[number, number]> = [
      [1.0, 0x3c00],
      [-2.5, 0xc100],
      [65504, 0x7bff], // largest finite half
      [65519, 0x7bff], // below the halfway point to 65536: stays finite
      [65520, 0x7c00], // halfway: ties to even = infinity
      [0.1, 0x2e66],
      [1 / 3, 0x3555],
      [1 + 2 ** -11, 0x3c00], // tie, even mantissa stays
      [1 + 3 * 2 ** -11, 0x3c02], // tie, odd mantissa rounds up
      [2 ** -14, 0x0400], // smallest normal
      [2 ** -24, 0x0001], // smallest subnormal
      [3 * 2 ** -25, 0x0002], // subnormal tie 1.5 units -> 2
      [2 ** -25, 0x0000], // half a unit: ties to even = 0
      [2 ** -25 * 1.0001, 0x0001],
      [2 ** -14 - 2 ** -25, 0x0400], // rounds up from the largest subnormal into the normals
      [0, 0x0000],
      [-0, 0x8000],
      [Number.POSITIVE_INFINITY, 0x7c00],
      [Number.NEGATIVE_INFINITY, 0xfc00],
      [1e-45, 0x0000],
      [Number.NaN, 0x7e00],
    ];
    for (const [value, bits] of cases)
      expect(float32ToFloat16Bits(value), `f16(${value})`).toBe(bits);
  });

  it('decodes float16 bits', () => {
    expect(float16BitsToFloat32(0x3c00)).toBe(1);
    expect(float16BitsToFloat32(0xc100)).toBe(-2.5);
    expect(float16BitsToFloat32(0x7bff)).toBe(65504);
    expect(float16BitsToFloat32(0x0001)).toBe(2 ** -24);
    expect(float16BitsToFloat32(0x03ff)).toBe(1023 * 2 ** -24);
    expect(float16BitsToFloat32(0x7c00)).toBe(Number.POSITIVE_INFINITY);
    expect(float16BitsToFloat32(0xfc00)).toBe(Number.NEGATIVE_INFINITY);
    expect(Object.is(float16BitsToFloat32(0x8000), -0)).toBe(true);
    expect(float16BitsToFloat32(0x7e00)).toBeNaN();
  });

  it('encodes bfloat16 with round to nearest even', () => {
    const cases: Array<[number, number]> = [
      [1.0, 0x3f80],
      [-2.5, 0xc020],
      [65504, 0x4780], // 0x477fe000: rounds up
      [0.1, 0x3dcd], // 0x3dcccccd: rounds up
      [1 + 2 ** -8, 0x3f80], // tie, even stays
      [1 + 3 * 2 ** -8, 0x3f82], // tie, odd rounds up
      [3.4028234663852886e38, 0x7f80], // float32 max rounds to infinity
      [Number.POSITIVE_INFINITY, 0x7f80],
      [Number.NEGATIVE_INFINITY, 0xff80],
      [-0, 0x8000],
      [1e-45, 0x0000],
      [Number.NaN, 0x7fc0],
    ];
    for (const [value, bits] of cases)
      expect(float32ToBfloat16Bits(value), `bf16(${value})`).toBe(bits);
    expect(bfloat16BitsToFloat32(0xc020)).toBe(-2.5);
    expect(bfloat16BitsToFloat32(0x3f82)).toBe(1 + 2 ** -6);
  });

  it('every float16 value survives decode -> encode', () => {
    for (let b = 0; b < 65536; b++) {
      const v = float16BitsToFloat32(b);
      if (Number.isNaN(v)) continue;
      expect(float32ToFloat16Bits(v)).toBe(b);
    }
  });
});

describe('PyTorch fixture (scripts/fixtures/safetensors_ref.py)', () => {
  const file = readSafetensors(readFileSync(FIXTURE));
  const get = (name: string): SafetensorsEntry => {
    const e = file.tensors.get(name);
    if (e == null) throw new Error(`fixture lacks ${name}`);
    return e;
  };

  it('has the metadata and the dtypes torch wrote', () => {
    expect(file.metadata).toEqual({
      format: 'pt',
      producer: 'scripts/fixtures/safetensors_ref.py',
    });
    expect(get('f16.cast').dtype).toBe('F16');
    expect(get('bf16.cast').dtype).toBe('BF16');
    expect(get('i64').dtype).toBe('I64');
    expect(get('f32.cube').shape).toEqual([2, 3, 4]);
    expect(get('scalar').shape).toEqual([]);
    expect(Array.from(get('scalar').data as Float32Array)).toEqual([3.5]);
    expect(get('empty').shape).toEqual([0, 3]);
    expect(get('empty').data.length).toBe(0);
  });

  it('decodes torch float16 and bfloat16 to the values torch gives in float32', () => {
    for (const kind of ['f16', 'bf16']) {
      const cast = get(`${kind}.cast`).data as Float32Array;
      const asF32 = get(`${kind}.as_f32`).data as Float32Array;
      expect(cast.length).toBe(asF32.length);
      for (let i = 0; i < cast.length; i++)
        expect(Object.is(cast[i], asF32[i]), `${kind}[${i}]`).toBe(true);
    }
  });

  it('encodes float32 to the float16 / bfloat16 bits torch produces', () => {
    const src = get('f32.src').data as Float32Array;
    const f16Torch = u16(Array.from(get('f16.bits').data as Int16Array));
    expect(Array.from(float32ArrayToFloat16(src))).toEqual(f16Torch);
    const bf16Torch = u16(Array.from(get('bf16.bits').data as Int16Array));
    const bf16Ours = Array.from(float32ArrayToBfloat16(src));
    for (let i = 0; i < src.length; i++) {
      // torch's vectorized cast writes NaN as 0xffff, its scalar cast 0x7fc0: any NaN is fine.
      if (Number.isNaN(src[i])) expect(Number.isNaN(bfloat16BitsToFloat32(bf16Ours[i]))).toBe(true);
      else expect(bf16Ours[i], `bf16 of ${src[i]}`).toBe(bf16Torch[i]);
    }
  });

  it('reads integer, bool and float64 tensors at unaligned offsets', () => {
    expect(nums(get('a.bool').data)).toEqual([1, 0, 1]);
    expect(Array.from(get('i64').data as BigInt64Array)).toEqual([
      -2147483648n,
      -1n,
      0n,
      1n,
      123456789n,
      2147483647n,
    ]);
    expect(nums(get('i32').data)).toEqual([-7, 0, 2 ** 31 - 1]);
    expect(nums(get('i16').data)).toEqual([-32768, 5, 32767]);
    expect(nums(get('i8').data)).toEqual([-128, 3, 127]);
    expect(nums(get('u8').data)).toEqual([0, 200, 255]);
    expect(get('f64').data).toBeInstanceOf(Float64Array);
  });

  it('writes the fixture tensors back identically (F16/BF16 keep their dtype)', () => {
    const back = readSafetensors(writeSafetensors(file.tensors, file.metadata));
    expect([...back.tensors.keys()].sort()).toEqual([...file.tensors.keys()].sort());
    for (const [name, entry] of file.tensors) {
      const other = back.tensors.get(name) as SafetensorsEntry;
      expect(other.dtype, name).toBe(entry.dtype);
      expect(other.shape, name).toEqual(entry.shape);
      const a = Array.from(entry.data as ArrayLike<number>);
      const b = Array.from(other.data as ArrayLike<number>);
      expect(b.length).toBe(a.length);
      for (let i = 0; i < a.length; i++) expect(Object.is(a[i], b[i]), `${name}[${i}]`).toBe(true);
    }
  });
});

describe('writeSafetensors format', () => {
  it('pads the header to a multiple of 8 with spaces and sorts names', () => {
    const bytes = writeSafetensors(
      {
        zeta: { dtype: 'I32', shape: [2], data: new Int32Array([1, 2]) },
        alpha: { dtype: 'U8', shape: [3], data: new Uint8Array([9, 8, 7]) },
      },
      { format: 'pt' },
    );
    const n = headerLengthOf(bytes);
    expect(n % 8).toBe(0);
    const text = headerOf(bytes);
    expect(text.trimEnd().endsWith('}')).toBe(true);
    expect(/^ *$/.test(text.slice(text.trimEnd().length))).toBe(true);
    const header = JSON.parse(text);
    expect(header.alpha.data_offsets).toEqual([0, 3]);
    expect(header.zeta.data_offsets).toEqual([3, 11]);
    expect(header.__metadata__).toEqual({ format: 'pt' });
    expect(bytes.length).toBe(8 + n + 11);
    expect(Array.from(bytes.subarray(8 + n))).toEqual([9, 8, 7, 1, 0, 0, 0, 2, 0, 0, 0]);
  });

  it('writes names verbatim, including unicode and "__proto__"', () => {
    const names = ['__proto__', 'blocks.0.attn.qkv.weight', 'é😀', ''];
    const t = new Map(
      names.map((n, i) => [
        n,
        { dtype: 'F32', shape: [1], data: new Float32Array([i]) } as SafetensorsEntry,
      ]),
    );
    const back = readSafetensors(writeSafetensors(t, { __proto__x: 'a', ü: 'ß' }));
    expect(new Set(back.tensors.keys())).toEqual(new Set(names));
    for (const [i, n] of names.entries()) expect(nums(back.tensors.get(n)?.data)).toEqual([i]);
    expect(back.metadata).toEqual({ __proto__x: 'a', ü: 'ß' });
  });

  it('converts F32 / F16 / BF16 entries with options.dtype', () => {
    const entry: SafetensorsEntry = {
      dtype: 'F32',
      shape: [3],
      data: new Float32Array([1, 0.1, 65520]),
    };
    const f16 = readSafetensors(
      writeSafetensors({ w: entry }, undefined, { dtype: 'F16' }),
    ).tensors.get('w');
    expect(f16?.dtype).toBe('F16');
    expect(nums(f16?.data)).toEqual([1, float16BitsToFloat32(0x2e66), Number.POSITIVE_INFINITY]);
    const bf16 = readSafetensors(
      writeSafetensors({ w: entry }, undefined, { dtype: 'BF16' }),
    ).tensors.get('w');
    expect(bf16?.dtype).toBe('BF16');
    expect(nums(bf16?.data)).toEqual([1, bfloat16BitsToFloat32(0x3dcd), 65536]);
    // Integer entries are not touched by options.dtype.
    const ints = readSafetensors(
      writeSafetensors(
        { i: { dtype: 'I64', shape: [1], data: new BigInt64Array([5n]) } },
        undefined,
        { dtype: 'F16' },
      ),
    );
    expect(ints.tensors.get('i')?.dtype).toBe('I64');
  });

  it('rejects bad input with a SafetensorsError naming the tensor', () => {
    const bad: Array<[() => unknown, RegExp]> = [
      [
        () =>
          writeSafetensors({
            w: {
              dtype: 'F32',
              shape: [2],
              data: new Float64Array(2),
            } as unknown as SafetensorsEntry,
          }),
        /"w": F32 data must be a Float32Array, got Float64Array/,
      ],
      [
        () => writeSafetensors({ w: { dtype: 'F32', shape: [3], data: new Float32Array(2) } }),
        /"w": shape \[3\] has 3 elements but data has 2/,
      ],
      [
        () =>
          writeSafetensors({
            w: { dtype: 'Q4', shape: [1], data: new Uint8Array(1) } as unknown as SafetensorsEntry,
          }),
        /"w": unsupported dtype "Q4"/,
      ],
      [
        () => writeSafetensors({ w: { dtype: 'U8', shape: [-1], data: new Uint8Array(1) } }),
        /"w": shape must be an array of integers >= 0/,
      ],
      [
        () =>
          writeSafetensors({ __metadata__: { dtype: 'U8', shape: [1], data: new Uint8Array(1) } }),
        /reserved/,
      ],
      [
        () => writeSafetensors({}, { k: 1 as unknown as string }),
        /metadata value of "k" must be a string/,
      ],
      [() => writeSafetensors({}, undefined, { dtype: 'F64' as 'F32' }), /options.dtype must be/],
      [
        () => writeSafetensors({ w: 3 as unknown as SafetensorsEntry }),
        /"w": expected a tf.Tensor or a SafetensorsEntry/,
      ],
    ];
    for (const [fn, pattern] of bad) {
      expect(fn).toThrow(SafetensorsError);
      expect(fn).toThrow(pattern);
    }
  });
});

describe('readSafetensors rejects malformed files', () => {
  const valid = () => makeFile({ a: f32Entry(0, 8) }, 8);

  it('accepts a minimal valid file, an ArrayBuffer and a Uint8Array at an odd offset', () => {
    expect(readSafetensors(valid()).tensors.get('a')?.shape).toEqual([2]);
    const v = valid();
    expect(readSafetensors(v.slice().buffer).tensors.size).toBe(1);
    const shifted = new Uint8Array(v.length + 1);
    shifted.set(v, 1);
    expect(readSafetensors(shifted.subarray(1)).tensors.get('a')?.data.length).toBe(2);
    expect(readSafetensors(makeFile('{}')).tensors.size).toBe(0);
    // An ArrayBuffer from another realm (instanceof ArrayBuffer is false there).
    const foreign = runInNewContext('new ArrayBuffer(16)') as ArrayBuffer;
    expect(foreign instanceof ArrayBuffer).toBe(false);
    new Uint8Array(foreign).set(makeFile('{}      '));
    expect(readSafetensors(foreign).tensors.size).toBe(0);
    expect(readSafetensors(makeFile('  {"__metadata__": null}   ')).metadata).toEqual({});
    // Unknown extra fields in an entry are ignored, as the reference implementation does.
    expect(readSafetensors(makeFile({ a: { ...f32Entry(0, 4), extra: 1 } }, 4)).tensors.size).toBe(
      1,
    );
  });

  it('file shorter than 8 bytes', () => {
    expectError(new Uint8Array(0), /file is 0 bytes, shorter than the 8-byte header length field/);
    expectError(new Uint8Array(7), /file is 7 bytes/);
  });

  it('header length past the end or over the maximum', () => {
    expectError(
      makeFile('{}', 0, 3),
      /header length 3 runs past the end of the file \(10 bytes, 2 after/,
    );
    expectError(
      makeFile('{}', 0, 2n ** 40n),
      /header length 1099511627776 exceeds maxHeaderBytes \(100000000\)/,
    );
    expectError(makeFile('{}', 0, 2n ** 64n - 1n), /exceeds maxHeaderBytes/);
    expectError(valid(), /exceeds maxHeaderBytes \(16\)/, { maxHeaderBytes: 16 });
    expect(() => readSafetensors(valid(), { maxHeaderBytes: -1 })).toThrow(
      /maxHeaderBytes must be a positive integer/,
    );
  });

  it('invalid UTF-8 or JSON, header not an object', () => {
    const badUtf8 = makeFile('{}');
    badUtf8.set([0xff, 0xfe], 8);
    expectError(badUtf8, /header \(2 bytes\) is not valid UTF-8/);
    expectError(makeFile('{"a":'), /header is not valid JSON/);
    expectError(makeFile(''), /header is not valid JSON/);
    expectError(makeFile('[]'), /header must be a JSON object, got an array/);
    expectError(makeFile('null'), /header must be a JSON object, got null/);
    expectError(makeFile('"x"'), /header must be a JSON object, got string "x"/);
    expectError(makeFile('42'), /header must be a JSON object, got number 42/);
  });

  it('entries with missing fields or wrong types', () => {
    expectError(
      makeFile({ a: 5 }),
      /tensor "a": entry must be an object \{dtype, shape, data_offsets\}, got number 5/,
    );
    expectError(makeFile({ a: [] }), /tensor "a": entry must be an object/);
    for (const field of ['dtype', 'shape', 'data_offsets']) {
      const entry: Record<string, unknown> = f32Entry(0, 4);
      delete entry[field];
      expectError(
        makeFile({ a: entry }, 4),
        new RegExp(`tensor "a": entry is missing the field "${field}"`),
      );
    }
    expectError(
      makeFile({ a: { ...f32Entry(0, 4), dtype: 5 } }, 4),
      /tensor "a": dtype must be a string, got number 5/,
    );
    expectError(
      makeFile({ a: { ...f32Entry(0, 4), shape: 'x' } }, 4),
      /tensor "a": shape must be an array, got string "x"/,
    );
    expectError(
      makeFile({ a: { ...f32Entry(0, 4), data_offsets: [0] } }, 4),
      /data_offsets must be an array \[begin, end\], got \[0\]/,
    );
    expectError(
      makeFile({ a: { ...f32Entry(0, 4), data_offsets: ['0', 4] } }, 4),
      /data_offsets must be integers >= 0, got \["0",4\]/,
    );
    expectError(
      makeFile({ a: { ...f32Entry(0, 4), data_offsets: [-4, 0] } }, 4),
      /data_offsets must be integers >= 0/,
    );
    expectError(
      makeFile({ a: { ...f32Entry(0, 4), data_offsets: [0.5, 4] } }, 4),
      /data_offsets must be integers >= 0/,
    );
  });

  it('unknown dtype', () => {
    expectError(
      makeFile({ a: { ...f32Entry(0, 4), dtype: 'F8_E4M3' } }, 4),
      /tensor "a": unsupported dtype "F8_E4M3" \(expected one of F64, F32/,
    );
    expectError(makeFile({ a: { ...f32Entry(0, 4), dtype: 'f32' } }, 4), /unsupported dtype "f32"/);
  });

  it('negative, non-integer or huge shape dimensions', () => {
    for (const d of [-1, 1.5, '2', null, 1e300]) {
      expectError(
        makeFile({ a: { ...f32Entry(0, 4), shape: [1, d] } }, 4),
        /tensor "a": shape dimension 1 must be an integer >= 0/,
      );
    }
    expectError(
      makeFile({ a: { ...f32Entry(0, 4), shape: [2 ** 30, 2 ** 30, 2 ** 30] } }, 4),
      /tensor "a": shape \[.*\] has too many elements/,
    );
    expectError(
      makeFile({ a: { ...f32Entry(0, 4), shape: [1e6, 1e6] } }, 4),
      /needs 4000000000000 bytes but data_offsets \[0,4\] span 4/,
    );
  });

  it('shape times dtype size differs from the byte span', () => {
    expectError(
      makeFile({ a: f32Entry(0, 4, [2]) }, 4),
      /tensor "a": shape \[2\] of F32 needs 8 bytes but data_offsets \[0,4\] span 4/,
    );
    expectError(
      makeFile({ a: { dtype: 'F16', shape: [3], data_offsets: [0, 4] } }, 4),
      /shape \[3\] of F16 needs 6 bytes/,
    );
  });

  it('offsets out of range, reversed, overlapping, with gaps or not covering the buffer', () => {
    expectError(
      makeFile({ a: f32Entry(0, 100) }, 8),
      /tensor "a": data_offsets \[0,100\] run past the end of the data buffer \(8 bytes\)/,
    );
    expectError(
      makeFile({ a: { dtype: 'F32', shape: [0], data_offsets: [8, 0] } }, 8),
      /tensor "a": data_offsets \[8,0\] are reversed/,
    );
    expectError(
      makeFile({ a: f32Entry(0, 8), b: f32Entry(4, 12) }, 12),
      /tensor "b" \(data_offsets \[4, 12\]\) overlaps tensor "a" \(data_offsets \[0, 8\]\)/,
    );
    expectError(makeFile({ a: f32Entry(0, 8), b: f32Entry(0, 8) }, 8), /overlaps tensor/);
    expectError(
      makeFile({ a: f32Entry(0, 4), b: f32Entry(8, 12) }, 12),
      /bytes \[4, 8\) belong to no tensor \(gap before tensor "b"\)/,
    );
    expectError(makeFile({ a: f32Entry(4, 8) }, 8), /bytes \[0, 4\) belong to no tensor/);
    expectError(makeFile({ a: f32Entry(0, 4) }, 8), /4 trailing bytes after the last tensor/);
    expectError(makeFile('{}', 3), /3 trailing bytes/);
    // A zero-size tensor inside another one is an overlap too.
    expectError(
      makeFile({ a: f32Entry(0, 8), b: { dtype: 'F32', shape: [0], data_offsets: [4, 4] } }, 8),
      /tensor "b" .* overlaps tensor "a"/,
    );
    // Zero-size tensors at the boundaries are fine.
    const ok = readSafetensors(
      makeFile({ a: f32Entry(0, 8), e: { dtype: 'I8', shape: [0, 2], data_offsets: [8, 8] } }, 8),
    );
    expect(ok.tensors.get('e')?.shape).toEqual([0, 2]);
  });

  it('integers beyond 2^53 (u64 offsets, lengths, dimensions) are refused with their exact digits', () => {
    // As JS numbers these would print rounded (2^63 as 9223372036854776000).
    const entry = (offsets: string, shape = '[1]') =>
      `{"a":{"dtype":"F32","shape":${shape},"data_offsets":${offsets}}}`;
    expectError(
      makeFile(entry('[0,9223372036854775808]'), 4),
      /^tensor "a": data_offsets \[0,9223372036854775808\] run past the end of the data buffer \(4 bytes\)$/,
    );
    expectError(
      makeFile(entry('[0,9007199254740993]'), 4),
      /data_offsets \[0,9007199254740993\] run past the end/,
    );
    expectError(
      makeFile(entry('[9223372036854775808,4]'), 4),
      /data_offsets \[9223372036854775808,4\] are reversed/,
    );
    expectError(
      makeFile(entry('[-9223372036854775809,4]'), 4),
      /data_offsets must be integers >= 0, got \[-9223372036854775809,4\]$/,
    );
    expectError(
      makeFile(entry('[0,4]', '[18446744073709551616]'), 4),
      /^tensor "a": shape dimension 0 is 18446744073709551616, above 9007199254740991 \(shape \[18446744073709551616\]\)$/,
    );
    expectError(
      makeFile('{}', 0, 2n ** 63n),
      /^header length 9223372036854775808 exceeds maxHeaderBytes \(100000000\)$/,
    );
    expectError(makeFile('{}', 0, 2n ** 64n - 1n), /^header length 18446744073709551615 exceeds/);
    // A string of the file that looks like the internal BigInt mark stays a string.
    expectError(
      makeFile(
        `{"__metadata__":{"k":"\\ud80012"},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,9223372036854775808]}}`,
        4,
      ),
      /^tensor "a": data_offsets \[0,9223372036854775808\] run past the end/,
    );
    const st = readSafetensors(
      makeFile(
        `{"__metadata__":{"k":"\\ud80012"},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"extra":12345678901234567890}}`,
        4,
      ),
    );
    expect(st.metadata['k']).toBe('\ud80012');
    expect(st.tensors.get('a')?.shape).toEqual([1]);
  });

  it('duplicate names, found in the raw JSON', () => {
    const e = JSON.stringify(f32Entry(0, 4));
    expectError(makeFile(`{"a":${e},"a":${e}}`, 4), /header: duplicate tensor name "a"/);
    expectError(makeFile(`{"a":${e},"\\u0061":${e}}`, 4), /duplicate tensor name "a"/);
    expectError(
      makeFile(`{"a":{"dtype":"F32","dtype":"F16","shape":[1],"data_offsets":[0,4]}}`, 4),
      /duplicate key "dtype" inside the entry "a"/,
    );
    expectError(
      makeFile(`{"__metadata__":{"k":"1","k":"2"},"a":${e}}`, 4),
      /duplicate key "k" inside the entry "__metadata__"/,
    );
    // Equal strings in values or arrays are not keys.
    expect(
      readSafetensors(makeFile(`{"__metadata__":{"a":"a","b":"a,\\"a\\":"},"a":${e}}`, 4)).metadata,
    ).toEqual({ a: 'a', b: 'a,"a":' });
  });

  it('metadata that is not an object of strings', () => {
    expectError(
      makeFile({ __metadata__: { k: 1 } }),
      /header: __metadata__ value of "k" must be a string, got number 1/,
    );
    expectError(makeFile({ __metadata__: { k: null } }), /value of "k" must be a string, got null/);
    expectError(
      makeFile({ __metadata__: ['x'] }),
      /header: __metadata__ must be an object of strings, got an array/,
    );
    expectError(makeFile({ __metadata__: 'x' }), /__metadata__ must be an object of strings/);
  });

  it('rejects input that is not bytes', () => {
    expect(() => readSafetensors('abc' as unknown as Uint8Array)).toThrow(
      /bytes must be an ArrayBuffer or a Uint8Array, got string "abc"/,
    );
  });
});

describe('Node file helpers', () => {
  let dir = '';
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vit-ts-st-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writes and reads a file', async () => {
    const path = join(dir, 'w.safetensors');
    const n = await writeSafetensorsFile(
      path,
      { w: { dtype: 'F32', shape: [2, 2], data: new Float32Array([1, 2, 3, 4]) } },
      { format: 'pt' },
    );
    expect((await readFile(path)).length).toBe(n);
    const file = await readSafetensorsFile(path);
    expect(file.metadata).toEqual({ format: 'pt' });
    expect(nums(file.tensors.get('w')?.data)).toEqual([1, 2, 3, 4]);
    await expect(readSafetensorsFile(join(dir, 'missing.safetensors'))).rejects.toThrow(/ENOENT/);
  });
});

describeBackends('safetensors <-> tf.Tensor', () => {
  it('round-trips float32, int32 and bool tensors as F32 / F16 / BF16 / I32 / BOOL', () => {
    const before = tf.memory().numTensors;
    const values = [1, -2.5, 65504, 0.1, 2 ** -24, 1e-30, 3.25, -0];
    const x = tf.tensor(values, [2, 4]);
    const i = tf.tensor([[-5, 0, 7]], [1, 3], 'int32');
    const b = tf.tensor([true, false], [2], 'bool');
    for (const dtype of ['F32', 'F16', 'BF16'] as const) {
      const file = readSafetensors(writeSafetensors({ x, i, b }, undefined, { dtype }));
      const ex = file.tensors.get('x') as SafetensorsEntry;
      expect(ex.dtype).toBe(dtype);
      expect(ex.shape).toEqual([2, 4]);
      const round =
        dtype === 'F32'
          ? (v: number) => Math.fround(v)
          : dtype === 'F16'
            ? (v: number) => float16BitsToFloat32(float32ToFloat16Bits(v))
            : (v: number) => bfloat16BitsToFloat32(float32ToBfloat16Bits(v));
      const xt = entryToTensor(ex, 'x');
      expect(xt.dtype).toBe('float32');
      expect(Array.from(xt.dataSync())).toEqual(values.map(round));
      const it32 = entryToTensor(file.tensors.get('i') as SafetensorsEntry);
      expect(file.tensors.get('i')?.dtype).toBe('I32');
      expect(it32.dtype).toBe('int32');
      expect(Array.from(it32.dataSync())).toEqual([-5, 0, 7]);
      const bt = entryToTensor(file.tensors.get('b') as SafetensorsEntry);
      expect(bt.dtype).toBe('bool');
      expect(Array.from(bt.dataSync())).toEqual([1, 0]);
      tf.dispose([xt, it32, bt]);
    }
    tf.dispose([x, i, b]);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('converts every fixture dtype, and refuses I64 values outside int32', () => {
    const file = readSafetensors(readFileSync(FIXTURE));
    const i64 = entryToTensor(file.tensors.get('i64') as SafetensorsEntry);
    expect(i64.dtype).toBe('int32');
    expect(i64.shape).toEqual([2, 3]);
    expect(Array.from(i64.dataSync())).toEqual([-2147483648, -1, 0, 1, 123456789, 2147483647]);
    const f64 = entryToTensor(file.tensors.get('f64') as SafetensorsEntry);
    expect(f64.dtype).toBe('float32');
    expect(Array.from(f64.dataSync())).toEqual(
      Array.from(file.tensors.get('f64')?.data as Float64Array).map(Math.fround),
    );
    const u8 = entryToTensor(file.tensors.get('u8') as SafetensorsEntry);
    expect(Array.from(u8.dataSync())).toEqual([0, 200, 255]);
    const empty = entryToTensor(file.tensors.get('empty') as SafetensorsEntry);
    expect(empty.shape).toEqual([0, 3]);
    tf.dispose([i64, f64, u8, empty]);
    expect(() => entryToTensor(file.tensors.get('i64.big') as SafetensorsEntry, 'i64.big')).toThrow(
      /tensor "i64.big": I64 value 1099511627776 at flat index 1 does not fit int32/,
    );
  });

  it('refuses tensors it cannot write', () => {
    const s = tf.tensor(['a']);
    expect(() => writeSafetensors({ s })).toThrow(
      /tensor "s": cannot write a tf.Tensor of dtype string/,
    );
    s.dispose();
    expect(() => writeSafetensors({ s })).toThrow(/tensor "s": the tf.Tensor is disposed/);
  });
});
