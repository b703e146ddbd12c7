// `pam_mapi_helper serve [--socket PATH] [--socket-mode MODE]`: the resident helper (docs/protocol.md
// §7). It listens on a UNIX socket and answers each connection as --pam answers its standard input, keeping
// connections to the Kopano servers alive in between. It has no configuration beyond its socket:
// the module arguments come with every request. Loaded only for this command.
import { CaCache } from "./ca_cache.ts";
import { DaemonLog } from "./daemon_log.ts";
import { DaemonStats } from "./daemon_stats.ts";
import { useCancellableTimers } from "../common/deadline.ts";
import { launcherLog } from "../pam/launch.ts";
import { revokeAllBut } from "../pam/permissions.ts";
import { ConnectionPool } from "./pool.ts";
import { MAX_REQUEST } from "../pam/protocol.ts";
import { ReplyBudget, withReplyBudget } from "../kopano/reply_budget.ts";
import {
  type ConnectionContext,
  MAX_IN_PROGRESS,
  refuseBusy,
  REQUEST_MS,
  serveConnection,
} from "./serve_conn.ts";
import { type Listening, statusReply, stillOurs } from "./serve_status.ts";
import {
  checkSocketPath,
  DEFAULT_DAEMON_SOCKET,
  MAX_SOCKET_PATH,
  octal,
  SERVICE_ACCOUNT,
  trustedUids,
} from "./trust.ts";
import { VERSION } from "../common/version.ts";

const USAGE = "Usage: pam_mapi_helper serve [--socket PATH] [--socket-mode 0600|0660|0666]\n";

/**
 * Who may connect. By default root (saslauthd) and the daemon's own account only: a socket anyone
 * may use lets any local user keep the daemon busy and ask it to check passwords. 0660 adds the
 * daemon's group (put a non-root PAM host's user in it), 0666 everyone. A PAM host that may not
 * connect starts the helper process instead (protocol.md §7.2), as before the daemon.
 */
/**
 * After the socket is removed at SIGTERM, no new connection can reach the listener; this long
 * without one accepted shows that the queue is empty.
 */
const DRAIN_MS = 200;

const SOCKET_MODES = new Map([["0600", 0o600], ["0660", 0o660], ["0666", 0o666]]);

/** The daemon cannot start here; `message` says why and what to do. */
class StartError extends Error {}

interface ServeArgs {
  socket: string;
  mode: number;
}

function parseServeArgs(argv: string[]): ServeArgs {
  const given = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const name = ["--socket", "--socket-mode"].find((n) => a === n || a.startsWith(`${n}=`));
    if (!name) throw new StartError(`unknown argument ${JSON.stringify(a)}\n${USAGE}`);
    const value = a === name ? argv[++i] : a.slice(name.length + 1);
    if (value === undefined) throw new StartError(`${name} needs a value\n${USAGE}`);
    if (given.has(name)) throw new StartError(`${name} given twice\n${USAGE}`);
    given.set(name, value);
  }
  const socket = given.get("--socket") ?? DEFAULT_DAEMON_SOCKET;
  // deno-lint-ignore no-control-regex
  if (!socket.startsWith("/") || /[\x00-\x1f\x7f]/.test(socket)) {
    throw new StartError(`--socket ${JSON.stringify(socket)}: must be an absolute path`);
  }
  if (new TextEncoder().encode(socket).length > MAX_SOCKET_PATH) {
    throw new StartError(`--socket: longer than ${MAX_SOCKET_PATH} bytes`);
  }
  const modeText = given.get("--socket-mode") ?? "0600";
  const mode = SOCKET_MODES.get(modeText);
  if (mode === undefined) {
    throw new StartError(
      `--socket-mode ${JSON.stringify(modeText)}: one of ${
        [...SOCKET_MODES.keys()].join(", ")
      }\n${USAGE}`,
    );
  }
  return { socket, mode };
}

