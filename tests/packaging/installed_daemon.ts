// The installed package's resident helper, run as its pam_mapi.service would run it where systemd
// does not run (tests/packaging/installed_deb_test.ts calls this while the .deb is installed):
// ExecStart=, User=, Group=, UMask=, NoNewPrivileges= and RuntimeDirectory= (with its mode) are
// read from the installed unit file. pamtester then logs in through the installed module with no
// daemon= on its pam.d line, that is to the module's default socket, /run/pam_mapi/helper.sock.
//
// All of it happens in a Sandbox (private mounts and PID namespace) whose /run is a fresh tmpfs, as
// the machine's /run is: the RuntimeDirectory= is made in it and the daemon listens there, so the
// machine's own /run/pam_mapi, which every other test expects to hold no daemon, is never touched,
// and the daemon dies with the sandbox whatever happens.
import assert from "node:assert/strict";
import { processesIn, Sandbox } from "../../scripts/lib/sandbox.ts";
import {
  countersRose,
  decidedBy,
  logged,
  pamMapiLines,
  type ResidentHelper,
  startResidentHelper,
} from "../e2e/lib.ts";
import { unitSettings } from "./unit_file.ts";

export interface InstalledDaemonOptions {
  /** The installed unit file. */
  unit: string;
  /** The installed helper (for `status`). */
  helper: string;
  /** A Kopano-compatible server's URL, where alice's password is "secret". */
  url: string;
}

/** Runs the checks; asserts that nothing of the sandbox is left. */
export async function checkInstalledDaemon(o: InstalledDaemonOptions): Promise<void> {
  const text = await Deno.readTextFile(o.unit);
  const one = (name: string) => {
    const v = unitSettings(text, name);
    assert.equal(v.length, 1, `${o.unit}: ${name}= ${JSON.stringify(v)}`);
    return v[0];
  };
  const execStart = one("ExecStart").split(/\s+/);
  assert.equal(execStart[0], o.helper, "ExecStart= runs the installed helper");
  const [user, group, umask] = [one("User"), one("Group"), one("UMask")];
  const runDir = `/run/${one("RuntimeDirectory")}`;
  const socket = `${runDir}/helper.sock`; // serve's default, and the module's daemon= default
  const setpriv = ["setpriv", `--reuid=${user}`, `--regid=${group}`, "--init-groups"];
  if (one("NoNewPrivileges") === "yes") setpriv.push("--no-new-privs");

  let pidNamespace = "";
  {
    await using sb = await Sandbox.open();
    pidNamespace = sb.pidNamespace;
    const inside = async (cmd: string, args: string[]) => {
      const r = await sb.run(cmd, args);
      assert.equal(r.code, 0, `${cmd} ${args.join(" ")}: ${r.stdout}${r.stderr}`);
      return r.stdout;
    };
    await inside("mount", ["-t", "tmpfs", "-o", "mode=0755", "tmpfs", "/run"]);
    // RuntimeDirectory= with RuntimeDirectoryMode=, owned by User= and Group=.
    await inside("install", [
      "-d",
      "-o",
      user,
      "-g",
      group,
      "-m",
      one("RuntimeDirectoryMode"),
      runDir,
    ]);
    // The installed module by its bare name; debug says who decided each login.
    await sb.pamService("smtp", [
      `auth required pam_mapi.so socket=${o.url} debug`,
      "account required pam_mapi.so",
    ], { defaultSocketIsOurs: "the sandbox's /run is a fresh tmpfs" });
    const serve = () =>
      startResidentHelper(sb, [...setpriv, ...execStart], { helper: o.helper, socket, umask });

    /** pamtester as root in the sandbox: its exit status, pam_mapi's result line, who decided. */
    const pamtester = async (password: string) => {
      const { value, lines } = await logged(
        sb,
        () =>
          sb.run("pamtester", ["-v", "smtp", "alice", "authenticate", "acct_mgmt"], {
            stdin: `${password}\n`,
          }),
      );
      const mapi = pamMapiLines(lines);
      return {
        code: value.code,
        out: value.stdout + value.stderr,
        result: mapi.filter((l) => l.priority < 7).map((l) =>
          l.text.replace(/^pam_mapi\([^)]*\): /, "")
        ),
        by: decidedBy(mapi.map((l) => l.text), socket),
      };
    };
    /** Right and wrong password, both decided by `by`. */
    const rightAndWrong = async (by: RegExp) => {
      let r = await pamtester("secret");
      assert.equal(r.code, 0, r.out);
      assert.match(r.out, /successfully authenticated/);
      assert.match(r.result.join("\n"), /^authentication success; user=alice .*result=PAM_SUCCESS/);
      assert.match(r.by, by);
      r = await pamtester("wrong");
      assert.notEqual(r.code, 0);
      assert.match(r.out, /Authentication failure/);
      assert.match(
        r.result.join("\n"),
        /^authentication failure; user=alice .*result=PAM_AUTH_ERR reason="logon refused"$/,
      );
      assert.match(r.by, by);
    };

    let daemon: ResidentHelper | null = await serve();
    try {
      // It runs as the unit's account, and status (at the default socket) trusts it.
      assert.match(await daemon.log(), new RegExp(`started: .*, socket ${socket} \\(mode 0600\\)`));
      const uid = Number(await inside("id", ["-u", user]));
      const st = await sb.run(o.helper, ["status"]);
      assert.equal(st.code, 0, st.stdout + st.stderr);
      assert.match(
        st.stdout,
        new RegExp(`^  ok   directory ${runDir}: owner ${user}, mode 0755$`, "m"),
      );
      assert.match(
        st.stdout,
        new RegExp(`^  ok   socket    ${socket}: a socket, owner ${user}, mode 0600$`, "m"),
      );
      assert.match(
        st.stdout,
        new RegExp(`^daemon: pam_mapi_helper \\S+, pid ${daemon.pid}, uid ${uid}, `, "m"),
      );

      // Logins through it: its counters rise, the module's debug line names it.
      let before = await daemon.logins();
      await rightAndWrong(new RegExp(`^daemon pid ${daemon.pid}$`));
      assert.deepEqual(countersRose(before, await daemon.logins()), {
        PAM_SUCCESS: 1,
        PAM_AUTH_ERR: 1,
      });

      // SIGTERM: the daemon removes its socket; the module starts the helper.
      const log = await daemon.stop("TERM");
      daemon = null;
      assert.match(log, /SIGTERM: stopped accepting/);
      assert.match(log, /stopped: 2 logins \(1 PAM_SUCCESS, 1 PAM_AUTH_ERR/);
      assert.equal((await sb.run("test", ["-e", socket])).code, 1, "socket left after SIGTERM");
      assert.equal((await sb.run(o.helper, ["status"])).code, 2, "status: no daemon answers");
      await rightAndWrong(/^helper \(.*No such file or directory\)$/);

      // SIGKILL: the socket stays and refuses connections; the module starts the helper.
      daemon = await serve();
      before = await daemon.logins();
      assert.equal((await pamtester("secret")).by, `daemon pid ${daemon.pid}`);
      assert.deepEqual(countersRose(before, await daemon.logins()), { PAM_SUCCESS: 1 });
      await daemon.stop("KILL");
      daemon = null;
      await inside("test", ["-S", socket]);
      await rightAndWrong(/^helper \(connect: Connection refused\)$/);
    } finally {
      if (daemon) await daemon.stop("TERM");
    }
  }
  // The sandbox and all in it are gone (its /run with it).
  assert.deepEqual(await processesIn(pidNamespace), []);
}
