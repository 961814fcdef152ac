/**
 * Node file helpers for safetensors (exported from `vit-ts/node`, never from the browser root).
 */
import { readFile, writeFile } from 'node:fs/promises';
import type * as tf from '@tensorflow/tfjs-core';
import { ConfigError } from '../errors';
import {
  readSafetensors,
  type SafetensorsEntry,
  type SafetensorsFile,
  writeSafetensors,
} from './safetensors';

/**
 * Reads and parses a `.safetensors` file (see {@link readSafetensors}; malformed files throw a
 * `SafetensorsError`).
 */
export async function readSafetensorsFile(
  path: string,
  options: { maxHeaderBytes?: number } = {},
): Promise<SafetensorsFile> {
  if (typeof path !== 'string' || path.length === 0) {
    throw new ConfigError(
      `readSafetensorsFile: path must be a non-empty string, got ${String(path)}`,
    );
  }
  const buffer = await readFile(path);
  return readSafetensors(
    new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength),
    options,
  );
}

/**
 * Writes tensors (and optional string metadata) to a `.safetensors` file (see
 * {@link writeSafetensors}). Returns the number of bytes written.
 */
export async function writeSafetensorsFile(
  path: string,
  tensors: Record<string, tf.Tensor | SafetensorsEntry> | Map<string, tf.Tensor | SafetensorsEntry>,
  metadata?: Record<string, string>,
  options: { dtype?: 'F32' | 'F16' | 'BF16' } = {},
): Promise<number> {
  if (typeof path !== 'string' || path.length === 0) {
    throw new ConfigError(
      `writeSafetensorsFile: path must be a non-empty string, got ${String(path)}`,
    );
  }
  const bytes = writeSafetensors(tensors, metadata, options);
  await writeFile(path, bytes);
  return bytes.byteLength;
}
