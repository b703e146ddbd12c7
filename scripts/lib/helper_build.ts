// Builds dist/pam_mapi_helper: `deno compile` when its runtime can be had, otherwise the bundle
// dist/pam_mapi_helper.js started by a small C launcher (shim/launcher.c) as dist/pam_mapi_helper.
// Returns a short description of what it built.
import { run, runOrThrow, RunResult } from "./run.ts";

// Permissions the helper needs: network for http(s)://, read for cafile= and file:// sockets,
// write because Deno requires it to connect to a UNIX socket. The helper revokes what its
// arguments do not need right after parsing them (src/pam/permissions.ts). Everything else (env, run,
// ffi, sys) stays denied, and --no-prompt means nothing can be granted later. (Deno allows imports
// from a few well-known hosts by default; the helper revokes that at start-up too.) The launcher
// passes the same, in Deno's short forms, with the bundle's start-up flags (shim/launcher.c:
// --ext=js, --v8-flags=--no-lazy,--jitless,--single-threaded; docs/performance.md).
const PERMISSIONS = ["--allow-net", "--allow-read", "--allow-write"];

// An empty DENO_TLS_CA_STORE means no built-in roots (Deno's default is its bundled Mozilla set).
const EXACT_TRUST = "DENO_TLS_CA_STORE=";

// The environment a compiled helper bakes in with --env-file, as the launcher sets it.
// deno compile stores these in the executable's metadata; at start-up the runtime sets each one
// that the process environment lacks (the shim passes only PATH) before it runs any code, and
// builds the TLS root store lazily, on the first https:// connection, from DENO_TLS_CA_STORE
// (Deno 2.9: cli/rt/lib.rs load_env_vars, cli/rt/run.rs StandaloneRootCertStoreProvider,
// cli/lib/args.rs get_root_cert_store; metadata.ca_stores stays unset, compile has no flag for it).
// DENO_DIR is left out on purpose: a compiled executable does not use it. Its only cache is V8's
// code cache, kept in $TMPDIR/deno-compile-NAME.cache (cli/rt/binary.rs, run.rs), a location
// fixed before the env file is applied; --no-code-cache turns it off, because a helper that runs
// as root must not load compiled code from /tmp, where any local user can create that file first.
// Where no denort can be had, this is verified only as far as the executable's metadata goes
// (tests/build/compiled_helper_test.ts); with DENORT_BIN the same test runs the helper's checks.
const COMPILED_ENV = [EXACT_TRUST, "DENO_NO_UPDATE_CHECK=1", "NO_COLOR=1"];

// deno compile needs Deno's runtime (denort) for this exact version; it downloads it unless told.
const DENORT_HELP = `deno compile needs the "denort" runtime of Deno ${Deno.version.deno}. ` +
  "Without network access, set DENORT_BIN to a denort binary of that version " +
  `(from denort-x86_64-unknown-linux-gnu.zip of the Deno ${Deno.version.deno} release), ` +
  "or put that zip in $DENO_DIR/dl/release/v" + Deno.version.deno + "/. " +
  "The full deno CLI is not a denort (its output only starts a REPL). " +
  '"deno task build" falls back to the bundle started by deno, which behaves the same.';

/** The bundle the launcher runs for --pam, next to `bundle` (shim/Makefile derives it so too). */
export function pamBundlePath(bundle: string): string {
  if (!bundle.endsWith(".js")) throw new Error(`the bundle's name must end in .js: ${bundle}`);
  return bundle.slice(0, -".js".length) + "_pam.js";
}

/** Where the launcher finds Deno, the bundle and the code cache (all absolute). */
export interface LauncherPaths {
  deno: string;
  bundle: string;
  cache: string;
}

// The launcher has them compiled in as C string literals: keep them to plain path characters.
const PLAIN_PATH = /^(\/[A-Za-z0-9._+@-]+)+$/;

