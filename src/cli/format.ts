// Human output: aligned tables and ANSI colors (off unless the output is a terminal and NO_COLOR
// is unset). Small enough that a dependency would cost more than it saves.

export interface Palette {
  bold(text: string): string;
  dim(text: string): string;
  red(text: string): string;
  green(text: string): string;
  yellow(text: string): string;
  /** A stable color per index, for node tags. */
  tag(index: number, text: string): string;
}

const TAG_COLORS = [36, 35, 33, 32, 34, 96, 95, 93, 92, 94];

export function palette(enabled: boolean): Palette {
  const paint = (code: number) => (text: string) => (enabled ? `\u001b[${code}m${text}\u001b[0m` : text);
  return {
    bold: paint(1),
    dim: paint(2),
    red: paint(31),
    green: paint(32),
    yellow: paint(33),
    tag: (index, text) => paint(TAG_COLORS[index % TAG_COLORS.length]!)(text),
  };
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: ANSI color codes start with ESC.
const ANSI = /\u001b\[[0-9;]*m/g;

/** Columns padded to their widest cell (ignoring color codes); the last column is not padded. */
export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((header, column) =>
    Math.max(header.length, ...rows.map((row) => (row[column] ?? '').replace(ANSI, '').length)),
  );
  const line = (cells: string[]) =>
    cells
      .map((cell, column) =>
        column === cells.length - 1
          ? cell
          : cell + ' '.repeat(widths[column]! - cell.replace(ANSI, '').length),
      )
      .join('  ')
      .trimEnd();
  return [line(headers), ...rows.map(line)].join('\n');
}

/** Keeps a record on one line: newlines and other control characters become escapes. */
export function oneLine(text: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point.
  return text.replace(/[\u0000-\u001f\u007f]/g, (c) => {
    if (c === '\n') return '\\n';
    if (c === '\r') return '\\r';
    if (c === '\t') return '\\t';
    return `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;
  });
}
