// The Debian package the packaging tests install: the one packaging/build-packages.sh (which
// .ci/run calls before the tests) put in dist/packages, or, where there is none or it is older
// than the sources, one the test builds first (about a minute) when the package tools are here.
import { run } from "../../scripts/lib/run.ts";

export const ROOT = new URL("../..", import.meta.url).pathname.replace(/\/$/, "");
const PACKAGES = `${ROOT}/dist/packages`;

export function which(cmd: string): boolean {
  return ["/usr/bin", "/bin", "/usr/sbin", "/sbin"].some((d) => {
    try {
      return Deno.statSync(`${d}/${cmd}`).isFile;
    } catch {
      return false;
    }
  });
}

export function findDeb(): string | null {
  try {
    const names = [...Deno.readDirSync(PACKAGES)].map((e) => e.name)
      .filter((n) => /^libpam-mapi_[^_]+_[a-z0-9]+\.deb$/.test(n));
    return names.length ? `${PACKAGES}/${names.sort().at(-1)}` : null;
  } catch {
    return null;
  }
}

/**
 * The newest modification time of the files a package build copies (build-packages.sh: those git
 * tracks or would track) and uses (not tests/), or null where git cannot tell.
 */
function newestSource(): number | null {
  let out: Deno.CommandOutput;
  try {
    out = new Deno.Command("git", {
      args: ["-C", ROOT, "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
      stdout: "piped",
      stderr: "null",
    }).outputSync();
  } catch {
    return null; // no git
  }
  if (!out.success) return null;
  let newest = 0;
  const files = new TextDecoder().decode(out.stdout).split("\0");
  for (const f of files.filter((f) => f && !f.startsWith("tests/"))) {
    try {
      newest = Math.max(newest, Deno.lstatSync(`${ROOT}/${f}`).mtime!.getTime());
    } catch {
      // deleted in the work tree: the build leaves it out too
    }
  }
  return newest;
}

/** What a test will install, decided when it is registered (its name says it). */
export interface DebPlan {
  /** The .deb in dist/packages, if any. */
  found: string | null;
  /** It is older than the sources (and cannot be rebuilt when `build` is null). */
  stale: boolean;
  /** Why the test builds it first, or null when it does not. */
  build: string | null;
  /** What is missing to have a .deb at all, or null. */
  missing: string | null;
}

export function debPlan(): DebPlan {
  const found = findDeb();
  const sources = newestSource();
  const stale = found !== null && sources !== null &&
    Deno.statSync(found).mtime!.getTime() < sources;
  const canBuild = which("dpkg-buildpackage");
  const build = (found === null || stale) && canBuild
    ? (found === null
      ? "none in dist/packages"
      : "the one in dist/packages is older than the sources")
    : null;
  const missing = found === null && !canBuild
    ? "dpkg-buildpackage to build the .deb (sh scripts/setup-build.sh installs it), or one in " +
      "dist/packages"
    : null;
  return { found, stale, build, missing };
}

/** How a test names what it installs: "builds the .deb first (...)" or the .deb's path. */
export function debLabel(plan: DebPlan, verb: string): string {
  return plan.build
    ? `builds the .deb first (${plan.build}: sh packaging/build-packages.sh deb), then ${verb}`
    : `${verb} ${plan.found!.slice(ROOT.length + 1)}` +
      (plan.stale ? " (OLDER than the sources: no dpkg-buildpackage to rebuild it)" : "");
}

/** Builds the .deb when it is still needed (a test before may have built it since the plan was
 * made); returns the path of the one to install. */
export async function debToInstall(): Promise<string> {
  if (debPlan().build) {
    const b = await run("sh", ["packaging/build-packages.sh", "deb"], { cwd: ROOT });
    if (b.code !== 0) throw new Error(`build-packages.sh deb failed:\n${b.stdout}${b.stderr}`);
  }
  const deb = findDeb();
  if (!deb) throw new Error("no .deb in dist/packages");
  return deb;
}
