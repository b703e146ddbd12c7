// Check 1 of docs/protocol.md §7.2: would the shim trust the resident helper's socket path? The
// same walk as the shim's shim/path_check.c: every directory a name is looked up in (on the path as
// written and inside every symlink's target) must be owned by root or the service account and not
// writable by group or others, sticky or not (while no daemon listens, anyone could take a free
// name in a sticky directory such as /tmp, and hold the logins hostage); so every symlink met is
// theirs too, and the socket itself must be theirs. `serve` refuses to start where this fails;
// `status` spells it out.

/** The packaged socket path (the shim's default for daemon=). */
export const DEFAULT_DAEMON_SOCKET = "/run/pam_mapi/helper.sock";
/** The packaged service account the daemon runs as. */
export const SERVICE_ACCOUNT = "pam_mapi";
/** Longest UNIX socket path Linux accepts (sun_path is 108 bytes including the NUL). */
export const MAX_SOCKET_PATH = 107;
const MAX_LINKS = 40;

/** The uid of `name` in /etc/passwd (the service account is a local system account), or null. */
export function accountUid(name: string, passwd = "/etc/passwd"): number | null {
  let text: string;
  try {
    text = Deno.readTextFileSync(passwd);
  } catch {
    return null;
  }
  for (const line of text.split("\n")) {
    const f = line.split(":");
    if (f[0] === name && f.length >= 7 && /^[0-9]{1,10}$/.test(f[2])) return Number(f[2]);
  }
  return null;
}

/** The uids the shim trusts: root, and the service account when it exists. */
export function trustedUids(): Map<number, string> {
  const uids = new Map([[0, "root"]]);
  const service = accountUid(SERVICE_ACCOUNT);
  if (service !== null) uids.set(service, SERVICE_ACCOUNT);
  return uids;
}

export interface TrustStep {
  kind: "directory" | "symlink" | "socket";
  path: string;
  ok: boolean;
  text: string;
}

export interface PathVerdict {
  steps: TrustStep[];
  /** Every step passed. */
  ok: boolean;
  /** Something on the path does not exist (the shim then starts the helper process instead). */
  missing: boolean;
}

export const octal = (mode: number) => (mode & 0o7777).toString(8).padStart(4, "0");

function owner(uid: number, trusted: Map<number, string>): string {
  return trusted.get(uid) ?? `uid ${uid}`;
}

/**
 * Walks `path` from "/" as the kernel does, component by component: each directory, each symlink
 * (followed; it must be owned by a trusted account too) and the last component, which must be a
 * socket, or with `final: "directory"` a directory (serve checks where it will listen).
 */
export function checkSocketPath(
  path: string,
  trusted: Map<number, string> = trustedUids(),
  final: "socket" | "directory" = "socket",
): PathVerdict {
  const steps: TrustStep[] = [];
  const pass = (kind: TrustStep["kind"], p: string, text: string) =>
    steps.push({ kind, path: p, ok: true, text });
  const fail = (kind: TrustStep["kind"], p: string, text: string, missing = false) => {
    steps.push({ kind, path: p, ok: false, text });
    return { steps, ok: false, missing };
  };
  const describe = (info: Deno.FileInfo) =>
    `owner ${owner(info.uid ?? -1, trusted)}, mode ${octal(info.mode ?? 0)}`;
  const notTrusted = `not owned by root or ${SERVICE_ACCOUNT}`;
  /** Why a directory is not trusted, or null. */
  const dirProblem = (info: Deno.FileInfo): string | null => {
    if (!trusted.has(info.uid ?? -1)) return notTrusted;
    const mode = info.mode ?? 0;
    if ((mode & 0o022) === 0) return null;
    if ((mode & 0o1000) === 0) return "writable by group or others";
    return "sticky but writable by group or others: anyone could take the socket's name while " +
      "no daemon listens";
  };

  if (!path.startsWith("/")) return fail(final, path, "not an absolute path");
  const root = Deno.statSync("/");
  const rootProblem = dirProblem(root);
  if (rootProblem) return fail("directory", "/", `${describe(root)}: ${rootProblem}`);
  pass("directory", "/", describe(root));
  const parts = (p: string) => p.split("/").filter((c) => c !== "" && c !== ".");
  let todo = parts(path);
  let dir = "/"; // the directory reached, as a path without symlinks
  let links = 0;
  while (todo.length > 0) {
    const name = todo.shift()!;
    const kind = todo.length === 0 ? final : "directory";
    if (name === "..") {
      dir = dir.replace(/\/[^/]*$/, "") || "/"; // an ancestor: checked on the way down
      if (kind === "socket") return fail("socket", dir, "not a socket");
      continue;
    }
    const p = dir === "/" ? `/${name}` : `${dir}/${name}`;
    let info: Deno.FileInfo;
    try {
      info = Deno.lstatSync(p);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return fail(kind, p, "does not exist", true);
      return fail(kind, p, `cannot be examined (${(e as Error).name})`);
    }
    if (info.isSymlink) {
      const who = `owner ${owner(info.uid ?? -1, trusted)}`;
      if (++links > MAX_LINKS) return fail("symlink", p, "too many symbolic links");
      const target = Deno.readLinkSync(p);
      pass("symlink", p, `${who}, points to ${target}`);
      if (target.startsWith("/")) dir = "/";
      todo = [...parts(target), ...todo];
      continue;
    }
    if (kind === "directory") {
      if (!info.isDirectory) return fail("directory", p, "not a directory");
      const problem = dirProblem(info);
      if (problem) return fail("directory", p, `${describe(info)}: ${problem}`);
      pass("directory", p, describe(info));
      dir = p;
      continue;
    }
    if (!info.isSocket) return fail("socket", p, `${describe(info)}: not a socket`);
    if (!trusted.has(info.uid ?? -1)) return fail("socket", p, `${describe(info)}: ${notTrusted}`);
    pass("socket", p, `a socket, ${describe(info)}`);
  }
  return { steps, ok: true, missing: false };
}
