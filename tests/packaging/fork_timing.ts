// The fork path's latency from the installed package (in the container) against the build tree's
// (on the host), measured in the same run: pam_bench, whole PAM transactions with daemon=off
// against the same Kopano-compatible server, in alternating rounds so that the machine's load
// falls on both alike. The build tree's side is set up as deno task bench sets up its fork row
// (scripts/bench/workspace.ts): a private copy of the built module and bundle, with a launcher
// whose code cache is a fresh directory, as /var/cache/pam_mapi is after an installation.
import { buildDriver, drive, type DriverRun } from "../../scripts/bench/driver.ts";
import { median } from "../../scripts/bench/stats.ts";
import { buildLauncher, launcherInfo, pamBundlePath } from "../../scripts/lib/helper_build.ts";
import type { Container } from "./container.ts";
import { pamBench, pamService } from "./in_container.ts";

const ROOT = new URL("../..", import.meta.url).pathname.replace(/\/$/, "");

export interface BuildTree extends AsyncDisposable {
  /** pam_bench, built for this machine's libpam (the container's, of the same suite, too). */
  pamBench: string;
  conf: string;
}

/** A private copy of dist/ and a pam.d service "fork" naming it, daemon=off, against `url`. */
export async function buildTreeFork(url: string): Promise<BuildTree> {
  const dir = await Deno.makeTempDir({ prefix: "pam_mapi_forktime_" });
  try {
    await Deno.chmod(dir, 0o755);
    const info = await launcherInfo(`${ROOT}/dist/pam_mapi_helper`);
    if (!info) throw new Error("dist/pam_mapi_helper is not the bundle's launcher");
    await Deno.copyFile(info.bundle, `${dir}/pam_mapi_helper.js`);
    await Deno.copyFile(info.pam_bundle, pamBundlePath(`${dir}/pam_mapi_helper.js`));
    await buildLauncher(ROOT, `${dir}/pam_mapi_helper`, {
      deno: info.deno,
      bundle: `${dir}/pam_mapi_helper.js`,
      cache: `${dir}/cache`,
    });
    await Deno.copyFile(`${ROOT}/dist/pam_mapi.so`, `${dir}/pam_mapi.so`);
    await buildDriver(`${dir}/pam_bench`);
    await Deno.mkdir(`${dir}/pam.d`);
    await Deno.writeTextFile(
      `${dir}/pam.d/fork`,
      `auth required ${dir}/pam_mapi.so helper=${dir}/pam_mapi_helper daemon=off socket=${url}\n`,
    );
    return {
      pamBench: `${dir}/pam_bench`,
      conf: `${dir}/pam.d`,
      [Symbol.asyncDispose]: () => Deno.remove(dir, { recursive: true }),
    };
  } catch (e) {
    await Deno.remove(dir, { recursive: true });
    throw e;
  }
}

export interface ForkTiming {
  /** p50 of every login, and the lowest and highest p50 of a round, in ms. */
  installed: { p50: number; rounds: [number, number] };
  buildTree: { p50: number; rounds: [number, number] };
  /** installed p50 / build tree p50, over all logins and the lowest and highest of a round */
  ratio: number;
  roundRatios: [number, number];
  logins: number;
}

/**
 * `rounds` rounds of `count` logins (alice, right password) on each side, each run after
 * `warmup` logins (the first fill each side's code cache). Short rounds, alternating which side
 * goes first, so that the load of the moment falls on both alike. pam_bench must be in the
 * container (installPamBench).
 */
export async function compareForkedP50(
  c: Container,
  tree: BuildTree,
  url: string,
  o = { rounds: 10, count: 10, warmup: 2 },
): Promise<ForkTiming> {
  await pamService(c, "fork", [`auth required pam_mapi.so daemon=off socket=${url}`]);
  const args = ["--count", String(o.count), "--warmup", String(o.warmup)];
  const installed = () => pamBench(c, "fork", "alice", "secret", args);
  const built = () => drive(tree.pamBench, tree.conf, "fork", "alice", "secret", args);
  const ms = (run: DriverRun) => {
    const bad = [...run.results].filter(([k]) => k !== "PAM_SUCCESS");
    if (bad.length) throw new Error(`forked logins failed: ${JSON.stringify(bad)}`);
    return run.latUs.map((us) => us / 1000);
  };
  const sides = { installed: [] as number[][], buildTree: [] as number[][] };
  for (let r = 0; r < o.rounds; r++) {
    const first = r % 2 ? await built() : null;
    sides.installed.push(ms(await installed()));
    sides.buildTree.push(ms(first ?? await built()));
  }
  const summary = (rounds: number[][]) => {
    const p50s = rounds.map(median);
    return {
      p50: median(rounds.flat()),
      rounds: [Math.min(...p50s), Math.max(...p50s)] as [number, number],
    };
  };
  const ratios = sides.installed.map((a, i) => median(a) / median(sides.buildTree[i]));
  const fromPackage = summary(sides.installed);
  const buildTree = summary(sides.buildTree);
  return {
    installed: fromPackage,
    buildTree,
    ratio: fromPackage.p50 / buildTree.p50,
    roundRatios: [Math.min(...ratios), Math.max(...ratios)],
    logins: o.rounds * o.count,
  };
}
