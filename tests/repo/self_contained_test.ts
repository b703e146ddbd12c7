// The repository stands alone: a plain clone with nothing beside it has everything its tests, its
// scripts and its documents use. No file names the directory a development machine may have next to
// the checkout, and no module resolves a path relative to itself that leads out of the checkout.
// The files are those git tracks (what a clone gets), or, without git, the tree minus .gitignore.
import assert from "node:assert/strict";
import { anchors } from "../docs/links.ts";

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

// A citation must lead somewhere a reader of the checkout can go: the repository's own documents
// (docs/, the man pages), not the product spec or research notes a development machine keeps
// beside the checkout. The names are spelled in parts so that this file does not cite them itself.
const FOREIGN_CITATION = new RegExp(
  [
    "\\b" + "SPEC" + "\\b",
    "spec" + " §",
    "reference" + " §",
    "kopano-soap" + "\\.md",
    "pam-" + "anchors",
    "toolchain" + "\\.md",
  ].join("|"),
);
// docs/PAGE.md#anchor in a comment or a document: the page must exist and have that heading.
const DOC_ANCHOR = /\bdocs\/([a-z0-9_-]+\.md)#([a-z0-9_-]+)/g;

/** "file:line: text" for every line of `text` that cites the spec or the research notes. */
export function foreignCitations(file: string, text: string): string[] {
  return text.split("\n").flatMap((line, i) =>
    FOREIGN_CITATION.test(line) ? [`${file}:${i + 1}: ${line.trim()}`] : []
  );
}

/** "file: docs/x.md#a" for every docs/ anchor cited in `text` that `read` cannot find. */
export function brokenDocAnchors(
  file: string,
  text: string,
  read: (page: string) => string | null,
): string[] {
  return [...text.matchAll(DOC_ANCHOR)].flatMap(([cited, page, anchor]) => {
    const markdown = read(`docs/${page}`);
    return markdown !== null && anchors(markdown).has(anchor) ? [] : [`${file}: ${cited}`];
  });
}

const citingFiles = () =>
  repositoryFiles().filter((f) =>
    /\.(ts|md|c|h|sh|8|py)$/.test(f) && !f.startsWith("tests/fixtures/") &&
    // these two cite made-up pages on purpose, in their checks' own tests
    f !== "tests/repo/self_contained_test.ts" && f !== "tests/docs/links_test.ts"
  );

const readPage = (path: string) => {
  try {
    return Deno.readTextFileSync(`${ROOT}/${path}`);
  } catch {
    return null;
  }
};

Deno.test("citations name the repository's own documents, and their anchors exist", () => {
  const files = citingFiles();
  assert.ok(files.some((f) => f.startsWith("src/")), "src/ is in the list");
  const foreign = files.flatMap((f) => foreignCitations(f, Deno.readTextFileSync(`${ROOT}/${f}`)));
  assert.deepEqual(foreign, [], "cite docs/ or a man page instead");
  let cited = 0;
  const broken = files.flatMap((f) => {
    const text = Deno.readTextFileSync(`${ROOT}/${f}`);
    cited += [...text.matchAll(DOC_ANCHOR)].length;
    return brokenDocAnchors(f, text, readPage);
  });
  assert.ok(cited > 5, `only ${cited} docs/ anchors cited: is the pattern still right?`);
  assert.deepEqual(broken, []);
});

Deno.test("citation check: what it reports, and what it lets through", () => {
  const spec = ["SP", "EC"].join("");
  const text = [
    `// The decision (${spec} §3).`,
    `// see ${"reference"} §5.4`,
    `// ${"kopano-soap"}.md, ${"pam-"}anchors pitfall 2`,
    "const SPECIAL = 1; // a word that only begins like it",
    "// the spec of RFC 9112 (lower case, no section sign)",
  ].join("\n");
  assert.deepEqual(foreignCitations("x.ts", text).map((l) => l.split(":")[1]), ["1", "2", "3"]);
  const page = "# Title\n\n## 4. getUser, the lists\n";
  const read = (p: string) => p === "docs/kopano.md" ? page : null;
  assert.deepEqual(
    brokenDocAnchors(
      "y.ts",
      "docs/kopano.md#4-getuser-the-lists docs/kopano.md#9-gone docs/gone.md#title",
      read,
    ),
    ["y.ts: docs/kopano.md#9-gone", "y.ts: docs/gone.md#title"],
  );
});
