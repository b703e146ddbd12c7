// The Debian package, installed on this machine: dpkg -i puts the module where libpam looks for
// modules and the helper at the path compiled into the module; pamtester (under pam_wrapper, with
// a private pam.d: the machine's PAM stack is never touched) authenticates through that installed
// module, by its bare name, against the Kopano-compatible server; dpkg --purge then removes every
// file it installed and the code cache the helper wrote, and /etc/pam.d is the same throughout;
// a stack that still names the module then refuses every login.
// The package also creates the system account pam_mapi and enables pam_mapi.service (started only
// where systemd runs, which it does not here); purge disables the unit and keeps the account, as
// Debian keeps system accounts (this test removes it afterwards when it made it).
// The resident helper is run as its installed unit says (installed_daemon.ts).
// Installs the .deb that packaging/build-packages.sh (which .ci/run calls before the tests) built;
// where there is none, or it is older than the sources, builds it first (about a minute) when the
// package tools are installed, and is skipped, saying why, when they are not.
import assert from "node:assert/strict";
import { run as runCommand } from "../../scripts/lib/run.ts";
import { startKopanoSim } from "../kopano_sim/mod.ts";
import { assertModeNamed } from "../../scripts/lib/pam_mode.ts";
import { debLabel, debPlan, debToInstall, which } from "./deb.ts";
import { checkInstalledDaemon } from "./installed_daemon.ts";

const PKG = "libpam-mapi";
const HELPER = "/usr/libexec/pam_mapi/pam_mapi_helper";
const RUNTIME = "/usr/libexec/pam_mapi/deno";
const BUNDLE = "/usr/share/pam_mapi/pam_mapi_helper.js";
const PAM_BUNDLE = "/usr/share/pam_mapi/pam_mapi_helper_pam.js";
const CACHE = "/var/cache/pam_mapi";
const EXAMPLE = "/usr/share/doc/libpam-mapi/examples/pam.d/smtp";
const UNIT_NAME = "pam_mapi.service";
const WANTS = "/etc/systemd/system/multi-user.target.wants/pam_mapi.service";
const ACCOUNT = "pam_mapi";
const RUNTIME_DIR = "/run/pam_mapi";

/** The passwd entry of `name` as its fields, or null. */
async function account(name: string): Promise<string[] | null> {
  const r = await run("getent", ["passwd", name]);
  return r.code === 0 ? r.stdout.trim().split(":") : null;
}

/** Runs a command the way the package tools expect to be run from a script. */
function run(
  cmd: string,
  args: string[],
  opts: { stdin?: string; env?: Record<string, string>; cwd?: string } = {},
) {
  return runCommand(cmd, args, {
    ...opts,
    env: { DEBIAN_FRONTEND: "noninteractive", ...opts.env },
  });
}

/** Name → content of every file under /etc/pam.d (symlinks as their target). */
async function pamdSnapshot(): Promise<Map<string, string>> {
  const snap = new Map<string, string>();
  for await (const e of Deno.readDir("/etc/pam.d")) {
    const path = `/etc/pam.d/${e.name}`;
    snap.set(
      e.name,
      e.isSymlink ? `-> ${await Deno.readLink(path)}` : await Deno.readTextFile(path),
    );
  }
  return snap;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch {
    return false;
  }
}

const plan = debPlan();
const missing = [
  Deno.uid() !== 0 && "root",
  plan.missing,
  !which("dpkg") && "dpkg",
  !which("pamtester") && "pamtester",
].filter(Boolean);
const what =
  "pamtester through the installed module, the pam_mapi account and unit, the resident " +
  "helper run as the unit runs it and the fallback when it stops, dpkg --purge leaves nothing but " +
  "the account";

