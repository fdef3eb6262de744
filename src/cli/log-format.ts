// Turns one pino JSON log line into one readable line (`12:00:01.123 INFO  leader elected
// group=3 term=2`), for `raftlog dev`, which shows the logs of several nodes in one terminal.
// Lines that are not pino JSON pass through unchanged.

import { oneLine, type Palette } from './format.js';

const LEVELS: Record<number, string> = {
  10: 'TRACE',
  20: 'DEBUG',
  30: 'INFO',
  40: 'WARN',
  50: 'ERROR',
  60: 'FATAL',
};
/** Fields every pino line has, shown elsewhere in the line or not worth the space. */
const OMITTED = new Set(['level', 'time', 'msg', 'pid', 'hostname', 'v']);

export function formatLogLine(line: string, colors: Palette): string {
  const entry = parseObject(line);
  if (!entry || typeof entry.level !== 'number') return oneLine(line);
  const time = typeof entry.time === 'number' ? clock(entry.time) : '';
  const level = (LEVELS[entry.level] ?? String(entry.level)).padEnd(5);
  const message = typeof entry.msg === 'string' ? oneLine(entry.msg) : '';
  const fields = Object.entries(entry)
    .filter(([name]) => !OMITTED.has(name))
    .map(([name, value]) => `${name}=${fieldText(value)}`);
  return [colors.dim(time), paintLevel(entry.level, level, colors), message, colors.dim(fields.join(' '))]
    .filter((part) => part !== '')
    .join(' ');
}

function parseObject(line: string): Record<string, unknown> | undefined {
  if (!line.startsWith('{')) return undefined;
  try {
    const value: unknown = JSON.parse(line);
    return typeof value === 'object' && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

/** Local wall-clock time, HH:MM:SS.mmm, as in the log lines. */
export function clock(timeMs: number): string {
  const date = new Date(timeMs);
  const pad = (n: number, width = 2) => String(n).padStart(width, '0');
  return `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}.${pad(date.getMilliseconds(), 3)}`;
}

function paintLevel(level: number, text: string, colors: Palette): string {
  if (level >= 50) return colors.red(text);
  if (level >= 40) return colors.yellow(text);
  if (level >= 30) return colors.green(text);
  return colors.dim(text);
}

function fieldText(value: unknown): string {
  // An error object: its type and message say enough on one line.
  if (typeof value === 'object' && value !== null && 'message' in value) {
    const { type, message } = value as { type?: unknown; message?: unknown };
    return oneLine(`${typeof type === 'string' ? `${type}: ` : ''}${String(message)}`);
  }
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  return oneLine(/\s/.test(text) && typeof value === 'string' ? JSON.stringify(text) : text);
}
