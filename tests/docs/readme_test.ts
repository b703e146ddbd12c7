// The README's and the docs' set-up and saslauthd instructions say what the scripts and the tests
// do: the packages docs/install.md lists for each set-up are the ones scripts/setup-build.sh and
// scripts/setup.sh install, the tasks and scripts they name exist, and testsaslauthd's -f is where
// the saslauthd options the README recommends put the socket (named as tests/e2e names it). And
// the README stays a front door: at most 260 lines.
import assert from "node:assert/strict";

const ROOT = new URL("../..", import.meta.url).pathname.replace(/\/$/, "");
const read = (path: string) => Deno.readTextFileSync(`${ROOT}/${path}`);
const README = read("README.md");
const GUIDE = read("docs/admin-guide.md");
const INSTALL = read("docs/install.md");
const DOCS = [...Deno.readDirSync(`${ROOT}/docs`)].filter((e) => e.name.endsWith(".md"))
  .map((e) => read(`docs/${e.name}`));

/** The text of a section, from its heading to the next heading of the same level. */
function section(heading: string, text = README): string {
  const start = text.indexOf(`\n${heading}\n`);
  assert.ok(start >= 0, `no section ${heading}`);
  const level = heading.slice(0, heading.indexOf(" ") + 1);
  const end = text.indexOf(`\n${level}`, start + heading.length + 1);
  return text.slice(start, end < 0 ? undefined : end);
}

/** The words of a shell assignment NAME="..." (which may span lines with backslashes), without
 * the "?" of a package installed only where the release has it (scripts/lib/packages.sh). */
function shellList(path: string, name: string): string[] {
  const m = new RegExp(`^${name}="([^"]*)"`, "m").exec(read(path));
  assert.ok(m, `${path}: no ${name}="..."`);
  return m[1].replace(/\\\n/g, " ").split(/\s+/).filter(Boolean).map((w) => w.replace(/\?$/, ""));
}

