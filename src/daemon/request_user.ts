// The user a request names, from its first bytes, also when the rest never came: for the log lines
// of the logins the resident helper does not decide (busy, not received in time), which should say
// whose login it was (docs/protocol.md §7.3). Only the module's own layout is read,
// `{"v":1,"user":"BASE64"` with any JSON whitespace, and nothing after the user's closing quote (the
// password follows it).
import { logValue } from "../pam/authenticate.ts";
import { decodeBase64, ProtocolError } from "../pam/protocol.ts";

/** Enough for the module's longest user (256 bytes, 344 in base64) and what comes before it. */
export const USER_PREFIX_BYTES = 512;
const PREFIX =
  /^[ \t\n\r]*\{[ \t\n\r]*"v"[ \t\n\r]*:[ \t\n\r]*1[ \t\n\r]*,[ \t\n\r]*"user"[ \t\n\r]*:[ \t\n\r]*"([A-Za-z0-9+/=]{0,344})"/;
const lossy = new TextDecoder("utf-8", { ignoreBOM: true });
const ascii = new TextEncoder();

/** `user=NAME` as every user= field is logged, or null when the bytes do not name one (yet). */
export function userField(bytes: Uint8Array): string | null {
  // Up to the sixth '"', the user's closing quote in that layout: never a byte of the password.
  let text = "";
  for (let i = 0, quotes = 0; i < Math.min(bytes.length, USER_PREFIX_BYTES) && quotes < 6; i++) {
    if (bytes[i] === 0x22) quotes++;
    text += String.fromCharCode(bytes[i]); // what PREFIX matches is ASCII
  }
  const m = PREFIX.exec(text);
  if (!m) return null;
  try {
    return `user=${logValue(lossy.decode(decodeBase64(ascii.encode(m[1]), "user")))}`;
  } catch (e) {
    if (e instanceof ProtocolError) return null;
    throw e;
  }
}
