// The repository stands alone: a plain clone with nothing beside it has everything its tests, its
// scripts and its documents use. No file names the directory a development machine may have next to
// the checkout, and no module resolves a path relative to itself that leads out of the checkout.
// The files are those git tracks (what a clone gets), or, without git, the tree minus .gitignore.
import assert from "node:assert/strict";

const ROOT = new URL("../..", import.meta.url).pathname.replace(/\/$/, "");
// Spelled in two parts so that this file does not name it itself.
const SIBLING = [".." + "/", "shared"].join("");
const dec = new TextDecoder();

/** `git ARGS` in the checkout, split at NULs; null without git or outside a git checkout. */
function git(args: string[]): string[] | null {
  let out: Deno.CommandOutput;
  try {
    out = new Deno.Command("git", { args: ["-C", ROOT, ...args], stderr: "null" }).outputSync();
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null; // git is not installed
    throw e;
  }
  return out.success ? dec.decode(out.stdout).split("\0").filter((p) => p !== "") : null;
}

/** The files git tracks, when this directory is the top of a git checkout (not a tarball in one). */
function trackedFiles(): string[] | null {
  const top = git(["rev-parse", "--show-toplevel"]);
  if (top === null || top[0]?.trim() !== ROOT) return null;
  return git(["ls-files", "-z"]);
}

/** The simple .gitignore forms this repository uses: "/anchored/path[/]", "*.ext", "/dir/*.ext". */
function ignoredBy(gitignore: string): (path: string) => boolean {
  const patterns = gitignore.split("\n").map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("#"))
    .map((l) => {
      const anchored = l.startsWith("/") || l.slice(0, -1).includes("/");
      const glob = l.replace(/^\//, "").replace(/\/$/, "");
      const re = glob.split("*").map((s) => s.replace(/[.+?^${}()|[\]\\]/g, "\\$&")).join("[^/]*");
      return new RegExp(anchored ? `^${re}(/|$)` : `(^|/)${re}(/|$)`);
    });
  return (path) => path === ".git" || patterns.some((re) => re.test(path));
}

/** The regular files of the tree that .gitignore does not exclude (what a clone would have). */
function walkedFiles(): string[] {
  const ignored = ignoredBy(Deno.readTextFileSync(`${ROOT}/.gitignore`));
  const walk = (dir: string): string[] =>
    [...Deno.readDirSync(`${ROOT}/${dir}`)].flatMap((e) => {
      const path = dir === "" ? e.name : `${dir}/${e.name}`;
      if (ignored(path)) return [];
      return e.isDirectory ? walk(path) : e.isFile ? [path] : [];
    });
  return walk("");
}

const repositoryFiles = () => trackedFiles() ?? walkedFiles();

/** Whether the bytes of `hay` contain `needle` (ASCII), whatever the file's encoding. */
function contains(hay: Uint8Array, needle: string): boolean {
  return new TextDecoder("latin1").decode(hay).includes(needle);
}

Deno.test("no file names the directory beside the checkout", () => {
  const files = repositoryFiles();
  assert.ok(files.includes("deno.json"), "the file list is this checkout's");
  assert.ok(files.some((f) => f.startsWith("tests/fixtures/")), "the captures are in the list");
  const naming = files.filter((f) => contains(Deno.readFileSync(`${ROOT}/${f}`), SIBLING));
  assert.deepEqual(naming, [], `these files name ${SIBLING}, which a plain clone does not have`);
});

Deno.test("no module resolves a path relative to itself that leads out of the checkout", () => {
  const modules = repositoryFiles().filter((f) => /\.(ts|js|mjs|cjs)$/.test(f));
  assert.ok(modules.length > 50, `only ${modules.length} modules found`);
  const outside: string[] = [];
  let seen = 0;
  const relative = /new URL\(\s*(["'`])([^"'`$]+)\1\s*,\s*import\.meta\.url\s*,?\s*\)/g;
  for (const f of modules) {
    const base = new URL(`file://${ROOT}/${f}`);
    for (const m of Deno.readTextFileSync(`${ROOT}/${f}`).matchAll(relative)) {
      seen++;
      const target = new URL(m[2], base).pathname;
      if (target !== ROOT && !target.startsWith(`${ROOT}/`)) outside.push(`${f}: ${m[2]}`);
    }
  }
  assert.ok(seen > 10, `only ${seen} relative paths found: is the pattern still right?`);
  assert.deepEqual(outside, []);
});

const inGit = trackedFiles() !== null;

Deno.test({
  name: inGit
    ? "without git, the walk of the tree finds the files git would (tracked or not ignored)"
    : "the walk of the tree matches git: SKIPPED, needs a git checkout",
  ignore: !inGit,
  fn: () => {
    const isFile = (f: string) => {
      try {
        return Deno.lstatSync(`${ROOT}/${f}`).isFile;
      } catch {
        return false; // tracked, but deleted in the working tree
      }
    };
    const expected = git(["ls-files", "-z", "--cached", "--others", "--exclude-standard"])!;
    assert.deepEqual(walkedFiles().sort(), [...new Set(expected.filter(isFile))].sort());
  },
});
