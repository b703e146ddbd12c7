// Nothing but an explicit, well-formed PAM_SUCCESS reply from a helper that then exited 0 may
// become PAM_SUCCESS: every other way a helper can end is PAM_SERVICE_ERR, logged. Hanging helpers
// are killed within the deadline together with their process group, and reaped.
import assert from "node:assert/strict";
import {
  alive,
  authWithLateSend,
  build,
  groupMembers,
  helperDir,
  helperPids,
  line,
  LOG_ERR,
  pamConf,
  runDriver,
  TEST_BUILD,
  VARIANTS,
} from "./lib.ts";

for (const v of VARIANTS) {
  const setup = async (args: string[] = ["timeout=1"], name = "fake_helper") => {
    await build();
    const { dir, helper } = await helperDir(name);
    const conf = await pamConf(dir, {
      mapi: [line(v, "auth", [`helper=${helper}`, "daemon=off", ...args])],
    });
    return { dir, helper, conf };
  };

  /** One auth as user (password "pw-<user>", which the fake would accept) that must fail. */
  const mustFail = async (user: string, message: RegExp, driverArgs: string[] = []) => {
    const { dir, helper, conf } = await setup();
    const r = await runDriver(v, [
      ...driverArgs,
      "--user",
      user,
      "--password",
      `pw-${user}`,
      conf,
      "mapi",
    ]);
    assert.equal(r.kv.auth, "PAM_SERVICE_ERR", `${user}: ${r.stdout}`);
    // pam_authenticate's own time, as the driver measured it (not the driver's start-up and exit).
    const seconds = Number(r.kv.auth_ms) / 1000;
    assert.ok(Number.isFinite(seconds), `auth_ms: ${r.stdout}`);
    const errs = r.logs.filter((l) => l.priority === LOG_ERR).map((l) => l.message);
    assert.equal(errs.length, 1, errs.join("\n"));
    const m = message.exec(errs[0].replaceAll(helper, "HELPER"));
    assert.ok(m, `${user}: ${errs[0]}`);
    assert.equal(r.kv.zombies, "0");
    assert.equal(r.kv.children, "0");
    return { r, dir, seconds, errs };
  };

  const tail = (user: string) => `; user=${user} result=PAM_SERVICE_ERR`;

  Deno.test(`${v.name}: helper killed by a signal after a success reply`, async () => {
    await mustFail(
      "crash",
      new RegExp(`^helper HELPER \\(pid \\d+\\) was killed by signal 11${tail("crash")}$`),
    );
  });

  Deno.test(`${v.name}: helper exiting non-zero after a success reply`, async () => {
    await mustFail(
      "exit1",
      new RegExp(`^helper HELPER \\(pid \\d+\\) exited with status 1${tail("exit1")}$`),
    );
  });

  Deno.test(`${v.name}: helper exiting 0 without a reply`, async () => {
    await mustFail(
      "empty",
      new RegExp(
        `^helper HELPER \\(pid \\d+\\) sent a malformed reply \\(empty reply\\)${tail("empty")}$`,
      ),
    );
  });

  Deno.test(`${v.name}: helper printing garbage`, async () => {
    await mustFail(
      "garbage",
      new RegExp(`sent a malformed reply \\(invalid JSON\\)${tail("garbage")}$`),
    );
  });

  Deno.test(`${v.name}: helper replying with an unknown result name`, async () => {
    await mustFail(
      "unknown",
      new RegExp(`sent a malformed reply \\(unknown result\\)${tail("unknown")}$`),
    );
  });

  Deno.test(`${v.name}: helper printing 10 MiB is killed as soon as 64 KiB are exceeded`, async () => {
    const { seconds } = await mustFail(
      "big",
      new RegExp(
        `^helper HELPER \\(pid \\d+\\) wrote a reply larger than 65536 bytes and was killed${
          tail("big")
        }$`,
      ),
    );
    assert.ok(seconds < 2.5, `took ${seconds} s`);
  });

  Deno.test(`${v.name}: non-zero exit is logged with the first stderr line, sanitised`, async () => {
    await mustFail(
      "stderr",
      new RegExp(
        `^helper HELPER \\(pid \\d+\\) exited with status 3${
          tail("stderr")
        }; stderr: fatal: \\?\\[31mboom\\?\\[0m in \\?helper\\?$`,
      ),
    );
  });

  for (
    const [user, what] of [["hang", "that hangs"], ["hangterm", "that hangs and ignores SIGTERM"]]
  ) {
    Deno.test(`${v.name}: a helper ${what} is killed within the deadline with its process group`, async () => {
      // timeout=1, no socket= -> deadline 1 x 1 + 2 = 3 s. "hangterm" ignores SIGTERM, so it
      // takes the SIGKILL 200 ms later. The driver is a subreaper with a reaping SIGCHLD handler,
      // so the helper's orphaned child comes back to it and is reaped (not left to init).
      const { r, dir, seconds } = await mustFail(
        user,
        new RegExp(
          `^helper HELPER \\(pid \\d+\\) did not finish within 3 s and was killed${tail(user)}$`,
        ),
        ["--subreaper", "--sigchld", "reaper"],
      );
      assert.ok(seconds >= 3 && seconds < 4.5, `took ${seconds} s`);
      const pids = await helperPids(dir);
      assert.equal(pids.length, 2, "helper and its child both ran");
      const [helperPid, pgid] = pids[0];
      assert.equal(helperPid, pgid, "the helper leads its own process group");
      assert.equal(pids[1][1], pgid, "its child is in that group");
      assert.deepEqual(await alive(pids.map(([p]) => p)), [], "nothing left, not even a zombie");
      assert.deepEqual(await groupMembers(pgid), []);
      assert.equal(r.kv.reaped, "1", "only the orphaned grandchild reached the host's handler");
    });
  }

  Deno.test(`${v.name}: the deadline is timeout x sockets + 2 s`, async () => {
    await build();
    // slow-2500: answers after 2.5 s, inside 1 x 1 + 2 = 3 s.
    let { conf } = await setup(["timeout=1"]);
    let r = await runDriver(v, ["--user", "slow-2500", "--password", "pw-slow-2500", conf, "mapi"]);
    assert.equal(r.kv.auth, "PAM_SUCCESS");
    // slow-3500: too late for one socket ...
    r = await runDriver(v, ["--user", "slow-3500", "--password", "pw-slow-3500", conf, "mapi"]);
    assert.equal(r.kv.auth, "PAM_SERVICE_ERR");
    // ... but in time for two (1 x 2 + 2 = 4 s).
    ({ conf } = await setup(["timeout=1", "socket=http://192.0.2.1/", "socket=http://192.0.2.2/"]));
    r = await runDriver(v, ["--user", "slow-3500", "--password", "pw-slow-3500", conf, "mapi"]);
    assert.equal(r.kv.auth, "PAM_SUCCESS");
  });

  Deno.test(`${v.name}: a helper that cannot be executed (bad #! interpreter)`, async () => {
    await build();
    const { dir } = await helperDir();
    const script = `${dir}/script_helper`;
    await Deno.writeTextFile(script, "#!/nonexistent/interpreter\n");
    await Deno.chmod(script, 0o755);
    const conf = await pamConf(dir, {
      mapi: [line(v, "auth", [`helper=${script}`, "daemon=off"])],
    });
    const r = await runDriver(v, ["--password", "pw-alice", conf, "mapi"]);
    assert.equal(r.kv.auth, "PAM_SERVICE_ERR");
    assert.deepEqual(r.logs.map((l) => l.message), [
      `helper ${script} (pid ${
        /pid (\d+)/.exec(r.logs[0].message)?.[1]
      }) exited with status 127; user=alice result=PAM_SERVICE_ERR; stderr: pam_mapi: execve failed: errno 2`,
    ]);
  });

  Deno.test(`${v.name}: a helper that closes stdin unread cannot raise SIGPIPE in the host`, async () => {
    // A request fits the socket buffer and is normally sent before the helper runs: delayed, the
    // send finds the helper's stdin closed.
    const { conf } = await setup(["timeout=1"], "closestdin_helper");
    const out = await authWithLateSend(v, conf);
    assert.match(out, /^auth=PAM_AUTH_ERR$/m, "the helper's own answer still counts");
  });

  Deno.test(`${v.name}: shell-script helpers work and are held to the same rules`, async () => {
    await build();
    const { dir } = await helperDir();
    const script = `${dir}/sh_helper`;
    await Deno.writeTextFile(
      script,
      `#!/bin/sh\ncat >/dev/null\nprintf '{"v":1,"result":"PAM_SUCCESS","log":[]}\\n'\nexit "\${EXIT:-0}"\n`,
    );
    await Deno.chmod(script, 0o755);
    const conf = await pamConf(dir, {
      mapi: [line(v, "auth", [`helper=${script}`, "daemon=off"])],
    });
    const r = await runDriver(v, ["--password", "x", conf, "mapi"]);
    assert.equal(r.kv.auth, "PAM_SUCCESS");
    // The environment is the shim's, not ours: EXIT from our environment does not reach it.
    const e = await runDriver(v, ["--password", "x", conf, "mapi"], { env: { EXIT: "1" } });
    assert.equal(e.kv.auth, "PAM_SUCCESS");
    await Deno.writeTextFile(
      script,
      `#!/bin/sh\ncat >/dev/null\nprintf '{"v":1,"result":"PAM_SUCCESS","log":[]}'\nkill -TERM $$\n`,
    );
    const k = await runDriver(v, ["--password", "x", conf, "mapi"]);
    assert.equal(k.kv.auth, "PAM_SERVICE_ERR");
    assert.match(k.logs[0].message, /was killed by signal 15; user=alice result=PAM_SERVICE_ERR$/);
  });
}

Deno.test("fake helper sanity: the tests' own tool answers as documented", async () => {
  await build();
  const r = await new Deno.Command(`${TEST_BUILD}/fake_helper`, {
    stdin: "piped",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const w = r.stdin.getWriter();
  await w.write(
    new TextEncoder().encode(
      '{"v":1,"user":"Ym9i","authtok":"cHctYm9i","service":"","rhost":"","args":[]}',
    ),
  );
  await w.close();
  const out = new TextDecoder().decode((await r.output()).stdout);
  assert.equal(
    out,
    '{"v":1,"result":"PAM_SUCCESS","log":[{"priority":"notice","message":"fake: accepted user=bob"}]}\n',
  );
});
