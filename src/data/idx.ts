import { DataError } from '../errors';

/** Element types of the IDX format (third byte of the magic number). */
export type IdxDtype = 'uint8' | 'int8' | 'int16' | 'int32' | 'float32' | 'float64';

const IDX_TYPES: Record<number, { dtype: IdxDtype; bytes: number }> = {
  8: { dtype: 'uint8', bytes: 1 },
  9: { dtype: 'int8', bytes: 1 },
  11: { dtype: 'int16', bytes: 2 },
  12: { dtype: 'int32', bytes: 4 },
  13: { dtype: 'float32', bytes: 4 },
  14: { dtype: 'float64', bytes: 8 },
};

/** A parsed IDX array: its shape and its values in row-major order. */
export interface IdxArray {
  /** Element type from the file's header. */
  dtype: IdxDtype;
  /** Dimensions, outermost first (e.g. `[60000, 28, 28]` for MNIST images). */
  shape: number[];
  /**
   * Values, row-major. `uint8` data is a view on the input bytes (no copy); other types are
   * decoded from big-endian into a new typed array.
   */
  data: Uint8Array | Int8Array | Int16Array | Int32Array | Float32Array | Float64Array;
}

/**
 * Parses an (uncompressed) IDX file, the format of MNIST and Fashion-MNIST: two zero bytes, a
 * type byte, a dimension count, that many big-endian uint32 sizes, then the big-endian values.
 * The header is checked before any value is read, and the byte count must match the header
 * exactly, so a truncated or padded file is rejected with expected vs got bytes.
 *
 * @param bytes the file's contents (already gunzipped).
 * @param source a name for error messages, e.g. the file path.
 * @throws {@link DataError} on a bad magic number, an unknown type, or a wrong size.
 */
export function parseIdx(bytes: Uint8Array, source = 'IDX data'): IdxArray {
  if (!(bytes instanceof Uint8Array)) {
    throw new DataError(`parseIdx: bytes must be a Uint8Array, got ${typeof bytes}`);
  }
  if (bytes.byteLength < 4) {
    throw new DataError(
      `${source}: truncated IDX header: expected at least 4 bytes, got ${bytes.byteLength}`,
    );
  }
  if (bytes[0] !== 0 || bytes[1] !== 0) {
    throw new DataError(
      `${source}: not an IDX file: expected magic bytes 0x00 0x00, got 0x${bytes[0].toString(16)} 0x${bytes[1].toString(16)} (gzipped data must be decompressed first)`,
    );
  }
  const type = IDX_TYPES[bytes[2]];
  if (type == null) {
    throw new DataError(
      `${source}: unknown IDX element type 0x${bytes[2].toString(16)} (expected one of 0x08, 0x09, 0x0b, 0x0c, 0x0d, 0x0e)`,
    );
  }
  const ndims = bytes[3];
  const headerBytes = 4 + 4 * ndims;
  if (bytes.byteLength < headerBytes) {
    throw new DataError(
      `${source}: truncated IDX header: ${ndims} dimensions need ${headerBytes} bytes, got ${bytes.byteLength}`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const shape: number[] = [];
  let count = 1;
  for (let i = 0; i < ndims; i++) {
    const d = view.getUint32(4 + 4 * i, false);
    shape.push(d);
    count *= d;
  }
  const expected = headerBytes + count * type.bytes;
  if (bytes.byteLength !== expected) {
    throw new DataError(
      `${source}: IDX ${type.dtype} array of shape [${shape.join(', ')}] needs ${expected} bytes, got ${bytes.byteLength} (${bytes.byteLength < expected ? 'truncated' : 'trailing bytes'})`,
    );
  }
  return { dtype: type.dtype, shape, data: decodeValues(view, headerBytes, count, type.dtype) };
}

function decodeValues(
  view: DataView,
  offset: number,
  count: number,
  dtype: IdxDtype,
): IdxArray['data'] {
  switch (dtype) {
    case 'uint8':
      return new Uint8Array(view.buffer, view.byteOffset + offset, count);
    case 'int8':
      return new Int8Array(view.buffer, view.byteOffset + offset, count);
    case 'int16': {
      const out = new Int16Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getInt16(offset + 2 * i, false);
      return out;
    }
    case 'int32': {
      const out = new Int32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getInt32(offset + 4 * i, false);
      return out;
    }
    case 'float32': {
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getFloat32(offset + 4 * i, false);
      return out;
    }
    case 'float64': {
      const out = new Float64Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getFloat64(offset + 8 * i, false);
      return out;
    }
  }
}

/**
 * Writes an IDX file's bytes (uncompressed) for `uint8` data, the inverse of {@link parseIdx}
 * for images and labels. Useful to produce test files and to export subsets.
 */
export function encodeIdxUint8(shape: readonly number[], data: Uint8Array): Uint8Array {
  const count = shape.reduce((a, b) => a * b, 1);
  if (data.length !== count) {
    throw new DataError(
      `encodeIdxUint8: shape [${shape.join(', ')}] needs ${count} values, got ${data.length}`,
    );
  }
  const header = 4 + 4 * shape.length;
  const out = new Uint8Array(header + count);
  const view = new DataView(out.buffer);
  out[2] = 0x08;
  out[3] = shape.length;
  shape.forEach((d, i) => {
    view.setUint32(4 + 4 * i, d, false);
  });
  out.set(data, header);
  return out;
}