export async function buildHelper(root: string, dist: string): Promise<string> {
  const mode = Deno.env.get("PAM_MAPI_HELPER_MODE") ?? "auto";
  const out = `${dist}/pam_mapi_helper`;
  await Deno.remove(out).catch(() => {});
  await Deno.remove(`${out}.js`).catch(() => {});
  await Deno.remove(pamBundlePath(`${out}.js`)).catch(() => {});
  if (mode !== "bundle") {
    const why = await tryCompile(root, out);
    if (why === null) return "deno compile standalone executable";
    if (mode === "compile") throw new Error(`deno compile failed: ${why}\n${DENORT_HELP}`);
    await sayOnce(`${dist}/.compile-fallback`, fallbackLine(why));
  }
  await buildBundle(root, dist, out);
  return "bundle started by deno";
}

/**
 * Runs `deno compile` for the helper with the permissions and environment baked in; the result
 * is at `out` when it exits 0. `env` is added to this process's environment (tests set DENORT_BIN).
 */
export async function compileHelper(
  root: string,
  out: string,
  env: Record<string, string> = {},
): Promise<RunResult> {
  const envFile = await Deno.makeTempFile({ prefix: "pam_mapi_helper_env_" });
  try {
    await Deno.writeTextFile(envFile, COMPILED_ENV.join("\n") + "\n");
    return await run(Deno.execPath(), [
      "compile",
      "--no-config",
      "--no-check",
      "--no-remote", // everything comes from src/: no remote or npm module can be embedded
      "--no-npm",
      "--no-code-cache", // see COMPILED_ENV
      // As the launcher starts the bundle, less --no-lazy, which only pays with a code cache.
      "--v8-flags=--jitless,--single-threaded",
      `--env-file=${envFile}`,
      "--quiet",
      ...PERMISSIONS,
      "--no-prompt",
      "-o",
      out,
      `${root}/src/main.ts`,
    ], {
      cwd: root,
      // deno compile also loads the env file into its own environment, for the variables not set
      // there: keep its TLS roots as they are (the default is "mozilla"), or fetching denort from
      // the network would trust nothing.
      env: {
        DENO_TLS_CA_STORE: Deno.env.get("DENO_TLS_CA_STORE") ?? "mozilla",
        NO_COLOR: "1",
        ...env,
      },
    });
  } finally {
    await Deno.remove(envFile).catch(() => {});
  }
}

/**
 * The one line that says why the helper is the bundle: short (the download's host and the first
 * words of its error), and with the remedy when a proxy's certificate is the cause.
 */
export function fallbackLine(why: string): string {
  const host = /https:\/\/([^/\s)]+)/.exec(why)?.[1];
  // "1: error sending request for url (URL): client error (Connect): dns error: ..." -> "dns error"
  const last = why.replace(/^\d+: /, "");
  const cause = last.slice(last.lastIndexOf("): ") + 1).replace(/^: /, "").split(":")[0].trim();
  const proxy = /invalid peer certificate/.test(why)
    ? "; behind a TLS-intercepting proxy, set NODE_EXTRA_CA_CERTS"
    : "";
  return `build: no deno compile runtime (${host ? `${host}: ` : ""}${cause})${proxy}: ` +
    "the helper is the bundle, which behaves the same (README.md, Development)";
}

/** Prints `line` to stderr unless the last build of this dist/ printed the same (`memo`). */
async function sayOnce(memo: string, line: string): Promise<void> {
  const said = await Deno.readTextFile(memo).catch(() => null);
  if (said === line) return;
  console.error(line);
  await Deno.writeTextFile(memo, line);
}

/** Returns null on success, or the reason compile could not be used. */
async function tryCompile(root: string, out: string): Promise<string | null> {
  const r = await compileHelper(root, out);
  if (r.code !== 0) {
    // Prefer the first cause that names an error ("Caused by: ... 1: error sending request ...")
    // over the context line before it ("error: Writing deno compile executable ...").
    const lines = r.stderr.split("\n");
    const causes = lines.slice(lines.findIndex((l) => l.startsWith("Caused by:")) + 1);
    const line = (causes.find((l) => /error/i.test(l)) ?? lines.find((l) => /error/i.test(l)) ??
      r.stderr).trim();
    return line.slice(0, 300) || `exit ${r.code}`;
  }
  // A DENORT_BIN that is the full CLI produces a binary that starts a REPL: check it really is ours.
  const v = await run(out, ["--version"], { env: {}, stdin: "" });
  if (v.code !== 0 || !v.stdout.startsWith("pam_mapi_helper ")) {
    await Deno.remove(out).catch(() => {});
    return "the compiled executable does not run as the helper (is DENORT_BIN a denort binary?)";
  }
  return null;
}

