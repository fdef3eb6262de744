// Request bodies of the suite: produce requests of records of an exact size, and records that
// carry the time they were sent (for produce-to-consume latency).

/** A record value of exactly `bytes` bytes (ASCII), distinct per index. */
export function recordValue(index: number, bytes: number): string {
  const head = `r${index}-`;
  return head + 'x'.repeat(Math.max(0, bytes - head.length));
}

/** A produce body of `count` records of `bytes` bytes, to `partition` when given. */
export function produceBody(options: { count: number; bytes: number; partition?: number }): string {
  const records = Array.from({ length: options.count }, (_, i) =>
    options.partition === undefined
      ? { value: recordValue(i, options.bytes) }
      : { value: recordValue(i, options.bytes), partition: options.partition },
  );
  return JSON.stringify({ records });
}

const TIMESTAMP_SEPARATOR = '|';

/** A value of `bytes` bytes that starts with the epoch time (ms, fractional) it was sent at. */
function timedValue(sendEpochMs: number, bytes: number): string {
  const head = `${sendEpochMs.toFixed(3)}${TIMESTAMP_SEPARATOR}`;
  return head + 'x'.repeat(Math.max(0, bytes - head.length));
}

/** One record whose value carries its send time. */
export function timedProduceBody(sendEpochMs: number, bytes: number): string {
  return JSON.stringify({ records: [{ value: timedValue(sendEpochMs, bytes) }] });
}

/** Bodies after their first record, by shape: built once, since a run sends thousands a second. */
const batchTails = new Map<string, string>();

/** A produce body of `count` records to `partition`; the first carries its send time. */
export function timedBatchBody(
  sendEpochMs: number,
  options: { count: number; bytes: number; partition: number },
): string {
  const key = `${options.count}/${options.bytes}/${options.partition}`;
  let tail = batchTails.get(key);
  if (tail === undefined) {
    const rest = Array.from({ length: options.count - 1 }, (_, i) => ({
      value: recordValue(i + 1, options.bytes),
      partition: options.partition,
    }));
    tail = rest.length === 0 ? ']}' : `,${JSON.stringify(rest).slice(1)}}`;
    batchTails.set(key, tail);
  }
  const first = JSON.stringify({
    value: timedValue(sendEpochMs, options.bytes),
    partition: options.partition,
  });
  return `{"records":[${first}${tail}`;
}

/** The send time of a timed record, or NaN for a record of another kind. */
export function sentEpochMsOf(value: string | null): number {
  if (value === null) return Number.NaN;
  const end = value.indexOf(TIMESTAMP_SEPARATOR);
  return end > 0 ? Number(value.slice(0, end)) : Number.NaN;
}

/** Milliseconds since an epoch time, on this process's clock. */
export function msSince(epochMs: number): number {
  return performance.timeOrigin + performance.now() - epochMs;
}
