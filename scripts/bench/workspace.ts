// The bench's private world: copies of the module, the helper and the baseline's script in a
// root-owned directory, pam_bench built there, the Kopano-compatible server (with a TLS listener
// and a throw-away CA), the resident helper started from the copy (resident.ts), and one pam.d
// file per row.
import { buildLauncher, launcherInfo, pamBundlePath } from "../lib/helper_build.ts";
import { assertModeNamed } from "../lib/pam_mode.ts";
import { makeTestPki, type TestPki } from "../../tests/lib/pki.ts";
import { BenchError, buildDriver, drive, type DriverRun, ROOT } from "./driver.ts";
import { type BenchDaemon, startBenchDaemon } from "./resident.ts";
import { type SimProcess, startSim } from "./sim.ts";

/** pam_mapi forking a helper per login (daemon=off), pam_mapi asking the daemon, the baseline. */
export type Impl = "pam_mapi" | "daemon" | "baseline";
export type Mode = "plain" | "service";
/** How the module reaches the server: the sim's plain HTTP or its TLS listener. */
export type Transport = "http" | "https";
export const IMPLS: Impl[] = ["pam_mapi", "daemon", "baseline"];
export const MODES: Mode[] = ["plain", "service"];
/** The feature service= asks for (bob has it enabled, alice has not: the server disables it). */
export const FEATURE = "imap";

/** Which row: what logs in, with or without service=, over which transport. */
export interface RowKey {
  impl: Impl;
  mode: Mode;
  transport: Transport;
}

/** "pam_mapi", "daemon service=imap", "daemon https://", ... */
export function label(k: RowKey): string {
  return k.impl + (k.mode === "service" ? ` service=${FEATURE}` : "") +
    (k.transport === "https" ? " https://" : "");
}

export interface WorkspaceOptions {
  /** The built helper and module, and the baseline's script (pam_exec expose_authtok). */
  helper: string;
  module: string;
  baselineScript: string;
  /** The listener the https:// rows use (tests set "plain" to see the transport check fail). */
  tlsListener?: "tls" | "plain";
  /** Tests: the daemon rows name a socket nobody listens on (the module then forks a helper). */
  unusedDaemon?: boolean;
}

export interface Workspace extends AsyncDisposable {
  sim: SimProcess;
  pki: TestPki;
  daemon: BenchDaemon;
  /** What the helper's launcher was built with (`--launcher-info`); null for a compiled helper. */
  launcher: Record<string, string> | null;
  /** The launcher copy's code cache directory. */
  cacheDir: string;
  /** Runs pam_bench `args` against the row's pam.d file. */
  drive(k: RowKey, user: string, password: string, args: string[]): Promise<DriverRun>;
}

const serviceName = (k: RowKey) => `${k.impl}_${k.mode}_${k.transport}`;

/** Sets up everything; the caller disposes of it (await using). */
export async function makeWorkspace(o: WorkspaceOptions): Promise<Workspace> {
  for (const f of [o.helper, o.module, o.baselineScript]) {
    try {
      await Deno.stat(f);
    } catch {
      throw new BenchError(`${f} is missing (deno task bench runs deno task build first)`);
    }
  }
  await using stack = new AsyncDisposableStack();
  const dir = await Deno.makeTempDir({ prefix: "pam_mapi_bench_" });
  stack.defer(() => Deno.remove(dir, { recursive: true }).catch(() => {}));
  await Deno.chmod(dir, 0o755);
  // Private copies: the module refuses a helper that is not root-owned in root-owned
  // directories, and another engineer's `deno task build` may rewrite dist/ meanwhile.
  const helper = `${dir}/pam_mapi_helper`;
  const module = `${dir}/pam_mapi.so`;
  const script = `${dir}/pam_exec_kopano.sh`;
  await Deno.copyFile(o.module, module);
  // The bundle's launcher has the Deno cache directory it was built for compiled in
  // (dist/cache in a checkout). The copy gets a fresh one, like the single-entry
  // /var/cache/pam_mapi of an installation: dist/cache collects an entry for every path the
  // tests run a bundle from, and every helper start reads that SQLite cache's whole write-ahead
  // log (~3 ms at 7 MB). A compiled helper is copied as it is.
  const launcher = await launcherInfo(o.helper);
  const cacheDir = `${dir}/c`;
  if (launcher) {
    await Deno.copyFile(launcher.bundle, `${dir}/pam_mapi_helper.js`);
    await Deno.copyFile(launcher.pam_bundle, pamBundlePath(`${dir}/pam_mapi_helper.js`));
    await buildLauncher(ROOT, helper, {
      deno: launcher.deno,
      bundle: `${dir}/pam_mapi_helper.js`,
      cache: cacheDir,
    });
  } else {
    await Deno.copyFile(o.helper, helper);
  }
  await Deno.copyFile(o.baselineScript, script);
  for (const f of [helper, module, script]) await Deno.chmod(f, 0o755);
  const driver = `${dir}/pam_bench`;
  await buildDriver(driver);

  const pki = await makeTestPki();
  stack.defer(() => Deno.remove(pki.dir, { recursive: true }).catch(() => {}));
  const sim = stack.use(await startSim(pki));
  const daemon = stack.use(await startBenchDaemon(dir, helper));

  // One pam.d file per row. The fork rows say daemon=off; the daemon rows name the daemon's
  // socket, and the tripwire as helper= (resident.ts).
  const conf = `${dir}/pam.d`;
  await Deno.mkdir(conf);
  const socket = o.unusedDaemon
    ? daemon.socket.replace(/[^/]*$/, "nobody-listens.sock") // a trusted place, nothing there
    : daemon.socket;
  const server = (t: Transport) =>
    t === "http" || o.tlsListener === "plain"
      ? `socket=${sim.url}`
      : `socket=${sim.httpsUrl} cafile=${pki.caFile}`;
  const lines = new Map<string, string>([["other", "auth required pam_deny.so"]]);
  for (const mode of MODES) {
    const svc = mode === "service" ? ` service=${FEATURE}` : "";
    for (const transport of ["http", "https"] as const) {
      const at = `${server(transport)}${svc}`;
      lines.set(
        serviceName({ impl: "pam_mapi", mode, transport }),
        `auth required ${module} helper=${helper} daemon=off ${at}`,
      );
      lines.set(
        serviceName({ impl: "daemon", mode, transport }),
        `auth required ${module} helper=${daemon.fallbackHelper} daemon=${socket} ${at}`,
      );
    }
    lines.set(
      serviceName({ impl: "baseline", mode, transport: "http" }),
      `auth required pam_exec.so expose_authtok quiet ${script} ${sim.url}` +
        (mode === "service" ? ` ${FEATURE}` : ""),
    );
  }
  for (const [name, line] of lines) {
    assertModeNamed([line], `the bench's pam.d/${name}`);
    await Deno.writeTextFile(`${conf}/${name}`, line + "\n");
  }

  const owned = stack.move();
  return {
    sim,
    pki,
    daemon,
    launcher,
    cacheDir,
    drive(k, user, password, args) {
      if (!lines.has(serviceName(k))) throw new Error(`no pam.d file for ${label(k)}`);
      return drive(driver, conf, serviceName(k), user, password, args);
    },
    [Symbol.asyncDispose]: () => owned.disposeAsync(),
  };
}
