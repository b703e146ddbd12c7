// The sim's user database: the users it knows, their ids, address-book entry ids and details.
// Names are looked up case-insensitively, like the db/LDAP user plugins of a real server.

import {
  KCERR,
  MAPI_MAILUSER,
  MUIDECSAB,
  OBJCLASS_ACTIVE_USER,
  OBJCLASS_NONACTIVE_USER,
  SYSTEM_USER,
  SYSTEM_USER_ID,
} from "./constants.ts";
import { base64 } from "./envelope.ts";

/** A user as configured (the JSON that --users takes is an array of these). */
export interface SimUser {
  name: string;
  password: string;
  /** Features explicitly enabled for this user (kopano-admin --enable-feature). */
  enabled?: string[];
  /** Features explicitly disabled for this user; these win over `enabled`. */
  disabled?: string[];
  /** Kopano administrator (ulIsAdmin 1); may impersonate others. Default false. */
  admin?: boolean;
  /** Active (can log on with a password). Default true. */
  active?: boolean;
  /** Object id; default: 3, 4, 5, ... in list order (1 is SYSTEM, 2 is Everyone). */
  id?: number;
  /** Default "Name Example" (first letter upper-cased). */
  fullName?: string;
  /** Default name@example.com. */
  email?: string;
}

/** The users of the 11.0.2 captures (alice 3, bob 4, kadmin 5; tests/fixtures/kopano-11.0.2). */
export const DEFAULT_USERS: readonly SimUser[] = [
  { name: "alice", password: "secret" },
  { name: "bob", password: "bobpass", enabled: ["imap"], disabled: ["pop3"] },
  { name: "kadmin", password: "adminpass", admin: true, fullName: "Kopano Admin" },
];

/**
 * Every user of the captured servers: the 8.7.85 one (tests/fixtures/kopano-8.7.85) also has
 * passwords that need escaping or are not ASCII, and a user name with a domain. Their ids are not
 * in the captures (no getUser for them): 6, 7, 8 here.
 */
export const CAPTURED_USERS: readonly SimUser[] = [
  ...DEFAULT_USERS,
  { name: "carol", password: `p&<ss>"'w]]>rd` },
  { name: "dave", password: "pässwörd€ ok" },
  {
    name: "erin@example.com",
    password: "erinpass",
    fullName: "Erin Example",
    email: "erin@example.com",
  },
];

export interface DirUser {
  id: number;
  name: string;
  password: string | null; // null: cannot log on with a password (SYSTEM)
  enabled: string[];
  disabled: string[];
  admin: number; // ulIsAdmin: 0 user, 1 admin, 2 system admin
  active: boolean;
  fullName: string;
  email: string;
  objClass: number;
  entryId: Uint8Array;
  externId: string; // base64 text stored inside the entry id
}

const KEYS = new Set([
  "name",
  "password",
  "enabled",
  "disabled",
  "admin",
  "active",
  "id",
  "fullName",
  "email",
]);

/** Checks a parsed --users document; throws an Error naming the first problem. */
export function validateUsers(data: unknown): SimUser[] {
  if (!Array.isArray(data)) throw new Error("users: expected a JSON array of user objects");
  const seen = new Set<string>();
  const ids = new Set<number>();
  return data.map((u, i) => {
    const where = `users[${i}]`;
    if (typeof u !== "object" || u === null || Array.isArray(u)) {
      throw new Error(`${where}: not an object`);
    }
    for (const k of Object.keys(u)) {
      if (!KEYS.has(k)) throw new Error(`${where}: unknown key "${k}"`);
    }
    const r = u as Record<string, unknown>;
    if (typeof r.name !== "string" || r.name === "") {
      throw new Error(`${where}.name: non-empty string required`);
    }
    if (typeof r.password !== "string") throw new Error(`${where}.password: string required`);
    for (const k of ["enabled", "disabled"]) {
      if (
        r[k] !== undefined &&
        !(Array.isArray(r[k]) && (r[k] as unknown[]).every((x) => typeof x === "string"))
      ) {
        throw new Error(`${where}.${k}: array of strings required`);
      }
    }
    for (const k of ["admin", "active"]) {
      if (r[k] !== undefined && typeof r[k] !== "boolean") {
        throw new Error(`${where}.${k}: boolean required`);
      }
    }
    for (const k of ["fullName", "email"]) {
      if (r[k] !== undefined && typeof r[k] !== "string") {
        throw new Error(`${where}.${k}: string required`);
      }
    }
    if (
      r.id !== undefined &&
      !(Number.isInteger(r.id) && (r.id as number) > 2 && (r.id as number) < 2 ** 32)
    ) {
      throw new Error(`${where}.id: integer > 2 required (1 and 2 are SYSTEM and Everyone)`);
    }
    const key = (r.name as string).toLowerCase();
    if (seen.has(key) || key === SYSTEM_USER.toLowerCase()) {
      throw new Error(`${where}: duplicate name "${r.name}"`);
    }
    seen.add(key);
    if (r.id !== undefined) {
      if (ids.has(r.id as number)) throw new Error(`${where}: duplicate id ${r.id}`);
      ids.add(r.id as number);
    }
    return r as unknown as SimUser;
  });
}

