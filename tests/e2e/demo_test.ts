// `deno task demo` as a newcomer runs it, on a machine whose resident helper is running. In a
// private mount and PID namespace, /run is a fresh tmpfs with a trusted recording daemon at
// /run/pam_mapi/helper.sock, the module's default (tests/daemon/fake_daemon.py as root: root's
// socket in a root-owned directory, answering PAM_SUCCESS to everything and counting what it
// gets). The demo must still print its own results, every case as expected in both modes with
// each mode's time per login, exit 0, leave nothing behind, and the recorder must have seen
// nothing. A control login whose pam.d line names no daemon= then shows that the trap works: the
// recorder sees it and lets it in.
import assert from "node:assert/strict";
import { run } from "../../scripts/lib/run.ts";
import { NOT_ROOT, ROOT } from "./lib.ts";

const RECORDER = `${ROOT}/tests/daemon/fake_daemon.py`;
const TRAP = '{"v":1,"result":"PAM_SUCCESS","log":[]}';

// Runs in the namespace: $1 work directory (with the trap reply), $2 the recorder, $3 the
// repository.
const SCRIPT = `
set -eu
work=$1 recorder=$2 repo=$3
mount -t tmpfs -o mode=0755 tmpfs /run
mkdir -m 0755 /run/pam_mapi
python3 "$recorder" /run/pam_mapi/helper.sock root "$work/trap" "$work/recorded" \\
  >"$work/recorder.out" 2>&1 &
rec=$!
tries=0
until grep -q '^ready$' "$work/recorder.out"; do
  tries=$((tries + 1)); [ "$tries" -lt 300 ] || { cat "$work/recorder.out"; exit 90; }; sleep 0.1
done
cd "$repo"
status=0
deno task demo >"$work/demo.out" 2>&1 || status=$?
echo "$status" >"$work/demo.status"
cat "$work/recorded" >"$work/recorded.by-demo" 2>/dev/null || true
# What is left in the namespace besides its PID 1 (this shell) and the recorder.
for p in /proc/[0-9]*; do
  n=\${p#/proc/}
  [ "$n" = 1 ] || [ "$n" = "$rec" ] || cat "$p/comm" 2>/dev/null || true
done >"$work/left"
ls -d /run/pam_mapi_demo_* >>"$work/left" 2>/dev/null || true
kill -0 "$rec" && [ -S /run/pam_mapi/helper.sock ] && echo alive >"$work/recorder.alive"
# The control: a login that names no daemon= goes to the daemon at the default socket.
cp "$repo/dist/pam_mapi.so" "$repo/dist/pam_mapi_helper" "$work/bin/"
printf 'auth required %s helper=%s socket=http://127.0.0.1:1/kopano\\n' \\
  "$work/bin/pam_mapi.so" "$work/bin/pam_mapi_helper" >"$work/pam.d/nodaemon"
printf 'wrong\\n' | LD_PRELOAD=libpam_wrapper.so PAM_WRAPPER=1 PAM_WRAPPER_SERVICE_DIR="$work/pam.d" \\
  pamtester nodaemon alice authenticate >"$work/control.out" 2>&1 || true
`;

Deno.test({
  name: NOT_ROOT
    ? "demo with a daemon on the machine: SKIPPED, needs root (mount and PID namespaces)"
    : "demo: every case as expected in both modes, each mode's time per login, nothing left; " +
      "a daemon at the machine's /run/pam_mapi/helper.sock is never asked",
  ignore: NOT_ROOT,
  async fn() {
    const work = await Deno.makeTempDir({ prefix: "pam_mapi_demo_test_" });
    try {
      // Root's and 0755 all the way up, as the module wants its helper and its daemon.
      await Deno.chmod(work, 0o755);
      await Deno.mkdir(`${work}/bin`, { mode: 0o755 });
      await Deno.mkdir(`${work}/pam.d`, { mode: 0o755 });
      await Deno.writeTextFile(`${work}/trap`, TRAP);
      const r = await run("unshare", [
        "--mount",
        "--propagation",
        "private",
        "--pid",
        "--fork",
        "--kill-child",
        "--mount-proc",
        "sh",
        "-c",
        SCRIPT,
        "sh",
        work,
        RECORDER,
        ROOT,
      ]);
      const read = (name: string) => Deno.readTextFile(`${work}/${name}`).catch(() => "");
      const demo = await read("demo.out");
      assert.equal(r.code, 0, `the namespace's script failed: ${r.stdout}${r.stderr}\n${demo}`);

      // The demo's own results, and nothing asked the machine's daemon.
      assert.equal((await read("demo.status")).trim(), "0", demo);
      assert.match(demo, /^demo: all 5 cases as expected in both modes, and every timed login$/m);
      const header = /^case +expected +forked helper +resident helper +syslog line/m;
      assert.match(demo, header);
      for (
        const [name, result] of [
          ["right password", "PAM_SUCCESS"],
          ["wrong password", "PAM_AUTH_ERR"],
          ["imap not enabled", "PAM_AUTH_ERR"],
          ["imap enabled", "PAM_SUCCESS"],
          ["Kopano server down", "PAM_AUTHINFO_UNAVAIL"],
        ]
      ) {
        // expected, forked helper, resident helper, verdict, pam_mapi's line for that result.
        const row = new RegExp(
          `^${name} +${result} +${result} +${result} +ok +pam_mapi\\(smtp(-imap)?:auth\\): .*` +
            `result=${result}`,
          "m",
        );
        assert.match(demo, row, demo);
      }
      const times =
        /^time per login \(median of (\d+); min-max\) +PAM_SUCCESS +([\d.]+) ms \([\d.]+-[\d.]+\) +([\d.]+) ms \([\d.]+-[\d.]+\) +ok +pamtester alone \(pam_permit\.so\): [\d.]+ ms/m
          .exec(demo);
      assert.ok(times, demo);
      assert.ok(Number(times[1]) >= 11, `only ${times[1]} logins timed`);
      assert.equal(await read("recorded.by-demo"), "", "the machine's daemon was asked");

      // Nothing left: no process of the demo in the namespace, no socket directory in its /run,
      // its sandbox directory removed.
      assert.equal(await read("left"), "");
      const sandbox = /DIR=(\/\S+?)\)/.exec(demo)?.[1];
      assert.ok(sandbox, "the demo did not name its sandbox directory");
      assert.equal(await Deno.stat(sandbox).then(() => "left behind", () => "gone"), "gone");

      // The trap was there and alive all along, and catches a line that names no daemon=.
      assert.equal((await read("recorder.alive")).trim(), "alive");
      assert.match(await read("control.out"), /successfully authenticated/);
      assert.match(await read("recorded"), /^[1-9]\d*\n$/);
    } finally {
      await Deno.remove(work, { recursive: true });
    }
  },
});
