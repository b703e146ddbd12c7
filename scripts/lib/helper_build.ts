// Builds dist/pam_mapi_helper: `deno compile` when its runtime can be had, otherwise the bundle
// behind a `#!` line. Returns a short description of what it built.
import { run, runOrThrow } from "./run.ts";

// Linux reads at most 255 bytes of a `#!` line (BINPRM_BUF_SIZE); longer lines are cut silently.
const MAX_SHEBANG = 255;

// Permissions the helper needs: network for http(s)://, read for cafile= and file:// sockets,
// write because Deno requires it to connect to a UNIX socket. The helper revokes what its
// arguments do not need right after parsing them (src/permissions.ts). Everything else (env, run,
// ffi, sys, import) stays denied, and --no-prompt means nothing can be granted later.
const PERMISSIONS = ["--allow-net", "--allow-read", "--allow-write"];

// An empty DENO_TLS_CA_STORE means no built-in roots (Deno's default is its bundled Mozilla set).
const EXACT_TRUST = "DENO_TLS_CA_STORE=";

// deno compile needs Deno's runtime (denort) for this exact version; it downloads it unless told.
const DENORT_HELP = `deno compile needs the "denort" runtime of Deno ${Deno.version.deno}. ` +
  "Without network access, set DENORT_BIN to a denort binary of that version " +
  `(from denort-x86_64-unknown-linux-gnu.zip of the Deno ${Deno.version.deno} release), ` +
  "or put that zip in $DENO_DIR/dl/release/v" + Deno.version.deno + "/. " +
  "The full deno CLI is not a denort (its output only starts a REPL). " +
  '"deno task build" falls back to the bundle started by deno, which behaves the same.';

export async function buildHelper(root: string, dist: string): Promise<string> {
  const mode = Deno.env.get("PAM_MAPI_HELPER_MODE") ?? "auto";
  const out = `${dist}/pam_mapi_helper`;
  await Deno.remove(out).catch(() => {});
  if (mode !== "bundle") {
    const why = await tryCompile(root, out);
    if (why === null) return "deno compile standalone executable";
    if (mode === "compile") throw new Error(`deno compile failed: ${why}\n${DENORT_HELP}`);
    console.error(`build: deno compile is not possible here (${why}); using the bundle.`);
  }
  await buildBundle(root, dist, out);
  return "bundle started by deno";
}

/** Returns null on success, or the reason compile could not be used. */
async function tryCompile(root: string, out: string): Promise<string | null> {
  const r = await run(Deno.execPath(), [
    "compile",
    "--no-config",
    "--no-check",
    "--quiet",
    ...PERMISSIONS,
    "--no-prompt",
    "-o",
    out,
    `${root}/src/main.ts`,
  ], { cwd: root });
  if (r.code !== 0) {
    const line = (r.stderr.split("\n").find((l) => /error/i.test(l)) ?? r.stderr).trim();
    return line.slice(0, 200) || `exit ${r.code}`;
  }
  // A DENORT_BIN that is the full CLI produces a binary that starts a REPL: check it really is ours.
  const v = await run(out, ["--version"], { env: {}, stdin: "" });
  if (v.code !== 0 || !v.stdout.startsWith("pam_mapi_helper ")) {
    await Deno.remove(out).catch(() => {});
    return "the compiled executable does not run as the helper (is DENORT_BIN a denort binary?)";
  }
  return null;
}

async function buildBundle(root: string, dist: string, out: string): Promise<void> {
  const js = `${dist}/pam_mapi_helper.js`;
  await runOrThrow(Deno.execPath(), [
    "bundle",
    "--quiet",
    "--platform",
    "deno",
    "-o",
    js,
    `${root}/src/main.ts`,
  ], { cwd: root });
  const deno = Deno.env.get("PAM_MAPI_DENO") ?? Deno.realPathSync(Deno.execPath());
  const cache = Deno.env.get("PAM_MAPI_CACHE_DIR") ?? `${dist}/cache`;
  // env -S splits the line; the assignments give deno a fixed cache directory and no update check
  // even when the shim starts us with an empty environment.
  // DENO_TLS_CA_STORE= (empty) gives Deno an empty built-in root store, so https:// trusts exactly
  // the certificates the helper passes: cafile=, or else the system bundle (src/tls_ca.ts).
  const shebang =
    `#!/usr/bin/env -S DENO_DIR=${cache} ${EXACT_TRUST} DENO_NO_UPDATE_CHECK=1 NO_COLOR=1 ` +
    `${deno} ` +
    `run --no-config --no-lock --no-prompt ${PERMISSIONS.join(" ")}`;
  if (new TextEncoder().encode(shebang).length > MAX_SHEBANG) {
    throw new Error(
      `the helper's #! line is longer than ${MAX_SHEBANG} bytes; use shorter PAM_MAPI_CACHE_DIR or PAM_MAPI_DENO paths:\n${shebang}`,
    );
  }
  const body = await Deno.readTextFile(js);
  await Deno.writeTextFile(out, `${shebang}\n${body}`);
  await Deno.chmod(out, 0o755);
  await Deno.remove(js);
}
