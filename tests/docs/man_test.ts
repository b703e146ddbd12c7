// The manual pages say what the code does: the module arguments in pam_mapi(8), pam_mapi_helper(8),
// the administrator's guide's table, the shim's and the helper's parsers and the helper's --help are
// one list; the helper's commands, exit statuses and defaults match the code; the results match the
// guide's; and both pages are clean under mandoc -Tlint.
import assert from "node:assert/strict";
import { DEFAULT_SOCKET, DEFAULT_TIMEOUT, FEATURES, MAX_SOCKETS } from "../../src/pam/args.ts";
import { HELP } from "../../src/cli/help.ts";
import { exitCodeFor, type PamResult } from "../../src/pam/results.ts";
import { MAX_REQUEST } from "../../src/pam/protocol.ts";
import { IDLE_TCP_MS, IDLE_UNIX_MS } from "../../src/daemon/pool.ts";
import { MAX_IN_PROGRESS, REQUEST_MS } from "../../src/daemon/serve_conn.ts";
import { DEFAULT_DAEMON_SOCKET } from "../../src/daemon/trust.ts";

const ROOT = new URL("../..", import.meta.url).pathname.replace(/\/$/, "");
const PAGES = [`${ROOT}/man/pam_mapi.8`, `${ROOT}/man/pam_mapi_helper.8`];
const read = (path: string) => Deno.readTextFileSync(`${ROOT}/${path}`);

/** The lines of a man(7) section, from `.SH NAME` to the next `.SH`. */
function section(page: string, name: string): string[] {
  const lines = page.split("\n");
  const start = lines.findIndex((l) => l === `.SH ${name}` || l === `.SH "${name}"`);
  assert.ok(start >= 0, `no section ${name}`);
  const end = lines.findIndex((l, i) => i > start && l.startsWith(".SH "));
  return lines.slice(start + 1, end < 0 ? undefined : end);
}

/** Unescapes the roff that appears in tags: \- and \e. */
const unroff = (s: string) => s.replace(/\\-/g, "-").replace(/\\e/g, "\\").replace(/\\c$/, "");

/**
 * The tags of the .TP/.TQ entries of a section: the first word of the line after each, with
 * its body (the lines up to the next entry).
 */
function entries(lines: string[]): { tag: string; body: string }[] {
  const out: { tag: string; body: string }[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (lines[i] !== ".TP" && lines[i] !== ".TQ") continue;
    const m = /^\.(?:B|BI|BR|I|IR)\s+"?([^\s"]+)/.exec(lines[i + 1] ?? "");
    assert.ok(m, `entry without a tag: ${lines[i + 1]}`);
    let j = i + 2;
    while (j < lines.length && lines[j] !== ".TP" && lines[j] !== ".TQ") j++;
    out.push({ tag: unroff(m[1]), body: lines.slice(i + 2, j).join("\n") });
  }
  return out;
}

/** `socket=` → socket, `try_first_pass` → try_first_pass. */
const argName = (tag: string) => tag.replace(/=.*$/, "");

/** The string literals of a C array initializer or a TS array literal named `name`. */
function literalList(source: string, pattern: RegExp): string[] {
  const m = pattern.exec(source);
  assert.ok(m, `${pattern} not found`);
  return [...m[1].matchAll(/"([^"]+)"/g)].map((x) => x[1]);
}

function codeArgs(): { shim: string[]; helper: string[] } {
  const c = read("shim/args.c");
  const shim = [
    ...literalList(c, /flag_names\[\]\s*=\s*\{([^}]*)\}/),
    ...literalList(c, /value_names\[\]\s*=\s*\{([^}]*)\}/),
  ];
  const ts = read("src/pam/args.ts");
  const helper = [
    ...literalList(ts, /const FLAGS = \[([^\]]*)\]/),
    ...literalList(ts, /const VALUED = \[([^\]]*)\]/),
  ];
  return { shim, helper };
}

