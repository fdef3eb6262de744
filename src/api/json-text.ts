// What the strict JSON body check (json-body.ts) and the naming of a refused body's field
// (json-refusal.ts) share: the bounds on nesting and on echoed client text, and small text helpers.

/** The deepest nesting of arrays and objects a body may have; no body of the API nests past 4. */
export const NESTING_DEPTH_MAX = 32;
/** The most characters of client text (a field path, a property name) that a message echoes. */
export const ECHOED_CHARS_MAX = 200;

const COLON = 0x3a;
const SPACE = 0x20;
const TAB = 0x09;
const LINE_FEED = 0x0a;
const CARRIAGE_RETURN = 0x0d;

export const BINARY_HINT = 'send binary data base64-encoded, with "encoding": "base64"';

/** Whether a colon follows `at`, past whitespace: then the string before `at` is a property name. */
export function colonFollows(text: string, at: number): boolean {
  let char = text.charCodeAt(at);
  while (char === SPACE || char === LINE_FEED || char === CARRIAGE_RETURN || char === TAB) {
    char = text.charCodeAt(++at);
  }
  return char === COLON;
}

/** text.indexOf, with text.length for "not found". */
export function nextIndex(text: string, search: string, from: number): number {
  const at = text.indexOf(search, from);
  return at < 0 ? text.length : at;
}

/** `text`, or its first `charsMax` characters and an ellipsis (never half a surrogate pair). */
export function capText(text: string, charsMax: number): string {
  if (text.length <= charsMax) return text;
  const high = text.charCodeAt(charsMax - 1);
  const cut = high >= 0xd800 && high <= 0xdbff ? charsMax - 1 : charsMax;
  return `${text.slice(0, cut)}…`;
}
