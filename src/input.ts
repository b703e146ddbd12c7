// Local checks on the user name and password, made before any server is contacted (SPEC §3):
// what fails here is refused with PAM_AUTH_ERR and no request is sent anywhere.

export const MAX_USER_BYTES = 256;
export const MAX_PASSWORD_BYTES = 512;

export type Credentials = { ok: true; user: string; password: string } | {
  ok: false;
  /** Short reason for the log line; never contains the password. */
  reason: string;
};

// deno-lint-ignore no-control-regex
const USER_FORBIDDEN = /[\x00-\x1f\x7f-\x9f\ufffe\uffff]/;
// XML 1.0 cannot carry C0 controls other than tab, LF and CR, nor U+FFFE/U+FFFF.
// deno-lint-ignore no-control-regex
const PASSWORD_FORBIDDEN = /[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]/;

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
  const p = utf8(password);
  if (p === null) return { ok: false, reason: "invalid password (not valid UTF-8)" };
  if (PASSWORD_FORBIDDEN.test(p)) {
    return {
      ok: false,
      reason: "invalid password (control characters that XML cannot carry to the server)",
    };
  }
  return { ok: true, user: u, password: p };
}