/** Rows of docs/install.md's set-up table: script -> [Debian packages, Fedora packages]. */
function setupTable(): Map<string, [string[], string[]]> {
  const rows = new Map<string, [string[], string[]]>();
  const lines = section("## The set-ups", INSTALL).split("\n");
  const head = lines.findIndex((l) => /^\| set-up\s+\|/.test(l));
  assert.ok(head >= 0, "no set-up table in docs/install.md, The set-ups");
  for (const line of lines.slice(head + 2)) {
    if (!line.startsWith("|")) break;
    const cells = line.split("|").slice(1, -1);
    assert.equal(cells.length, 3, line);
    const script = /`(scripts\/[a-z-]+\.sh)`/.exec(cells[0]);
    assert.ok(script, `no script named in ${cells[0]}`);
    const names = (cell: string) => [...cell.matchAll(/`([^`]+)`/g)].map((m) => m[1]);
    rows.set(script[1], [names(cells[1]), names(cells[2])]);
  }
  return rows;
}

const sorted = (xs: string[]) => [...xs].sort();

Deno.test("docs/install.md: each set-up's package list is the script's", () => {
  const table = setupTable();
  const sets = [
    ["scripts/setup-build.sh", "DEB_BUILD", "RPM_BUILD"],
    ["scripts/setup.sh", "DEB_TEST", "RPM_TEST"],
  ];
  assert.deepEqual(sorted([...table.keys()]), sorted(sets.map((s) => s[0])));
  for (const [script, deb, rpm] of sets) {
    const [readmeDeb, readmeRpm] = table.get(script)!;
    assert.deepEqual(sorted(readmeDeb), sorted(shellList(script, deb)), `${script} ${deb}`);
    assert.deepEqual(sorted(readmeRpm), sorted(shellList(script, rpm)), `${script} ${rpm}`);
    // ...and those lists are what the script hands to the installer.
    assert.match(read(script), new RegExp(`^install_packages "\\$${deb}" "\\$${rpm}"$`, "m"));
  }
  // One list per set: the test set-up runs the build set-up and adds only its own packages, so
  // nothing of the test set (no MTA) is in the build set.
  assert.match(read("scripts/setup.sh"), /^sh "\$here\/setup-build\.sh"$/m);
  for (const [deb, test] of [["DEB_BUILD", "DEB_TEST"], ["RPM_BUILD", "RPM_TEST"]]) {
    const build = shellList("scripts/setup-build.sh", deb);
    const both = shellList("scripts/setup.sh", test).filter((p) => build.includes(p));
    assert.deepEqual(both, [], `in both ${deb} and ${test}`);
  }
  for (const mta of ["postfix", "exim4", "sendmail", "sasl2-bin", "cyrus-sasl", "swaks"]) {
    assert.ok(!shellList("scripts/setup-build.sh", "DEB_BUILD").includes(mta), mta);
    assert.ok(!shellList("scripts/setup-build.sh", "RPM_BUILD").includes(mta), mta);
  }
});

Deno.test("README and docs: the scripts and deno tasks they tell to run exist", () => {
  const tasks = Object.keys(JSON.parse(read("deno.json")).tasks);
  const task = (text: string) => [...text.matchAll(/\bdeno task ([a-z-]+)/g)].map((m) => m[1]);
  const used = task(README);
  assert.ok(used.includes("demo") && used.includes("test"), "the two commands at the top");
  for (const t of [...used, ...DOCS.flatMap(task)]) assert.ok(tasks.includes(t), `deno task ${t}`);
  const script = (text: string) =>
    [...text.matchAll(/\bsh ((?:scripts|packaging)\/[\w./-]+\.sh)\b/g)].map((m) => m[1]);
  const scripts = script(README);
  for (const s of ["scripts/setup.sh", "scripts/setup-build.sh", "packaging/build-packages.sh"]) {
    assert.ok(scripts.includes(s), `README does not run ${s}`);
  }
  for (const s of [...scripts, ...DOCS.flatMap(script)]) {
    assert.ok(Deno.statSync(`${ROOT}/${s}`).isFile, s);
  }
  // The Install section builds with the build-only set-up, not the test stack.
  const install = section("## Install");
  assert.match(install, /^sh scripts\/setup-build\.sh\b/m);
  assert.doesNotMatch(install, /^sh scripts\/setup\.sh\b/m);
  // The two commands at the top stay as they are (CI runs the same set-up).
  assert.match(README, /^sh scripts\/setup\.sh && deno task demo\b/m);
  assert.match(README, /^sh scripts\/setup\.sh && deno task test\b/m);
  assert.match(read(".ci/run"), /^scripts\/setup\.sh$/m);
});

Deno.test("README: testsaslauthd -f names the socket the recommended saslauthd options make", () => {
  // Debian: OPTIONS="... -m DIR ..." puts the socket at DIR/mux, as tests/e2e starts saslauthd
  // with -m DIR and points testsaslauthd and Postfix at DIR/mux.
  const debian = section("### saslauthd on Debian 12 and 13");
  const options = /^OPTIONS="([^"]*)"$/m.exec(debian);
  assert.ok(options, "no OPTIONS line");
  const dir = /-m (\S+)/.exec(options[1])![1];
  assert.match(options[1], /(^| )-c( |$)/, "Debian's default -c, which the text explains");
  const lib = read("tests/e2e/lib.ts");
  assert.match(lib, /\["-a", "pam", "-m", dir, \.\.\.flags\]/);
  assert.match(lib, /const mux = `\$\{dir\}\/mux`;/);
  const socket = `${dir}/mux`;
  const fs = [README, GUIDE].flatMap((t) => [...t.matchAll(/`-f ([^`\s]+)`/g)].map((m) => m[1]));
  assert.ok(fs.length >= 3, "the README, the guide's Debian section and Troubleshooting give -f");
  for (const f of fs) assert.equal(f, socket);
  assert.ok(debian.includes(`\`-f ${socket}\``), "the README's section gives testsaslauthd's -f");
  const guide = section("### saslauthd on Debian (sasl2-bin)", GUIDE);
  assert.ok(guide.includes(`\`-f ${socket}\``), "the guide's section gives testsaslauthd's -f");
  assert.ok(section("## Troubleshooting", GUIDE).includes(`\`-f ${socket}\``), "Troubleshooting");
  // The option letters the guide explains are the ones the README recommends (and -t, -n).
  for (const flag of ["-c", "-r", "-t", "-n"]) assert.ok(guide.includes(`\`${flag}`), flag);
  for (const flag of options[1].match(/-[a-z]/g)!) assert.ok(guide.includes(`\`${flag}`), flag);
  // The README's file starts saslauthd on Debian 12 too, whose file has no START line.
  assert.match(debian, /^START=yes$/m);
});

Deno.test("README: a front door of at most 260 lines", () => {
  const lines = README.split("\n").length - (README.endsWith("\n") ? 1 : 0);
  assert.ok(lines <= 260, `README.md has ${lines} lines: move the depth to docs/`);
  assert.ok(lines > 50, `README.md has only ${lines} lines`);
});
