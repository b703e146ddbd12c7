// Loads the CA certificates for https:// sockets, once, before file-system read access is given
// up. Only imported when a socket uses https://, so a plain-HTTP login never pays for it.
//
// The built helper starts deno with DENO_TLS_CA_STORE set empty (scripts/lib/helper_build.ts), so
// Deno's own root store is empty and the certificates loaded here are the only trust anchors:
// cafile= when given, otherwise the system bundle (where an administrator puts a local CA).

export const SYSTEM_BUNDLES = [
  "/etc/ssl/certs/ca-certificates.crt", // Debian, Ubuntu
  "/etc/pki/tls/certs/ca-bundle.crt", // Fedora, RHEL
];
export const MAX_PEM = 4 * 1024 * 1024;

export class CaError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "CaError";
  }
}

export interface CaSet {
  certs: string[];
  /** Where they came from, for check/debug output. */
  source: string;
  /** What they are (file and content), when the reader says; keeps TLS connections apart. */
  identity?: string;
}

/** What a reader returns for one CA file: its PEM text, and its identity when it has one. */
export interface PemFile {
  text: string;
  identity?: string;
}

/** Refuses what is not a regular file of at most 4 MiB (judged before it is opened). */
export function checkCaFile(path: string, info: Deno.FileInfo): void {
  if (!info.isFile) throw new CaError(`${path} is not a regular file`);
  if (info.size > MAX_PEM) throw new CaError(`${path} is larger than 4 MiB`);
}

/** Refuses a file that holds no certificate. */
export function checkPem(path: string, text: string): string {
  if (!text.includes("-----BEGIN CERTIFICATE-----")) {
    throw new CaError(`${path} holds no PEM certificate`);
  }
  return text;
}

function readPem(path: string): Promise<PemFile> {
  checkCaFile(path, Deno.statSync(path));
  return Promise.resolve({ text: checkPem(path, Deno.readTextFileSync(path)) });
}

/**
 * cafile= when given (an unreadable file is a configuration error), else the system bundle, read
 * with `read` (default: from disk, synchronously; the resident helper caches).
 */
export async function loadCaCerts(
  cafile: string | null,
  read: (path: string) => Promise<PemFile> = readPem,
): Promise<CaSet> {
  if (cafile !== null) {
    try {
      const pem = await read(cafile);
      return { certs: [pem.text], source: `cafile ${cafile}`, identity: pem.identity };
    } catch (e) {
      if (e instanceof CaError) throw e;
      throw new CaError(`cannot read cafile=${cafile}: ${e instanceof Error ? e.name : e}`);
    }
  }
  for (const path of SYSTEM_BUNDLES) {
    try {
      const pem = await read(path);
      return { certs: [pem.text], source: `system CA bundle ${path}`, identity: pem.identity };
    } catch {
      // try the next location
    }
  }
  // Nothing to trust: every https:// handshake fails (fail closed) and the source says why.
  return { certs: [], source: "none (no system CA bundle found; set cafile=)", identity: "none" };
}
