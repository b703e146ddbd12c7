// TCP_NODELAY on the sim's TLS listening socket, like gSOAP's soap_accept() sets it on every
// connection kopano-server accepts. Without it, a TLS server that writes its handshake flight and
// its session tickets in several small writes holds the next write until the client's delayed ACK
// (about 40 ms), which a real server never does: the bench would measure the sim, not the helper.
//
// Deno gives no way to set an option on a listener or on an accepted TlsConn (only TcpConn has
// setNoDelay), but Linux copies TCP_NODELAY from a listening socket to the sockets it accepts. So
// the listening socket's descriptor is looked up (its inode in /proc/net/tcp*, then the fd in
// /proc/self/fd that points at that inode) and libc's setsockopt is called on it through FFI.

const IPPROTO_TCP = 6;
const TCP_NODELAY = 1;
/** The st column of /proc/net/tcp. */
const STATES = { established: "01", listen: "0A" };

/** Inodes of TCP sockets on local `port` in that state (and with that peer port), any process. */
function inodes(port: number, state: keyof typeof STATES, peerPort?: number): Set<string> {
  const hex = (p: number) => `:${p.toString(16).toUpperCase().padStart(4, "0")}`;
  const found = new Set<string>();
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text: string;
    try {
      text = Deno.readTextFileSync(table);
    } catch {
      continue; // no IPv6 in this kernel
    }
    for (const line of text.split("\n").slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10 || !f[1].endsWith(hex(port)) || f[3] !== STATES[state]) continue;
      if (peerPort === undefined || f[2].endsWith(hex(peerPort))) found.add(f[9]);
    }
  }
  return found;
}

/** This process's descriptor of the TCP socket on local `port` in that state; throws if none. */
export function ownTcpSocket(
  port: number,
  state: keyof typeof STATES,
  peerPort?: number,
): number {
  const wanted = inodes(port, state, peerPort);
  for (const e of Deno.readDirSync("/proc/self/fd")) {
    let target: string;
    try {
      target = Deno.readLinkSync(`/proc/self/fd/${e.name}`);
    } catch {
      continue; // closed meanwhile
    }
    const m = /^socket:\[(\d+)\]$/.exec(target);
    if (m && wanted.has(m[1])) return Number(e.name);
  }
  throw new Error(`no ${state} TCP socket of ours on port ${port}`);
}

const SYMBOLS = {
  setsockopt: { parameters: ["i32", "i32", "i32", "buffer", "u32"], result: "i32" },
  getsockopt: { parameters: ["i32", "i32", "i32", "buffer", "buffer"], result: "i32" },
} as const;

function withLibc<T>(
  fn: (libc: Deno.DynamicLibrary<typeof SYMBOLS>["symbols"]) => T,
): T {
  const libc = Deno.dlopen("libc.so.6", SYMBOLS);
  try {
    return fn(libc.symbols);
  } finally {
    libc.close();
  }
}

/** Sets TCP_NODELAY on this process's socket listening on `port`; throws when it cannot. */
export function setListenerNoDelay(port: number): void {
  const fd = ownTcpSocket(port, "listen");
  withLibc((c) => {
    if (c.setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, new Int32Array([1]), 4) !== 0) {
      throw new Error(`setsockopt(TCP_NODELAY) failed on fd ${fd}`);
    }
  });
}

/** Whether TCP_NODELAY is set on descriptor `fd` (tests). */
export function hasNoDelay(fd: number): boolean {
  const value = new Int32Array(1);
  const len = new Uint32Array([4]);
  return withLibc((c) => {
    if (c.getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, value, len) !== 0) {
      throw new Error(`getsockopt(TCP_NODELAY) failed on fd ${fd}`);
    }
    return value[0] !== 0;
  });
}