/** Kopano AB entry id, version 1: flags, MUIDECSAB, version, type, id, extern id text, NUL pad. */
export function makeEntryId(id: number, externId: string): Uint8Array {
  const ext = new TextEncoder().encode(externId);
  const len = Math.ceil((32 + ext.length + 1) / 4) * 4;
  const out = new Uint8Array(len);
  const dv = new DataView(out.buffer);
  out.set(MUIDECSAB, 4);
  dv.setUint32(20, 1, true);
  dv.setUint32(24, MAPI_MAILUSER, true);
  dv.setUint32(28, id, true);
  out.set(ext, 32);
  return out;
}

async function externIdFor(name: string): Promise<string> {
  // Stable across runs: derived from the name, 16 bytes like the db plugin's object ids.
  const digest = await crypto.subtle.digest(
    "SHA-256",
    new TextEncoder().encode(`kopano-sim:${name}`),
  );
  return base64(new Uint8Array(digest).subarray(0, 16));
}

function defaultFullName(name: string): string {
  return `${name.charAt(0).toUpperCase()}${name.slice(1)} Example`;
}

export class Directory {
  #byName = new Map<string, DirUser>();
  #byId = new Map<number, DirUser>();
  #byExtern = new Map<string, DirUser>();

  private constructor() {}

  static async create(users: readonly SimUser[]): Promise<Directory> {
    const dir = new Directory();
    const taken = new Set(users.map((u) => u.id).filter((x): x is number => x !== undefined));
    let next = 3;
    const system: SimUser = {
      name: SYSTEM_USER,
      password: "",
      id: SYSTEM_USER_ID,
      fullName: SYSTEM_USER,
    };
    for (const u of [system, ...users]) {
      let id = u.id;
      if (id === undefined) {
        while (taken.has(next)) next++;
        id = next++;
      }
      const isSystem = u === system;
      const externId = await externIdFor(u.name);
      const active = u.active ?? true;
      const user: DirUser = {
        id,
        name: u.name,
        password: isSystem ? null : u.password,
        enabled: [...(u.enabled ?? [])],
        disabled: [...(u.disabled ?? [])],
        admin: isSystem ? 2 : u.admin ? 1 : 0,
        active,
        fullName: u.fullName ?? defaultFullName(u.name),
        email: u.email ?? (isSystem ? "" : `${u.name}@example.com`),
        objClass: active ? OBJCLASS_ACTIVE_USER : OBJCLASS_NONACTIVE_USER,
        entryId: makeEntryId(id, externId),
        externId,
      };
      dir.#byName.set(u.name.toLowerCase(), user);
      dir.#byId.set(id, user);
      dir.#byExtern.set(externId, user);
    }
    return dir;
  }

  byName(name: string): DirUser | undefined {
    return this.#byName.get(name.toLowerCase());
  }

  byId(id: number): DirUser | undefined {
    return this.#byId.get(id);
  }

  /** Resolves an address-book entry id: the extern id inside wins over the numeric id. */
  byEntryId(eid: Uint8Array): DirUser | { error: number } {
    if (eid.length < 32) return { error: KCERR.INVALID_PARAMETER };
    for (let i = 0; i < 16; i++) {
      if (eid[4 + i] !== MUIDECSAB[i]) return { error: KCERR.INVALID_PARAMETER };
    }
    const dv = new DataView(eid.buffer, eid.byteOffset, eid.byteLength);
    const version = dv.getUint32(20, true);
    const id = dv.getUint32(28, true);
    let ext = "";
    if (version >= 1) {
      const rest = eid.subarray(32);
      const nul = rest.indexOf(0);
      ext = new TextDecoder().decode(nul === -1 ? rest : rest.subarray(0, nul));
    }
    const user = ext !== "" ? this.#byExtern.get(ext) : this.#byId.get(id);
    return user ?? { error: KCERR.NOT_FOUND };
  }
}
