/**
 * Reading the files of a saved model without trusting it (Node only): paths stay inside the
 * model directory (no absolute paths, no `..`, no symlink leading out: checked on the real
 * path), only regular files are opened (no device files, FIFOs or directories, which could be
 * endless or block), and every size is checked before a byte is read.
 */
import { constants } from 'node:fs';
import { lstat, open, realpath } from 'node:fs/promises';
import { isAbsolute, join, relative, win32 } from 'node:path';
import { ModelFileError } from '../errors';

/**
 * Resolves `relPath` (as written in a manifest) inside `dir` and returns its real path. Throws a
 * {@link ModelFileError} naming the path when it is absolute, climbs with `..`, contains NUL,
 * does not exist, or resolves (through symlinks) outside the real path of `dir`.
 */
export async function resolveInside(owner: string, dir: string, relPath: unknown): Promise<string> {
  if (typeof relPath !== 'string' || relPath.length === 0 || relPath.includes('\0')) {
    throw new ModelFileError(
      `${owner}: a manifest path must be a non-empty relative file name, got ${JSON.stringify(relPath)}`,
    );
  }
  if (isAbsolute(relPath) || win32.isAbsolute(relPath) || /^[a-zA-Z]:/.test(relPath)) {
    throw new ModelFileError(
      `${owner}: manifest path '${relPath}' is absolute; paths must stay inside ${dir}`,
    );
  }
  if (relPath.split(/[\\/]/).includes('..')) {
    throw new ModelFileError(
      `${owner}: manifest path '${relPath}' climbs out with '..'; paths must stay inside ${dir}`,
    );
  }
  const realDir = await realpath(dir).catch((e: NodeJS.ErrnoException) => {
    throw new ModelFileError(
      `${owner}: cannot read ${join(dir, relPath)}: the model directory ${dir} ${e.code === 'ENOENT' ? 'does not exist' : `cannot be opened (${e.code ?? e.message})`}`,
    );
  });
  const real = await realpath(join(realDir, relPath)).catch((e: NodeJS.ErrnoException) => {
    throw new ModelFileError(
      `${owner}: ${join(dir, relPath)} cannot be read: ${e.code === 'ENOENT' ? 'no such file' : (e.code ?? e.message)}`,
    );
  });
  const rel = relative(realDir, real);
  if (rel === '' || rel.startsWith('..') || isAbsolute(rel)) {
    throw new ModelFileError(
      `${owner}: manifest path '${relPath}' resolves to ${real}, outside the model directory ${realDir} (symlink)`,
    );
  }
  return real;
}

/**
 * Size of a regular file, without opening it. Throws a {@link ModelFileError} for anything else
 * (directory, FIFO, socket, device).
 */
export async function regularFileSize(owner: string, path: string): Promise<number> {
  const st = await lstat(path).catch((e: NodeJS.ErrnoException) => {
    throw new ModelFileError(`${owner}: cannot stat ${path}: ${e.code ?? e.message}`);
  });
  if (!st.isFile()) {
    throw new ModelFileError(
      `${owner}: ${path} is not a regular file (${st.isDirectory() ? 'a directory' : st.isFIFO() ? 'a FIFO' : st.isCharacterDevice() || st.isBlockDevice() ? 'a device' : 'a special file'})`,
    );
  }
  return st.size;
}

/** Options of {@link readRegularFile}. */
export interface ReadRegularFileOptions {
  /** Refuse files larger than this many bytes. */
  maxBytes: number;
  /** Refuse files whose size differs (e.g. from a manifest's byte count). */
  expectedBytes?: number;
}

/**
 * Reads a regular file whose size is checked first: the file is opened non-blocking (a FIFO
 * swapped in cannot block), re-checked with fstat, and exactly its size is read.
 */
export async function readRegularFile(
  owner: string,
  path: string,
  options: ReadRegularFileOptions,
): Promise<Uint8Array> {
  await regularFileSize(owner, path);
  const handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK).catch(
    (e: NodeJS.ErrnoException) => {
      throw new ModelFileError(`${owner}: cannot open ${path}: ${e.code ?? e.message}`);
    },
  );
  try {
    const st = await handle.stat();
    if (!st.isFile()) throw new ModelFileError(`${owner}: ${path} is not a regular file`);
    const size = st.size;
    if (options.expectedBytes !== undefined && size !== options.expectedBytes) {
      throw new ModelFileError(
        `${owner}: ${path} has ${size} bytes, the manifest expects ${options.expectedBytes}`,
      );
    }
    if (size > options.maxBytes) {
      throw new ModelFileError(
        `${owner}: ${path} has ${size} bytes, above the limit of ${options.maxBytes}`,
      );
    }
    const out = new Uint8Array(size);
    let offset = 0;
    while (offset < size) {
      const { bytesRead } = await handle.read(out, offset, size - offset, offset);
      if (bytesRead === 0) break;
      offset += bytesRead;
    }
    if (offset !== size) {
      throw new ModelFileError(
        `${owner}: ${path} shrank while reading: ${offset} of ${size} bytes`,
      );
    }
    return out;
  } finally {
    await handle.close();
  }
}
