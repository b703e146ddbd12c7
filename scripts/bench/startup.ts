// Where the built helper's time goes: deno run -A scripts/bench/startup.ts [--runs N]
//
// Runs dist/pam_mapi_helper --pam (the request a login sends, against the Kopano-compatible server)
// in variants of its #! line, alternating, and splits each run at three instants the helper
// reports about itself through one line put after its #! line (a copy; the build is untouched):
// performance.timeOrigin (Deno's runtime is up), the first statement of the bundle (the module is
// loaded), and the unload event (Deno.exit). With the parent's clock before the spawn and after
// the exit, that gives four phases:
//   runtime    spawn, exec of env and deno, V8 and Deno start-up
//   module     reading the bundle, V8 code cache lookup, compiling, instantiating
//   helper     the helper's own work: request, arguments, connect, logon, logoff, reply
//   exit       Deno.exit to the parent seeing the process gone
// Each variant gets a fresh DENO_DIR (warmed up before measuring); the script checks that V8's
// code cache was written there.
import { parseArgs } from "node:util";
import { median } from "./stats.ts";
import { startSim } from "./sim.ts";
import { ROOT } from "./mod.ts";

const { values } = parseArgs({ args: Deno.args, options: { runs: { type: "string" } } });
const RUNS = Number(values.runs ?? 40);

const built = await Deno.readTextFile(`${ROOT}/dist/pam_mapi_helper`);
if (!built.startsWith("#!")) throw new Error("dist/pam_mapi_helper is not the bundle (#!)");
const nl = built.indexOf("\n");
const shebang = built.slice(0, nl);
const body = built.slice(nl + 1);
const PROBE = "const __s = performance.now(); globalThis.addEventListener('unload', () => " +
  "Deno.stderr.writeSync(new TextEncoder().encode(`STARTUP ${performance.timeOrigin} ${__s} " +
  "${performance.now()}\\n`)));";

// Short paths: the #! line must stay within 255 bytes.
const dir = await Deno.makeTempDir({ prefix: "pmst" });
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
  path: string;
  cache: string;
  phases: Map<string, number[]>;
}

let count = 0;
async function variant(name: string, edit: (line: string) => string): Promise<Variant> {
  const n = count++;
  const cache = `${dir}/c${n}`;
  const line = edit(shebang.replace(/DENO_DIR=\S+/, `DENO_DIR=${cache}`));
  if (line.length > 255) throw new Error(`${name}: #! line too long`);
  const path = `${dir}/h${n}`;
  await Deno.writeTextFile(path, `${line}\n${PROBE}\n${body}`);
  await Deno.chmod(path, 0o755);
  return { name, path, cache, phases: new Map() };
}

const drop = (flag: RegExp) => (line: string) => line.replace(flag, "");
const variants = [
  await variant("as built", (l) => l),
  await variant("without --ext=js", drop(/ --ext=js/)),
  await variant("without --v8-flags", drop(/ --v8-flags=\S+/)),
  await variant("without either", (l) => drop(/ --v8-flags=\S+/)(drop(/ --ext=js/)(l))),
  // (NO_COLOR=1 makes room on the line; it only changes error output)
  await variant(
    "as built, --no-code-cache",
    (l) => l.replace(" NO_COLOR=1", "").replace(" run ", " run --no-code-cache "),
  ),
];

async function once(v: Variant, record: boolean): Promise<void> {
  const t0 = performance.timeOrigin + performance.now();
  const child = new Deno.Command(v.path, {
    args: ["--pam"],
    clearEnv: true,
    env: { PATH: "/usr/bin:/bin" },
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
console.log(`medians of ${RUNS} runs each (ms), variants alternating; #! line as built:`);
console.log(`  ${shebang}`);
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
  let cached = false;
  try {
    cached = (await Deno.stat(`${v.cache}/v8_code_cache_v2`)).isFile;
  } catch { /* not written */ }
  if (!v.name.includes("no-code-cache") && !cached) {
    console.log(`warning: ${v.name}: no V8 code cache was written in its DENO_DIR`);
  }
}
await Deno.remove(dir, { recursive: true });
