/* Sanitised logging through pam_syslog (protocol.md 4: control, bidi and invisible characters, and
 * bytes that are not UTF-8, become '?'). */
#include "log.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <security/pam_ext.h>

/* Long enough for a 1 024-byte helper record plus the shim's own prefix text. */
#define LOG_LINE_MAX 2048

static size_t utf8_decode(const unsigned char *s, size_t n, unsigned *cp);
static bool unsafe_char(unsigned cp);

size_t log_sanitize(char *s, size_t len)
{
	size_t i = 0, o = 0;

	while (i < len) {
		unsigned cp;
		size_t n = utf8_decode((const unsigned char *)s + i, len - i, &cp);
		if (n == 0 || unsafe_char(cp)) {
			s[o++] = '?';
			i += n ? n : 1;
		} else {
			memmove(s + o, s + i, n);
			o += n;
			i += n;
		}
	}
	return o;
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
	buf[log_sanitize(buf, strlen(buf))] = '\0';
	pam_syslog(pamh, priority, "%s", buf);
}

void log_bytes(pam_handle_t *pamh, int priority, const char *msg, size_t len)
{
	char buf[LOG_LINE_MAX];

	if (len > sizeof buf - 1)
		len = sizeof buf - 1;
	memcpy(buf, msg, len);
	/* An embedded NUL (from a \u0000 escape) would cut the line short: it becomes '?' too. */
	buf[log_sanitize(buf, len)] = '\0';
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

/* Length of the well-formed UTF-8 sequence at s (at most n bytes), its code point in *cp; 0 if
 * the bytes are not well-formed UTF-8. */
static size_t utf8_decode(const unsigned char *s, size_t n, unsigned *cp)
{
	unsigned c = s[0], min;
	size_t len;

	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
		*cp = c & 0x1f;
		min = 0x80;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		*cp = c & 0x0f;
		min = 0x800;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		*cp = c & 0x07;
		min = 0x10000;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		*cp = *cp << 6 | (s[i] & 0x3f);
	}
	if (*cp < min || *cp > 0x10ffff || (*cp >= 0xd800 && *cp <= 0xdfff))
		return 0;
	return len;
}

/* Characters that must not reach a log line as they are: C0/C1 controls, DEL, and the format,
 * separator and other invisible (default-ignorable) characters that can reorder, hide or break
 * what a reader sees: bidi controls, zero widths, the BOM, fillers, variation selectors, tags.
 * The same set as the helper's src/common/log_text.ts (Cc, Cf, Zl, Zp, Default_Ignorable_Code_Point). */
static bool unsafe_char(unsigned cp)
{
	static const unsigned ranges[][2] = {
		{0x0, 0x1f}, {0x7f, 0x9f}, {0xad, 0xad}, {0x34f, 0x34f}, {0x600, 0x605}, {0x61c, 0x61c},
		{0x6dd, 0x6dd}, {0x70f, 0x70f}, {0x890, 0x891}, {0x8e2, 0x8e2}, {0x115f, 0x1160},
		{0x17b4, 0x17b5}, {0x180b, 0x180f}, {0x200b, 0x200f}, {0x2028, 0x202e}, {0x2060, 0x206f},
		{0x3164, 0x3164}, {0xfe00, 0xfe0f}, {0xfeff, 0xfeff}, {0xffa0, 0xffa0}, {0xfff0, 0xfffb},
		{0x110bd, 0x110bd}, {0x110cd, 0x110cd}, {0x13430, 0x1343f}, {0x1bca0, 0x1bca3},
		{0x1d173, 0x1d17a}, {0xe0000, 0xe0fff},
	};

	for (size_t i = 0; i < sizeof ranges / sizeof ranges[0] && cp >= ranges[i][0]; i++)
		if (cp <= ranges[i][1])
			return true;
	return false;
}

static bool space_char(unsigned cp)
{
	return cp == ' ' || cp == 0xa0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200a) ||
	       cp == 0x202f || cp == 0x205f || cp == 0x3000;
}

void log_value(char *out, size_t outlen, const char *value, size_t max_chars)
{
	const unsigned char *s = (const unsigned char *)value;
	size_t n = strlen(value), i = 0, chars = 0, o = 0;
	char tmp[1024];
	bool quote = n == 0;

	/* First the cleaned text, then quoting around it. */
	while (i < n && o + 8 < sizeof tmp) {
		unsigned cp;
		size_t len = utf8_decode(s + i, n - i, &cp);
		if (chars == max_chars) {
			memcpy(tmp + o, "...", 3);
			o += 3;
			break;
		}
		if (len == 0 || unsafe_char(cp)) {
			tmp[o++] = '?';
			i += len ? len : 1;
		} else {
			if (space_char(cp) || cp == '"' || cp == '\\' || cp == '=')
				quote = true;
			memcpy(tmp + o, s + i, len);
			o += len;
			i += len;
		}
		chars++;
	}
	tmp[o] = '\0';
	if (!quote) {
		snprintf(out, outlen, "%s", tmp);
		return;
	}
	/* Quoted: escape '"' and '\\'. */
	{
		size_t w = 0;
		if (outlen < 3) {
			if (outlen)
				out[0] = '\0';
			return;
		}
		out[w++] = '"';
		for (size_t k = 0; k < o && w + 3 < outlen; k++) {
			if (tmp[k] == '"' || tmp[k] == '\\')
				out[w++] = '\\';
			out[w++] = tmp[k];
		}
		out[w++] = '"';
		out[w] = '\0';
	}
}
