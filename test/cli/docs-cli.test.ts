// docs/cli.md against the program: every command `raftlog help` lists has a section in the page and
// an example (an indented `raftlog ...` line), every section names a command, and each command's
// flags in `raftlog help COMMAND` are exactly the flags its section's tables document (the flags
// every command shares are in "Common to every command").

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { runCli } from '../../src/cli/program.js';
import { TestIo } from './cli-io.js';

const PAGE = readFileSync(new URL('../../docs/cli.md', import.meta.url), 'utf8');
/** Documented once, in "Common to every command", not in each command's table. */
const SHARED_FLAGS = new Set(['--help', '--version', '--debug', '--server', '--json']);

/** `raftlog help COMMAND`; for a subcommand, `raftlog COMMAND help SUBCOMMAND`. */
async function help(path: string[]): Promise<string> {
  const io = new TestIo();
  const argv = [...path.slice(0, -1), 'help', path.at(-1)!];
  expect(await runCli(argv, io)).toBe(0);
  return io.out;
}

/** The lines of one titled block of commander's help ("Options:", "Commands:"). */
function block(text: string, title: string): string[] {
  const lines = text.split('\n');
  const start = lines.indexOf(title);
  if (start < 0) return [];
  const out: string[] = [];
  for (const line of lines.slice(start + 1)) {
    if (line.trim() === '' || !line.startsWith(' ')) break;
    out.push(line);
  }
  return out;
}

function helpFlags(text: string): string[] {
  const flags = block(text, 'Options:').flatMap((line) => /^ {2}(?:-\w, )?(--[\w-]+)/.exec(line)?.[1] ?? []);
  return flags.filter((flag) => !SHARED_FLAGS.has(flag)).sort();
}

function helpCommands(text: string): string[] {
  return block(text, 'Commands:')
    .flatMap((line) => /^ {2}([a-z][\w-]*)/.exec(line)?.[1] ?? [])
    .filter((name) => name !== 'help');
}

/** Every command path, with its help text: `topic create` is ['topic', 'create']. */
async function commands(path: string[] = []): Promise<Array<{ path: string[]; text: string }>> {
  expect(path.length, `commands nested too deep: ${path.join(' ')}`).toBeLessThan(3);
  const text = path.length === 0 ? await helpRoot() : await help(path);
  const found = path.length === 0 ? [] : [{ path, text }];
  for (const name of helpCommands(text)) found.push(...(await commands([...path, name])));
  return found;
}

async function helpRoot(): Promise<string> {
  const io = new TestIo();
  expect(await runCli(['--help'], io)).toBe(0);
  return io.out;
}

/**
 * The page's sections by command path: a heading whose code span reads `raftlog topic create NAME`
 * or `topic create NAME` belongs to ['topic', 'create'] (words up to the first argument or flag).
 */
function pageSections(): Map<string, { flags: Set<string>; text: string }> {
  const sections = new Map<string, { flags: Set<string>; text: string }>();
  let current: { flags: Set<string>; text: string } | null = null;
  for (const line of PAGE.split('\n')) {
    const heading = /^#{2,4} .*?`([^`]+)`/.exec(line);
    if (heading || /^#{1,4} /.test(line)) {
      current = null;
      if (heading) {
        const words = heading[1]!.split(/\s+/).filter((word) => word !== 'raftlog');
        const path: string[] = [];
        for (const word of words) {
          if (!/^[a-z][\w-]*$/.test(word)) break;
          path.push(word);
        }
        const key = path.join(' ');
        if (key !== '') {
          current = sections.get(key) ?? { flags: new Set(), text: '' };
          sections.set(key, current);
        }
      }
      continue;
    }
    if (!current) continue;
    current.text += `${line}\n`;
    const flag = /^\| `(--[\w-]+)/.exec(line);
    if (flag && !SHARED_FLAGS.has(flag[1]!)) current.flags.add(flag[1]!);
  }
  return sections;
}

describe('docs/cli.md and `raftlog help`', () => {
  it('document the same commands', async () => {
    const program = (await commands()).map((c) => c.path.join(' ')).sort();
    const page = [...pageSections().keys()].sort();
    expect(page).toEqual(program);
  });

  it('document the same flags for every command', async () => {
    const sections = pageSections();
    let compared = 0;
    for (const { path, text } of await commands()) {
      const name = path.join(' ');
      expect([...(sections.get(name)?.flags ?? [])].sort(), `raftlog ${name}`).toEqual(helpFlags(text));
      compared += helpFlags(text).length;
    }
    expect(compared).toBeGreaterThan(20); // The help was read: most commands have flags.
  });

  it('give every command an example', async () => {
    // Below the synopsis at the top of the page, which shows the flags but is no example.
    const body = PAGE.slice(PAGE.indexOf('\n## '));
    const examples = body.split('\n').filter((line) => /^ {4}.*\braftlog [a-z]/.test(line));
    const missing: string[] = [];
    for (const { path, text } of await commands()) {
      if (helpCommands(text).length > 0) continue; // `topic`, `group`: their subcommands have theirs.
      const name = path.join(' ');
      if (!examples.some((line) => new RegExp(`\\braftlog ${name}\\b`).test(line))) missing.push(name);
    }
    expect(missing, 'commands without an example in docs/cli.md').toEqual([]);
  });
});
