// How one input line becomes a record for `raftlog produce`: the whole line as the value, or
// KEY<SEP>VALUE with --key-separator, or a JSON object with --json-lines; --header K=V on every
// record. Pure: a line that cannot be a record throws LineError, and the caller adds its number.

import { InvalidArgumentError } from 'commander';
import type { ProducerRecord } from '../../client/index.js';

export class LineError extends Error {
  override readonly name = 'LineError';
}

/** How lines are read, from the flags. */
export interface LineFormat {
  keySeparator: string | undefined;
  jsonLines: boolean;
  /** --key: the key of every record (plain lines only). */
  key: string | undefined;
  /** --partition: of every record that does not name its own. */
  partition: number | undefined;
  /** --header flags: on every record. */
  headers: Record<string, string> | undefined;
}

/** A commander parser for a repeatable `--header K=V`: K is everything before the first '='. */
export function headerFlag(
  value: string,
  previous: Record<string, string> | undefined,
): Record<string, string> {
  const equals = value.indexOf('=');
  if (equals < 1) throw new InvalidArgumentError(`'${value}' is not K=V with a non-empty name K`);
  const name = value.slice(0, equals);
  const headers = { ...previous };
  if (Object.hasOwn(headers, name)) throw new InvalidArgumentError(`header '${name}' is given twice`);
  headers[name] = value.slice(equals + 1);
  return headers;
}

/**
 * The record of one line, or undefined for a line that is no record (a blank line with
 * --json-lines). Throws LineError when the line cannot be one.
 */
export function recordOfLine(line: string, format: LineFormat): ProducerRecord<string> | undefined {
  if (format.jsonLines) return jsonRecord(line, format);
  const separator = format.keySeparator;
  if (separator === undefined) {
    return { value: line, key: format.key, partition: format.partition, headers: format.headers };
  }
  const at = line.indexOf(separator);
  // As Kafka's console producer (parse.key=true): a keyed input with an unkeyed line is more
  // likely broken input than intent, and sending it unkeyed would put it on an arbitrary partition.
  if (at === -1) throw new LineError(`no key separator '${separator}' in the line`);
  return {
    key: line.slice(0, at),
    value: line.slice(at + separator.length),
    partition: format.partition,
    headers: format.headers,
  };
}

/** Fields of a --json-lines object; `offset` and `topic` (of `tail --json` output) are ignored. */
const JSON_FIELDS = new Set(['key', 'value', 'headers', 'partition', 'timestamp', 'offset', 'topic']);

function jsonRecord(line: string, format: LineFormat): ProducerRecord<string> | undefined {
  if (line.trim() === '') return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch (error) {
    throw new LineError(`not valid JSON (${(error as Error).message})`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new LineError('expected a JSON object like {"key": "k", "value": "v"}');
  }
  const object = parsed as Record<string, unknown>;
  for (const field in object) {
    if (!JSON_FIELDS.has(field)) {
      throw new LineError(`unknown field '${field}' (expected key, value, headers, partition, timestamp)`);
    }
  }
  const { key, value, headers, partition, timestamp } = object;
  if (typeof value !== 'string') throw new LineError('"value" must be a string');
  if (key !== undefined && key !== null && typeof key !== 'string') {
    throw new LineError('"key" must be a string or null');
  }
  if (partition !== undefined && !isNaturalNumber(partition)) {
    throw new LineError('"partition" must be an integer >= 0');
  }
  if (timestamp !== undefined && !isNaturalNumber(timestamp)) {
    throw new LineError('"timestamp" must be an integer >= 0 (ms since the epoch)');
  }
  return {
    key,
    value,
    headers: mergedHeaders(format.headers, headersOf(headers)),
    partition: partition ?? format.partition,
    timestamp,
  };
}

function headersOf(headers: unknown): Record<string, string | null> | undefined {
  if (headers === undefined || headers === null) return undefined;
  if (typeof headers !== 'object' || Array.isArray(headers)) {
    throw new LineError('"headers" must be an object of strings');
  }
  for (const [name, header] of Object.entries(headers)) {
    if (header !== null && typeof header !== 'string') {
      throw new LineError(`header '${name}' must be a string or null`);
    }
  }
  return headers as Record<string, string | null>;
}

/** --header flags, then the line's own headers: the line wins for a name in both. */
function mergedHeaders(
  flags: Record<string, string> | undefined,
  line: Record<string, string | null> | undefined,
): Record<string, string | null> | undefined {
  if (flags === undefined) return line;
  if (line === undefined) return flags;
  return { ...flags, ...line };
}

function isNaturalNumber(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}