/** The module arguments the helper's --help lists (two-space indented names). */
function helpArgs(): string[] {
  const block = HELP.slice(HELP.indexOf("Module arguments:"));
  const names: string[] = [];
  for (const line of block.split("\n").slice(1)) {
    const m = /^ {2}([a-z_][^ ,]*(?:, [a-z_][^ ,]*)*)/.exec(line);
    if (m) names.push(...m[1].split(", ").map(argName));
    else if (line !== "" && !line.startsWith("   ")) break; // the next paragraph
  }
  return names;
}

/** The text of a `## ` section of the administrator's guide, up to the next `## `. */
function guideSection(heading: string): string {
  const guide = read("docs/admin-guide.md");
  const start = guide.indexOf(`\n## ${heading}\n`);
  assert.ok(start >= 0, `docs/admin-guide.md has no section ${heading}`);
  const end = guide.indexOf("\n## ", start + 1);
  return guide.slice(start, end < 0 ? undefined : end);
}

/** The first column of the administrator's guide's "Module arguments" table. */
function guideArgs(): string[] {
  const table = guideSection("Module arguments");
  return [...table.matchAll(/^\| `([^`]+)`/gm)].map((m) => argName(m[1].replace(/\\\|/g, "|")));
}

const sorted = (xs: string[]) => [...new Set(xs)].sort();

Deno.test("man pages: the module arguments are the code's, --help's and the admin guide's", () => {
  const { shim, helper } = codeArgs();
  const expected = sorted(shim);
  assert.equal(shim.length, 11, "shim/args.c lists changed: check this test's parsing");
  assert.deepEqual(sorted(helper), expected, "src/pam/args.ts and shim/args.c differ");
  assert.deepEqual(sorted(helpArgs()), expected, "src/cli/help.ts");
  assert.deepEqual(sorted(guideArgs()), expected, "docs/admin-guide.md module-argument table");
  const module = Deno.readTextFileSync(PAGES[0]);
  const helperPage = Deno.readTextFileSync(PAGES[1]);
  const moduleArgs = entries(section(module, "OPTIONS")).map((e) => argName(e.tag));
  assert.deepEqual(sorted(moduleArgs), expected, "pam_mapi.8 OPTIONS");
  assert.equal(moduleArgs.length, expected.length, "pam_mapi.8 lists an option twice");
  const helperArgs = entries(section(helperPage, "MODULE ARGUMENTS")).map((e) => argName(e.tag));
  assert.deepEqual(sorted(helperArgs), expected, "pam_mapi_helper.8 MODULE ARGUMENTS");
  // The synopsis names each one too.
  const synopsis = section(module, "SYNOPSIS").join(" ");
  for (const name of expected) assert.match(synopsis, new RegExp(`\\b${name}\\b`), name);
});

Deno.test("man pages: defaults and limits are the code's", () => {
  const page = Deno.readTextFileSync(PAGES[0]);
  const options = entries(section(page, "OPTIONS"));
  const body = (name: string) => options.find((e) => argName(e.tag) === name)!.body;
  assert.match(
    body("socket"),
    new RegExp(`Default:\\s+\\.BR ${DEFAULT_SOCKET.replace(/\./g, "\\.")}`),
  );
  assert.match(body("socket"), new RegExp(`Up to ${MAX_SOCKETS},`));
  assert.match(body("timeout"), new RegExp(`default\\s+${DEFAULT_TIMEOUT}\\b`));
  assert.match(body("timeout"), /from 1\s+to\s+300/);
  for (const f of FEATURES) assert.match(body("service"), new RegExp(`^\\.BR ${f} [,.]$`, "m"), f);
  const helperPath = /^HELPER_PATH \?= (\S+)$/m.exec(read("shim/Makefile"))![1];
  assert.match(body("helper"), new RegExp(`\\.IR ${helperPath.replace(/\./g, "\\.")} \\)`));
  assert.ok(section(page, "FILES").includes(`.I ${helperPath}`), "FILES names the helper");
});

Deno.test("man pages: the helper's commands and exit statuses are the code's", () => {
  const page = Deno.readTextFileSync(PAGES[1]);
  // Commands and options from --help's usage lines.
  const usage = HELP.slice(0, HELP.indexOf("\n\n"));
  const fromHelp = sorted(
    [...usage.matchAll(/(?<=\s|\[)(check|serve|status|--[a-z]+)/g)].map((m) => m[1]),
  );
  const fromMan = sorted(entries(section(page, "OPTIONS")).map((e) => e.tag));
  assert.deepEqual(fromMan, fromHelp);
  const synopsis = unroff(section(page, "SYNOPSIS").join(" "));
  for (const word of fromHelp) assert.ok(synopsis.includes(word), `SYNOPSIS lacks ${word}`);
  // Each exit status names the results that give it.
  const results: PamResult[] = [
    "PAM_SUCCESS",
    "PAM_AUTH_ERR",
    "PAM_AUTHINFO_UNAVAIL",
    "PAM_IGNORE",
    "PAM_SERVICE_ERR",
  ];
  const statuses = entries(section(page, "EXIT STATUS"));
  assert.deepEqual(statuses.map((e) => e.tag), ["0", "1", "2", "3"]);
  for (const result of results) {
    const where = statuses.filter((e) => new RegExp(`\\b${result}\\b`).test(e.body));
    assert.deepEqual(where.map((e) => Number(e.tag)), [exitCodeFor(result)], result);
  }
});

Deno.test("man pages, --help and admin guide: the resident helper's socket and limits are the code's", () => {
  const page = Deno.readTextFileSync(PAGES[1]);
  const options = entries(section(page, "OPTIONS"));
  const serve = options.find((e) => e.tag === "serve")!.body;
  assert.match(serve, new RegExp(`^\\.I ${DEFAULT_DAEMON_SOCKET}$`, "m"));
  assert.match(serve, new RegExp(`At most ${MAX_IN_PROGRESS} logins`));
  assert.match(serve, new RegExp(`within ${REQUEST_MS / 1000} seconds`));
  assert.match(serve, new RegExp(`${MAX_REQUEST} bytes`));
  assert.ok(section(page, "FILES").includes(`.I ${DEFAULT_DAEMON_SOCKET}`));
  const daemonArg = entries(section(Deno.readTextFileSync(PAGES[0]), "OPTIONS"))
    .find((e) => e.tag === "daemon=")!.body;
  assert.match(daemonArg, new RegExp(`\\.IR ${DEFAULT_DAEMON_SOCKET} \\)`));
  assert.match(HELP, new RegExp(`default ${DEFAULT_DAEMON_SOCKET}, mode 0600`));
  assert.match(HELP, new RegExp(`Handles ${MAX_IN_PROGRESS} logins at once`));
  const text = guideSection("The resident helper (`pam_mapi_helper serve`)").replace(/\s+/g, " ");
  assert.match(text, new RegExp(`default \`${DEFAULT_DAEMON_SOCKET}\``));
  assert.match(text, new RegExp(`At most ${MAX_IN_PROGRESS} logins in progress`));
  assert.match(text, new RegExp(`within ${REQUEST_MS / 1000} seconds`));
  assert.match(text, new RegExp(`after ${IDLE_TCP_MS / 1000} s over TCP and TLS`));
  assert.match(text, new RegExp(`after ${IDLE_UNIX_MS / 1000} s over \`file://\``));
  // pam_mapi(8) gives the daemon's limit where it explains daemon= and the results: the code's.
  const modulePage = Deno.readTextFileSync(PAGES[0]).replace(/\s+/g, " ");
  const limits = [...modulePage.matchAll(/(\d+) logins in progress/g)].map((m) => Number(m[1]));
  assert.ok(limits.length >= 2, `pam_mapi(8) names the limit ${limits.length} times`);
  assert.deepEqual([...new Set(limits)], [MAX_IN_PROGRESS], "pam_mapi(8)'s login limit");
});

