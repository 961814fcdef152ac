import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

// The snippets in docs/backends.md are the example files run by test/backends/examples.test.ts,
// with the library imported as a consumer imports it.
it.each(['cpu', 'wasm', 'webgl', 'webgpu'])(
  'docs/backends.md shows examples/backends/%s.ts verbatim',
  (name) => {
    const doc = readFileSync(path.join(ROOT, 'docs/backends.md'), 'utf8');
    const example = readFileSync(path.join(ROOT, `examples/backends/${name}.ts`), 'utf8');
    expect(example).toContain("from '../../src/index'");
    expect(doc).toContain(`\`\`\`ts\n${example.replace("'../../src/index'", "'vit-ts'")}\`\`\``);
  },
);