/**
 * What a launcher was built with (`--launcher-info`: deno, bundle, cache, env, flags), or null for
 * a compiled helper, which does not know that option.
 */
export async function launcherInfo(path: string): Promise<Record<string, string> | null> {
  const r = await run(path, ["--launcher-info"], { stdin: "" });
  if (r.code !== 0) return null;
  return Object.fromEntries(
    r.stdout.trimEnd().split("\n").map((l) => {
      const i = l.indexOf("=");
      return [l.slice(0, i), l.slice(i + 1)];
    }),
  );
}

/**
 * Builds the launcher (make -C shim launcher, in a private directory: builds with other paths may
 * run at the same time) and puts it at `out`. `extraCflags`: for tests that force a fallback.
 */
export async function buildLauncher(
  root: string,
  out: string,
  paths: LauncherPaths,
  extraCflags = "",
) {
  for (const [what, path] of Object.entries(paths) as [string, string][]) {
    if (!PLAIN_PATH.test(path) || path.split("/").some((c) => c === "." || c === "..")) {
      throw new Error(
        `the launcher's ${what} path must be absolute and plain (letters, digits, ._+@-): ${path}`,
      );
    }
  }
  const build = await Deno.makeTempDir({ prefix: "pam_mapi_launcher_" });
  try {
    await runOrThrow("make", [
      "-C",
      `${root}/shim`,
      "--no-print-directory",
      "-s",
      `BUILD=${build}`,
      `DENO_PATH=${paths.deno}`,
      `BUNDLE_PATH=${paths.bundle}`,
      `CACHE_DIR=${paths.cache}`,
      // The caller's EXTRA_CFLAGS too (debian/rules asks for -g, so that the launcher's debug
      // symbols reach the -dbgsym package), which this command line would otherwise replace.
      `EXTRA_CFLAGS=${[Deno.env.get("EXTRA_CFLAGS") ?? "", extraCflags].join(" ").trim()}`,
      "launcher",
    ]);
    await Deno.copyFile(`${build}/pam_mapi_helper`, out);
    await Deno.chmod(out, 0o755);
  } finally {
    await Deno.remove(build, { recursive: true });
  }
}

async function buildBundle(root: string, dist: string, out: string): Promise<void> {
  // Never executable by itself: only the launcher decides how Deno runs it.
  // Two bundles: src/main.ts for every command, and src/pam_main.ts, the module's request alone,
  // which the launcher runs for --pam (the name the launcher derives: _pam before .js).
  const js = `${out}.js`;
  for (const [entry, file] of [["main.ts", js], ["pam_main.ts", pamBundlePath(js)]]) {
    await runOrThrow(Deno.execPath(), [
      "bundle",
      "--quiet",
      "--platform",
      "deno",
      "-o",
      file,
      `${root}/src/${entry}`,
    ], { cwd: root });
    await Deno.chmod(file, 0o644);
  }
  const deno = Deno.env.get("PAM_MAPI_DENO") ?? Deno.realPathSync(Deno.execPath());
  const cache = Deno.env.get("PAM_MAPI_CACHE_DIR") ?? `${dist}/cache`;
  const bundle = Deno.env.get("PAM_MAPI_BUNDLE") ?? js;
  if (Deno.env.get("PAM_MAPI_CACHE_DIR") === undefined) {
    // dist/cache is ours: start it empty. Deno adds a V8 code cache entry for every path a
    // bundle runs from and never drops one, and every helper start reads the cache's whole
    // SQLite write-ahead log: at 17 MB + a 24 MB log that cost 4 ms and 10 ms of CPU per login.
    await Deno.remove(cache, { recursive: true }).catch(() => {});
  }
  await buildLauncher(root, out, { deno, bundle, cache });
}
