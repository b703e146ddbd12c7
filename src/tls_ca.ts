// Loads the CA certificates for https:// sockets, once, before file-system read access is given
// up. Only imported when a socket uses https://, so a plain-HTTP login never pays for it.
//
// The built helper starts deno with DENO_TLS_CA_STORE set empty (scripts/lib/helper_build.ts), so
// Deno's own root store is empty and the certificates loaded here are the only trust anchors:
// cafile= when given, otherwise the system bundle (where an administrator puts a local CA).

const SYSTEM_BUNDLES = [
  "/etc/ssl/certs/ca-certificates.crt", // Debian, Ubuntu
  "/etc/pki/tls/certs/ca-bundle.crt", // Fedora, RHEL
];
const MAX_PEM = 4 * 1024 * 1024;

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
}

function readPem(path: string): string {
  const info = Deno.statSync(path);
  if (!info.isFile) throw new CaError(`${path} is not a regular file`);
  if (info.size > MAX_PEM) throw new CaError(`${path} is larger than 4 MiB`);
  const text = Deno.readTextFileSync(path);
  if (!text.includes("-----BEGIN CERTIFICATE-----")) {
    throw new CaError(`${path} holds no PEM certificate`);
  }
  return text;
}

/** cafile= when given (an unreadable file is a configuration error), else the system bundle. */
export function loadCaCerts(cafile: string | null): CaSet {
  if (cafile !== null) {
    try {
      return { certs: [readPem(cafile)], source: `cafile ${cafile}` };
    } catch (e) {
      if (e instanceof CaError) throw e;
      throw new CaError(`cannot read cafile=${cafile}: ${e instanceof Error ? e.name : e}`);
    }
  }
  for (const path of SYSTEM_BUNDLES) {
    try {
      return { certs: [readPem(path)], source: `system CA bundle ${path}` };
    } catch {
      // try the next location
    }
  }
  // Nothing to trust: every https:// handshake fails (fail closed) and the source says why.
  return { certs: [], source: "none (no system CA bundle found; set cafile=)" };
}
