// A fault-injecting file system for tests: it runs on real files but remembers what was made
// durable (file contents at their last fdatasync, directory listings at their last fsync). After
// crash() every call fails, as in a dead process; powerLoss() then puts every file and directory
// back to its durable state, dropping whatever was written but never synced.

import fs from 'node:fs';
import path from 'node:path';
import { nodeFileSystem, type SyncFileSystem } from '../../src/storage/file-system.js';

export class FaultyFileSystem implements SyncFileSystem {
  private readonly fdPaths = new Map<number, string>();
  /** Content of each file as of its last sync (or as first seen: it was there at "boot"). */
  private readonly durableContent = new Map<string, Buffer>();
  /** Names in each directory as of its last sync (or as first seen). */
  private readonly durableNames = new Map<string, Set<string>>();
  private crashed = false;
  syncCount = 0;

  crash(): void {
    this.crashed = true;
  }

  private live(): void {
    if (this.crashed) throw new Error('injected crash: the process is gone');
  }

  /** First sight of a directory: whatever is in it now was there at "boot", so it is durable. */
  private noteDirectory(directory: string): void {
    if (this.durableNames.has(directory)) return;
    const names = fs.existsSync(directory) ? fs.readdirSync(directory) : [];
    this.durableNames.set(directory, new Set(names));
    for (const name of names) {
      const filePath = path.join(directory, name);
      if (fs.statSync(filePath).isFile()) this.durableContent.set(filePath, fs.readFileSync(filePath));
    }
  }

  private noteFile(filePath: string): void {
    this.noteDirectory(path.dirname(filePath));
  }

  openReadWrite(filePath: string): number {
    this.live();
    this.noteFile(filePath);
    const fd = nodeFileSystem.openReadWrite(filePath);
    this.fdPaths.set(fd, filePath);
    return fd;
  }

  openReadOnly(filePath: string): number {
    this.live();
    this.noteFile(filePath);
    const fd = nodeFileSystem.openReadOnly(filePath);
    this.fdPaths.set(fd, filePath);
    return fd;
  }

  close(fd: number): void {
    this.live();
    this.fdPaths.delete(fd);
    nodeFileSystem.close(fd);
  }

  writeAll(fd: number, buffers: readonly Uint8Array[], position: number): void {
    this.live();
    nodeFileSystem.writeAll(fd, buffers, position);
  }

  read(fd: number, buffer: Uint8Array, offset: number, length: number, position: number): number {
    this.live();
    return nodeFileSystem.read(fd, buffer, offset, length, position);
  }

  sizeBytes(fd: number): number {
    this.live();
    return nodeFileSystem.sizeBytes(fd);
  }

  truncate(fd: number, lengthBytes: number): void {
    this.live();
    nodeFileSystem.truncate(fd, lengthBytes);
  }

  syncData(fd: number): void {
    this.live();
    const filePath = this.fdPaths.get(fd)!;
    this.durableContent.set(filePath, fs.readFileSync(filePath));
    this.syncCount++;
  }

  syncDirectory(directoryPath: string): void {
    this.live();
    this.durableNames.set(directoryPath, new Set(fs.readdirSync(directoryPath)));
  }

  unlink(filePath: string): void {
    this.live();
    this.noteFile(filePath);
    nodeFileSystem.unlink(filePath);
  }

  makeDirectory(directoryPath: string): void {
    this.live();
    this.noteDirectory(path.dirname(directoryPath));
    nodeFileSystem.makeDirectory(directoryPath);
  }

  removeDirectory(directoryPath: string): void {
    this.live();
    for (const name of nodeFileSystem.listDirectory(directoryPath))
      this.noteFile(path.join(directoryPath, name));
    nodeFileSystem.removeDirectory(directoryPath);
  }

  listDirectory(directoryPath: string): string[] {
    this.live();
    this.noteDirectory(directoryPath);
    return nodeFileSystem.listDirectory(directoryPath);
  }

  /** Puts every directory and file this layer touched back to its durable state. */
  powerLoss(): { droppedFiles: number; restoredFiles: number } {
    let droppedFiles = 0;
    let restoredFiles = 0;
    for (const [directory, names] of this.durableNames) {
      fs.mkdirSync(directory, { recursive: true });
      for (const name of fs.readdirSync(directory)) {
        if (names.has(name)) continue;
        fs.rmSync(path.join(directory, name), { recursive: true, force: true });
        droppedFiles++;
      }
      for (const name of names) {
        const filePath = path.join(directory, name);
        const content = this.durableContent.get(filePath);
        if (content === undefined) {
          // Created, named durably, never synced: its data is gone.
          if (!fs.existsSync(filePath) || fs.statSync(filePath).isFile())
            fs.writeFileSync(filePath, new Uint8Array(0));
          continue;
        }
        fs.writeFileSync(filePath, content);
        restoredFiles++;
      }
    }
    return { droppedFiles, restoredFiles };
  }
}
