// deno task fuzz [--seconds S | --runs N]: fuzzes the shim's reply decoder (shim/fuzz/fuzz_reply.c,
// libFuzzer with ASan and UBSan, clang: shim/Makefile's FUZZ_CC) for a bounded time (default 60 s), seeded with every
// reply of tests/protocol/cases.json and a dictionary of the protocol's tokens. Prints the number
// of executions and crashes; exits 1 if anything crashed (the reproducer is kept and named).
import { parseArgs } from "node:util";

const root = new URL("../../", import.meta.url).pathname.replace(/\/$/, "");
const { values } = parseArgs({
  args: Deno.args,
  options: { seconds: { type: "string" }, runs: { type: "string" } },
});
const limit = values.runs ? [`-runs=${Number(values.runs)}`] : [
  `-max_total_time=${Number(values.seconds ?? "60")}`,
];

async function run(cmd: string, args: string[]): Promise<{ code: number; out: string }> {
  const r = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  const dec = new TextDecoder();
  return { code: r.code, out: dec.decode(r.stdout) + dec.decode(r.stderr) };
}

const made = await run("make", ["-s", "-C", `${root}/shim`, "fuzz"]);
if (made.code !== 0) {
  console.error(made.out);
  Deno.exit(2);
}

const work = await Deno.makeTempDir({ prefix: "pam_mapi_fuzz_" });
const corpus = `${work}/corpus`;
const artifacts = `${work}/artifacts`;
await Deno.mkdir(corpus);
await Deno.mkdir(artifacts);

interface Reply {
  raw?: string;
  raw_b64?: string;
}
const cases = JSON.parse(await Deno.readTextFile(`${root}/tests/protocol/cases.json`));
let seeds = 0;
for (const c of cases.replies as Reply[]) {
  const bytes = c.raw_b64 !== undefined
    ? Uint8Array.from(atob(c.raw_b64), (ch) => ch.charCodeAt(0))
    : new TextEncoder().encode(c.raw ?? "");
  await Deno.writeFile(`${corpus}/seed-${seeds++}`, bytes);
}
const tokens = [
  "{",
  "}",
  "[",
  "]",
  ":",
  ",",
  '"v"',
  '"result"',
  '"log"',
  '"priority"',
  '"message"',
  '"PAM_SUCCESS"',
  '"PAM_AUTH_ERR"',
  '"PAM_AUTHINFO_UNAVAIL"',
  '"PAM_IGNORE"',
  '"PAM_SERVICE_ERR"',
  '"err"',
  '"warning"',
  '"notice"',
  '"info"',
  '"debug"',
  "\\u",
  "\\ud83d\\ude00",
  "\\\\",
  "1",
  "1.0",
  "true",
  "null",
];
await Deno.writeTextFile(
  `${work}/dict`,
  tokens.map((t, i) => `t${i}=${JSON.stringify(t)}`).join("\n") + "\n",
);

const start = performance.now();
const r = await run(`${root}/shim/build/fuzz/fuzz_reply`, [
  ...limit,
  "-max_len=70000",
  "-print_final_stats=1",
  `-dict=${work}/dict`,
  `-artifact_prefix=${artifacts}/`,
  corpus,
]);
const seconds = ((performance.now() - start) / 1000).toFixed(1);
const execs = /stat::number_of_executed_units:\s*(\d+)/.exec(r.out)?.[1] ?? "?";
const crashes: string[] = [];
for await (const e of Deno.readDir(artifacts)) crashes.push(`${artifacts}/${e.name}`);

console.log(`fuzz: ${seeds} seeds, ${execs} executions in ${seconds} s, ${crashes.length} crashes`);
if (r.code !== 0 || crashes.length > 0) {
  console.error(r.out.split("\n").slice(-40).join("\n"));
  console.error(`fuzz: reproducers kept in ${artifacts}`);
  Deno.exit(1);
}
await Deno.remove(work, { recursive: true });
