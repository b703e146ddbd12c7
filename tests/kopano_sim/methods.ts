// The four SOAP methods the sim serves, with kopano-server's semantics (provider/libserver/cmd.cpp
// logon/logoff/getUser/resolveUsername and ECSessionManager::CreateSession, as described in the
// docs/kopano.md §2-§6) and the per-version differences from version.ts.

import {
  CAP,
  KCERR,
  LOGON_FLAG,
  PROP_DISABLED_FEATURES,
  PROP_ENABLED_FEATURES,
  SYSTEM_USER,
} from "./constants.ts";
import type { Directory, DirUser } from "./directory.ts";
import { XmlOut } from "./envelope.ts";
import { mergeFeatures } from "./features.ts";
import type { SessionTable } from "./sessions.ts";
import { type Call, clientFault, type ParamValue, type SoapFault } from "./soap_request.ts";
import type { ServerProfile } from "./version.ts";

/**
 * Who the sim assumes is on the other end of its UNIX socket (Deno cannot read SO_PEERCRED):
 * "admin"        a uid listed in local_admin_users (root, as when saslauthd runs as root) or
 *                the server's own uid: peer-credential logon works for every existing user;
 * "user"         any other uid: the password is always checked;
 * "local:NAME"   the Unix account NAME (allow_local_users): peer-credential logon only for the
 *                Kopano user of exactly that name.
 */
export type UnixPeer = "admin" | "user" | `local:${string}`;

export interface ServerState {
  profile: ServerProfile;
  directory: Directory;
  sessions: SessionTable;
  disabledFeatures: string;
  unixPeer: UnixPeer;
  serverGuid: Uint8Array;
}

export interface CallContext {
  transport: "tcp" | "tls" | "unix";
  /** Session binding key of the caller (see SessionTable). */
  origin: string;
}

export interface MethodResult {
  /** Inside of the SOAP body (when not a fault). */
  xml?: string;
  /** An HTTP 500 fault instead of an in-band reply (KC 10.0.0-10.0.2 BAD_CHARWIDTH). */
  fault?: SoapFault;
  /** The session asked for ENHANCED_ICS (chunked replies) or was granted compression. */
  chunked: boolean;
  gzip: boolean;
}

const EMPTY = new Uint8Array(0);

function peerAllows(peer: UnixPeer, user: string): boolean {
  if (peer === "admin") return true;
  if (peer.startsWith("local:")) return peer.slice(6) === user; // getpwnam: case-sensitive
  return false;
}

/** The "general" part of a client version as ParseKopanoVersion reads it; null = unknown. */
export function clientGeneral(version: string | null): number | null {
  if (version === null) return null;
  const s = version.startsWith("0,") ? version.slice(2) : version;
  // strtoul: blanks, optional sign, digits; general and major must be followed by ",".
  const m = /^[ \t\n\r\f\v]*([+-]?)(\d+),[ \t\n\r\f\v]*[+-]?\d+,[ \t\n\r\f\v]*[+-]?\d+(,|$)/.exec(
    s,
  );
  if (!m) return null;
  let g = BigInt(m[2]) & 0xFFFFFFFFFFFFFFFFn;
  if (m[1] === "-") g = (1n << 64n) - g;
  return Number(g & 0xFFn);
}

function licenseResponse(request: Uint8Array): Uint8Array {
  // Shaped like KC's: the licstream header of the request, then an opaque encrypted blob.
  const out = crypto.getRandomValues(new Uint8Array(64));
  out.set(request.subarray(0, 7));
  return out;
}

export class Methods {
  constructor(private st: ServerState) {}

