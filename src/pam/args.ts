// The module-argument vocabulary of pam_mapi(8), OPTIONS, shared by `--pam` and `check`. Anything unknown,
// malformed or conflicting is an error: a mistyped argument must never widen access.
import { asciiLower } from "../common/ascii.ts";
import { neutralise } from "../common/log_text.ts";
import type { SocketSpec } from "../kopano/socket_spec.ts";

export interface Config {
  sockets: SocketSpec[];
  /** Required features, lower case, in the given order; null when service= was not given. */
  services: string[] | null;
  tryFirstPass: boolean;
  useFirstPass: boolean;
  quiet: boolean;
  debug: boolean;
  /** Per-attempt limit in seconds. */
  timeout: number;
  cafile: string | null;
  helper: string | null;
  /** daemon=: the resident helper's socket for the shim, "off", or null (not given). */
  daemon: string | null;
  ignoreAuthinfoUnavail: boolean;
}

export const DEFAULT_SOCKET = "http://localhost:236/kopano";
export const DEFAULT_TIMEOUT = 10;
export const MAX_SOCKETS = 8;
export const FEATURES = ["imap", "pop3", "mobile", "outlook", "webapp"];
const FLAGS = ["try_first_pass", "use_first_pass", "quiet", "debug", "ignore_authinfo_unavail"];
const VALUED = ["socket", "service", "timeout", "cafile", "helper", "daemon"];
// Longest UNIX socket path Linux accepts (sun_path is 108 bytes including the NUL).
const MAX_UNIX_PATH = 107;

export class ArgError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ArgError";
  }
}

/** Quotes an argument for an error message, with control and invisible characters made "?". */
export function showArg(s: string): string {
  const clean = neutralise(s);
  return JSON.stringify(clean.length > 200 ? clean.slice(0, 200) + "..." : clean);
}

// Printable ASCII without space, '#' and '"': nothing that could end the request line or a header.
const PATH_CHARS = /^\/[\x21\x24-\x7e]*$/;
const HOST_NAME =
  /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/;
const IPV6 = /^[0-9A-Fa-f:.]{2,45}$/;

export function parseSocket(url: string): SocketSpec {
  const bad = (why: string) => new ArgError(`socket=${showArg(url)}: ${why}`);
  if (url === "") throw bad("empty URL");
  if (url.startsWith("file://")) {
    const path = url.slice("file://".length);
    if (!path.startsWith("/")) {
      throw bad("a file URL must carry an absolute path (file:///path/to/server.sock)");
    }
    if (!PATH_CHARS.test(path)) throw bad("unsupported character in the socket path");
    if (path.endsWith("/")) throw bad("the socket path names a directory");
    if (new TextEncoder().encode(path).length > MAX_UNIX_PATH) throw bad("socket path too long");
    return {
      url,
      kind: "unix",
      host: "",
      port: 0,
      path: "/",
      hostHeader: "localhost",
      socketPath: path,
    };
  }
  const m = /^(https?):\/\/([^/]*)(.*)$/.exec(url);
  if (!m) throw bad("unsupported scheme (use http://, https:// or file:///)");
  const kind = m[1] as "http" | "https";
  const authority = m[2];
  const path = m[3] === "" ? "/" : m[3];
  if (authority === "") throw bad("no host");
  if (authority.includes("@")) throw bad("credentials in the URL are not allowed");
  if (!PATH_CHARS.test(path)) throw bad("unsupported character in the path");
  let host: string;
  let portText: string | undefined;
  const v6 = /^\[([^\]]*)\](?::(.*))?$/.exec(authority);
  if (v6) {
    host = v6[1];
    portText = v6[2];
    if (!IPV6.test(host) || !host.includes(":")) throw bad("invalid IPv6 address");
  } else {
    const colon = authority.lastIndexOf(":");
    host = colon < 0 ? authority : authority.slice(0, colon);
    portText = colon < 0 ? undefined : authority.slice(colon + 1);
    if (host === "") throw bad("no host");
    if (!HOST_NAME.test(host)) throw bad("invalid host name");
  }
  let port = kind === "https" ? 443 : 80;
  if (portText !== undefined) {
    if (!/^[0-9]{1,5}$/.test(portText) || Number(portText) < 1 || Number(portText) > 65535) {
      throw bad("port out of range (1-65535)");
    }
    port = Number(portText);
  }
  return { url, kind, host, port, path, hostHeader: authority, socketPath: "" };
}