/** Refuses a place the shim would not trust; removes a stale socket; never takes a live one. */
async function prepareSocketPath(path: string, trusted: Map<number, string>): Promise<void> {
  const dir = path.slice(0, path.lastIndexOf("/")) || "/";
  const where = checkSocketPath(dir, trusted, "directory");
  if (where.missing) {
    throw new StartError(
      `directory ${dir} does not exist (systemd's RuntimeDirectory= creates it; by hand: ` +
        `install -d -m 0755 -o ${SERVICE_ACCOUNT} ${dir})`,
    );
  }
  const bad = where.steps.find((s) => !s.ok);
  if (bad) {
    throw new StartError(
      `pam_mapi.so would not trust a socket in ${dir}: ${bad.path}: ${bad.text} (every ` +
        `directory above the socket must belong to root or ${SERVICE_ACCOUNT} and be writable ` +
        `by nobody else, sticky or not, as ${DEFAULT_DAEMON_SOCKET.replace(/\/[^/]*$/, "")} is; ` +
        "a daemon it does not trust makes every login fail)",
    );
  }
  let info: Deno.FileInfo;
  try {
    info = Deno.lstatSync(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return;
    throw e;
  }
  if (!info.isSocket) {
    throw new StartError(
      `${path} exists and is not a socket; remove it or choose another --socket`,
    );
  }
  try {
    (await Deno.connect({ transport: "unix", path })).close();
  } catch (e) {
    if (e instanceof Deno.errors.ConnectionRefused) {
      Deno.removeSync(path); // left by a daemon that is gone
      return;
    }
    throw new StartError(
      `${path}: cannot tell whether a daemon answers there (${(e as Error).name})`,
    );
  }
  throw new StartError(`a daemon already answers on ${path}`);
}

function listen(path: string, mode: number, trusted: Map<number, string>): Listening {
  const listener = Deno.listen({ transport: "unix", path });
  try {
    Deno.chmodSync(path, mode); // who may connect: SOCKET_MODES
    const info = Deno.lstatSync(path);
    // Our uid, as the socket's owner says (Deno.uid() needs the sys permission, which we lack).
    const uid = info.uid!;
    if (!trusted.has(uid)) {
      throw new StartError(
        `running as uid ${uid}: pam_mapi.so trusts a daemon only when it runs as root or ` +
          `${SERVICE_ACCOUNT}${trusted.size < 2 ? ` (no ${SERVICE_ACCOUNT} account here)` : ""}`,
      );
    }
    const verdict = checkSocketPath(path, trusted);
    const bad = verdict.steps.find((s) => !s.ok);
    if (bad) throw new StartError(`pam_mapi.so would not trust ${bad.path}: ${bad.text}`);
    return { listener, dev: info.dev, ino: info.ino!, uid };
  } catch (e) {
    listener.close(); // Deno removes the socket file with it
    throw e;
  }
}

/** "64 KiB per login and 16 MiB shared" */
function replyBudgetText(b: ReplyBudget): string {
  return `${b.allowance / 1024} KiB per login and ${b.sharedBytes / 1024 / 1024} MiB shared`;
}

export async function runServe(argv: string[]): Promise<number> {
  const log = new DaemonLog();
  let path: string;
  let mode: number;
  let listening: Listening;
  try {
    ({ socket: path, mode } = parseServeArgs(argv));
    const trusted = trustedUids();
    await prepareSocketPath(path, trusted);
    listening = listen(path, mode, trusted);
  } catch (e) {
    if (
      !(e instanceof StartError || e instanceof Deno.errors.PermissionDenied ||
        e instanceof Deno.errors.AddrInUse)
    ) throw e;
    log.line(`cannot start: ${e instanceof StartError ? e.message : `${e.name}: ${e.message}`}`);
    return e instanceof StartError && e.message.includes("Usage:") ? 3 : 1;
  }
  // Network (http, https, and Deno's "unix:PATH" check for file://), read (CA files, file://
  // sockets, its own socket) and write (Deno asks for it to connect to a UNIX socket, and to
  // set its socket's times for status) stay: the requests choose the servers and files. Nothing
  // else is ever needed: the daemon never runs a program. Never narrowed per request.
  revokeAllBut(new Set(["net", "read", "write"]));
  useCancellableTimers();

  const stats = new DaemonStats();
  const pool = new ConnectionPool();
  const ca = new CaCache();
  const replies = new ReplyBudget(undefined, undefined, () =>
    log.limited(
      "budget",
      `memory for Kopano replies in progress used up (${replyBudgetText(replies)}): a login's ` +
        "reply was not read, so that server gave it no answer",
    ));
  const started = new Date();
  const ctx: ConnectionContext = {
    stats,
    log,
    request: {
      narrow: false,
      loadCa: ca.load,
      connector: (id) => withReplyBudget(pool.connector(id), replies),
    },
    statusReply: (ms) => statusReply({ path, listening, stats, pool, ca, started }, ms),
  };

  // A bug must never end the daemon: it becomes that request's PAM_SERVICE_ERR (request.ts), and
  // whatever escapes elsewhere is logged and survived.
  const survive = (what: string) => (e: Event) => {
    e.preventDefault();
    stats.internalErrors++;
    log.limited("internal", `internal error (${what}) survived`);
  };
  globalThis.addEventListener("unhandledrejection", survive("unhandled rejection"));
  globalThis.addEventListener("error", survive("uncaught exception"));

  const tasks = new Set<Promise<void>>();
  let stopping = false;
  const { promise: stopped, resolve: stop } = Promise.withResolvers<string>();
  for (const sig of ["SIGTERM", "SIGINT"] as const) {
    Deno.addSignalListener(sig, () => {
      if (stopping) {
        log.line(`${sig} again: exiting with ${tasks.size} requests unfinished`);
        Deno.exit(1);
      }
      stop(sig);
    });
  }

  // The launcher's code-cache warning matters once, at start (the cache is read only then).
  for (const note of launcherLog()) log.line(note.message);
  log.line(
    `started: version ${VERSION}, pid ${Deno.pid}, uid ${listening.uid}, socket ${path} ` +
      `(mode ${octal(mode)}), ` +
      `at most ${MAX_IN_PROGRESS} requests in progress, ${REQUEST_MS / 1000} s and ` +
      `${MAX_REQUEST} bytes per request, ${replyBudgetText(replies)} for Kopano replies`,
  );
  // Accepts until the process exits, also while stopping (see below).
  let lastAccept = 0;
  (async () => {
    for (;;) {
      let conn: Deno.Conn;
      try {
        conn = await listening.listener.accept();
      } catch (e) {
        // EMFILE and the like: log, breathe, go on (the listener itself is fine).
        log.limited("accept", `accept failed: ${(e as Error).name}`);
        await new Promise((r) => setTimeout(r, 100));
        continue;
      }
      lastAccept = performance.now();
      const busy = stats.inProgress >= MAX_IN_PROGRESS;
      if (!busy) stats.inProgress++;
      const task = busy ? refuseBusy(conn, ctx) : serveConnection(conn, ctx).finally(() => {
        stats.inProgress--;
      });
      tasks.add(task);
      task.finally(() => tasks.delete(task));
    }
  })();

  const sig = await stopped;
  stopping = true;
  // The socket goes first: from now on a login finds none, and the module starts the helper. The
  // listener stays open until the connections already queued on it are accepted and answered:
  // closing it would reset them, and the module never falls back once it has sent a request
  // (protocol.md §7.2), so a restart would fail logins. It is never closed: Deno would remove
  // whatever is at the path then, perhaps a new daemon's socket; the exit closes it.
  if (stillOurs(path, listening)) {
    try {
      Deno.removeSync(path);
    } catch {
      // removed meanwhile
    }
  }
  log.line(`${sig}: stopped accepting; finishing ${tasks.size} requests in progress`);
  const gone = performance.now();
  while (performance.now() - Math.max(gone, lastAccept) < DRAIN_MS) {
    await new Promise((r) => setTimeout(r, DRAIN_MS / 4));
  }
  while (tasks.size > 0) await Promise.allSettled([...tasks]);
  pool.close();
  const l = stats.logins;
  log.line(
    `stopped: ${Object.values(l).reduce((a, b) => a + b, 0)} logins (` +
      `${l.PAM_SUCCESS} PAM_SUCCESS, ${l.PAM_AUTH_ERR} PAM_AUTH_ERR, ` +
      `${l.PAM_AUTHINFO_UNAVAIL} PAM_AUTHINFO_UNAVAIL, ${l.PAM_SERVICE_ERR} PAM_SERVICE_ERR, ` +
      `${l.PAM_IGNORE} PAM_IGNORE), ${stats.rejectedBusy} busy, ${stats.malformed} malformed, ` +
      `${stats.late} late`,
  );
  return 0;
}
