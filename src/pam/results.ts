// PAM result names the helper may answer with (docs/protocol.md §4) and what `check` exits with.

export type PamResult =
  | "PAM_SUCCESS"
  | "PAM_AUTH_ERR"
  | "PAM_AUTHINFO_UNAVAIL"
  | "PAM_IGNORE"
  | "PAM_SERVICE_ERR";

export type Priority = "err" | "warning" | "notice" | "info" | "debug";

/** One line for the shim to pass to pam_syslog. */
export interface LogRecord {
  priority: Priority;
  message: string;
}

/** `check` exit status (pam_mapi_helper(8), EXIT STATUS): 0 success, 1 refused, 2 no server answered, 3 anything else. */
export function exitCodeFor(result: PamResult): number {
  switch (result) {
    case "PAM_SUCCESS":
      return 0;
    case "PAM_AUTH_ERR":
      return 1;
    case "PAM_AUTHINFO_UNAVAIL":
      return 2;
    default:
      return 3;
  }
}
