/**
 * Hostile and broken tfjs model directories (the safetensors suite's counterpart for the tfjs
 * layers format): each case its own test, then seeded fuzzing of model.json and the weights
 * file. Every load either gives the saved model exactly or throws a VitTsError naming the
 * problem; nothing leaks, hangs, or reads outside the directory.
 */
import { execFileSync } from 'node:child_process';
import {
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rm,
  symlink,
  truncate,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ModelFileError, VitTsError } from '../../src/errors';
import { createViT } from '../../src/index';
import { loadModel, saveModel } from '../../src/node';
import { Random } from '../../src/random';
import { useBackend } from '../helpers/backends';

const CONFIG = {
  imgSize: 8,
  patchSize: 4,
  inChans: 1,
  embedDim: 8,
  depth: 1,
  numHeads: 2,
  numClasses: 3,
};
let root: string;
let good: string; // a saved model directory
let goodJson: Record<string, unknown>;
let weightsFile: string;
let weightBytes: Uint8Array;
let reference: number[];
const input = () => tf.tensor4d(new Random(5).fillUniform(2 * 64), [2, 8, 8, 1]);

function predict(m: LayersModel): number[] {
  return tf.tidy(() => Array.from((m.predict(input()) as tf.Tensor).dataSync()));
}

/** A fresh copy of the good model directory, with `edit` applied to model.json. */
async function variant(
  name: string,
  edit?: (json: Record<string, unknown>) => void,
  weights: Uint8Array = weightBytes,
): Promise<string> {
  const dir = join(root, name);
  await mkdir(dir, { recursive: true });
  const json = structuredClone(goodJson);
  edit?.(json);
  await writeFile(join(dir, 'model.json'), JSON.stringify(json));
  await writeFile(join(dir, weightsFile), weights);
  return dir;
}

const manifestOf = (json: Record<string, unknown>) =>
  (
    json['weightsManifest'] as Array<{ paths: string[]; weights: Array<Record<string, unknown>> }>
  )[0];

const vitConfigOf = (json: Record<string, unknown>) =>
  (
    (
      json['modelTopology'] as {
        config: { layers: Array<{ class_name: string; config: Record<string, unknown> }> };
      }
    ).config.layers.find((l) => l.class_name === 'VitTs>VisionTransformer') as {
      config: Record<string, unknown>;
    }
  ).config;

/** Loads and expects a ModelFileError matching `pattern`, with no tensor or variable left behind. */
async function expectRefused(dir: string, pattern: RegExp): Promise<void> {
  const tensors = tf.memory().numTensors;
  const variables = Object.keys(tf.engine().registeredVariables).length;
  const err = await loadModel(dir).then(
    (m) => {
      m.dispose();
      return null;
    },
    (e: Error) => e,
  );
  expect(err, `expected ${pattern} for ${dir}`).toBeInstanceOf(ModelFileError);
  expect(err?.message).toMatch(pattern);
  expect(tf.memory().numTensors).toBe(tensors);
  expect(Object.keys(tf.engine().registeredVariables).length).toBe(variables);
}

