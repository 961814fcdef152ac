/**
 * Writes examples/fashion/samples.json: the first two images of every class in the Fashion-MNIST
 * **test** split (Debian's dataset-fashion-mnist), as the original grey bytes. The browser page
 * (examples/browser) shows them as inputs for the Fashion-MNIST ViT; the test split is only ever
 * evaluated by examples/fashion/train.ts, never trained on.
 *
 *   npx tsx examples/fashion/samples.ts            # rewrites examples/fashion/samples.json
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { FASHION_MNIST_CLASSES } from '../../src/index';
import { FASHION_MNIST_DEBIAN_DIR, readIdxFile, writeFileAtomic } from '../../src/node';

const here = dirname(fileURLToPath(import.meta.url));
const PER_CLASS = 2;
const SIZE = 28;

const { values: args } = parseArgs({
  options: {
    dir: { type: 'string', default: FASHION_MNIST_DEBIAN_DIR },
    out: { type: 'string', default: join(here, 'samples.json') },
  },
});

async function main(): Promise<void> {
  // The raw bytes (0..255), not loadFashionMnist's floats: the JSON stays exact and small.
  const images = readIdxFile(join(args.dir, 't10k-images-idx3-ubyte.gz'));
  const labels = readIdxFile(join(args.dir, 't10k-labels-idx1-ubyte.gz'));
  if (images.dtype !== 'uint8' || images.shape.join('x') !== `${labels.shape[0]}x${SIZE}x${SIZE}`)
    throw new Error(
      `expected uint8 images [${labels.shape[0]}, ${SIZE}, ${SIZE}], got ${images.dtype} [${images.shape.join(', ')}]`,
    );
  const pixelsPerImage = SIZE * SIZE;
  const taken = new Array<number>(FASHION_MNIST_CLASSES.length).fill(0);
  const picked: Array<{ label: number; index: number }> = [];
  for (let i = 0; i < labels.data.length && picked.length < PER_CLASS * taken.length; i++) {
    const label = labels.data[i];
    if (taken[label] < PER_CLASS) {
      taken[label]++;
      picked.push({ label, index: i });
    }
  }
  picked.sort((a, b) => a.label - b.label || a.index - b.index);
  const doc = {
    description: `Fashion-MNIST test images (never used in training), the first ${PER_CLASS} of each class in the file's order: 28x28 grey levels 0..255, row-major.`,
    width: SIZE,
    height: SIZE,
    samples: picked.map(({ label, index }) => ({
      label,
      className: FASHION_MNIST_CLASSES[label],
      source: { split: 'test', index },
      pixels: Array.from(
        images.data.subarray(index * pixelsPerImage, (index + 1) * pixelsPerImage),
      ),
    })),
  };
  await writeFileAtomic(args.out, `${JSON.stringify(doc)}\n`);
  console.log(`wrote ${picked.length} samples to ${args.out}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
