/**
 * How deep JSON nests, counted as the device contract counts it: the outermost object or
 * array is level 1, a scalar is level 0, `{"a": [1]}` is 2. The limit for every device
 * message is `ENVELOPE_LIMITS.maxDepth`.
 *
 * Neither function recurses, so a hostile 100,000-level document costs no stack; both stop
 * as soon as the count passes `stopAbove` and return that count, so it costs no time either.
 */

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;

/**
 * The nesting depth of JSON text, read without parsing it: brackets and braces outside
 * strings are counted. For valid JSON this is the depth of the parsed value; for invalid
 * text it is a number that the parser's own refusal will make moot.
 */
export function jsonTextDepth(text: string, stopAbove = Number.POSITIVE_INFINITY): number {
  let depth = 0;
  let max = 0;
  for (let i = 0; i < text.length; i += 1) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      i = endOfString(text, i);
    } else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      depth += 1;
      if (depth > max) {
        max = depth;
        if (max > stopAbove) return max;
      }
    } else if ((c === CLOSE_BRACE || c === CLOSE_BRACKET) && depth > 0) {
      depth -= 1;
    }
  }
  return max;
}

/** Index of the quote that closes the string opened at `open` (text.length when unterminated). */
function endOfString(text: string, open: number): number {
  let at = open;
  for (;;) {
    at = text.indexOf('"', at + 1);
    if (at === -1) return text.length;
    let backslashes = 0;
    while (text.charCodeAt(at - 1 - backslashes) === BACKSLASH) backslashes += 1;
    if (backslashes % 2 === 0) return at;
  }
}

/**
 * The nesting depth of a parsed JSON value, walked with an explicit stack. The value must
 * be a tree (anything JSON.parse returns is); a cycle is only safe with a finite `stopAbove`.
 */
export function jsonValueDepth(value: unknown, stopAbove = Number.POSITIVE_INFINITY): number {
  let max = 0;
  const stack: [unknown, number][] = [[value, 1]];
  for (let top = stack.pop(); top !== undefined; top = stack.pop()) {
    const [node, level] = top;
    if (node === null || typeof node !== 'object') continue;
    if (level > max) {
      max = level;
      if (max > stopAbove) return max;
    }
    for (const child of Array.isArray(node) ? node : Object.values(node)) {
      if (child !== null && typeof child === 'object') stack.push([child, level + 1]);
    }
  }
  return max;
}