beforeAll(async () => {
  await useBackend('cpu');
  root = await mkdtemp(join(tmpdir(), 'vit-ts-hostile-'));
  good = join(root, 'good');
  const m = createViT(CONFIG, {}, { seed: 3 });
  reference = predict(m);
  const saved = await saveModel(m, good);
  m.dispose();
  weightsFile = saved.weightsFile;
  goodJson = JSON.parse(await readFile(join(good, 'model.json'), 'utf8'));
  weightBytes = new Uint8Array(await readFile(join(good, weightsFile)));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('hostile tfjs model directories', () => {
  it('the untouched directory loads exactly', async () => {
    const m = await loadModel(good);
    expect(predict(m)).toEqual(reference);
    m.dispose();
  });

  it('a manifest path climbing out with .. is refused before reading', async () => {
    await writeFile(join(root, 'outside.bin'), weightBytes);
    const dir = await variant('dotdot', (j) => {
      manifestOf(j).paths = ['../outside.bin'];
    });
    await expectRefused(dir, /manifest path '..\/outside.bin' climbs out with '..'/);
  });

  it('an absolute manifest path is refused', async () => {
    const dir = await variant('absolute', (j) => {
      manifestOf(j).paths = [join(root, 'outside.bin')];
    });
    await expectRefused(dir, /is absolute; paths must stay inside/);
  });

  it('a symlink leading out of the directory is refused (realpath check)', async () => {
    const dir = await variant('symlink', (j) => {
      manifestOf(j).paths = ['./link.bin'];
    });
    await symlink(join(root, 'outside.bin'), join(dir, 'link.bin'));
    await expectRefused(
      dir,
      /resolves to .*outside\.bin, outside the model directory .*\(symlink\)/,
    );
  });

  it('a relative path reaching an endless device file is refused without reading it', async () => {
    const dir = await variant('device', (j) => {
      manifestOf(j).paths = ['./zero.bin'];
    });
    await symlink('/dev/zero', join(dir, 'zero.bin'));
    // The symlink leaves the directory; a device inside it is refused as not a regular file.
    await expectRefused(dir, /outside the model directory/);
  });

  it('a FIFO named as the weights file is refused without blocking', async () => {
    const dir = await variant('fifo');
    await rm(join(dir, weightsFile));
    execFileSync('mkfifo', [join(dir, weightsFile)]);
    await expectRefused(dir, /is not a regular file \(a FIFO\)/);
  });

  it('a directory named as the weights file is refused', async () => {
    const dir = await variant('dirweights');
    await rm(join(dir, weightsFile));
    await mkdir(join(dir, weightsFile));
    await expectRefused(dir, /is not a regular file \(a directory\)/);
  });

  it('a truncated weights file names the file, expected and actual bytes', async () => {
    const dir = await variant('truncated');
    await truncate(join(dir, weightsFile), weightBytes.length - 4);
    await expectRefused(
      dir,
      new RegExp(
        `${weightsFile} has ${weightBytes.length - 4} bytes, the manifest in .*model\\.json expects ${weightBytes.length}`,
      ),
    );
  });

  it('trailing bytes after the weights are refused', async () => {
    const longer = new Uint8Array(weightBytes.length + 3);
    longer.set(weightBytes);
    const dir = await variant('trailing', undefined, longer);
    await expectRefused(
      dir,
      new RegExp(`has ${weightBytes.length + 3} bytes, .* expects ${weightBytes.length}`),
    );
  });

  it('a missing weights file is named', async () => {
    const dir = await variant('missing');
    await rm(join(dir, weightsFile));
    await expectRefused(dir, new RegExp(`${weightsFile} cannot be read: no such file`));
  });

  it('model.json edited to depth 1e9 or embed_dim 1e7 is refused by size, before allocating', async () => {
    const deep = await variant('deep', (j) => {
      vitConfigOf(j)['depth'] = 1e9;
    });
    await expectRefused(
      deep,
      /cannot be built: VisionTransformer: the config has .* parameters, above maxParams 3,000,000,000/,
    );
    const wide = await variant('wide', (j) => {
      vitConfigOf(j)['embed_dim'] = 1e7;
      vitConfigOf(j)['num_heads'] = 1;
    });
    await expectRefused(wide, /above maxParams/);
  });

  it('model.json with another architecture than its weights fails cleanly and leaks nothing', async () => {
    const dir = await variant('mismatch', (j) => {
      vitConfigOf(j)['num_classes'] = 5;
    });
    await expectRefused(dir, /the weights of .* do not fit its architecture/);
  });

  it('an unknown or mistyped config field in model.json is refused', async () => {
    const unknown = await variant('unknownfield', (j) => {
      vitConfigOf(j)['num_head'] = 2;
    });
    await expectRefused(unknown, /unknown config field 'numHead'/);
    const bool = await variant('boolfield', (j) => {
      vitConfigOf(j)['qkv_bias'] = 'no';
    });
    await expectRefused(bool, /qkvBias must be true or false/);
  });

  it('inbound nodes naming a missing layer or a cycle are refused (tfjs would loop forever)', async () => {
    const layersOf = (j: Record<string, unknown>) =>
      (j['modelTopology'] as { config: { layers: Array<Record<string, unknown>> } }).config.layers;
    const missing = await variant('missinglayer', (j) => {
      (layersOf(j)[1] as { inbound_nodes: unknown[] }).inbound_nodes = [[['image..', 0, 0, {}]]];
    });
    await expectRefused(missing, /takes input from 'image..', which is not a layer of the model/);
    const cycle = await variant('cycle', (j) => {
      (layersOf(j)[1] as { inbound_nodes: unknown[] }).inbound_nodes = [[['vit', 0, 0, {}]]];
    });
    await expectRefused(cycle, /waits for inbound nodes .* that never exist/);
  });

  it('bad manifest entries are refused: dtype, shape, quantization, duplicates', async () => {
    await expectRefused(
      await variant('dtype', (j) => {
        manifestOf(j).weights[0]['dtype'] = 'string';
      }),
      /has dtype "string"; expected float32, int32 or bool/,
    );
    await expectRefused(
      await variant('shape', (j) => {
        manifestOf(j).weights[0]['shape'] = [-1, 4];
      }),
      /has shape \[-1,4\]; expected up to 8 integers >= 0/,
    );
    await expectRefused(
      await variant('quant', (j) => {
        manifestOf(j).weights[0]['quantization'] = { dtype: 'int4' };
      }),
      /has quantization .*expected dtype uint8, uint16 or float16/,
    );
    await expectRefused(
      await variant('dup', (j) => {
        const w = manifestOf(j).weights;
        w[1]['name'] = w[0]['name'];
      }),
      /lists weight .* twice|expects/,
    );
  });

  it('invalid JSON, non-UTF-8 and a huge model.json are refused', async () => {
    const dir = await variant('badjson');
    await writeFile(join(dir, 'model.json'), '{"modelTopology": ');
    await expectRefused(dir, /model\.json is not valid JSON/);
    await writeFile(join(dir, 'model.json'), new Uint8Array([0xff, 0xfe, 0x7b]));
    await expectRefused(dir, /is not valid JSON/);
    await writeFile(join(dir, 'model.json'), 'null');
    await expectRefused(dir, /lacks a modelTopology object/);
    const err = await loadModel(good, { maxJsonBytes: 100 }).catch((e) => e);
    expect(err.message).toMatch(/model\.json has \d+ bytes, above the limit of 100/);
  });

  it('a manifest listing more values than maxParams is refused before reading weights', async () => {
    const err = await loadModel(good, { maxParams: 100 }).catch((e) => e);
    expect(err).toBeInstanceOf(ModelFileError);
    expect(err.message).toMatch(/lists [\d,]+ weight values, above maxParams 100/);
    await expect(loadModel(good, { maxParam: 1 } as never)).rejects.toThrow(
      /loadModel: unknown option 'maxParam'/,
    );
  });
});

describe('seeded fuzzing of saved tfjs models', () => {
  const JSON_NOISE = [
    '"',
    '{',
    '}',
    '[',
    ']',
    ',',
    ':',
    '-1',
    '1e309',
    '0',
    'null',
    '"x"',
    '..',
    '/',
  ];

  function mutateJson(text: string, rand: Random): string {
    const kind = rand.int(4);
    const pos = rand.int(text.length + 1);
    if (kind === 0)
      return text.slice(0, pos) + JSON_NOISE[rand.int(JSON_NOISE.length)] + text.slice(pos);
    if (kind === 1) return text.slice(0, pos) + text.slice(pos + 1 + rand.int(6));
    // Replace a number by another (often out of range).
    const numbers = [...text.matchAll(/-?\d+(\.\d+)?(e-?\d+)?/g)];
    if (numbers.length === 0) return text;
    const m = numbers[rand.int(numbers.length)] as RegExpMatchArray;
    const repl = ['0', '-3', '1e9', '2', '65536', '0.5', '4294967297'][rand.int(7)] as string;
    return text.slice(0, m.index) + repl + text.slice((m.index as number) + m[0].length);
  }

  it('model.json mutations load exactly or throw a VitTsError, leaking nothing', async () => {
    const rand = new Random(20261125);
    const text = JSON.stringify(goodJson);
    const dir = await variant('fuzzjson');
    const outcomes = { loaded: 0, refused: 0 };
    for (let i = 0; i < 120; i++) {
      await writeFile(join(dir, 'model.json'), mutateJson(text, rand));
      const tensors = tf.memory().numTensors;
      try {
        const m = await loadModel(dir);
        // A mutation that still loads must be a valid model; it may differ (e.g. an edited
        // epsilon), but its output has the saved shape and is finite or the model is the same.
        const out = predict(m);
        expect(out.length).toBeGreaterThan(0);
        m.dispose();
        outcomes.loaded++;
      } catch (e) {
        expect(e, String(e)).toBeInstanceOf(VitTsError);
        outcomes.refused++;
      }
      expect(tf.memory().numTensors).toBe(tensors);
    }
    expect(outcomes.refused).toBeGreaterThan(30);
    // Nothing was written or read outside: the directory holds just the two files.
    expect((await readdir(dir)).sort()).toEqual(['model.json', weightsFile].sort());
  });

  it('weights-file mutations (flips, truncation, extension) load or throw ModelFileError', async () => {
    const rand = new Random(77);
    const dir = await variant('fuzzweights');
    let exact = 0;
    for (let i = 0; i < 60; i++) {
      const kind = rand.int(3);
      let bytes: Uint8Array = weightBytes.slice();
      if (kind === 0) {
        for (let k = 0; k < 1 + rand.int(8); k++) bytes[rand.int(bytes.length)] = rand.int(256);
      } else if (kind === 1) bytes = bytes.slice(0, rand.int(bytes.length));
      else bytes = Uint8Array.from([...bytes, ...new Array(1 + rand.int(16)).fill(0)]);
      await writeFile(join(dir, weightsFile), bytes);
      const tensors = tf.memory().numTensors;
      try {
        const m = await loadModel(dir);
        expect(kind).toBe(0); // only same-size files load; their values are whatever the bytes say
        if (predict(m).every((v, j) => v === reference[j])) exact++;
        m.dispose();
      } catch (e) {
        expect(e).toBeInstanceOf(ModelFileError);
        expect(kind).not.toBe(0);
        expect((e as Error).message).toMatch(/has \d+ bytes, the manifest in .* expects \d+/);
      }
      expect(tf.memory().numTensors).toBe(tensors);
    }
    expect(exact).toBeLessThan(60);
  });
});
