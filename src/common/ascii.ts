// Case folding for protocol words (feature names) that must not follow Unicode rules.
/** ASCII-only lower case: feature names are ASCII, and Unicode case mapping must not match them. */
export function asciiLower(s: string): string {
  return s.replace(/[A-Z]/g, (c) => String.fromCharCode(c.charCodeAt(0) + 32));
}