Deno.test("man pages: RETURN VALUES are the admin guide's results", () => {
  const answers = guideSection("What the module answers");
  const fromGuide = sorted([...answers.matchAll(/`(PAM_[A-Z_]+)`/g)].map((m) => m[1]));
  const page = Deno.readTextFileSync(PAGES[0]);
  const fromMan = entries(section(page, "RETURN VALUES")).map((e) => e.tag);
  // The guide says "what pam_get_user answered" where the page names its usual code.
  assert.deepEqual(sorted(fromMan.filter((t) => t !== "PAM_USER_UNKNOWN")), fromGuide);
  assert.ok(fromMan.includes("PAM_USER_UNKNOWN"));
  assert.match(answers, /what `pam_get_user` answered/);
});

Deno.test("man pages: the sections a PAM module page has", () => {
  const page = Deno.readTextFileSync(PAGES[0]);
  const heads = page.split("\n").filter((l) => l.startsWith(".SH ")).map((l) => l.slice(4));
  for (
    const name of [
      "NAME",
      "SYNOPSIS",
      "DESCRIPTION",
      "OPTIONS",
      "MODULE TYPES PROVIDED",
      "RETURN VALUES",
      "EXAMPLES",
      "SECURITY",
      "FILES",
      "SEE ALSO",
    ]
  ) assert.ok(heads.includes(name), name);
});

