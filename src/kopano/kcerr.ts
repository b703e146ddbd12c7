// Kopano/Zarafa error codes that can appear on the logon path (logon, getUser, logoff), so that
// log lines and `check` name them instead of printing a bare number. Values: docs/kopano.md §3.

const KCERR: Record<number, string> = {
  0x80000001: "KCERR_UNKNOWN",
  0x80000002: "KCERR_NOT_FOUND",
  0x80000003: "KCERR_NO_ACCESS",
  0x80000004: "KCERR_NETWORK_ERROR",
  0x80000005: "KCERR_SERVER_NOT_RESPONDING",
  0x80000007: "KCERR_DATABASE_ERROR",
  0x80000009: "KCERR_LOGON_FAILED",
  0x8000000e: "KCERR_NOT_ENOUGH_MEMORY",
  0x80000010: "KCERR_END_OF_SESSION",
  0x80000014: "KCERR_INVALID_PARAMETER",
  0x80000018: "KCERR_NO_SUPPORT",
  0x8000001d: "KCERR_PLUGIN_ERROR",
  0x8000001f: "KCERR_NOT_IMPLEMENTED",
  0x80000021: "KCERR_INVALID_VERSION",
  0x80000023: "KCERR_NOT_INITIALIZED",
  0x80000024: "KCERR_CALL_FAILED",
  0x80000025: "KCERR_SSO_CONTINUE",
  0x80000026: "KCERR_TIMEOUT",
  0x80000028: "KCERR_UNABLE_TO_COMPLETE",
  0x8000002b: "KCERR_BUSY",
  0x80000030: "KCERR_UNCONFIGURED",
  0x80000031: "KCERR_BAD_CHARWIDTH",
  // Kopano 10.0.3-11.0.1 put the MAPI code into `er` for a client without the UNICODE capability;
  // 8.7.81-10.0.2 answered such a logon with an HTTP 500 SOAP fault "Error -2147221245".
  0x80040103: "MAPI_E_BAD_CHARWIDTH",
};

export const KCERR_NONE = 0;
export const KCERR_LOGON_FAILED = 0x80000009;
export const KCERR_END_OF_SESSION = 0x80000010;

/** "KCERR_LOGON_FAILED (0x80000009)", or "unknown error 0x..." for codes not in the table. */
export function kcerrName(code: number): string {
  if (code === 0) return "KCERR_NONE (0)";
  const hex = "0x" + code.toString(16).toUpperCase().padStart(8, "0");
  const name = KCERR[code];
  return name ? `${name} (${hex})` : `unknown error ${hex}`;
}