  get #p(): ServerProfile {
    return this.st.profile;
  }

  /** Response element name: ZCP <= 7.1 declared most response structs without "ns:". */
  #resp(name: string): string {
    return this.#p.qualifiedResponses ? `ns:${name}` : name;
  }

  #out(): XmlOut {
    return new XmlOut(this.#p.gsoap);
  }

  serve(call: Call, ctx: CallContext): MethodResult {
    const a = call.args;
    switch (call.method) {
      case "logon":
        return this.#logon(a, ctx);
      case "logoff":
        return this.#logoff(a, ctx);
      case "getUser":
        return this.#getUser(a, ctx);
      case "resolveUsername":
        return this.#resolveUsername(a, ctx);
    }
    throw new Error(`unreachable: ${call.method}`);
  }

  #logonReply(
    er: number,
    o: {
      sid?: bigint;
      version?: string | null;
      caps?: number;
      license?: Uint8Array;
      guid?: Uint8Array;
    },
  ): string {
    const name = this.#resp("logonResponse");
    return this.#out().open(name)
      .num("er", er)
      .num("ulSessionId", o.sid ?? 0n)
      .str("lpszVersion", o.version ?? null)
      .num("ulCapabilities", o.caps ?? 0)
      .b64("sLicenseResponse", o.license ?? EMPTY)
      .b64("sServerGuid", o.guid ?? EMPTY)
      .close(name).toString();
  }

  #logon(a: Record<string, ParamValue>, ctx: CallContext): MethodResult {
    const p = this.#p;
    const plain = { chunked: false, gzip: false };
    const caps = a.ulCapabilities as number;
    const flags = (a.ulFlags as number | undefined) ?? 0; // not a parameter before ZCP 7.1.1
    const user = a.szUsername as string | null;
    const pass = a.szPassword as string | null;
    const imp = a.szImpersonateUser as string | null | undefined; // undefined before ZCP 7.1.4

    if (!(caps & CAP.UNICODE)) {
      switch (p.badCharWidth) {
        case "kcerr-er":
          return { xml: this.#logonReply(KCERR.BAD_CHARWIDTH, {}), ...plain };
        case "mapi-er":
          return { xml: this.#logonReply(KCERR.MAPI_E_BAD_CHARWIDTH, {}), ...plain };
        case "fault":
          return { fault: clientFault("Error -2147221245"), ...plain };
        case "accept":
          break;
      }
    }
    // KC fills version and caps before authenticating; ZCP only after success.
    const failed = (er: number): MethodResult => ({
      xml: this.#logonReply(
        er,
        p.versionOnFailure ? { version: p.lpszVersion, caps: p.latestCaps } : {},
      ),
      ...plain,
    });

    let authed: DirUser | undefined;
    let method: "password" | "socket" = "password";
    // 1. UNIX peer credentials, unless NO_UID_AUTH (ZCP >= 7.1.1) or no szImpersonateUser
    //    element (KC/ZCP >= 7.1.4 refuse socket logon with a NULL impersonation name).
    const uidAuth = !(flags & LOGON_FLAG.NO_UID_AUTH) && (imp !== null);
    if (
      ctx.transport === "unix" && uidAuth && user !== null && peerAllows(this.st.unixPeer, user)
    ) {
      authed = this.st.directory.byName(user); // any existing user, even inactive
      method = "socket";
    }
    // 2. Password: SYSTEM never; only active users.
    if (
      !authed && user !== null && pass !== null && user.toLowerCase() !== SYSTEM_USER.toLowerCase()
    ) {
      const u = this.st.directory.byName(user);
      if (u && u.active && u.password !== null && u.password === pass) {
        authed = u;
        method = "password";
      }
    }
    let sessionUser = authed;
    if (authed && imp) {
      const target = this.st.directory.byName(imp);
      sessionUser = target && authed.admin > 0 ? target : undefined;
    }
    // Every failure looks the same: unknown user, wrong password, inactive, impersonation.
    if (!sessionUser) return failed(KCERR.LOGON_FAILED);

    const compress = p.compressWhenAsked && (caps & CAP.COMPRESSION) !== 0;
    const sessionCaps = compress ? caps : caps & ~CAP.COMPRESSION;
    const register = !(p.knowsNoRegisterSession && (flags & LOGON_FLAG.NO_REGISTER_SESSION));
    const sid = this.st.sessions.newId((caps & CAP.LARGE_SESSIONID) !== 0);
    if (register) {
      this.st.sessions.add({
        id: sid,
        user: sessionUser,
        origin: ctx.origin,
        transport: ctx.transport,
        caps: sessionCaps,
        method,
        clientVersion: (a.szVersion as string | null) ?? null,
      });
      // Checked after the session exists, which is then left to time out (cmd.cpp).
      const general = clientGeneral(a.szVersion as string | null);
      if (general !== null && general < 6) return failed(KCERR.INVALID_VERSION);
    }
    let replyCaps = p.latestCaps |
      (caps & (CAP.MULTI_SERVER | CAP.ENHANCED_ICS | CAP.UNICODE | CAP.MSGLOCK));
    if (compress) replyCaps |= CAP.COMPRESSION;
    const lic = a.sLicenseReq as Uint8Array | null;
    const xml = this.#logonReply(0, {
      sid,
      version: p.lpszVersion,
      caps: replyCaps,
      license: lic && lic.length > 0 ? licenseResponse(lic) : EMPTY,
      guid: this.st.serverGuid,
    });
    return { xml, chunked: compress || (caps & CAP.ENHANCED_ICS) !== 0, gzip: compress };
  }

  /** Framing of replies to calls on a valid session. */
  #framing(caps: number): { chunked: boolean; gzip: boolean } {
    const gzip = (caps & CAP.COMPRESSION) !== 0;
    return { chunked: gzip || (caps & CAP.ENHANCED_ICS) !== 0, gzip };
  }

  #logoff(a: Record<string, ParamValue>, ctx: CallContext): MethodResult {
    const s = this.st.sessions.validate(a.ulSessionId as bigint, ctx.origin);
    const xml = (result: number) =>
      this.#out().open("ns:logoffResponse").num("result", result).close("ns:logoffResponse")
        .toString();
    if (!s) return { xml: xml(KCERR.END_OF_SESSION), chunked: false, gzip: false };
    this.st.sessions.remove(s.id);
    return { xml: xml(0), ...this.#framing(s.caps) };
  }

  #userXml(out: XmlOut, u: DirUser): void {
    const f = mergeFeatures(this.#p.features, this.st.disabledFeatures, u.enabled, u.disabled);
    out.open("lpsUser")
      .num("ulUserId", u.id)
      .str("lpszUsername", u.name)
      .str("lpszPassword", "")
      .str("lpszMailAddress", u.email)
      .str("lpszFullName", u.fullName)
      .str("lpszServername", "")
      .num("ulIsNonActive", 0)
      .num("ulIsAdmin", u.admin)
      .num("ulIsABHidden", 0)
      .num("ulCapacity", 0)
      .num("ulObjClass", u.objClass)
      .open("lpsMVPropmap")
      .open("item").num("ulPropId", PROP_ENABLED_FEATURES).strArray("sValues", f.enabled).close(
        "item",
      )
      .open("item").num("ulPropId", PROP_DISABLED_FEATURES).strArray("sValues", f.disabled).close(
        "item",
      )
      .close("lpsMVPropmap")
      .b64("sUserId", u.entryId)
      .close("lpsUser");
  }

  #getUser(a: Record<string, ParamValue>, ctx: CallContext): MethodResult {
    const name = this.#resp("getUserResponse");
    const only = (er: number, framing = { chunked: false, gzip: false }): MethodResult => ({
      xml: this.#out().open(name).num("er", er).close(name).toString(),
      ...framing,
    });
    const s = this.st.sessions.validate(a.ulSessionId as bigint, ctx.origin);
    if (!s) return only(KCERR.END_OF_SESSION);
    const framing = this.#framing(s.caps);
    const userId = a.ulUserId as number;
    const eid = a.sUserId as Uint8Array | null; // null: element absent
    let target: DirUser | undefined;
    if (userId === 0 && (eid === null || eid.length === 0)) {
      target = s.user; // 0 + no entry id = the logged-on user
    } else if (eid !== null) {
      if (eid.length === 0) return only(KCERR.INVALID_PARAMETER, framing); // fixture c2
      const r = this.st.directory.byEntryId(eid);
      if ("error" in r) return only(r.error, framing);
      target = r;
    } else {
      // No sUserId element at all: the server falls back to the pre-6.20 numeric id.
      target = this.st.directory.byId(userId);
      if (!target) return only(KCERR.NOT_FOUND, framing);
    }
    const out = this.#out().open(name);
    this.#userXml(out, target);
    return { xml: out.num("er", 0).close(name).toString(), ...framing };
  }

  #resolveUsername(a: Record<string, ParamValue>, ctx: CallContext): MethodResult {
    const name = this.#resp("resolveUserResponse");
    const reply = (er: number, u?: DirUser) =>
      this.#out().open(name).num("ulUserId", u?.id ?? 0).b64("sUserId", u?.entryId ?? EMPTY)
        .num("er", er).close(name).toString();
    const s = this.st.sessions.validate(a.ulSessionId as bigint, ctx.origin);
    if (!s) return { xml: reply(KCERR.END_OF_SESSION), chunked: false, gzip: false };
    const framing = this.#framing(s.caps);
    const wanted = a.lpszUsername as string | null;
    if (wanted === null) return { xml: reply(KCERR.INVALID_PARAMETER), ...framing };
    const u = this.st.directory.byName(wanted);
    if (!u) return { xml: reply(KCERR.NOT_FOUND), ...framing };
    return { xml: reply(0, u), ...framing };
  }
}
