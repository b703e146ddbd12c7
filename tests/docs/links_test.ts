// Every relative link in the repository's Markdown (the README, docs/, the READMEs of shim/ and
// tests/fixtures/, packaging/) leads somewhere: the file or directory it names exists, and an
// `#anchor` is a heading of the Markdown file it points into. And the check can fail: a broken link and a broken
// anchor are both reported.
import assert from "node:assert/strict";
import { anchors, brokenLinks, type Exists, type Reader } from "./links.ts";

const ROOT = new URL("../..", import.meta.url).pathname.replace(/\/$/, "");
/** Build output, caches and package work trees (.gitignore): not the repository's own text. */
const SKIP = new Set([
  ".git",
  "dist",
  "node_modules",
  "debian",
  "shim/build",
  "coverage",
  "packaging/debian/.debhelper",
  "packaging/debian/libpam-mapi", // a build in the checkout copies the README there
]);

const read: Reader = (path) => {
  try {
    return Deno.readTextFileSync(`${ROOT}/${path}`);
  } catch {
    return null; // missing, or a directory
  }
};
const exists: Exists = (path) => {
  try {
    Deno.statSync(`${ROOT}/${path}`);
    return true;
  } catch {
    return false;
  }
};

/** Every `.md` file below `dir` but build output, hidden directories included. */
function markdownUnder(dir: string): string[] {
  return [...Deno.readDirSync(`${ROOT}/${dir}`)].flatMap((e) => {
    const path = `${dir}/${e.name}`;
    if (SKIP.has(path)) return [];
    if (e.isDirectory) return markdownUnder(path);
    return e.isFile && e.name.endsWith(".md") ? [path] : [];
  });
}

function markdownFiles(dir = ""): string[] {
  return [...Deno.readDirSync(`${ROOT}/${dir}`)].flatMap((e) => {
    const path = dir === "" ? e.name : `${dir}/${e.name}`;
    if (SKIP.has(path) || path.startsWith("packaging/debian/.")) return [];
    if (e.isDirectory) return markdownFiles(path);
    return e.isFile && e.name.endsWith(".md") ? [path] : [];
  });
}

Deno.test("docs: every relative link and #anchor in the Markdown resolves", () => {
  const files = markdownFiles().sort();
  // Every page a reader reaches: the README, each page of docs/, the READMEs of shim/ and
  // tests/fixtures/, and any Markdown of packaging/ (which ships in the packages).
  const required = [
    "README.md",
    "shim/README.md",
    "tests/fixtures/README.md",
    ...markdownUnder("docs"),
    ...markdownUnder("packaging"),
  ];
  for (const f of ["docs/README.md", "docs/admin-guide.md", "docs/protocol.md", "docs/kopano.md"]) {
    assert.ok(required.includes(f), `${f} is among the pages required`);
  }
  for (const f of required) assert.ok(files.includes(f), `${f} is among the files checked`);
  const broken = files.flatMap((f) => brokenLinks(f, read, exists));
  assert.deepEqual(
    broken.map((b) => `${b.file}:${b.line}: ${b.target}: ${b.why}`),
    [],
  );
  // The check looked at something: the README links into docs/ and to its own sections.
  const readme = read("README.md")!;
  assert.match(readme, /\]\(docs\/[\w.-]+\.md(#[\w-]+)?\)/);
});

Deno.test("docs: the link check reports a broken link and a broken anchor", () => {
  const files: Record<string, string> = {
    "README.md": [
      "# Top",
      "See [the guide](docs/guide.md#set-up-etcpamdsmtp), [the license](LICENSE),",
      "[a gone file](docs/gone.md), [a gone section](docs/guide.md#no-such-section),",
      "[here](#top), [up](#nowhere), `[not a link](docs/code.md)` and",
      "```",
      "[in a code block](docs/block.md)",
      "```",
      "[elsewhere](https://example.com/x.md#y), [out](../outside.md).",
      "[ref]: docs/also-gone.md",
    ].join("\n"),
    "docs/guide.md": "# Guide\n\n## Set up `/etc/pam.d/smtp`\n\n[back](../README.md#top)\n",
    "LICENSE": "text",
  };
  const fakeRead: Reader = (p) => files[p] ?? null;
  const fakeExists: Exists = (p) => p in files || p === "docs";
  const found = Object.keys(files).filter((f) => f.endsWith(".md"))
    .flatMap((f) => brokenLinks(f, fakeRead, fakeExists))
    .map((b) => `${b.file}:${b.line}: ${b.target}: ${b.why}`);
  assert.deepEqual(found, [
    "README.md:3: docs/gone.md: no such file or directory",
    "README.md:3: docs/guide.md#no-such-section: no heading with the anchor #no-such-section",
    "README.md:4: #nowhere: no heading with the anchor #nowhere",
    "README.md:8: ../outside.md: leads out of the checkout",
    "README.md:9: docs/also-gone.md: no such file or directory",
  ]);
});

Deno.test("docs: heading anchors are spelled as GitHub spells them", () => {
  const md = [
    "## The resident helper (`pam_mapi_helper serve`)",
    "### 7.5 What a Kopano server's reply may cost",
    "## saslauthd on Debian 12 and 13 (sasl2-bin)",
    "## Try it: two commands",
    "## Notes",
    "## Notes",
    "```",
    "## not a heading",
    "```",
  ].join("\n");
  assert.deepEqual([...anchors(md)], [
    "the-resident-helper-pam_mapi_helper-serve",
    "75-what-a-kopano-servers-reply-may-cost",
    "saslauthd-on-debian-12-and-13-sasl2-bin",
    "try-it-two-commands",
    "notes",
    "notes-1",
  ]);
});
