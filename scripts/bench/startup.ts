// Where the built helper's time goes: deno run -A scripts/bench/startup.ts [--runs N]
//
// Runs the bundle of dist/pam_mapi_helper --pam (the request a login sends, against the
// Kopano-compatible server) in variants, alternating, and splits each run at three instants the
// helper reports about itself through one line put in front of a copy of the bundle (the build is
// untouched): performance.timeOrigin (Deno's runtime is up), the first statement of the bundle (the
// module is loaded), and the unload event (Deno.exit). With the parent's clock before the spawn and
// after the exit, that gives four phases:
//   runtime    spawn, the launcher's checks and its exec of deno (or exec of deno directly), V8 and
//              Deno start-up
//   module     reading the bundle, V8 code cache lookup, compiling, instantiating
//   helper     the helper's own work: request, arguments, connect, logon, logoff, reply
//   exit       Deno.exit to the parent seeing the process gone
// "as built" is a launcher like the built one (shim/launcher.c, same Deno and flags); the other
// variants start deno directly with the launcher's environment and edited flags. Each variant gets
// a fresh cache directory (warmed up before measuring); the script checks that V8's code cache was
// written there.
import { parseArgs } from "node:util";
import { median } from "./stats.ts";
import { startSim } from "./sim.ts";
import { ROOT } from "./mod.ts";
import { buildLauncher, launcherInfo, pamBundlePath } from "../lib/helper_build.ts";

const { values } = parseArgs({ args: Deno.args, options: { runs: { type: "string" } } });
const RUNS = Number(values.runs ?? 40);

const info = await launcherInfo(`${ROOT}/dist/pam_mapi_helper`);
if (!info) throw new Error("dist/pam_mapi_helper is not the bundle's launcher");
// The bundle the launcher runs for --pam.
const body = await Deno.readTextFile(info.pam_bundle);
const FLAGS = info.flags.split(" ");
const ENV = Object.fromEntries(
  info.env.split(" ").map((kv) => {
    const i = kv.indexOf("=");
    return [kv.slice(0, i), kv.slice(i + 1)];
  }),
);
const PROBE = "const __s = performance.now(); globalThis.addEventListener('unload', () => " +
  "Deno.stderr.writeSync(new TextEncoder().encode(`STARTUP ${performance.timeOrigin} ${__s} " +
  "${performance.now()}\\n`)));";

const dir = await Deno.makeTempDir({ prefix: "pam_mapi_startup_" });
await Deno.chmod(dir, 0o755);
const launcherBundle = `${dir}/pam_mapi_helper.js`; // what a launcher is built with
const bundle = pamBundlePath(launcherBundle); // what it runs for --pam
await Deno.writeTextFile(bundle, `${PROBE}\n${body}`);
await using sim = await startSim();
const b64 = (s: string) => btoa(s);
const request = new TextEncoder().encode(JSON.stringify({
  v: 1,
  user: b64("alice"),
  authtok: b64("secret"),
  service: b64("smtp"),
  rhost: b64(""),
  args: [b64(`socket=${sim.url}`)],
}));

interface Variant {
  name: string;
  argv: string[];
  env: Record<string, string>;
  /** Where V8's code cache must appear, or null. */
  cache: string | null;
  phases: Map<string, number[]>;
}

let count = 0;
/** A launcher built like dist's, with its own cache directory (made `mode` when given). */
async function launcher(name: string, mode?: number): Promise<Variant> {
  const n = count++;
  const cache = `${dir}/c${n}`;
  if (mode !== undefined) {
    await Deno.mkdir(cache);
    await Deno.chmod(cache, mode);
  }
  const path = `${dir}/h${n}`;
  await buildLauncher(ROOT, path, { deno: info!.deno, bundle: launcherBundle, cache });
  const trusted = mode === undefined || (mode & 0o022) === 0;
  return {
    name,
    argv: [path],
    env: { PATH: "/usr/bin:/bin" },
    cache: trusted ? cache : null,
    phases: new Map(),
  };
}

/** deno started directly, with the launcher's environment and its flags edited. */
function direct(name: string, edit: (flags: string[]) => string[]): Variant {
  const cache = `${dir}/c${count++}`;
  return {
    name,
    argv: [info!.deno, ...edit(FLAGS), bundle],
    env: { ...ENV, DENO_DIR: cache },
    cache,
    phases: new Map(),
  };
}

const drop = (re: RegExp) => (flags: string[]) => flags.filter((f) => !re.test(f));
const variants = [
  await launcher("as built (launcher)"),
  direct("deno directly", (f) => f),
  direct("without --ext=js", drop(/^--ext=js$/)),
  direct("without --v8-flags", drop(/^--v8-flags=/)),
  direct("without either", (f) => drop(/^--v8-flags=/)(drop(/^--ext=js$/)(f))),
  // What a login costs when the launcher does not trust the cache directory (0777 here).
  await launcher("launcher, cache not trusted", 0o777),
];

async function once(v: Variant, record: boolean): Promise<void> {
  const t0 = performance.timeOrigin + performance.now();
  const child = new Deno.Command(v.argv[0], {
    args: [...v.argv.slice(1), "--pam"],
    clearEnv: true,
    env: v.env,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const w = child.stdin.getWriter();
  await w.write(request);
  await w.close();
  const out = await child.output();
  const t1 = performance.timeOrigin + performance.now();
  const stdout = new TextDecoder().decode(out.stdout);
  const m = /STARTUP (\S+) (\S+) (\S+)/.exec(new TextDecoder().decode(out.stderr));
  if (!stdout.includes('"result":"PAM_SUCCESS"') || !m) {
    throw new Error(
      `${v.name}: unexpected run:\n${stdout}\n${new TextDecoder().decode(out.stderr)}`,
    );
  }
  if (!record) return;
  const [origin, first, exit] = m.slice(1).map(Number);
  const add = (k: string, ms: number) => v.phases.set(k, [...(v.phases.get(k) ?? []), ms]);
  add("runtime", origin - t0);
  add("module", first);
  add("helper", exit - first);
  add("exit", t1 - (origin + exit));
  add("total", t1 - t0);
}

for (const v of variants) for (let i = 0; i < 3; i++) await once(v, false);
for (let i = 0; i < RUNS; i++) for (const v of variants) await once(v, true);
await sim.close();

const width = Math.max(...variants.map((v) => v.name.length));
console.log(`medians of ${RUNS} runs each (ms), variants alternating; as built:`);
console.log(
  `  ${info.deno} ${info.flags} ${info.pam_bundle} (${info.env}, DENO_DIR=${info.cache})`,
);
console.log(
  "".padEnd(width) + ["runtime", "module", "helper", "exit", "total"].map((h) => h.padStart(9))
    .join(""),
);
for (const v of variants) {
  const cols = ["runtime", "module", "helper", "exit", "total"].map((k) =>
    median(v.phases.get(k)!).toFixed(2).padStart(9)
  );
  console.log(v.name.padEnd(width) + cols.join(""));
}
for (const v of variants) {
  if (v.cache === null) continue;
  let cached = false;
  try {
    cached = (await Deno.stat(`${v.cache}/v8_code_cache_v2`)).isFile;
  } catch { /* not written */ }
  if (!cached) console.log(`warning: ${v.name}: no V8 code cache was written in ${v.cache}`);
}
await Deno.remove(dir, { recursive: true });
