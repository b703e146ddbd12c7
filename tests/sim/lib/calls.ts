// Small helpers for tests: send one SOAP call on a connection and read the reply element.

import { RawConn, type RawResponse, type Target } from "./raw_http.ts";
import { bodyElement, field, logon, type LogonArgs, post, type Xml } from "./soap.ts";

export interface CallResult {
  res: RawResponse;
  name: string;
  value: Xml;
  /** er (or result, for logoff) as a string. */
  er: string | undefined;
}

/** POSTs `body` on `c` and reads the reply; throws if the connection ends without one. */
export async function call(
  c: RawConn,
  body: string,
  opts: { close?: boolean; headers?: string[] } = {},
) {
  await c.write(post(body, opts));
  const res = await c.response();
  if (!res) throw new Error("connection closed without a reply");
  return parse(res);
}

export function parse(res: RawResponse): CallResult {
  const { name, value } = bodyElement(res.body);
  return { res, name, value, er: field(value, "er") ?? field(value, "result") };
}

/** Logs on over a fresh connection kept open for further calls. */
export async function openSession(
  t: Target,
  a: LogonArgs = {},
): Promise<{ c: RawConn; sid: string; r: CallResult }> {
  const c = await RawConn.open(t);
  const r = await call(c, logon(a));
  if (r.er !== "0") {
    c.close();
    throw new Error(`logon failed: er ${r.er}`);
  }
  return { c, sid: field(r.value, "ulSessionId")!, r };
}

export async function withConn<T>(t: Target, fn: (c: RawConn) => Promise<T>): Promise<T> {
  const c = await RawConn.open(t);
  try {
    return await fn(c);
  } finally {
    c.close();
  }
}
