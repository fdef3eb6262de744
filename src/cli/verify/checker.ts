// The checks of `raftlog verify`, apart from any I/O: it is told what was acknowledged and what
// each read returned, and counts what is wrong (definitions in docs/cli.md, "raftlog verify").
// Values are `RUN:KEY:NUMBER`: unique per run, numbered per key from 1 in the order they are sent.

export type FindingKind = 'loss' | 'duplicate' | 'reordering' | 'gap' | 'stale' | 'divergence' | 'unverified';

export const FINDING_KINDS: readonly FindingKind[] = [
  'loss',
  'duplicate',
  'reordering',
  'gap',
  'stale',
  'divergence',
  'unverified',
];

/** Examples kept per kind: enough to debug, bounded whatever the run. */
const EXAMPLES_PER_KIND_MAX = 5;

export interface NumberedValue {
  run: string;
  key: string;
  number: number;
}

export function numberedValue(run: string, key: string, number: number): string {
  return `${run}:${key}:${number}`;
}

/** The parts of a value this run wrote; undefined for any other value (other runs, other writers). */
export function parseValue(value: unknown, run: string): NumberedValue | undefined {
  if (typeof value !== 'string' || !value.startsWith(`${run}:`)) return undefined;
  const last = value.lastIndexOf(':');
  const number = Number(value.slice(last + 1));
  if (last <= run.length || !Number.isSafeInteger(number)) return undefined;
  return { run, key: value.slice(run.length + 1, last), number };
}

/** What a fetch returned, as far as the checks go. */
export interface FetchedPage {
  records: ReadonlyArray<{ offset: number; value: unknown }>;
  highWatermark: number;
  logStartOffset: number;
}

/** What a replica retains of a partition: offsets logStartOffset <= offset < highWatermark. */
export interface ReplicaRange {
  logStartOffset: number;
  highWatermark: number;
}

interface Acknowledged {
  value: string;
  /** Replicas (bit per node id) that returned it at its offset. */
  readBy: number;
}

/** One in-order read of one partition on one replica: offsets must be dense, numbers rise per key. */
export class Scan {
  /** The next offset to fetch. */
  next: number;
  private readonly lastNumberByKey = new Map<string, number>();

  constructor(
    private readonly checker: Checker,
    readonly replica: number,
    readonly partition: number,
    startOffset: number,
  ) {
    this.next = startOffset;
  }

  /** A page fetched from `this.next`. */
  accept(page: FetchedPage): void {
    const { checker, replica, partition } = this;
    if (this.next < page.logStartOffset) this.next = page.logStartOffset; // Retention, not a gap.
    if (page.records.length === 0 && page.highWatermark > this.next) {
      checker.find(
        'gap',
        `n${replica} p${partition}: nothing returned at ${this.next} below highWatermark ${page.highWatermark}`,
      );
      checker.lostIfAcknowledged(partition, this.next, `n${replica} returned nothing at ${this.next}`);
    }
    for (const record of page.records) {
      if (record.offset !== this.next) {
        checker.find('gap', `n${replica} p${partition}: offset ${record.offset} follows ${this.next - 1}`);
        for (let missing = this.next; missing < record.offset && missing < this.next + 1000; missing++) {
          checker.lostIfAcknowledged(partition, missing, `n${replica} skipped offset ${missing}`);
        }
      }
      if (record.offset < this.next) continue; // Went backwards: counted above, not read twice.
      this.next = record.offset + 1;
      checker.readAt(replica, partition, record.offset, record.value);
      const parsed = parseValue(record.value, checker.run);
      if (!parsed) continue;
      const last = this.lastNumberByKey.get(parsed.key);
      if (last !== undefined && parsed.number < last) {
        checker.find(
          'reordering',
          `n${replica} p${partition}: key ${parsed.key} number ${parsed.number} at offset ${record.offset} after ${last}`,
        );
      }
      this.lastNumberByKey.set(parsed.key, Math.max(last ?? 0, parsed.number));
    }
  }
}

export class Checker {
  readonly counts = new Map<FindingKind, number>(FINDING_KINDS.map((kind) => [kind, 0]));
  readonly examples = new Map<FindingKind, string[]>(FINDING_KINDS.map((kind) => [kind, []]));
  /** Acknowledged records per partition, by offset. */
  private readonly acks: Array<Map<number, Acknowledged>>;
  private readonly highestAcked: number[];
  /** Where each of this run's values was first read: `partition:offset`. */
  private readonly placeOfValue = new Map<string, string>();
  /** The first value read at each offset (from offset `trackFrom[p]` on), to compare replicas. */
  private readonly firstValueAt: Array<Map<number, unknown>>;
  /** Records lost, once each (`partition:offset`), however many replicas or passes show it. */
  private readonly lostPlaces = new Set<string>();
  private acknowledgedCount = 0;
  private readonly readCountByReplica = new Map<number, number>();

  constructor(
    readonly run: string,
    readonly partitions: number,
    /** Offsets below these are compared across replicas only if read: the topic's older data. */
    private readonly trackFrom: number[] = Array(partitions).fill(0),
  ) {
    this.acks = Array.from({ length: partitions }, () => new Map());
    this.firstValueAt = Array.from({ length: partitions }, () => new Map());
    this.highestAcked = Array(partitions).fill(-1);
  }

  get acknowledged(): number {
    return this.acknowledgedCount;
  }