function parseServices(value: string): string[] {
  if (value === "") throw new ArgError("service=: empty feature list");
  const out: string[] = [];
  for (const name of value.split("|")) {
    const lower = asciiLower(name);
    if (name === "") {
      throw new ArgError(`service=${showArg(value)}: empty feature name in the list`);
    }
    if (!FEATURES.includes(lower)) {
      throw new ArgError(
        `service=${showArg(value)}: unknown feature ${showArg(name)} (known: ${
          FEATURES.join(", ")
        })`,
      );
    }
    if (!out.includes(lower)) out.push(lower);
  }
  return out;
}

function parseTimeout(value: string): number {
  // One spelling per value: no sign, no leading zero, no unit.
  if (!/^[1-9][0-9]{0,2}$/.test(value) || Number(value) > 300) {
    throw new ArgError(
      `timeout=${showArg(value)}: must be a whole number of seconds from 1 to 300`,
    );
  }
  return Number(value);
}

function absolutePath(name: string, value: string): string {
  if (value === "") throw new ArgError(`${name}=: empty path`);
  // deno-lint-ignore no-control-regex
  if (!value.startsWith("/") || /[\x00-\x1f\x7f]/.test(value)) {
    throw new ArgError(`${name}=${showArg(value)}: must be an absolute path`);
  }
  return value;
}

/** Parses module arguments (the words after pam_mapi.so); throws ArgError with a clear message. */
export function parseModuleArgs(args: readonly string[]): Config {
  const seen = new Set<string>();
  const sockets: SocketSpec[] = [];
  const cfg: Config = {
    sockets,
    services: null,
    tryFirstPass: false,
    useFirstPass: false,
    quiet: false,
    debug: false,
    timeout: DEFAULT_TIMEOUT,
    cafile: null,
    helper: null,
    daemon: null,
    ignoreAuthinfoUnavail: false,
  };
  for (const arg of args) {
    if (arg === "") throw new ArgError("empty module argument");
    const eq = arg.indexOf("=");
    const name = eq < 0 ? arg : arg.slice(0, eq);
    const value = eq < 0 ? null : arg.slice(eq + 1);
    if (FLAGS.includes(name)) {
      if (value !== null) throw new ArgError(`${showArg(arg)}: ${name} takes no value`);
      if (name === "try_first_pass") cfg.tryFirstPass = true;
      else if (name === "use_first_pass") cfg.useFirstPass = true;
      else if (name === "quiet") cfg.quiet = true;
      else if (name === "debug") cfg.debug = true;
      else cfg.ignoreAuthinfoUnavail = true;
      continue;
    }
    if (!VALUED.includes(name)) throw new ArgError(`unknown module argument ${showArg(arg)}`);
    if (value === null) throw new ArgError(`${showArg(arg)}: ${name}= needs a value`);
    if (name === "socket") {
      if (sockets.length === MAX_SOCKETS) {
        throw new ArgError(`more than ${MAX_SOCKETS} socket= arguments`);
      }
      sockets.push(parseSocket(value));
      continue;
    }
    if (seen.has(name)) throw new ArgError(`${name}= given more than once`);
    seen.add(name);
    if (name === "service") cfg.services = parseServices(value);
    else if (name === "timeout") cfg.timeout = parseTimeout(value);
    else if (name === "cafile") cfg.cafile = absolutePath("cafile", value);
    // daemon= is the shim's (docs/protocol.md §6, §7): checked here, otherwise ignored.
    else if (name === "daemon") cfg.daemon = value === "off" ? value : absolutePath(name, value);
    else cfg.helper = absolutePath("helper", value);
  }
  if (cfg.tryFirstPass && cfg.useFirstPass) {
    throw new ArgError("try_first_pass and use_first_pass cannot be used together");
  }
  if (sockets.length === 0) sockets.push(parseSocket(DEFAULT_SOCKET));
  if (cfg.cafile !== null && !sockets.some((s) => s.kind === "https")) {
    throw new ArgError("cafile= is given but no socket= uses https://");
  }
  return cfg;
}
