// Many tests run parts of the checkout as other users (the shim's driver and the built helper as
// nobody, the fake daemons as nobody or daemon, the unit's seccomp wrapper as pam_mapi): every
// directory above the checkout must let others through. A clone under /root (mode 0700 on Debian)
// does not, and those tests then fail with "Permission denied" far from the cause; this one names
// it. scripts/setup.sh warns about the same.
import assert from "node:assert/strict";

const ROOT = new URL("../..", import.meta.url).pathname.replace(/\/$/, "");

Deno.test("checkout: other users can reach it (the tests run parts of it as nobody and others)", () => {
  const closed: string[] = [];
  for (let dir = ROOT;; dir = dir.slice(0, dir.lastIndexOf("/")) || "/") {
    const mode = Deno.statSync(dir).mode! & 0o7777;
    if ((mode & 0o001) === 0) closed.push(`${dir} (mode ${mode.toString(8).padStart(4, "0")})`);
    if (dir === "/") break;
  }
  assert.deepEqual(
    closed,
    [],
    `other users cannot get through ${closed.join(", ")}: clone the repository where they can, ` +
      "e.g. /srv/pam_mapi (README.md, Try it)",
  );
});
