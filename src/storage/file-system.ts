// The small synchronous file interface every segment I/O goes through. I/O workers run it on
// node:fs; tests put a fault-injecting layer here (it drops what was never fsynced on "power loss").
// Synchronous on purpose: it only ever runs on a worker thread (or in-process in tests).

import fs from 'node:fs';

export interface SyncFileSystem {
  /** Opens for reading and writing, creating the file when missing. Returns the descriptor. */
  openReadWrite(filePath: string): number;
  openReadOnly(filePath: string): number;
  close(fd: number): void;
  /** Writes every byte of `buffers` at `position` (positioned write, loops on short writes). */
  writeAll(fd: number, buffers: readonly Uint8Array[], position: number): void;
  /** Reads up to `length` bytes at `position` into buffer[offset..]; returns the bytes read. */
  read(fd: number, buffer: Uint8Array, offset: number, length: number, position: number): number;
  sizeBytes(fd: number): number;
  truncate(fd: number, lengthBytes: number): void;
  /** fdatasync: data and the metadata needed to read it (size) are durable when it returns. */
  syncData(fd: number): void;
  /** fsync of a directory: creations and removals of its entries are durable when it returns. */
  syncDirectory(directoryPath: string): void;
  unlink(filePath: string): void;
  makeDirectory(directoryPath: string): void;
  removeDirectory(directoryPath: string): void;
  listDirectory(directoryPath: string): string[];
}

export const nodeFileSystem: SyncFileSystem = {
  openReadWrite: (filePath) => fs.openSync(filePath, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o644),
  openReadOnly: (filePath) => fs.openSync(filePath, fs.constants.O_RDONLY),
  close: (fd) => fs.closeSync(fd),
  writeAll(fd, buffers, position) {
    let at = position;
    let pending = buffers;
    for (;;) {
      let total = 0;
      for (const buffer of pending) total += buffer.length;
      if (total === 0) return;
      const written = fs.writevSync(fd, pending as Uint8Array[], at);
      if (written === total) return;
      at += written;
      pending = dropPrefix(pending, written);
    }
  },
  read: (fd, buffer, offset, length, position) => fs.readSync(fd, buffer, offset, length, position),
  sizeBytes: (fd) => fs.fstatSync(fd).size,
  truncate: (fd, lengthBytes) => fs.ftruncateSync(fd, lengthBytes),
  syncData: (fd) => fs.fdatasyncSync(fd),
  syncDirectory(directoryPath) {
    const fd = fs.openSync(directoryPath, fs.constants.O_RDONLY);
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  },
  unlink(filePath) {
    try {
      fs.unlinkSync(filePath);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
  },
  makeDirectory: (directoryPath) => {
    fs.mkdirSync(directoryPath, { recursive: true });
  },
  removeDirectory: (directoryPath) => fs.rmSync(directoryPath, { recursive: true, force: true }),
  listDirectory(directoryPath) {
    try {
      return fs.readdirSync(directoryPath);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw error;
    }
  },
};

/** The buffers past their first `bytes` bytes (after a partial write). */
export function dropPrefix(buffers: readonly Uint8Array[], bytes: number): Uint8Array[] {
  const rest: Uint8Array[] = [];
  let skip = bytes;
  for (const buffer of buffers) {
    if (skip >= buffer.length) {
      skip -= buffer.length;
      continue;
    }
    rest.push(skip > 0 ? buffer.subarray(skip) : buffer);
    skip = 0;
  }
  return rest;
}
