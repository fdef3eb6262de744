// Request bodies of the suite: produce requests of records of an exact size, and records that
// carry the time they were scheduled to be sent (for produce-to-consume latency).

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

/** One record whose value starts with the epoch time (ms, fractional) it was scheduled at. */
export function timedProduceBody(scheduledEpochMs: number, bytes: number): string {
  const head = `${scheduledEpochMs.toFixed(3)}${TIMESTAMP_SEPARATOR}`;
  return JSON.stringify({ records: [{ value: head + 'x'.repeat(Math.max(0, bytes - head.length)) }] });
}

/** The scheduled send time of a timed record, or NaN for a record of another kind. */
export function scheduledEpochMsOf(value: string | null): number {
  if (value === null) return Number.NaN;
  const end = value.indexOf(TIMESTAMP_SEPARATOR);
  return end > 0 ? Number(value.slice(0, end)) : Number.NaN;
}

/** Milliseconds since a scheduled epoch time, on this process's clock. */
export function msSince(scheduledEpochMs: number): number {
  return performance.timeOrigin + performance.now() - scheduledEpochMs;
}