Deno.test("man pages: clean under mandoc -Tlint (and groff -ww when installed)", async () => {
  let mandoc;
  try {
    mandoc = await new Deno.Command("mandoc", { args: ["-Tlint", ...PAGES] }).output();
  } catch {
    throw new Error("mandoc is not installed: run scripts/setup.sh");
  }
  const lint = new TextDecoder().decode(mandoc.stdout) + new TextDecoder().decode(mandoc.stderr);
  assert.equal(lint, "");
  assert.equal(mandoc.code, 0);
  for (const page of PAGES) {
    const groff = await new Deno.Command("groff", { args: ["-ww", "-z", "-man", page] }).output()
      .catch(() => null);
    if (groff) assert.equal(new TextDecoder().decode(groff.stderr), "", page);
  }
});

/**
 * The module arguments of `names` that `guide` (Markdown) does not name in a code span of its own:
 * `` `cafile=PATH` `` or `` `cafile=/etc/ssl/ca.pem` `` names cafile, `` `quiet` `` names quiet, and
 * neither `` `pam_mapi.so quiet` `` nor a bare word in the prose counts.
 */
export function argsNotNamed(names: string[], guide: string): string[] {
  const spans = [...guide.matchAll(/`([^`\n]+)`/g)].map((m) => m[1]);
  return names.filter((name) => !spans.some((s) => s === name || s.startsWith(`${name}=`)));
}

Deno.test("man pages: every option of pam_mapi(8) is named in the admin guide, which links the page", () => {
  const names = entries(section(Deno.readTextFileSync(PAGES[0]), "OPTIONS")).map((e) =>
    argName(e.tag)
  );
  assert.equal(names.length, codeArgs().shim.length, "pam_mapi.8 OPTIONS");
  const guide = read("docs/admin-guide.md");
  assert.deepEqual(argsNotNamed(names, guide), [], "docs/admin-guide.md");
  assert.match(guide, /\]\(\.\.\/man\/pam_mapi\.8\)/, "the guide links pam_mapi(8)");
});

Deno.test("man pages: the admin-guide option check reports an option the guide does not name", () => {
  const guide = [
    "| `socket=URL` | `timeout=5` | `service=imap\\|pop3` |",
    "Add `quiet` or `pam_mapi.so debug`; cafile is in the prose only; `daemon=off`.",
  ].join("\n");
  assert.deepEqual(
    argsNotNamed(["socket", "timeout", "service", "quiet", "debug", "cafile", "daemon"], guide),
    ["debug", "cafile"],
  );
  assert.deepEqual(argsNotNamed(["socket"], ""), ["socket"]);
});
