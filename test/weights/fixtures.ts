/**
 * Access to the PyTorch parity fixtures written by scripts/fixtures/make_parity.py: the
 * committed ones in test/fixtures/parity, or a live set in $VIT_TS_PARITY_DIR
 * (`npm run test:parity`).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { createHybridViT, createResNet18, createViT } from '../../src/index';
import type { HybridViTConfig } from '../../src/models/hybrid';
import {
  readSafetensors,
  type SafetensorsEntry,
  type SafetensorsFile,
} from '../../src/weights/safetensors';

export const COMMITTED_PARITY_DIR = fileURLToPath(new URL('../fixtures/parity', import.meta.url));
/** Fixture directory: $VIT_TS_PARITY_DIR when set, else the committed fixtures. */
export const PARITY_DIR = process.env.VIT_TS_PARITY_DIR
  ? resolve(process.env.VIT_TS_PARITY_DIR)
  : COMMITTED_PARITY_DIR;
/** True when running on a live (regenerated) fixture set. */
export const LIVE = PARITY_DIR !== COMMITTED_PARITY_DIR;

export type Format = 'timm' | 'torchvision' | 'hf' | 'cifar';

/** One manifest.json entry. */
export interface FixtureEntry {
  name: string;
  family: 'vit' | 'resnet';
  from: Format;
  /** A ViT config, a hybrid config (with `backbone`) or a ResNet's `numClasses` and `stem`. */
  config: HybridViTConfig;
  io: string;
  weights?: string;
  sourceGrid?: [number, number];
  backends: string[];
  torch: { kind: string; args: Record<string, unknown> };
}

export function readManifest(dir = PARITY_DIR): {
  seed: number;
  live: boolean;
  fixtures: FixtureEntry[];
} {
  return JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
}

export function fixture(name: string, dir = PARITY_DIR): FixtureEntry {
  const e = readManifest(dir).fixtures.find((f) => f.name === name);
  if (!e) throw new Error(`fixture ${name} not in ${dir}/manifest.json`);
  return e;
}

export function readFixtureFile(file: string, dir = PARITY_DIR): SafetensorsFile {
  const buf = readFileSync(join(dir, file));
  return readSafetensors(new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength));
}

export function fixtureBytes(file: string, dir = PARITY_DIR): Uint8Array {
  const buf = readFileSync(join(dir, file));
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}

/** The checkpoint of a fixture: its weights file, or the procedural weights described in its io metadata. */
export function fixtureWeights(e: FixtureEntry, dir = PARITY_DIR): SafetensorsFile {
  const id = `${dir}/${e.name}`;
  const cached = weightsCache.get(id);
  if (cached) return cached;
  let file: SafetensorsFile;
  if (e.weights && existsSync(join(dir, e.weights))) {
    file = readFixtureFile(e.weights, dir);
  } else {
    const spec = readFixtureFile(e.io, dir).metadata.procedural;
    if (!spec)
      throw new Error(`fixture ${e.name} has neither a weights file nor procedural weights`);
    file = proceduralWeights(JSON.parse(spec));
  }
  weightsCache.set(id, file);
  return file;
}

/** Parsed checkpoints by fixture (read-only), shared by the cpu and wasm suites of a file. */
const weightsCache = new Map<string, SafetensorsFile>();

interface ProceduralSpec {
  name: string;
  shape: number[];
  seed: number;
  offset: number;
  scale: number;
}

/**
 * Regenerates make_parity.py's hash weights bit for bit: u = (lowbias32(i * 0x9E3779B1 +
 * seed * 0x85EBCA77) >>> 8) * 2^-23 - 1, value = float32(offset + scale * u). BatchNorm layers
 * get an int64 `num_batches_tracked`, as in a real state dict.
 */
export function proceduralWeights(spec: ProceduralSpec[]): SafetensorsFile {
  const tensors = new Map<string, SafetensorsEntry>();
  for (const s of spec) {
    const n = s.shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    const seedTerm = Math.imul(s.seed, 0x85ebca77);
    for (let i = 0; i < n; i++) {
      let x = (Math.imul(i, 0x9e3779b1) + seedTerm) >>> 0;
      x ^= x >>> 16;
      x = Math.imul(x, 0x7feb352d) >>> 0;
      x ^= x >>> 15;
      x = Math.imul(x, 0x846ca68b) >>> 0;
      x ^= x >>> 16;
      const u = (x >>> 8) * 2 ** -23 - 1;
      data[i] = s.offset + s.scale * u;
    }
    tensors.set(s.name, { dtype: 'F32', shape: s.shape, data });
    if (s.name.endsWith('.running_mean')) {
      tensors.set(s.name.replace(/running_mean$/, 'num_batches_tracked'), {
        dtype: 'I64',
        shape: [],
        data: new BigInt64Array([7n]),
      });
    }
  }
  return { tensors, metadata: { format: 'pt' } };
}

/** A fresh vit-ts model of a fixture's architecture (image size from the fixture input for ResNets). */
export function buildFixtureModel(e: FixtureEntry, inputShape: number[]): LayersModel {
  if (e.family === 'vit') {
    return e.config.backbone != null ? createHybridViT(e.config) : createViT(e.config);
  }
  return createResNet18({
    numClasses: e.config.numClasses,
    stem: e.config.stem,
    imgSize: [inputShape[1], inputShape[2]],
  });
}
