// The retention policy: which whole closed segments go, by age and by size, never the active
// segment and never at or above the applied index.

import { describe, expect, it } from 'vitest';
import { type RetainedSegment, retentionCutIndex } from '../../src/broker/retention.js';

const NOW = 1_000_000;

/** Segments of 10 entries each: [1..10], [11..20], ...; the last one is active. */
function segments(spec: Array<{ sizeBytes?: number; ageMs?: number | null }>): RetainedSegment[] {
  return spec.map((s, i) => ({
    lastIndex: (i + 1) * 10,
    sizeBytes: s.sizeBytes ?? 100,
    maxTimestampMs: s.ageMs === null || s.ageMs === undefined ? null : NOW - s.ageMs,
  }));
}

const unlimited = { retentionMs: -1, retentionBytes: -1, nowMs: NOW, maxCutIndex: 1000 };

describe('retentionCutIndex', () => {
  it('keeps everything when both limits are -1', () => {
    expect(
      retentionCutIndex({ ...unlimited, segments: segments([{ ageMs: 1e9 }, { ageMs: 1e9 }, {}]) }),
    ).toBe(null);
  });

  it('by time, drops the leading segments whose newest record is older than retentionMs', () => {
    const segs = segments([{ ageMs: 5000 }, { ageMs: 3000 }, { ageMs: 500 }, { ageMs: 5000 }, { ageMs: 0 }]);
    // The third segment is young: the time rule stops there even though the fourth is old.
    expect(retentionCutIndex({ ...unlimited, retentionMs: 1000, segments: segs })).toBe(20);
  });

  it('by time, an age exactly at the limit is kept', () => {
    const segs = segments([{ ageMs: 1000 }, { ageMs: 0 }]);
    expect(retentionCutIndex({ ...unlimited, retentionMs: 1000, segments: segs })).toBe(null);
  });

  it('by time, a segment whose timestamp was not looked at (null) stops the rule', () => {
    const segs = segments([{ ageMs: 5000 }, { ageMs: null }, { ageMs: 5000 }, {}]);
    expect(retentionCutIndex({ ...unlimited, retentionMs: 1000, segments: segs })).toBe(10);
  });

  it('by time, a closed segment without records (-Infinity) goes', () => {
    const segs: RetainedSegment[] = [
      { lastIndex: 10, sizeBytes: 50, maxTimestampMs: Number.NEGATIVE_INFINITY },
      { lastIndex: 20, sizeBytes: 50, maxTimestampMs: NOW },
    ];
    expect(retentionCutIndex({ ...unlimited, retentionMs: 1000, segments: segs })).toBe(10);
  });

  it('by size, drops leading segments while what remains is still at least retentionBytes', () => {
    const segs = segments([{ sizeBytes: 100 }, { sizeBytes: 100 }, { sizeBytes: 100 }, { sizeBytes: 30 }]);
    // 330 in all: dropping one leaves 230 >= 150, two leave 130 < 150.
    expect(retentionCutIndex({ ...unlimited, retentionBytes: 150, segments: segs })).toBe(10);
    expect(retentionCutIndex({ ...unlimited, retentionBytes: 130, segments: segs })).toBe(20);
    expect(retentionCutIndex({ ...unlimited, retentionBytes: 331, segments: segs })).toBe(null);
  });

  it('never drops the active segment, even with retentionBytes 0 and everything expired', () => {
    const segs = segments([{ ageMs: 1e6 }, { ageMs: 1e6 }, { ageMs: 1e6 }]);
    expect(retentionCutIndex({ ...unlimited, retentionBytes: 0, retentionMs: 0, segments: segs })).toBe(20);
    expect(retentionCutIndex({ ...unlimited, retentionBytes: 0, segments: segments([{ ageMs: 1e6 }]) })).toBe(
      null,
    );
    expect(retentionCutIndex({ ...unlimited, retentionBytes: 0, segments: [] })).toBe(null);
  });

  it('never cuts above maxCutIndex (below the applied index)', () => {
    const segs = segments([{ ageMs: 1e6 }, { ageMs: 1e6 }, { ageMs: 1e6 }, {}]);
    expect(retentionCutIndex({ ...unlimited, retentionMs: 0, maxCutIndex: 25, segments: segs })).toBe(20);
    expect(retentionCutIndex({ ...unlimited, retentionMs: 0, maxCutIndex: 19, segments: segs })).toBe(10);
    expect(retentionCutIndex({ ...unlimited, retentionBytes: 0, maxCutIndex: 9, segments: segs })).toBe(null);
  });

  it('takes the longer of the time prefix and the size prefix', () => {
    const segs = segments([
      { ageMs: 5000, sizeBytes: 100 },
      { ageMs: 5000, sizeBytes: 100 },
      { ageMs: 0, sizeBytes: 100 },
      { ageMs: 0, sizeBytes: 100 },
    ]);
    expect(retentionCutIndex({ ...unlimited, retentionMs: 1000, retentionBytes: 350, segments: segs })).toBe(
      20,
    );
    expect(retentionCutIndex({ ...unlimited, retentionMs: 1000, retentionBytes: 100, segments: segs })).toBe(
      30,
    );
  });
});
