// UTF-8 checked on the bytes, for what must not become a JavaScript string: the request (it holds
// the password in base64) and the password itself. A string cannot be wiped, and V8 may keep
// copies of it until they are collected and overwritten, long after the login.

/** Whether `b` is well-formed UTF-8 (RFC 3629: shortest forms only, no surrogates, U+10FFFF). */
export function isUtf8(b: Uint8Array): boolean {
  for (let i = 0; i < b.length;) {
    const c = b[i];
    if (c < 0x80) {
      i++;
      continue;
    }
    let more: number;
    let cp: number;
    let min: number;
    if (c >= 0xc2 && c <= 0xdf) [more, cp, min] = [1, c & 0x1f, 0x80];
    else if (c >= 0xe0 && c <= 0xef) [more, cp, min] = [2, c & 0x0f, 0x800];
    else if (c >= 0xf0 && c <= 0xf4) [more, cp, min] = [3, c & 0x07, 0x10000];
    else return false;
    for (let k = 1; k <= more; k++) {
      const d = b[i + k]; // undefined past the end: not a continuation byte
      if ((d & 0xc0) !== 0x80) return false;
      cp = (cp << 6) | (d & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    i += more + 1;
  }
  return true;
}

/** Appends `cp` as UTF-8 to `out` at `o`; returns the new offset. */
export function putUtf8(out: Uint8Array, o: number, cp: number): number {
  if (cp < 0x80) {
    out[o++] = cp;
  } else if (cp < 0x800) {
    out[o++] = 0xc0 | (cp >> 6);
    out[o++] = 0x80 | (cp & 0x3f);
  } else if (cp < 0x10000) {
    out[o++] = 0xe0 | (cp >> 12);
    out[o++] = 0x80 | ((cp >> 6) & 0x3f);
    out[o++] = 0x80 | (cp & 0x3f);
  } else {
    out[o++] = 0xf0 | (cp >> 18);
    out[o++] = 0x80 | ((cp >> 12) & 0x3f);
    out[o++] = 0x80 | ((cp >> 6) & 0x3f);
    out[o++] = 0x80 | (cp & 0x3f);
  }
  return o;
}