  /** Acknowledged records this replica has returned at their offset. */
  readBy(replica: number): number {
    return this.readCountByReplica.get(replica) ?? 0;
  }

  count(kind: FindingKind): number {
    return this.counts.get(kind) ?? 0;
  }

  get clean(): boolean {
    return FINDING_KINDS.every((kind) => this.count(kind) === 0);
  }

  /** The highest offset acknowledged so far in the partition, -1 before any. */
  highestAcknowledged(partition: number): number {
    return this.highestAcked[partition]!;
  }

  scan(replica: number, partition: number, startOffset: number): Scan {
    return new Scan(this, replica, partition, startOffset);
  }

  /** A produce acknowledged `value` at (partition, offset). */
  acknowledge(partition: number, offset: number, value: string): void {
    const acks = this.acks[partition]!;
    const earlier = acks.get(offset);
    if (earlier) {
      // Two acknowledgements of one offset: both cannot hold.
      if (earlier.value !== value) this.lose(partition, offset, `acknowledged again, for ${value}`);
      return;
    }
    acks.set(offset, { value, readBy: 0 });
    this.acknowledgedCount++;
    if (offset > this.highestAcked[partition]!) this.highestAcked[partition] = offset;
    // A read that came back before the acknowledgement (a follower can be quick) still counts.
    const read = this.firstValueAt[partition]!.get(offset);
    if (read !== undefined && read !== value)
      this.lose(partition, offset, `read ${String(read)} before the ack`);
  }

  /** A replica returned `value` at (partition, offset) (scans and read-your-writes reads). */
  readAt(replica: number, partition: number, offset: number, value: unknown): void {
    const ack = this.acks[partition]!.get(offset);
    if (ack) {
      const bit = replicaBit(replica);
      if (ack.value !== value) {
        this.lose(partition, offset, `n${replica} has ${JSON.stringify(value)}, acknowledged ${ack.value}`);
      } else if ((ack.readBy & bit) === 0) {
        ack.readBy |= bit;
        this.readCountByReplica.set(replica, this.readBy(replica) + 1);
      }
    }
    if (offset >= this.trackFrom[partition]!) {
      const values = this.firstValueAt[partition]!;
      const first = values.get(offset);
      if (first === undefined) values.set(offset, value);
      else if (first !== value) {
        this.find(
          'divergence',
          `p${partition} offset ${offset}: n${replica} has ${JSON.stringify(value)}, another replica ${JSON.stringify(first)}`,
        );
      }
    }
    if (parseValue(value, this.run) === undefined) return;
    const place = `${partition}:${offset}`;
    const seenAt = this.placeOfValue.get(value as string);
    if (seenAt === undefined) this.placeOfValue.set(value as string, place);
    else if (seenAt !== place)
      this.find(
        'duplicate',
        `${String(value)} at p${seenAt.replace(':', ' offset ')} and p${partition} offset ${offset}`,
      );
  }

  /**
   * A linearizable read of the partition answered with `highWatermark`; `highestAckedBefore` was
   * the highest offset acknowledged before it was sent. It must include that offset.
   */
  linearizableRead(
    replica: number,
    partition: number,
    highestAckedBefore: number,
    highWatermark: number,
  ): void {
    if (highWatermark <= highestAckedBefore) {
      this.find(
        'stale',
        `n${replica} p${partition}: linearizable read says highWatermark ${highWatermark}, offset ${highestAckedBefore} was acknowledged before it was sent`,
      );
    }
  }

  /** A scan reached an offset that should hold a record but did not: loss if it was acknowledged. */
  lostIfAcknowledged(partition: number, offset: number, why: string): void {
    if (this.acks[partition]!.has(offset)) this.lose(partition, offset, why);
  }

  /**
   * The end: every acknowledged record must be on every replica that retains its offset (log start
   * <= offset < highWatermark, as the replica's full final read saw them), and on at least one.
   */
  finalCheck(finalRanges: Map<number, ReplicaRange[]>): void {
    for (let partition = 0; partition < this.partitions; partition++) {
      for (const [offset, ack] of this.acks[partition]!) {
        let anyHolds = false;
        for (const [replica, ranges] of finalRanges) {
          const range = ranges[partition];
          if (range === undefined || offset < range.logStartOffset || offset >= range.highWatermark) continue;
          anyHolds = true;
          if ((ack.readBy & replicaBit(replica)) === 0)
            this.lose(partition, offset, `n${replica} never returned it`);
        }
        if (!anyHolds)
          this.lose(partition, offset, 'no replica has it between its log start and highWatermark');
      }
    }
  }

  find(kind: FindingKind, example: string): void {
    this.counts.set(kind, this.count(kind) + 1);
    const examples = this.examples.get(kind)!;
    if (examples.length < EXAMPLES_PER_KIND_MAX) examples.push(example);
  }

  private lose(partition: number, offset: number, why: string): void {
    const place = `${partition}:${offset}`;
    if (this.lostPlaces.has(place)) return;
    this.lostPlaces.add(place);
    const ack = this.acks[partition]!.get(offset);
    this.find('loss', `p${partition} offset ${offset} (${ack?.value ?? '?'}): ${why}`);
  }
}

function replicaBit(replica: number): number {
  if (!(Number.isInteger(replica) && replica >= 1 && replica <= 31)) {
    throw new RangeError(`replica ids 1 to 31 are checked, got ${replica}`);
  }
  return 1 << (replica - 1);
}
