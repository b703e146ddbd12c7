// The module as a file: exactly the three PAM entry points exported, hardening flags in effect,
// warning-free with gcc and clang, the compiled-in default helper path, and the fuzz target. The bundled helper's
// launcher (shim/launcher.c) likewise: hardened, warning-free, libc only.
import assert from "node:assert/strict";
import {
  ASAN,
  build,
  helperDir,
  LOG_ERR,
  pamConf,
  PLAIN,
  ROOT,
  run,
  runDriver,
  runOk,
  Variant,
} from "./lib.ts";

const ENTRY_POINTS = ["pam_sm_acct_mgmt", "pam_sm_authenticate", "pam_sm_setcred"];

for (const v of [PLAIN, ASAN]) {
  Deno.test(`${v.name}: nm -D --defined-only lists exactly the three pam_sm_* symbols`, async () => {
    await build();
    const r = await runOk("nm", ["-D", "--defined-only", v.module]);
    const names = r.stdout.trim().split("\n").map((l) => l.split(" ").pop()).sort();
    assert.deepEqual(names, ENTRY_POINTS);
  });

  Deno.test(`${v.name}: dlopen/dlsym finds the entry points and nothing internal`, async () => {
    await build();
    const r = await runOk(v.driver, ["--dlopen", v.module], { env: v.env });
    const found = [...r.stdout.matchAll(/^symbol (\S+)=found$/gm)].map((m) => m[1]).sort();
    assert.deepEqual(found, ENTRY_POINTS);
    assert.match(r.stdout, /symbol args_parse=missing/);
    assert.match(r.stdout, /symbol reply_decode=missing/);
  });
}

Deno.test("plain: hardened: full RELRO, BIND_NOW, non-executable stack, stack protector, fortify", async () => {
  await build();
  const dyn = (await runOk("readelf", ["-d", "-W", PLAIN.module])).stdout;
  assert.match(dyn, /\(FLAGS\)\s+BIND_NOW/);
  assert.match(dyn, /\(FLAGS_1\)\s+Flags: NOW/);
  assert.match(dyn, /\(NEEDED\).*\[libpam\.so\.0\]/);
  const seg = (await runOk("readelf", ["-l", "-W", PLAIN.module])).stdout;
  assert.match(seg, /GNU_RELRO/);
  assert.match(seg, /GNU_STACK\s+(\S+\s+){5}RW /, "stack not executable");
  const undef = (await runOk("nm", ["-D", "--undefined-only", PLAIN.module])).stdout;
  assert.match(undef, /__stack_chk_fail/);
  assert.match(undef, /__\w+_chk\b/, "a _FORTIFY_SOURCE checked function is used");
  assert.match(undef, /explicit_bzero/);
});

// clang is the release's default version, as scripts/setup.sh installs it (the clang package).
const CLANG = await run("sh", ["-c", "command -v clang"]);

Deno.test({
  name: CLANG.code === 0
    ? `the module builds warning-free (-Werror) with clang too (${CLANG.stdout.trim()})`
    : "the module builds with clang: SKIPPED, needs clang (sh scripts/setup.sh installs it)",
  ignore: CLANG.code !== 0,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "pam_mapi_clang_" });
    try {
      const r = await run("make", [
        "-C",
        `${ROOT}/shim`,
        `BUILD=${dir}`,
        "CC=clang",
        "all",
        "asan",
        "launcher",
      ]);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.doesNotMatch(r.stderr, /warning:/);
      const names = (await runOk("nm", ["-D", "--defined-only", `${dir}/pam_mapi.so`])).stdout;
      assert.equal(names.trim().split("\n").length, 3);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: CLANG.code === 0
    ? "deno task fuzz: the reply parser's libFuzzer target builds with clang and runs clean"
    : "deno task fuzz: SKIPPED, needs clang (sh scripts/setup.sh installs it)",
  ignore: CLANG.code !== 0,
  async fn() {
    // A short run: this shows that the release's clang and its sanitizer and fuzzer runtime
    // (libclang-rt-dev) work; finding bugs takes the default 60 s or more.
    const r = await run(Deno.execPath(), [
      "run",
      "-A",
      `${ROOT}/tests/shim/fuzz.ts`,
      "--runs",
      "2000",
    ]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^fuzz: [1-9]\d* seeds, [1-9]\d* executions in [\d.]+ s, 0 crashes$/m);
  },
});

