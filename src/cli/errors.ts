// How the CLI fails: a usage error exits 2, anything else 1, and either is one readable line on
// stderr (`raftlog: topic 'orders' does not exist (UNKNOWN_TOPIC)`). Stack traces only with --debug.

import { RaftlogError, RaftlogNetworkError } from '../client/index.js';
import type { CliIo } from './io.js';

export const EXIT_OK = 0;
export const EXIT_RUNTIME = 1;
export const EXIT_USAGE = 2;

/** The command line itself is wrong: a bad flag value, a missing argument. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** A runtime failure already worded for the user (no code suffix). */
export class CliError extends Error {
  override readonly name = 'CliError';
}

/** One line (no trailing newline) describing the error for a user. */
export function describeError(error: unknown): string {
  if (error instanceof RaftlogNetworkError) return `${error.message}${networkHint(error)}`;
  if (error instanceof RaftlogError) return `${error.message} (${error.code})`;
  if (error instanceof Error) return error.message;
  return String(error);
}

function networkHint(error: RaftlogNetworkError): string {
  switch (error.failure) {
    case 'connection refused':
      return " — is a node running? start one with 'raftlog start'";
    case 'host not found':
      return ' — check --server or $RAFTLOG_URL';
    default:
      return '';
  }
}

/** Writes the error (one line; plus the stack and causes with --debug) and returns the exit code. */
export function reportError(io: CliIo, error: unknown, debug: boolean): number {
  const line = describeError(error).replace(/\s*\n\s*/g, ' ');
  io.stderr.write(`raftlog: ${line}\n`);
  if (debug) io.stderr.write(`${debugDetails(error)}\n`);
  return error instanceof UsageError ? EXIT_USAGE : EXIT_RUNTIME;
}

function debugDetails(error: unknown): string {
  const parts: string[] = [];
  let current: unknown = error;
  for (let depth = 0; current !== undefined && depth < 5; depth++) {
    if (current instanceof Error) {
      parts.push(depth === 0 ? (current.stack ?? String(current)) : `caused by: ${current.stack ?? current}`);
      if (current instanceof RaftlogError && Object.keys(current.details).length > 0) {
        parts.push(`details: ${JSON.stringify(current.details)}`);
      }
      current = current.cause;
    } else {
      parts.push(depth === 0 ? String(current) : `caused by: ${String(current)}`);
      current = undefined;
    }
  }
  return parts.join('\n');
}
