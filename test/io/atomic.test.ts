/**
 * Crash-safe writes: the temp-file + fsync + rename protocol, failure leaving the old file, the
 * versioned multi-file commit and its clean-up of superseded versions and stale temp files.
 * (The kill-at-random-moments test lives in crash_save.test.ts.)
 */
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { AtomicWriteError, VitTsError } from '../../src/errors';
import { commitVersioned, isVersionOf, versionedName, writeFileAtomic } from '../../src/io/atomic';

const dirs: string[] = [];
async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'vit-ts-atomic-'));
  dirs.push(d);
  return d;
}
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe('writeFileAtomic', () => {
  it('writes and overwrites, leaving no temporary file', async () => {
    const dir = await tempDir();
    const p = join(dir, 'state.json');
    await writeFileAtomic(p, '{"a":1}');
    expect(await readFile(p, 'utf8')).toBe('{"a":1}');
    await writeFileAtomic(p, new Uint8Array([1, 2, 3]));
    expect([...(await readFile(p))]).toEqual([1, 2, 3]);
    expect(await readdir(dir)).toEqual(['state.json']);
  });

  it('a failed write keeps the previous file and removes its temp file', async () => {
    const dir = await tempDir();
    // The target is a non-empty directory: the final rename fails (EISDIR / ENOTEMPTY).
    const target = join(dir, 'model.json');
    await mkdir(target);
    await writeFile(join(target, 'keep'), 'x');
    const err = await writeFileAtomic(target, 'new').catch((e) => e);
    expect(err).toBeInstanceOf(AtomicWriteError);
    expect(err).toBeInstanceOf(VitTsError);
    expect(err.message).toContain(target);
    expect(await readdir(dir)).toEqual(['model.json']);
    expect(await readFile(join(target, 'keep'), 'utf8')).toBe('x');
    // Missing directory: error names the path, nothing created.
    const missing = join(dir, 'nope', 'a.bin');
    await expect(writeFileAtomic(missing, 'x')).rejects.toThrow(missing);
  });
});

describe('commitVersioned', () => {
  it('names data files by content, writes the manifest last, and removes superseded versions', async () => {
    const dir = await tempDir();
    const manifest = (names: Record<string, string>) =>
      JSON.stringify({ weights: names['weights.bin'] });
    const a = new Uint8Array([1, 2, 3, 4]);
    const first = await commitVersioned(dir, {
      files: { 'weights.bin': a },
      manifestName: 'model.json',
      manifest,
    });
    const nameA = versionedName('weights.bin', a);
    expect(first.names).toEqual({ 'weights.bin': nameA });
    expect(nameA).toMatch(/^weights\.[0-9a-f]{16}\.bin$/);
    expect(first.bytes).toEqual({
      [nameA]: 4,
      'model.json': JSON.stringify({ weights: nameA }).length,
    });
    expect((await readdir(dir)).sort()).toEqual(['model.json', nameA].sort());

    // A legacy unversioned file, an orphan version and stale temp files from a killed writer.
    await writeFile(join(dir, 'weights.bin'), 'legacy');
    await writeFile(join(dir, 'weights.0000000000000000.bin'), 'orphan');
    await writeFile(join(dir, '.model.json.tmp-1-abc'), 'half');
    await writeFile(join(dir, '.weights.1111111111111111.bin.tmp-1-abc'), 'half');
    await writeFile(join(dir, 'notes.txt'), 'user file');

    const b = new Uint8Array([9, 9]);
    const second = await commitVersioned(dir, {
      files: { 'weights.bin': b },
      manifestName: 'model.json',
      manifest,
    });
    const nameB = versionedName('weights.bin', b);
    expect(second.removed.sort()).toEqual(
      [
        nameA,
        'weights.bin',
        'weights.0000000000000000.bin',
        '.model.json.tmp-1-abc',
        '.weights.1111111111111111.bin.tmp-1-abc',
      ].sort(),
    );
    expect((await readdir(dir)).sort()).toEqual(['model.json', nameB, 'notes.txt'].sort());
    expect(JSON.parse(await readFile(join(dir, 'model.json'), 'utf8'))).toEqual({ weights: nameB });

    // Same content again: same name, nothing removed.
    const third = await commitVersioned(dir, {
      files: { 'weights.bin': b },
      manifestName: 'model.json',
      manifest,
    });
    expect(third.names['weights.bin']).toBe(nameB);
    expect(third.removed).toEqual([]);
  });

  it('refuses data file names with separators or equal to the manifest', async () => {
    const dir = await tempDir();
    const manifest = () => '{}';
    await expect(
      commitVersioned(dir, { files: { '../x.bin': 'a' }, manifestName: 'm.json', manifest }),
    ).rejects.toThrow(/plain names other than the manifest, got '..\/x.bin'/);
    await expect(
      commitVersioned(dir, { files: { 'm.json': 'a' }, manifestName: 'm.json', manifest }),
    ).rejects.toThrow(AtomicWriteError);
    expect(await readdir(dir)).toEqual([]);
  });

  it('isVersionOf recognises exactly the logical name and its 16-hex versions', () => {
    expect(isVersionOf('weights.bin', 'weights.bin')).toBe(true);
    expect(isVersionOf('weights.0123456789abcdef.bin', 'weights.bin')).toBe(true);
    expect(isVersionOf('weights.0123456789abcdeg.bin', 'weights.bin')).toBe(false);
    expect(isVersionOf('weights.123.bin', 'weights.bin')).toBe(false);
    expect(isVersionOf('other.0123456789abcdef.bin', 'weights.bin')).toBe(false);
  });
});
