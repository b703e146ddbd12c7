// Which capture of each generation is the real server's answer to what, so that a test can feed
// the helper the same situation from Kopano 11.0.2 and from Kopano 8.7.85 and expect the same
// decision. Both servers were set up alike (tests/fixtures/*/README.md): alice/secret, bob/bobpass
// with imap enabled and pop3 disabled for him, disabled_features = imap mobile.
import { type CapturedReply, capturedReply, type Generation, GENERATIONS } from "./captures.ts";

export interface GenerationReplies {
  generation: Generation;
  /** lpszVersion of a successful logon. */
  serverVersion: string;
  /** alice, right password: er 0 and a session. */
  logonAccepted: CapturedReply;
  /** alice, wrong password: er KCERR_LOGON_FAILED. */
  logonWrongPassword: CapturedReply;
  /** An unknown user: byte-identical to the wrong password. */
  logonUnknownUser: CapturedReply;
  /** alice, right password, no UNICODE capability: 11.0.2 er BAD_CHARWIDTH, 8.7 an HTTP 500 fault. */
  logonNoUnicode: CapturedReply;
  /** alice, right password, over the UNIX socket with ulFlags 1 (the password checked). */
  unixLogonAccepted: CapturedReply;
  /** getUser of alice's own session: enabled outlook pop3 webapp, disabled imap mobile. */
  getUserAlice: CapturedReply;
  /** getUser of bob's own session: enabled imap outlook webapp, disabled mobile pop3. */
  getUserBob: CapturedReply;
  /** getUser with a session id the server does not know: er KCERR_END_OF_SESSION. */
  getUserDeadSession: CapturedReply;
  /** logoff of a live session: result 0. */
  logoff: CapturedReply;
  /** A method the server does not have: HTTP 500, SOAP fault. */
  unknownMethod: CapturedReply;
}

type Role = Exclude<keyof GenerationReplies, "generation" | "serverVersion">;

/** Each generation's version string and capture names, role by role. */
const CAPTURES: Record<Generation, { serverVersion: string; names: Record<Role, string> }> = {
  "11.0.2": {
    serverVersion: "0,11,0,2",
    names: {
      logonAccepted: "a1_logon_alice_correct_password",
      logonWrongPassword: "a2_logon_alice_wrong_password",
      logonUnknownUser: "a3_logon_unknown_user",
      logonNoUnicode: "a4_logon_alice_no_unicode_cap",
      unixLogonAccepted: "e5_unix_uid1_daemon_alice_correct_password",
      getUserAlice: "c1_getUser_self_alice",
      getUserBob: "c6_getUser_self_bob",
      getUserDeadSession: "b4_getUser_bogus_session_id",
      logoff: "b1_logoff_alice",
      unknownMethod: "d1_unknown_method_logonBogus",
    },
  },
  "8.7.85": {
    serverVersion: "0,8,7,85",
    names: {
      logonAccepted: "http_logon_alice_right_flags1",
      logonWrongPassword: "http_logon_alice_wrong_flags1",
      logonUnknownUser: "http_logon_unknown_user_flags1",
      logonNoUnicode: "http_logon_alice_no_unicode_cap",
      unixLogonAccepted: "unix_logon_alice_right_flags1",
      getUserAlice: "http_getUser_self_alice",
      getUserBob: "http_getUser_self_bob",
      getUserDeadSession: "http_getUser_bogus_session",
      logoff: "http_logoff_alice",
      unknownMethod: "http_unknown_method",
    },
  },
};

const cache = new Map<Generation, GenerationReplies>();

/** The replies of one generation (read once). */
export function repliesOf(generation: Generation): GenerationReplies {
  let r = cache.get(generation);
  if (!r) {
    const { serverVersion, names } = CAPTURES[generation];
    const replies = Object.entries(names).map(([role, name]) => [
      role,
      capturedReply(generation, name),
    ]);
    r = { generation, serverVersion, ...Object.fromEntries(replies) } as GenerationReplies;
    cache.set(generation, r);
  }
  return r;
}

/** The replies of every generation, newest first. */
export function everyGeneration(): GenerationReplies[] {
  return GENERATIONS.map(repliesOf);
}
