// Text bound for a log line (or the terminal of `check`) from any source: server replies, error
// messages, the user name, module arguments. Characters that can hide, reorder or break what a
// reader sees are replaced: C0/C1 controls, format characters (bidi overrides and isolates, zero
// widths, the BOM, tags), line and paragraph separators, and the other default-ignorable
// (invisible) code points such as fillers and variation selectors.

// deno-lint-ignore no-control-regex
const ASCII = /^[\x00-\x7f]*$/;
// deno-lint-ignore no-control-regex
const ASCII_UNSAFE = /[\x00-\x1f\x7f]/g;
// Built on first use: a Unicode-property pattern costs ~0.6 ms to create, paid on every forked
// login if it were a literal here (V8 parses it when the module is evaluated); plain ASCII, the
// usual line, needs only the control-character one.
let unsafe: RegExp | null = null;

/**
 * `s` with every such character replaced by `by`, or by what `by` makes of it (a lone surrogate
 * becomes U+FFFD).
 */
export function neutralise(s: string, by: string | ((c: string) => string) = "?"): string {
  const replace = (t: string, re: RegExp) =>
    typeof by === "string" ? t.replace(re, by) : t.replace(re, by);
  if (ASCII.test(s)) return replace(s, ASCII_UNSAFE);
  unsafe ??= new RegExp("[\\p{Cc}\\p{Cf}\\p{Zl}\\p{Zp}\\p{Default_Ignorable_Code_Point}]", "gu");
  return replace(s.toWellFormed(), unsafe);
}

/**
 * `s` with every such character shown as an escape (`\x1b`, `\u202e`, `\u{e0001}`): for a terminal,
 * where the reader should see that something was there, and nothing can move the cursor.
 */
export function escapeUnsafe(s: string): string {
  return neutralise(s, (c) => {
    const n = c.codePointAt(0)!;
    const hex = n.toString(16);
    return n < 0x100 ? `\\x${hex.padStart(2, "0")}` : n < 0x10000 ? `\\u${hex}` : `\\u{${hex}}`;
  });
}
