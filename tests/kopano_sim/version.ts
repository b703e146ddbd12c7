// What changes with the emulated server version (--version X.Y.Z[.REV]). Every switch here is a
// behaviour difference between Zarafa/Kopano generations that a client can observe; the
// boundaries come from docs/kopano.md (§2, §5, §6).

export type BadCharWidthMode =
  | "accept" // ZCP and KC < 8.7.81 accepted non-Unicode clients (strings as cp1252)
  | "fault" // KC 8.7.81 - 10.0.2 returned the code from the handler: HTTP 500 "Error -2147221245"
  | "mapi-er" // KC 10.0.3 - 11.0.1: er = MAPI_E_BAD_CHARWIDTH 2147746051
  | "kcerr-er"; // KC >= 11.0.2: er = KCERR_BAD_CHARWIDTH 2147483697

export interface ServerProfile {
  /** The version as given, e.g. "11.0.2". */
  text: string;
  major: number;
  minor: number;
  micro: number;
  /** Build number used in 5-part lpszVersion strings (KC 8.0-8.4, ZCP). */
  revision: number;
  /** Kopano (>= 8) rather than Zarafa. */
  kopano: boolean;
  /** lpszVersion of a successful logon, e.g. "0,11,0,2" or "0,7,1,11,0". */
  lpszVersion: string;
  /** The server's own capability bits (KOPANO_LATEST_CAPABILITIES of that release). */
  latestCaps: number;
  /** Feature names the release knows (m4lcommon/ECFeatureList.h of that release). */
  features: readonly string[];
  badCharWidth: BadCharWidthMode;
  /** Failed logons still carry lpszVersion and the latest caps (KC); ZCP sends neither. */
  versionOnFailure: boolean;
  /** ulFlags is a logon parameter and bit 0x1 (NO_UID_AUTH) is honoured (ZCP >= 7.1.1). */
  honoursNoUidAuth: boolean;
  /** szImpersonateUser is a logon parameter (ZCP >= 7.1.4); socket logon then needs it present. */
  knowsImpersonation: boolean;
  /** ulFlags bit 0x2 (NO_REGISTER_SESSION) is honoured (KC >= 8.5.0). */
  knowsNoRegisterSession: boolean;
  /** Response structs are ns-qualified (ZCP >= 7.2); older ones answer <logonResponse>. */
  qualifiedResponses: boolean;
  /** gSOAP generation: 2.7.13 bundled up to ZCP 7.1, system 2.8 afterwards. */
  gsoap: "2.7" | "2.8";
  /** ZCP compressed replies whenever the client asked; KC judges loopback "local" and never does. */
  compressWhenAsked: boolean;
}

type V = [number, number, number];

function cmp(a: V, b: V): number {
  for (let i = 0; i < 3; i++) {
    if (a[i] !== b[i]) return a[i] < b[i] ? -1 : 1;
  }
  return 0;
}

const ge = (a: V, b: V) => cmp(a, b) >= 0;
const lt = (a: V, b: V) => cmp(a, b) < 0;

function latestCaps(v: V): number {
  if (lt(v, [7, 1, 1])) return 0x00A8; // ZCP 7.1.0 hard-coded
  if (lt(v, [7, 1, 4])) return 0x08A8;
  // GIFN32 (0x8000) arrived in KC 8.5.6 and 8.6.1 (not 8.6.0).
  const gifn32 = (ge(v, [8, 5, 6]) && lt(v, [8, 6, 0])) || ge(v, [8, 6, 1]);
  return gifn32 ? 0x98A8 : 0x18A8;
}

function features(v: V): string[] {
  const list = ["imap", "pop3"];
  if (ge(v, [8, 0, 0])) list.push("mobile");
  if (ge(v, [8, 1, 0])) list.push("outlook");
  if (ge(v, [8, 6, 0])) list.push("webapp");
  return list;
}

function badCharWidth(v: V): BadCharWidthMode {
  if (lt(v, [8, 7, 81])) return "accept";
  if (lt(v, [10, 0, 3])) return "fault";
  if (lt(v, [11, 0, 2])) return "mapi-er";
  return "kcerr-er";
}

/** Parses "G.M.m" or "G.M.m.REV" and derives the profile; throws on anything else. */
export function serverProfile(text: string): ServerProfile {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,5})(?:\.(\d{1,9}))?$/.exec(text);
  if (!m) throw new Error(`invalid server version "${text}" (expected X.Y.Z, e.g. 11.0.2)`);
  const v: V = [Number(m[1]), Number(m[2]), Number(m[3])];
  const revision = m[4] === undefined ? 0 : Number(m[4]);
  const kopano = v[0] >= 8;
  // KC >= 8.5 dropped the build number from the version it reports.
  const lpszVersion = ge(v, [8, 5, 0]) ? `0,${v.join(",")}` : `0,${v.join(",")},${revision}`;
  return {
    text,
    major: v[0],
    minor: v[1],
    micro: v[2],
    revision,
    kopano,
    lpszVersion,
    latestCaps: latestCaps(v),
    features: features(v),
    badCharWidth: badCharWidth(v),
    versionOnFailure: kopano,
    honoursNoUidAuth: ge(v, [7, 1, 1]),
    knowsImpersonation: ge(v, [7, 1, 4]),
    knowsNoRegisterSession: ge(v, [8, 5, 0]),
    qualifiedResponses: ge(v, [7, 2, 0]),
    gsoap: lt(v, [7, 2, 0]) ? "2.7" : "2.8",
    compressWhenAsked: !kopano,
  };
}
