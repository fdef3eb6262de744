// The free-space floor of a node's data directory. Under it the node refuses produce to disk
// topics with 507 DISK_FULL before any write can hit ENOSPC, its replicas stop taking entries from
// their leaders (they stop acknowledging: Raft stays safe and the others commit), and it hands the
// leadership of its disk partitions to peers. Reads, heartbeats, votes, metadata and group commits
// go on: the floor keeps room for them. Writing resumes by itself once space is back.
//
// Free space is read with statfs every checkIntervalMs. Between readings the guard counts what
// this node itself wrote (callers pass the bytes a write takes on disk: a `sync` write goes to the
// shared WAL and then to its segment, twice its payload), so a burst of large writes cannot
// overshoot the floor in the gap.

import { statfs } from 'node:fs/promises';
import type { Logger } from 'pino';
import { BrokerError } from './errors.js';

export interface DiskGuardOptions {
  dataDir: string;
  /** The floor: free bytes the data directory keeps at least. */
  freeBytesMin: number;
  checkIntervalMs?: number;
  logger: Logger;
  /** Reads the free bytes of `dataDir` (statfs); tests inject one. */
  readFreeBytes?: (dataDir: string) => Promise<number>;
}

/** 256 MiB: lmdb's growth, a checkpoint of every log and the metadata log fit many times over. */
export const DISK_FREE_BYTES_MIN_DEFAULT = 256 * 1024 * 1024;
const CHECK_INTERVAL_MS_DEFAULT = 1000;

export async function statfsFreeBytes(dataDir: string): Promise<number> {
  const stats = await statfs(dataDir);
  return stats.bavail * stats.bsize;
}

export class DiskGuard {
  /** Free bytes at the last reading (Infinity before the first). */
  freeBytes = Number.POSITIVE_INFINITY;
  /** Bytes this node wrote, or let in, since that reading. */
  private writtenSinceReading = 0;
  /** Under the floor at the last look. */
  underFloor = false;
  /** Produce requests refused, and replicated entries turned away, under the floor: for metrics. */
  refusedProduce = 0;
  refusedReplication = 0;
  private timer: NodeJS.Timeout | null = null;
  private reading = false;
  private readonly listeners: Array<(underFloor: boolean) => void> = [];
  private readonly readFreeBytes: (dataDir: string) => Promise<number>;

  constructor(private readonly options: DiskGuardOptions) {
    this.readFreeBytes = options.readFreeBytes ?? statfsFreeBytes;
  }

  get freeBytesMin(): number {
    return this.options.freeBytesMin;
  }

  /** Reads free space now and then every checkIntervalMs. */
  async start(): Promise<void> {
    await this.check();
    this.timer = setInterval(
      () => void this.check(),
      this.options.checkIntervalMs ?? CHECK_INTERVAL_MS_DEFAULT,
    );
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Called on every look while under the floor, and once when space is back (false). */
  onChange(listener: (underFloor: boolean) => void): void {
    this.listeners.push(listener);
  }

  /** Throws DISK_FULL when a produce taking `diskBytes` would take the disk under the floor. */
  admitProduce(diskBytes: number, partition: string): void {
    if (this.fits(diskBytes)) {
      this.writtenSinceReading += diskBytes;
      return;
    }
    this.refusedProduce++;
    throw new BrokerError(
      'DISK_FULL',
      `${partition}: the leader's data directory has ${this.estimatedFreeBytes()} bytes free, under its ` +
        `floor of ${this.options.freeBytesMin}; nothing was appended; reads still work; retry`,
    );
  }

  /** Whether this replica may take entries that need `diskBytes` from its leader (counted if so). */
  admitReplicated(diskBytes: number): boolean {
    if (this.fits(diskBytes)) {
      this.writtenSinceReading += diskBytes;
      return true;
    }
    this.refusedReplication++;
    return false;
  }

  estimatedFreeBytes(): number {
    return Math.max(0, this.freeBytes - this.writtenSinceReading);
  }

  private fits(diskBytes: number): boolean {
    return this.estimatedFreeBytes() - diskBytes >= this.options.freeBytesMin;
  }

  /** One reading. A failed statfs keeps the last reading (and says so): it is not "disk full". */
  async check(): Promise<void> {
    if (this.reading) return;
    this.reading = true;
    try {
      const free = await this.readFreeBytes(this.options.dataDir);
      this.freeBytes = free;
      this.writtenSinceReading = 0;
    } catch (error) {
      this.options.logger.warn({ err: (error as Error).message }, 'could not read free disk space');
      return;
    } finally {
      this.reading = false;
    }
    const under = this.freeBytes < this.options.freeBytesMin;
    if (under !== this.underFloor) {
      const fields = { freeBytes: this.freeBytes, freeBytesMin: this.options.freeBytesMin };
      if (under)
        this.options.logger.warn(fields, 'data directory under its free-space floor: refusing writes');
      else
        this.options.logger.info(fields, 'data directory above its free-space floor again: writing resumes');
    }
    const changed = under !== this.underFloor;
    this.underFloor = under;
    if (under || changed) for (const listener of this.listeners) listener(under);
  }
}
