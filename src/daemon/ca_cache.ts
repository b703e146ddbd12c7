// The resident helper's CA certificates: a file is read when a request first names it, then
// kept while it stays the same file with the same size and modification time, so a changed
// cafile= or system bundle takes effect on the next login. Reading is asynchronous and bounded in
// time: a request may name any path, and a FIFO swapped in must not stop the daemon.
import { Deadline } from "../common/deadline.ts";
import {
  CaError,
  type CaSet,
  checkCaFile,
  checkPem,
  loadCaCerts,
  MAX_PEM,
} from "../kopano/tls_ca.ts";
import type { PemFile } from "../kopano/tls_ca.ts";

const MAX_FILES = 16;
const MAX_BYTES = 16 * 1024 * 1024;
const OPEN_TIMEOUT_MS = 2000;

interface Entry {
  stamp: string;
  pem: PemFile;
}

/** Device, inode, size and modification time: what must not change for a cached copy to hold. */
function stampOf(info: Deno.FileInfo): string {
  return `${info.dev}:${info.ino}:${info.size}:${info.mtime?.getTime() ?? "-"}`;
}

async function sha256(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Opens `path` within the time limit; a late open is closed when it completes. */
async function openInTime(path: string): Promise<Deno.FsFile> {
  const opening = Deno.open(path);
  const deadline = new Deadline(OPEN_TIMEOUT_MS);
  try {
    return await deadline.race(opening);
  } catch (e) {
    opening.then((f) => f.close(), () => {});
    if (deadline.expired) throw new CaError(`${path} could not be opened within 2 s`);
    throw e;
  } finally {
    deadline.cancel();
  }
}

/** Reads the file and the identity it had while it was open. */
async function readFile(path: string): Promise<{ text: string; stamp: string }> {
  const file = await openInTime(path);
  try {
    const info = await file.stat();
    checkCaFile(path, info);
    const buf = new Uint8Array(MAX_PEM + 1);
    let n = 0;
    for (;;) {
      const got = await file.read(buf.subarray(n));
      if (got === null) break;
      n += got;
      if (n > MAX_PEM) throw new CaError(`${path} is larger than 4 MiB`);
    }
    return { text: new TextDecoder().decode(buf.subarray(0, n)), stamp: stampOf(info) };
  } finally {
    file.close();
  }
}

export class CaCache {
  #files = new Map<string, Entry>();
  #bytes = 0;

  /** A CaLoader (src/pam/setup.ts) that serves cached copies while the files are unchanged. */
  readonly load = (cafile: string | null): Promise<CaSet> =>
    loadCaCerts(cafile, (path) => this.#read(path));

  async #read(path: string): Promise<PemFile> {
    const info = await Deno.stat(path);
    checkCaFile(path, info); // before opening: a FIFO would block the open
    const hit = this.#files.get(path);
    if (hit?.stamp === stampOf(info)) return hit.pem;
    const { text, stamp } = await readFile(path);
    checkPem(path, text);
    // The identity names the content: a connection verified against one CA set never serves a
    // request that trusts another.
    const pem = { text, identity: `${path}#${await sha256(text)}` };
    this.#store(path, { stamp, pem });
    return pem;
  }

  #store(path: string, entry: Entry): void {
    this.#forget(path);
    this.#files.set(path, entry);
    this.#bytes += entry.pem.text.length;
    for (const oldest of this.#files.keys()) {
      if (this.#files.size <= MAX_FILES && this.#bytes <= MAX_BYTES) break;
      this.#forget(oldest);
    }
  }

  #forget(path: string): void {
    const e = this.#files.get(path);
    if (!e) return;
    this.#bytes -= e.pem.text.length;
    this.#files.delete(path);
  }

  /** Files and bytes held, for the status query. */
  get size(): { files: number; bytes: number } {
    return { files: this.#files.size, bytes: this.#bytes };
  }
}
