// Human output helpers: pino lines made readable for `raftlog dev`, tables, one-line records.

import { describe, expect, it } from 'vitest';
import { oneLine, palette, table } from '../../src/cli/format.js';
import { formatLogLine } from '../../src/cli/log-format.js';

const plain = palette(false);

describe('formatLogLine', () => {
  it('turns a pino line into time, level, message and fields, dropping pid and hostname', () => {
    const time = new Date(2026, 0, 2, 3, 4, 5, 67).getTime();
    const line = JSON.stringify({
      level: 40,
      time,
      pid: 1,
      hostname: 'h',
      msg: 'peer link down',
      node: 3,
      peer: 1,
    });
    expect(formatLogLine(line, plain)).toBe('03:04:05.067 WARN  peer link down node=3 peer=1');
  });

  it('quotes string fields with spaces, prints errors by type and message, and objects as JSON', () => {
    const line = JSON.stringify({
      level: 50,
      msg: 'failed',
      reason: 'connect ECONNREFUSED x',
      err: { type: 'Error', message: 'boom', stack: 'Error: boom\n    at x' },
      peers: [1, 2],
    });
    expect(formatLogLine(line, plain)).toBe(
      'ERROR failed reason="connect ECONNREFUSED x" err=Error: boom peers=[1,2]',
    );
  });

  it('passes other lines through, on one line', () => {
    expect(formatLogLine('plain text', plain)).toBe('plain text');
    expect(formatLogLine('{"not":"pino"}', plain)).toBe('{"not":"pino"}');
    expect(formatLogLine('{broken', plain)).toBe('{broken');
  });

  it('colors levels only when colors are on', () => {
    const colored = formatLogLine(JSON.stringify({ level: 50, msg: 'x' }), palette(true));
    expect(colored).toContain('\u001b[31mERROR');
  });
});

describe('table and oneLine', () => {
  it('pads columns to the widest cell, ignoring color codes', () => {
    const green = palette(true).green('yes');
    expect(
      table(
        ['A', 'LONG'],
        [
          ['xyz', green],
          ['1', 'no'],
        ],
      ).split('\n'),
    ).toEqual(['A    LONG', `xyz  ${green}`, '1    no']);
  });

  it('escapes newlines and control characters', () => {
    expect(oneLine('a\nb\r\tc\u0001')).toBe('a\\nb\\r\\tc\\u0001');
  });
});
