// Narrows the permissions the built helper starts with (--allow-net --allow-read --allow-write,
// see scripts/lib/helper_build.ts) to what this configuration needs, right after the arguments
// are parsed. Deno cannot narrow a global grant to one path or host, but it can drop a whole
// permission: a helper talking plain HTTP then cannot read or write any file at all.
import type { Config } from "./args.ts";

export type PermissionName = "net" | "read" | "write";

/** What the configuration needs before and after the CA certificates are loaded. */
export function neededPermissions(
  cfg: Config,
): { early: Set<PermissionName>; late: Set<PermissionName> } {
  const unix = cfg.sockets.some((s) => s.kind === "unix");
  const tcp = cfg.sockets.some((s) => s.kind !== "unix");
  const https = cfg.sockets.some((s) => s.kind === "https");
  const late = new Set<PermissionName>();
  // Deno asks for read and write access to the path to connect to a UNIX socket, and for net
  // access to "unix:PATH" besides.
  if (unix) late.add("read").add("write").add("net");
  if (tcp) late.add("net");
  const early = new Set(late);
  if (https) early.add("read"); // the CA bundle or cafile= is read once, then read goes
  return { early, late };
}

// Never needed by the helper; revoked too in case it was started with more than the build grants.
const NEVER = ["env", "run", "ffi", "sys", "import"] as const;

/** Revokes every permission not in `keep`. */
export function revokeAllBut(keep: Set<PermissionName>): void {
  for (const name of ["net", "read", "write"] as const) {
    if (!keep.has(name)) Deno.permissions.revokeSync({ name });
  }
  for (const name of NEVER) Deno.permissions.revokeSync({ name });
}

/** After revokeAllBut(before): revokes what `before` kept and `after` does not (each revocation
 * is an op call, paid on every https:// login, so the rest is not revoked twice). */
export function revokeNoLongerNeeded(
  before: Set<PermissionName>,
  after: Set<PermissionName>,
): void {
  for (const name of before) if (!after.has(name)) Deno.permissions.revokeSync({ name });
}
