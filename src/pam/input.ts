// Local checks on the user name and password, made before any server is contacted (pam_mapi(8), RETURN VALUES):
// what fails here is refused with PAM_AUTH_ERR and no request is sent anywhere.
import { isUtf8 } from "../common/utf8.ts";

export const MAX_USER_BYTES = 256;
export const MAX_PASSWORD_BYTES = 512;

/** The password stays bytes (a string cannot be wiped): the request's, checked in place. */
export type Credentials = { ok: true; user: string; password: Uint8Array } | {
  ok: false;
  /** Short reason for the log line; never contains the password. */
  reason: string;
};

// deno-lint-ignore no-control-regex
const USER_FORBIDDEN = /[\x00-\x1f\x7f-\x9f\ufffe\uffff]/;

/**
 * Whether the (well-formed UTF-8) password holds what XML 1.0 cannot carry: C0 controls other
 * than tab, LF and CR, or U+FFFE/U+FFFF (EF BF BE, EF BF BF). Checked on the bytes.
 */
function xmlCannotCarry(p: Uint8Array): boolean {
  for (let i = 0; i < p.length; i++) {
    const c = p[i];
    if (c < 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) return true;
    if (c === 0xef && p[i + 1] === 0xbf && (p[i + 2] === 0xbe || p[i + 2] === 0xbf)) return true;
  }
  return false;
}

function utf8(bytes: Uint8Array): string | null {
  try {
    return new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    return null;
  }
}

export function checkCredentials(user: Uint8Array, password: Uint8Array): Credentials {
  if (user.length === 0) return { ok: false, reason: "invalid user name (empty)" };
  if (user.length > MAX_USER_BYTES) {
    return { ok: false, reason: `invalid user name (longer than ${MAX_USER_BYTES} bytes)` };
  }
  const u = utf8(user);
  if (u === null) return { ok: false, reason: "invalid user name (not valid UTF-8)" };
  if (USER_FORBIDDEN.test(u)) {
    return { ok: false, reason: "invalid user name (control characters)" };
  }
  if (password.length === 0) return { ok: false, reason: "empty password" };
  if (password.length > MAX_PASSWORD_BYTES) {
    return { ok: false, reason: `invalid password (longer than ${MAX_PASSWORD_BYTES} bytes)` };
  }
  if (!isUtf8(password)) return { ok: false, reason: "invalid password (not valid UTF-8)" };
  if (xmlCannotCarry(password)) {
    return {
      ok: false,
      reason: "invalid password (control characters that XML cannot carry to the server)",
    };
  }
  return { ok: true, user: u, password };
}