Deno.test({
  name: missing.length
    ? `installed package: SKIPPED, needs ${missing.join(", ")}`
    : `installed package: ${debLabel(plan, "dpkg -i")}, ${what}`,
  ignore: missing.length > 0,
  sanitizeResources: false,
  async fn() {
    const deb = await debToInstall();
    const before = await run("dpkg-query", ["-W", "-f=${Status}", PKG]);
    const accountBefore = await account(ACCOUNT);
    const systemdRuns = await exists("/run/systemd/system");
    const runtimeBefore = await exists(RUNTIME_DIR);
    assert.ok(
      !before.stdout.includes("installed"),
      `${PKG} is already installed (${before.stdout}); this test installs and purges it itself: ` +
        `remove it first (dpkg --purge ${PKG})`,
    );
    // Where this distribution's libpam keeps its modules: where libpam-modules put pam_unix.so.
    const pamFiles = (await run("dpkg", ["-L", "libpam-modules"])).stdout.split("\n");
    const unix = pamFiles.find((l) => l.endsWith("/security/pam_unix.so"));
    assert.ok(unix, "no pam_unix.so in dpkg -L libpam-modules");
    const moduleDir = unix.slice(0, -"/pam_unix.so".length);
    // Where this distribution's systemd keeps its own units (/lib/systemd/system on Debian 12,
    // /usr/lib/systemd/system on 13): the package's unit must be there too.
    const journald = (await run("dpkg", ["-L", "systemd"])).stdout.split("\n")
      .find((l) => l.endsWith("/systemd/system/systemd-journald.service"));
    assert.ok(journald, "no systemd-journald.service in dpkg -L systemd");
    const unit = `${journald.slice(0, journald.lastIndexOf("/"))}/${UNIT_NAME}`;
    const pamdBefore = await pamdSnapshot();
    const isBundle = (await run("dpkg-deb", ["-c", deb])).stdout.includes(`.${RUNTIME}`);

    const dir = await Deno.makeTempDir({ prefix: "pam_mapi_pkg_" });
    const sim = await startKopanoSim({ listen: ["127.0.0.1:0"] });
    let installed: string[] = [];
    const installedFiles: string[] = [];
    try {
      const inst = await run("dpkg", ["-i", deb]);
      assert.equal(inst.code, 0, inst.stdout + inst.stderr);
      installed = (await run("dpkg", ["-L", PKG])).stdout.split("\n").filter((l) =>
        l && l !== "/."
      );

      // The files are where the man page and the module expect them, and nothing is in /etc.
      for (
        const path of [
          `${moduleDir}/pam_mapi.so`,
          HELPER,
          "/usr/share/man/man8/pam_mapi.8.gz",
          "/usr/share/man/man8/pam_mapi_helper.8.gz",
          "/usr/share/doc/libpam-mapi/README.md.gz",
          // the guide the README links to, readable without the source (zless)
          "/usr/share/doc/libpam-mapi/docs/admin-guide.md.gz",
          "/usr/share/doc/libpam-mapi/docs/security.md.gz",
          EXAMPLE,
          ...(isBundle ? [RUNTIME, BUNDLE, PAM_BUNDLE, CACHE] : []),
        ]
      ) assert.ok(installed.includes(path), `${path} not in dpkg -L ${PKG}`);
      assert.deepEqual(installed.filter((p) => p.startsWith("/etc")), []);

      // The resident helper's unit, enabled the Debian way (deb-systemd-helper, even without
      // systemd running), and its account: a system account that cannot log in.
      assert.deepEqual(installed.filter((p) => p.endsWith(`/${UNIT_NAME}`)), [unit]);
      assert.equal(await Deno.readLink(WANTS), unit);
      const entry = await account(ACCOUNT);
      assert.ok(entry, `no ${ACCOUNT} account after dpkg -i`);
      const [, , uid, gid, , home, shell] = entry;
      assert.ok(Number(uid) > 0 && Number(uid) < 1000, `${ACCOUNT} uid ${uid} is not a system uid`);
      assert.equal((await run("getent", ["group", ACCOUNT])).stdout.split(":")[2], gid);
      assert.equal(home, "/nonexistent");
      assert.equal(shell, "/usr/sbin/nologin");
      const shadow = (await Deno.readTextFile("/etc/shadow")).split("\n")
        .find((l) => l.startsWith(`${ACCOUNT}:`));
      assert.match(shadow?.split(":")[1] ?? "", /^[!*]/, `${ACCOUNT} has a usable password`);
      if (!systemdRuns) {
        // Nothing was started, and the maintainer scripts did not fail for it.
        assert.equal(
          await exists(RUNTIME_DIR),
          runtimeBefore,
          `${RUNTIME_DIR} made without systemd`,
        );
      }
      assert.deepEqual(await pamdSnapshot(), pamdBefore, "installing changed /etc/pam.d");
      assert.match(await Deno.readTextFile(EXAMPLE), /^auth\s+required\s+pam_mapi\.so /m);

      // pamtester under pam_wrapper: a private pam.d whose smtp service names the module by its
      // bare name (libpam finds it in its module directory) and no helper= (the module starts the
      // helper at its compiled-in, packaged path).
      const svc = `${dir}/pam.d`;
      await Deno.mkdir(svc);
      await Deno.writeTextFile(`${svc}/other`, "auth required pam_deny.so\n");
      const service = (socket: string) =>
        `auth required pam_mapi.so socket=${socket} daemon=off\naccount required pam_mapi.so\n`;
      const pamtester = async (socket: string, password: string) => {
        assertModeNamed([service(socket)], `${svc}/smtp`);
        await Deno.writeTextFile(`${svc}/smtp`, service(socket));
        return await run("pamtester", ["-v", "smtp", "alice", "authenticate", "acct_mgmt"], {
          stdin: `${password}\n`,
          env: {
            LD_PRELOAD: "libpam_wrapper.so",
            PAM_WRAPPER: "1",
            PAM_WRAPPER_SERVICE_DIR: svc,
            PAM_WRAPPER_DEBUGLEVEL: "2",
          },
        });
      };
      const url = sim.urls.http[0];
      let r = await pamtester(url, "secret");
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.match(r.stdout + r.stderr, /successfully authenticated/);
      assert.match(
        r.stderr,
        /SYSLOG\(6\): authentication success; user=alice .*result=PAM_SUCCESS/,
      );
      r = await pamtester(url, "wrong");
      assert.notEqual(r.code, 0);
      assert.match(r.stdout + r.stderr, /Authentication failure/);
      assert.match(r.stderr, /result=PAM_AUTH_ERR reason="logon refused"/);
      r = await pamtester("http://127.0.0.1:1/kopano", "secret"); // nothing listens there
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /result=PAM_AUTHINFO_UNAVAIL reason="server unavailable"/);
      assert.equal(sim.openSessions(), 0);

      // The installed helper, run by hand as the man page says.
      const check = await run(HELPER, ["check", "alice", `socket=${url}`], { stdin: "secret\n" });
      assert.equal(check.code, 0, check.stdout + check.stderr);
      assert.match(check.stdout, /result: PAM_SUCCESS \(exit 0\)/);
      if (isBundle) {
        // The bundle is not executable past its launcher; only root can write the cache, which
        // is therefore trusted.
        for (const js of [BUNDLE, PAM_BUNDLE]) {
          assert.equal((await Deno.stat(js)).mode! & 0o7777, 0o644, js);
        }
        const cache = await Deno.stat(CACHE);
        assert.deepEqual([cache.uid, cache.mode! & 0o022], [0, 0]);
        assert.doesNotMatch(check.stdout, /code cache/);
        // Deno kept its code cache where the package said (written by root, read on the next run).
        assert.ok([...Deno.readDirSync(CACHE)].length > 0, `${CACHE} is empty`);
        // A cache directory others can write is not used, and check says so.
        await Deno.chmod(CACHE, 0o777);
        const open = await run(HELPER, ["check", "alice", `socket=${url}`], { stdin: "secret\n" });
        await Deno.chmod(CACHE, cache.mode! & 0o7777);
        assert.equal(open.code, 0, open.stdout + open.stderr);
        assert.match(
          open.stdout,
          /^syslog warning: code cache \/var\/cache\/pam_mapi not used: directory \/var\/cache\/pam_mapi is writable by group or others; running without it$/m,
        );
        // Installing over it (as an upgrade does) drops the old helper's cache (postinst), and
        // makes a directory an older helper left open to others root's alone again.
        await Deno.chmod(CACHE, 0o777);
        await Deno.writeTextFile(`${CACHE}/planted`, "");
        await Deno.chown(`${CACHE}/planted`, 65534, 65534);
        const again = await run("dpkg", ["-i", deb]);
        assert.equal(again.code, 0, again.stdout + again.stderr);
        assert.deepEqual([...Deno.readDirSync(CACHE)], [], `${CACHE} not emptied on upgrade`);
        const fixed = await Deno.stat(CACHE);
        assert.deepEqual([fixed.uid, fixed.mode! & 0o022], [0, 0], `${CACHE} still open`);
        const check2 = await run(HELPER, ["check", "alice", `socket=${url}`], {
          stdin: "secret\n",
        });
        assert.equal(check2.code, 0, check2.stdout + check2.stderr);
        assert.doesNotMatch(check2.stdout, /code cache/);
      }

      // The resident helper as its unit runs it, and the module's fallback when it is gone.
      await checkInstalledDaemon({ unit, helper: HELPER, url });

      // Purge: no warning (a directory left behind would be one), nothing of the package left
      // but the account.
      const purge = await run("dpkg", ["--purge", PKG]);
      assert.equal(purge.code, 0, purge.stdout + purge.stderr);
      assert.doesNotMatch(purge.stdout + purge.stderr, /warning/i);
      const after = await run("dpkg-query", ["-W", "-f=${Status}", PKG]);
      assert.ok(!after.stdout.includes("installed"), after.stdout);
      // Every file it installed, and its own directories, are gone (shared directories such as
      // the module directory or /usr/share/man/man8 stay).
      for (
        const path of [
          ...installedFiles,
          ...installed.filter((p) => /pam_mapi|libpam-mapi/.test(p)),
        ]
      ) {
        assert.ok(!(await exists(path)), `${path} left behind`);
      }
      assert.deepEqual(await account(ACCOUNT), entry, `${ACCOUNT} account not kept as it was`);
      for (
        const path of [
          CACHE,
          "/usr/libexec/pam_mapi",
          "/usr/share/doc/libpam-mapi",
          WANTS,
          "/var/lib/systemd/deb-systemd-helper-enabled/pam_mapi.service.dsh-also",
        ]
      ) {
        assert.ok(!(await exists(path)), `${path} left behind`);
      }
      assert.deepEqual(await pamdSnapshot(), pamdBefore, "the package changed /etc/pam.d");
      // The daemon's run directory and socket were the sandbox's: the machine's are as before.
      assert.equal(await exists(RUNTIME_DIR), runtimeBefore, `${RUNTIME_DIR} changed`);
      // A stack that still names the module now fails every login (docs/install.md, removal):
      // libpam cannot load it, and the right password is refused too.
      r = await pamtester(url, "secret");
      assert.notEqual(r.code, 0);
      assert.match(r.stdout + r.stderr, /Module is unknown/);
      assert.match(r.stderr, /unable to dlopen\(pam_mapi\.so\)/);
      assert.match(r.stderr, /adding faulty module: pam_mapi\.so/);
      assert.doesNotMatch(r.stdout + r.stderr, /successfully authenticated/);
    } finally {
      await sim.close();
      const still = await run("dpkg-query", ["-W", "-f=${Status}", PKG]);
      if (still.stdout.includes("installed") || still.stdout.includes("config-files")) {
        await run("dpkg", ["--purge", PKG]);
      }
      // Leave the machine as it was: other tests decide what the shim trusts by this account.
      if (accountBefore === null && (await account(ACCOUNT)) !== null) {
        await run("deluser", ["--system", "--quiet", ACCOUNT]);
        await run("delgroup", ["--system", "--quiet", ACCOUNT]);
      }
      await Deno.remove(dir, { recursive: true });
    }
  },
});
