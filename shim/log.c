/* Sanitised logging through pam_syslog (protocol.md 4: control characters become '?'). */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <security/pam_ext.h>

/* Long enough for a 1 024-byte helper record plus the shim's own prefix text. */
#define LOG_LINE_MAX 2048

void log_sanitize(char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c == 0x7f)
			s[i] = '?';
	}
}

void log_line(pam_handle_t *pamh, int priority, const char *fmt, ...)
{
	char buf[LOG_LINE_MAX];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	/* vsnprintf truncates; the sanitised part up to the NUL is what gets logged. */
	log_sanitize(buf, strlen(buf));
	pam_syslog(pamh, priority, "%s", buf);
}

void log_bytes(pam_handle_t *pamh, int priority, const char *msg, size_t len)
{
	char buf[LOG_LINE_MAX];

	if (len > sizeof buf - 1)
		len = sizeof buf - 1;
	memcpy(buf, msg, len);
	/* An embedded NUL (from a \u0000 escape) would cut the line short: it becomes '?' too. */
	log_sanitize(buf, len);
	buf[len] = '\0';
	pam_syslog(pamh, priority, "%s", buf);
}

const char *pam_code_name(int code)
{
	switch (code) {
	case PAM_SUCCESS: return "PAM_SUCCESS";
	case PAM_AUTH_ERR: return "PAM_AUTH_ERR";
	case PAM_AUTHINFO_UNAVAIL: return "PAM_AUTHINFO_UNAVAIL";
	case PAM_IGNORE: return "PAM_IGNORE";
	case PAM_SERVICE_ERR: return "PAM_SERVICE_ERR";
	case PAM_AUTHTOK_ERR: return "PAM_AUTHTOK_ERR";
	case PAM_AUTHTOK_RECOVERY_ERR: return "PAM_AUTHTOK_RECOVERY_ERR";
	case PAM_USER_UNKNOWN: return "PAM_USER_UNKNOWN";
	case PAM_CONV_ERR: return "PAM_CONV_ERR";
	case PAM_BUF_ERR: return "PAM_BUF_ERR";
	case PAM_SYSTEM_ERR: return "PAM_SYSTEM_ERR";
	case PAM_PERM_DENIED: return "PAM_PERM_DENIED";
	case PAM_INCOMPLETE: return "PAM_INCOMPLETE";
	case PAM_CONV_AGAIN: return "PAM_CONV_AGAIN";
	default: return "PAM_(other)";
	}
}
