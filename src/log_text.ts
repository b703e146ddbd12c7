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

/** `s` with every such character replaced by `by` (a lone surrogate becomes U+FFFD). */
export function neutralise(s: string, by = "?"): string {
  if (ASCII.test(s)) return s.replace(ASCII_UNSAFE, by);
  unsafe ??= new RegExp("[\\p{Cc}\\p{Cf}\\p{Zl}\\p{Zp}\\p{Default_Ignorable_Code_Point}]", "gu");
  return s.toWellFormed().replace(unsafe, by);
}