Deno.test("the launcher: PIE, full RELRO, BIND_NOW, non-executable stack, stack protector, fortify, libc only", async () => {
  const dir = await Deno.makeTempDir({ prefix: "pam_mapi_launcher_build_" });
  try {
    await runOk("make", ["-s", "-C", `${ROOT}/shim`, `BUILD=${dir}`, "launcher"]);
    const exe = `${dir}/pam_mapi_helper`;
    const head = (await runOk("readelf", ["-h", "-W", exe])).stdout;
    assert.match(head, /Type:\s+DYN /, "position-independent executable");
    const dyn = (await runOk("readelf", ["-d", "-W", exe])).stdout;
    assert.match(dyn, /\(FLAGS\)\s+BIND_NOW/);
    assert.match(dyn, /\(FLAGS_1\)\s+Flags: NOW PIE/);
    const needed = [...dyn.matchAll(/\(NEEDED\).*\[(.*)\]/g)].map((m) => m[1]);
    assert.deepEqual(needed, ["libc.so.6"]);
    const seg = (await runOk("readelf", ["-l", "-W", exe])).stdout;
    assert.match(seg, /GNU_RELRO/);
    assert.match(seg, /GNU_STACK\s+(\S+\s+){5}RW /, "stack not executable");
    const undef = (await runOk("nm", ["-D", "--undefined-only", exe])).stdout;
    assert.match(undef, /__stack_chk_fail/);
    assert.match(undef, /__\w+_chk\b/, "a _FORTIFY_SOURCE checked function is used");
    // The packaged paths by default.
    const info = await runOk(exe, ["--launcher-info"]);
    assert.match(
      info.stdout,
      /^deno=\/usr\/libexec\/pam_mapi\/deno\nbundle=\/usr\/share\/pam_mapi\/pam_mapi_helper\.js\npam_bundle=\/usr\/share\/pam_mapi\/pam_mapi_helper_pam\.js\ncache=\/var\/cache\/pam_mapi\n/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("HELPER_PATH sets the default helper; without helper= the default is used", async () => {
  await build();
  const { dir, helper } = await helperDir();
  const buildDir = `${dir}/build`;
  await runOk("make", ["-s", "-C", `${ROOT}/shim`, `BUILD=${buildDir}`, `HELPER_PATH=${helper}`]);
  const v: Variant = { ...PLAIN, module: `${buildDir}/pam_mapi.so` };
  const conf = await pamConf(dir, { mapi: [`auth required ${v.module} daemon=off`] });
  let r = await runDriver(v, ["--password", "pw-alice", conf, "mapi"]);
  assert.equal(r.kv.auth, "PAM_SUCCESS");
  // The packaged default, when it is not installed, is refused like any missing helper.
  const stock = "/usr/libexec/pam_mapi/pam_mapi_helper";
  const installed = await Deno.stat(stock).then(() => true, () => false);
  if (!installed) {
    const conf2 = await pamConf(`${dir}/stock`, {
      mapi: [`auth required ${PLAIN.module} daemon=off`],
    });
    r = await runDriver(PLAIN, ["--password", "pw-alice", conf2, "mapi"]);
    assert.equal(r.kv.auth, "PAM_SERVICE_ERR");
    assert.deepEqual(r.logs, [{
      priority: LOG_ERR,
      message:
        `helper ${stock} refused: No such file or directory; user=alice result=PAM_SERVICE_ERR`,
    }]);
  }
  // Changing HELPER_PATH rebuilds (the generated header changes, the objects follow).
  const again = await runOk("make", [
    "-C",
    `${ROOT}/shim`,
    `BUILD=${buildDir}`,
    "HELPER_PATH=/opt/x/helper",
  ]);
  assert.match(again.stdout, /args\.c/);
  const strings = await Deno.readFile(`${buildDir}/pam_mapi.so`);
  assert.ok(new TextDecoder("latin1").decode(strings).includes("/opt/x/helper"));
});
