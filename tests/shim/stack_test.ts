// Token handling in real stacks (pam_wrapper's modules next to pam_mapi): try_first_pass and
// use_first_pass with and without a token from an earlier module, the prompt otherwise, and the
// prompted token left as PAM_AUTHTOK for the modules after this one. Through the pam_start_confdir
// driver and through pamtester under pam_wrapper (whose SYSLOG lines are asserted).
import assert from "node:assert/strict";
import {
  build,
  helperDir,
  line,
  LOG_ERR,
  LOG_NOTICE,
  PAM_WRAPPER_MODULES,
  pamConf,
  pamtester,
  runDriver,
  VARIANTS,
} from "./lib.ts";

const SET_ITEMS = `auth required ${PAM_WRAPPER_MODULES}/pam_set_items.so`;
const GET_ITEMS = `auth required ${PAM_WRAPPER_MODULES}/pam_get_items.so`;

for (const v of VARIANTS) {
  const setup = async () => {
    await build();
    const { dir, helper } = await helperDir();
    await Deno.writeTextFile(`${dir}/passdb`, "alice:pw-alice:matrix_try\n");
    const mapi = (...args: string[]) =>
      line(v, "auth", [`helper=${helper}`, "daemon=off", ...args]);
    const conf = await pamConf(dir, {
      // pam_set_items copies PAM_AUTHTOK (and other items) from the environment: the "earlier module".
      items_use: [SET_ITEMS, mapi("use_first_pass")],
      items_try: [SET_ITEMS, mapi("try_first_pass")],
      items_plain: [SET_ITEMS, mapi()],
      // pam_get_items after pam_mapi shows what pam_mapi left in PAM_AUTHTOK.
      prompt_then_get: [mapi(), GET_ITEMS],
      try_then_get: [SET_ITEMS, mapi("try_first_pass"), GET_ITEMS],
      // pam_matrix (prompts, verifies, then zeroes the PAM_AUTHTOK item in place) before pam_mapi.
      matrix_try: [
        `auth optional ${PAM_WRAPPER_MODULES}/pam_matrix.so passdb=${dir}/passdb`,
        mapi("try_first_pass"),
      ],
    });
    return { dir, conf, svc: conf };
  };

  Deno.test(`${v.name}: use_first_pass with an earlier token uses it without prompting`, async () => {
    const { conf } = await setup();
    const r = await runDriver(v, ["--password", "typed", conf, "items_use"], {
      env: { PAM_AUTHTOK: "pw-alice" },
    });
    assert.equal(r.kv.auth, "PAM_SUCCESS");
    assert.equal(r.kv.prompts, "0");
  });

  Deno.test(`${v.name}: use_first_pass without an earlier token -> PAM_AUTHTOK_RECOVERY_ERR`, async () => {
    const { dir, conf } = await setup();
    const r = await runDriver(v, ["--password", "pw-alice", conf, "items_use"]);
    assert.equal(r.kv.auth, "PAM_AUTHTOK_RECOVERY_ERR");
    assert.equal(r.kv.prompts, "0", "use_first_pass never prompts");
    assert.deepEqual(r.logs, [{
      priority: LOG_ERR,
      message:
        "use_first_pass: no password from an earlier module; user=alice result=PAM_AUTHTOK_RECOVERY_ERR",
    }]);
    await assert.rejects(Deno.stat(`${dir}/pids`), "helper not started");
  });

  Deno.test(`${v.name}: try_first_pass uses an earlier token, else prompts once`, async () => {
    const { conf } = await setup();
    let r = await runDriver(v, ["--password", "typed", conf, "items_try"], {
      env: { PAM_AUTHTOK: "pw-alice" },
    });
    assert.equal(r.kv.auth, "PAM_SUCCESS");
    assert.equal(r.kv.prompts, "0");
    // A wrong earlier token is used as it is: no second chance by prompting (like pam_unix).
    r = await runDriver(v, ["--password", "pw-alice", conf, "items_try"], {
      env: { PAM_AUTHTOK: "wrong" },
    });
    assert.equal(r.kv.auth, "PAM_AUTH_ERR");
    assert.equal(r.kv.prompts, "0");
    r = await runDriver(v, ["--password", "pw-alice", conf, "items_try"]);
    assert.equal(r.kv.auth, "PAM_SUCCESS");
    assert.equal(r.kv.prompts, "1");
    assert.match(r.stderr, /conv: prompt "Password: "/);
  });

  Deno.test(`${v.name}: without either option the earlier token is ignored and we prompt`, async () => {
    const { conf } = await setup();
    const r = await runDriver(v, ["--password", "pw-alice", conf, "items_plain"], {
      env: { PAM_AUTHTOK: "wrong" },
    });
    assert.equal(r.kv.auth, "PAM_SUCCESS");
    assert.equal(r.kv.prompts, "1");
  });

  Deno.test(`${v.name}: the prompted password is left as PAM_AUTHTOK for later modules`, async () => {
    const { conf } = await setup();
    let r = await runDriver(v, [
      "--password",
      "pw-alice",
      "--show-env",
      "PAM_AUTHTOK",
      conf,
      "prompt_then_get",
    ]);
    assert.equal(r.kv.auth, "PAM_SUCCESS");
    assert.equal(r.kv.env_PAM_AUTHTOK, "pw-alice");
    // Also after a failure: the next module may try the same password elsewhere.
    r = await runDriver(v, [
      "--password",
      "other",
      "--show-env",
      "PAM_AUTHTOK",
      conf,
      "prompt_then_get",
    ]);
    assert.equal(r.kv.auth, "PAM_AUTH_ERR");
    r = await runDriver(v, [
      "--password",
      "typed",
      "--show-env",
      "PAM_AUTHTOK",
      conf,
      "try_then_get",
    ], {
      env: { PAM_AUTHTOK: "pw-alice" },
    });
    assert.equal(r.kv.env_PAM_AUTHTOK, "pw-alice", "an earlier token is passed on unchanged");
  });

  Deno.test(`${v.name}: pamtester: use_first_pass and try_first_pass, with and without a token`, async () => {
    const { conf } = await setup();
    // With a token from pam_set_items: no prompt, success, the helper's line in SYSLOG(5).
    let r = await pamtester(v, conf, ["items_use", "alice", "authenticate"], {
      env: { PAM_AUTHTOK: "pw-alice" },
    });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /successfully authenticated/);
    assert.doesNotMatch(r.stderr + r.stdout, /Password:/);
    assert.deepEqual(r.syslog, [{ priority: LOG_NOTICE, message: "fake: accepted user=alice" }]);
    // use_first_pass, no token: refused before any prompt.
    r = await pamtester(v, conf, ["items_use", "alice", "authenticate"]);
    assert.notEqual(r.code, 0);
    assert.match(r.stdout + r.stderr, /Authentication information cannot be recovered/);
    assert.deepEqual(r.syslog, [{
      priority: LOG_ERR,
      message:
        "use_first_pass: no password from an earlier module; user=alice result=PAM_AUTHTOK_RECOVERY_ERR",
    }]);
    // try_first_pass, no token: pamtester's conversation is asked once ("Password: ").
    r = await pamtester(v, conf, ["items_try", "alice", "authenticate"], { stdin: "pw-alice\n" });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout + r.stderr, /Password: /);
    // try_first_pass with a token: no prompt.
    r = await pamtester(v, conf, ["items_try", "alice", "authenticate"], {
      env: { PAM_AUTHTOK: "pw-alice" },
    });
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stderr + r.stdout, /Password:/);
  });

  Deno.test(`${v.name}: pamtester: pam_matrix before pam_mapi leaves an empty token, which fails`, async () => {
    // pam_matrix zeroes libpam's PAM_AUTHTOK item in place after checking it, so with
    // try_first_pass pam_mapi receives "" and the helper refuses: a surprising neighbour must
    // never turn into a success.
    const { conf } = await setup();
    const r = await pamtester(v, conf, ["matrix_try", "alice", "authenticate"], {
      stdin: "pw-alice\n",
    });
    assert.notEqual(r.code, 0);
    assert.match(r.stdout + r.stderr, /Authentication failure/);
    assert.deepEqual(r.syslog, [{ priority: LOG_NOTICE, message: "fake: refused user=alice" }]);
  });
}
