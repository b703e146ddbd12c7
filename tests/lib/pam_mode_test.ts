// The pam.d lines the demo, the bench and the tests write say which mode they mean
// (scripts/lib/pam_mode.ts): a pam_mapi.so auth line without daemon= is refused before it is
// written, by every writer, because it would ask a resident helper that happens to run on the
// machine. tests/e2e/demo_test.ts shows the same from outside, with a trap at the default socket.
import assert from "node:assert/strict";
import { assertModeNamed } from "../../scripts/lib/pam_mode.ts";
import { Sandbox } from "../../scripts/lib/sandbox.ts";
import { pamConf } from "../shim/lib.ts";

const REFUSED = /without daemon= would ask the machine's resident helper/;

Deno.test("pam_mode: an auth line of pam_mapi.so names daemon=, or it is refused", () => {
  for (
    const ok of [
      "auth required /t/pam_mapi.so helper=/t/h daemon=off",
      "auth required pam_mapi.so socket=http://127.0.0.1:1/kopano daemon=/tmp/d/helper.sock",
      "auth [success=ok ignore=ignore default=die] /t/pam_mapi.so daemon=off debug",
      "account required /t/pam_mapi.so", // account asks no helper and no daemon
      "auth required pam_permit.so",
      "auth required pam_exec.so expose_authtok /t/pam_mapi.so.sh",
      "# auth required pam_mapi.so",
      "",
    ]
  ) assertModeNamed([ok], "ok");
  for (
    const bad of [
      "auth required /t/pam_mapi.so helper=/t/h",
      "auth required pam_mapi.so",
      "-auth sufficient pam_mapi.so socket=http://localhost:236/kopano",
      "auth [success=ok ignore=ignore default=die] /t/pam_mapi.so helper=/t/h",
      "  auth\trequired\t/t/pam_mapi.so\tdebug",
      "auth required /t/pam_mapi.so helper=/t/daemon=off", // a value, not the argument
    ]
  ) {
    assert.throws(() => assertModeNamed([bad], "pam.d/x"), REFUSED, bad);
    // Also inside a file's text, after other lines.
    assert.throws(() => assertModeNamed([`account required pam_permit.so\n${bad}`], "x"), REFUSED);
  }
  // Only where the compiled-in socket is the writer's own, and it says why.
  assertModeNamed(["auth required pam_mapi.so"], "x", { defaultSocketIsOurs: "a private /run" });
});

Deno.test("pam_mode: tests/shim's pamConf refuses such a line and writes nothing", async () => {
  const dir = await Deno.makeTempDir({ prefix: "pam_mapi_mode_" });
  try {
    await assert.rejects(
      pamConf(dir, { mapi: ["auth required /t/pam_mapi.so helper=/t/h"] }),
      /pam\.d\/mapi: a pam_mapi\.so auth line without daemon=/,
    );
    assert.equal(await Deno.stat(`${dir}/pam.d`).then(() => "written", () => "nothing"), "nothing");
    const conf = await pamConf(dir, { mapi: ["auth required /t/pam_mapi.so daemon=off"] });
    assert.equal(
      await Deno.readTextFile(`${conf}/mapi`),
      "auth required /t/pam_mapi.so daemon=off\n",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: Deno.uid() === 0
    ? "pam_mode: Sandbox.pamService refuses such a line and writes nothing"
    : "pam_mode: Sandbox.pamService: SKIPPED, needs root (mount and PID namespaces)",
  ignore: Deno.uid() !== 0,
  async fn() {
    await using sb = await Sandbox.open();
    await assert.rejects(
      sb.pamService("smtp", ["auth required pam_mapi.so", "account required pam_mapi.so"]),
      /the sandbox's \/etc\/pam\.d\/smtp: a pam_mapi\.so auth line without daemon=/,
    );
    assert.equal(
      await Deno.stat(`${sb.dir}/pam.d/smtp`).then(() => "written", () => "nothing"),
      "nothing",
    );
  },
});
