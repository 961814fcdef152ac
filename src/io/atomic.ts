/**
 * Crash-safe file writes (Node only).
 *
 * A plain `writeFile` truncates the target first: a process killed mid-write leaves a broken
 * file and the previous good one is gone. Here every file is written under a temporary name in
 * the target's own directory (a rename is atomic only within one file system), flushed to disk
 * with fsync, renamed over the target, and the directory itself is fsynced so the rename is
 * durable. Readers see the complete old file or the complete new one, never a mix.
 *
 * Several files that must change together (a model's `model.json` and its weights) use
 * {@link commitVersioned}: the data files get new, content-addressed names that no existing
 * manifest refers to, and the manifest that names them is renamed into place LAST. Until that
 * rename the old manifest and the old data files are untouched; after it, the new manifest and
 * the new, already durable, data files are complete. Superseded data files are deleted only
 * after the new manifest is durable. One writer per directory is assumed.
 */
import { createHash, randomBytes } from 'node:crypto';
import { open, readdir, rename, unlink } from 'node:fs/promises';
import { basename, dirname, extname, join } from 'node:path';
import { AtomicWriteError } from '../errors';

/** Prefix of temporary files: `.<target name>.tmp-<pid>-<random>`. */
const TMP_INFIX = '.tmp-';

function tmpNameFor(target: string): string {
  return join(
    dirname(target),
    `.${basename(target)}${TMP_INFIX}${process.pid}-${randomBytes(6).toString('hex')}`,
  );
}

/** True for temporary files left by an interrupted write of `name` (see {@link writeFileAtomic}). */
export function isTempFileOf(fileName: string, name: string): boolean {
  return fileName.startsWith(`.${name}${TMP_INFIX}`);
}

/**
 * fsyncs a directory so that renames and unlinks in it survive a power loss. Platforms that
 * cannot open a directory for sync (Windows) are skipped: there the rename itself is the
 * commit point.
 */
export async function fsyncDir(dir: string): Promise<void> {
  let handle: Awaited<ReturnType<typeof open>> | undefined;
  try {
    handle = await open(dir, 'r');
    await handle.sync();
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (process.platform === 'win32' || code === 'EISDIR' || code === 'EINVAL') return;
    throw e;
  } finally {
    await handle?.close();
  }
}

async function writeAndSync(path: string, data: Uint8Array | string): Promise<void> {
  const handle = await open(path, 'wx');
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Writes `data` to `path` so that at every instant `path` holds either its previous complete
 * content or the new complete content: temp file in the same directory, fsync, rename, fsync of
 * the directory. On failure the temp file is removed, the previous file is untouched and an
 * {@link AtomicWriteError} naming the path is thrown. The directory must exist.
 */
export async function writeFileAtomic(path: string, data: Uint8Array | string): Promise<void> {
  const tmp = tmpNameFor(path);
  try {
    await writeAndSync(tmp, data);
    await rename(tmp, path);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw new AtomicWriteError(`cannot write ${path}: ${(e as Error).message}`);
  }
  await fsyncDir(dirname(path));
}

/**
 * The versioned name of a logical file name: `weights.bin` -> `weights.<tag>.bin`, where `tag`
 * is 16 hex digits of the SHA-256 of the content (identical content, identical name).
 */
export function versionedName(logicalName: string, data: Uint8Array | string): string {
  const tag = createHash('sha256').update(data).digest('hex').slice(0, 16);
  const ext = extname(logicalName);
  const stem = logicalName.slice(0, logicalName.length - ext.length);
  return `${stem}.${tag}${ext}`;
}

/**
 * True when `fileName` is `logicalName` itself or a versioned name of it
 * (`weights.bin`, `weights.0123456789abcdef.bin`).
 */
export function isVersionOf(fileName: string, logicalName: string): boolean {
  if (fileName === logicalName) return true;
  const ext = extname(logicalName);
  const stem = logicalName.slice(0, logicalName.length - ext.length);
  if (!fileName.startsWith(`${stem}.`) || !fileName.endsWith(ext)) return false;
  const tag = fileName.slice(stem.length + 1, fileName.length - ext.length);
  return /^[0-9a-f]{16}$/.test(tag);
}

/** What {@link commitVersioned} writes. */
export interface VersionedCommit {
  /** Data files by logical name (`'weights.bin'`), written under versioned names. */
  files: Record<string, Uint8Array | string>;
  /** File name of the manifest (`'model.json'`), written last under its own fixed name. */
  manifestName: string;
  /**
   * Builds the manifest from the versioned names (logical name -> file name in the directory):
   * it must refer to the data files by those names.
   */
  manifest: (names: Record<string, string>) => Uint8Array | string;
}

/** Outcome of {@link commitVersioned}. */
export interface VersionedCommitResult {
  /** Logical name -> versioned file name now referenced by the manifest. */
  names: Record<string, string>;
  /** Superseded versions and stale temporary files that were deleted. */
  removed: string[];
  /** Bytes written per file name (manifest included). */
  bytes: Record<string, number>;
}

function byteLength(data: Uint8Array | string): number {
  return typeof data === 'string' ? Buffer.byteLength(data) : data.byteLength;
}

/**
 * Crash-safe commit of several files that belong together, into an existing directory:
 * 1. each data file is written crash-safely under a versioned, content-addressed name;
 * 2. the manifest naming them is written crash-safely (renamed into place last: the commit);
 * 3. older versions of the same logical files and stale temporary files are deleted.
 * Killed at any moment, the directory's manifest names either the old complete set or the new
 * complete set. Used by `saveModel` and reusable for training checkpoints.
 */
export async function commitVersioned(
  dir: string,
  commit: VersionedCommit,
): Promise<VersionedCommitResult> {
  const names: Record<string, string> = {};
  const bytes: Record<string, number> = {};
  for (const [logical, data] of Object.entries(commit.files)) {
    if (logical.includes('/') || logical.includes('\\') || logical === commit.manifestName) {
      throw new AtomicWriteError(
        `commitVersioned: file names must be plain names other than the manifest, got '${logical}'`,
      );
    }
    const name = versionedName(logical, data);
    await writeFileAtomic(join(dir, name), data);
    names[logical] = name;
    bytes[name] = byteLength(data);
  }
  const manifest = commit.manifest({ ...names });
  await writeFileAtomic(join(dir, commit.manifestName), manifest);
  bytes[commit.manifestName] = byteLength(manifest);

  // The new set is durable: old versions can go. A crash here only leaves orphans, which the
  // next commit removes.
  const keep = new Set([...Object.values(names), commit.manifestName]);
  const logicalNames = [...Object.keys(commit.files), commit.manifestName];
  const removed: string[] = [];
  for (const entry of await readdir(dir)) {
    if (keep.has(entry)) continue;
    const stale = logicalNames.some(
      (l) => isTempFileOf(entry, l) || (l !== commit.manifestName && isVersionOf(entry, l)),
    );
    if (!stale) continue;
    await unlink(join(dir, entry)).then(
      () => removed.push(entry),
      () => undefined,
    );
  }
  // Temp files of versioned names (`.weights.<tag>.bin.tmp-...`) from a killed writer.
  for (const entry of await readdir(dir)) {
    if (!entry.startsWith('.') || !entry.includes(TMP_INFIX)) continue;
    const target = entry.slice(1, entry.indexOf(TMP_INFIX));
    if (!keep.has(target) && Object.keys(commit.files).some((l) => isVersionOf(target, l))) {
      await unlink(join(dir, entry)).then(
        () => removed.push(entry),
        () => undefined,
      );
    }
  }
  if (removed.length > 0) await fsyncDir(dir);
  return { names, removed, bytes };
}
