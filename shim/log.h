/* Everything the shim writes to syslog goes through here, so that no control, bidi or invisible
 * character from a user name, a module argument, the helper's stderr or a helper log record
 * reaches the log. */
#ifndef PAM_MAPI_LOG_H
#define PAM_MAPI_LOG_H

#include <stddef.h>
#include <security/pam_modules.h>

/* Replaces, in place, every character log_value would replace (controls, bidi and other invisible
 * characters) and every byte that is not part of well-formed UTF-8 by one '?'; returns the new
 * length (at most len). */
size_t log_sanitize(char *s, size_t len);

/* Formats, sanitises and passes the line to pam_syslog (facility authpriv). */
void log_line(pam_handle_t *pamh, int priority, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Logs len bytes (which may contain NUL) verbatim apart from sanitising. */
void log_bytes(pam_handle_t *pamh, int priority, const char *msg, size_t len);

/* Formats an untrusted value (user name, rhost) as one log field, the way the helper does: control,
 * format and line-separator characters and invalid UTF-8 become '?', more than max_chars
 * characters are cut and marked "...", and a value that is empty or contains whitespace, '"', '\'
 * or '=' is quoted with '"' and '\' escaped - so "user=x rhost=1.2.3.4" cannot pose as two fields. */
void log_value(char *out, size_t outlen, const char *value, size_t max_chars);

/* "PAM_SUCCESS", "PAM_AUTH_ERR", ... for the codes this module returns; "PAM_<n>" otherwise. */
const char *pam_code_name(int code);

#endif
