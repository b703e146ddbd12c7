// Opens the connection for one socket= URL: TCP, TCP + TLS, or a UNIX socket. Each step is bounded
// by the attempt's deadline. TLS always verifies the certificate and the host name, and never
// offers a client certificate (a Kopano server logs in whoever presents a key it knows).
import type { SocketSpec } from "./socket_spec.ts";
import type { Deadline } from "../common/deadline.ts";
import { neutralise } from "../common/log_text.ts";

export type StepReporter = (step: "connect" | "tls", ok: boolean, text: string) => void;

/** Connecting or the TLS handshake failed; `message` is log-safe. */
export class ConnectError extends Error {
  constructor(readonly step: "connect" | "tls", message: string) {
    super(message);
    this.name = "ConnectError";
  }
}

/** Closes a connection that arrives after we stopped waiting for it. */
function closeLate(p: Promise<Deno.Conn>): void {
  p.then((c) => {
    try {
      c.close();
    } catch { /* already closed */ }
  }, () => {});
}

export async function openConnection(
  spec: SocketSpec,
  deadline: Deadline,
  caCerts: string[] | undefined,
  report: StepReporter,
): Promise<Deno.Conn> {
  let conn: Deno.Conn;
  try {
    const p: Promise<Deno.Conn> = spec.kind === "unix"
      ? Deno.connect({ transport: "unix", path: spec.socketPath })
      : Deno.connect({ hostname: spec.host, port: spec.port, signal: deadline.signal });
    try {
      conn = await deadline.race(p);
    } catch (e) {
      closeLate(p);
      throw e;
    }
  } catch (e) {
    const why = deadline.expired ? `timed out after ${deadline.seconds} s` : connectError(e);
    throw new ConnectError("connect", `connect failed: ${why}`);
  }
  // TCP_NODELAY, set on the TCP socket before TLS goes on top (a TlsConn cannot set it; the option
  // stays on the socket). With Nagle's algorithm on, a write that leaves while an earlier one is
  // not yet acknowledged waits for the peer's delayed ACK, about 40 ms: the TLS handshake's last
  // flight and our request, or any request sent in two writes. UNIX sockets have no Nagle.
  if (spec.kind !== "unix") (conn as Deno.TcpConn).setNoDelay(true);
  report("connect", true, `connected to ${targetName(spec)}`);
  if (spec.kind !== "https") return conn;

  const unregister = deadline.onExpire(() => {
    try {
      conn.close();
    } catch { /* already closed */ }
  });
  try {
    // No cert/key options: a client certificate is never sent.
    const tls = await deadline.race(
      Deno.startTls(conn as Deno.TcpConn, { hostname: spec.host, caCerts }),
    );
    await deadline.race(tls.handshake());
    report("tls", true, `TLS established, certificate verified for ${spec.host}`);
    return tls;
  } catch (e) {
    try {
      conn.close();
    } catch { /* already closed */ }
    const why = deadline.expired ? `timed out after ${deadline.seconds} s` : connectError(e);
    throw new ConnectError("tls", `TLS failure: ${why}`);
  } finally {
    unregister();
  }
}

/** "UNIX socket PATH" or "HOST port N", for step texts. */
export function targetName(spec: SocketSpec): string {
  return spec.kind === "unix" ? `UNIX socket ${spec.socketPath}` : `${spec.host} port ${spec.port}`;
}

/** A short, log-safe description of a connect or TLS error. */
export function connectError(e: unknown): string {
  if (e instanceof Deno.errors.ConnectionRefused) return "connection refused";
  if (e instanceof Deno.errors.NotFound) return "no such socket or host";
  if (e instanceof Deno.errors.PermissionDenied) return "permission denied";
  // TLS errors may quote the server's certificate: its names are the server's text too.
  return neutralise(e instanceof Error ? e.message : String(e), " ").slice(0, 200);
}
