/* A fast, request-aware stand-in for pam_mapi_helper, used by the shim tests. It speaks protocol
 * v1 like the real helper and misbehaves on purpose, chosen by the user name in the request (or by
 * its own file name for behaviour that must happen before reading the request):
 *   default        PAM_SUCCESS when the password is "pw-<user>", else PAM_AUTH_ERR
 *   unavail        PAM_AUTHINFO_UNAVAIL;  ignore: PAM_IGNORE;  svcerr: PAM_SERVICE_ERR
 *   crash          writes a success reply, then dies by SIGSEGV
 *   exit1          writes a success reply, then exits 1
 *   empty          exits 0 without writing anything
 *   garbage        writes "OK"
 *   big            writes 10 MiB
 *   unknown        result PAM_PERM_DENIED
 *   stderr         writes two lines with escape sequences (and bidi, non-UTF-8) to stderr, exits 3
 *   hang           starts a sleeping child in its process group, then sleeps (both record pids)
 *   hangterm       like hang, but ignores SIGTERM
 *   slow-<ms>      sleeps <ms> milliseconds, then answers like default
 *   fds, env, args report what they received in a log record (result PAM_AUTH_ERR)
 *   ctrl           a log record full of control characters
 *   bidi           a log record full of bidi and invisible characters (escaped and raw UTF-8)
 *   loglines       one record per priority
 *   half           writes the first half of a success reply, then exits 0
 *   file name closestdin_helper: closes stdin without reading, answers PAM_AUTH_ERR.
 * Every run appends "pid pgid" to pids next to the executable, and " daemon" when it serves a
 * connection of the fake resident helper (FAKE_DAEMON=1, tests/shim/fake_daemon.c); there, hang
 * ends when the client closes the connection. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

extern char **environ;

static char dir[4096];

static void record_pid(void)
{
	char path[4200];
	FILE *f;

	snprintf(path, sizeof path, "%s/pids", dir);
	f = fopen(path, "a");
	if (f) {
		fprintf(f, "%d %d%s\n", (int)getpid(), (int)getpgrp(),
			getenv("FAKE_DAEMON") ? " daemon" : "");
		fclose(f);
	}
}

static int b64val(int c)
{
	if (c >= 'A' && c <= 'Z') return c - 'A';
	if (c >= 'a' && c <= 'z') return c - 'a' + 26;
	if (c >= '0' && c <= '9') return c - '0' + 52;
	if (c == '+') return 62;
	if (c == '/') return 63;
	return -1;
}

/* Decodes base64 between p and the next '"' into out (NUL-terminated); returns length. */
static size_t b64dec(const char *p, char *out, size_t cap)
{
	size_t n = 0;
	unsigned acc = 0;
	int bits = 0;

	for (; *p && *p != '"'; p++) {
		int v = b64val((unsigned char)*p);
		if (v < 0)
			continue;
		acc = acc << 6 | (unsigned)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (n + 1 < cap)
				out[n++] = (char)(acc >> bits & 0xff);
		}
	}
	out[n] = '\0';
	return n;
}

static size_t field(const char *req, const char *key, char *out, size_t cap)
{
	char pat[64];
	const char *p;

	snprintf(pat, sizeof pat, "\"%s\":\"", key);
	p = strstr(req, pat);
	if (!p) {
		out[0] = '\0';
		return 0;
	}
	return b64dec(p + strlen(pat), out, cap);
}

/* Appends s to the JSON string being built in buf, escaped. */
static void jesc(char *buf, size_t cap, const char *s)
{
	size_t n = strlen(buf);
	for (; *s && n + 8 < cap; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\') {
			buf[n++] = '\\';
			buf[n++] = (char)c;
		} else if (c < 0x20 || c == 0x7f) {
			n += (size_t)snprintf(buf + n, cap - n, "\\u%04x", c);
		} else {
			buf[n++] = (char)c;
		}
	}
	buf[n] = '\0';
}

static void reply(const char *result, const char *priority, const char *message)
{
	static char out[8192];
	snprintf(out, sizeof out, "{\"v\":1,\"result\":\"%s\",\"log\":[", result);
	if (message) {
		strcat(out, "{\"priority\":\"");
		strcat(out, priority);
		strcat(out, "\",\"message\":\"");
		jesc(out, sizeof out, message);
		strcat(out, "\"}");
	}
	strcat(out, "]}\n");
	if (write(1, out, strlen(out)) < 0)
		exit(9);
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* Sleeps ms, or in daemon mode until the client has closed the connection (POLLHUP). */
static void hang_ms(long ms)
{
	struct pollfd p = { .fd = 1, .events = 0 };
	if (!getenv("FAKE_DAEMON")) {
		sleep_ms(ms);
		return;
	}
	while (poll(&p, 1, (int)ms) < 0 && errno == EINTR)
		;
}

static void status_line(const char *key, char *out, size_t cap)
{
	char line[256];
	FILE *f = fopen("/proc/self/status", "r");
	out[0] = '\0';
	if (!f)
		return;
	while (fgets(line, sizeof line, f)) {
		if (strncmp(line, key, strlen(key)) == 0) {
			line[strcspn(line, "\n")] = '\0';
			snprintf(out, cap, "%s", line + strlen(key) + 1 + strspn(line + strlen(key) + 1, " \t"));
		}
	}
	fclose(f);
}

int main(int argc, char **argv)
{
	static char req[70000], user[1024], tok[1024], svc[1024], rhost[1024], msg[6000];
	const char *base;
	size_t len = 0;
	ssize_t n;
	char *slash;

	(void)argc;
	snprintf(dir, sizeof dir, "%s", argv[0]);
	slash = strrchr(dir, '/');
	if (slash)
		*slash = '\0';
	else
		strcpy(dir, ".");
	base = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
	record_pid();

	if (strcmp(base, "closestdin_helper") == 0) {
		close(0);
		sleep_ms(20);
		reply("PAM_AUTH_ERR", "notice", "fake: closed stdin unread");
		return 0;
	}
	while (len < sizeof req - 1 && (n = read(0, req + len, sizeof req - 1 - len)) > 0)
		len += (size_t)n;
	req[len] = '\0';
	field(req, "user", user, sizeof user);
	field(req, "authtok", tok, sizeof tok);
	field(req, "service", svc, sizeof svc);
	field(req, "rhost", rhost, sizeof rhost);

	if (strcmp(user, "unavail") == 0) {
		reply("PAM_AUTHINFO_UNAVAIL", "err", "fake: server unavailable");
	} else if (strcmp(user, "ignore") == 0) {
		reply("PAM_IGNORE", "notice", "fake: ignored");
	} else if (strcmp(user, "svcerr") == 0) {
		reply("PAM_SERVICE_ERR", "err", "fake: bad arguments");
	} else if (strcmp(user, "crash") == 0) {
		reply("PAM_SUCCESS", "notice", "fake: about to crash");
		signal(SIGSEGV, SIG_DFL);
		raise(SIGSEGV);
		return 0;
	} else if (strcmp(user, "exit1") == 0) {
		reply("PAM_SUCCESS", "notice", "fake: success, then exit 1");
		return 1;
	} else if (strcmp(user, "empty") == 0) {
		return 0;
	} else if (strcmp(user, "half") == 0) {
		static const char out[] = "{\"v\":1,\"result\":\"PAM_SUCC";
		if (write(1, out, sizeof out - 1) < 0)
			return 9;
	} else if (strcmp(user, "garbage") == 0) {
		if (write(1, "OK\n", 3) < 0)
			return 9;
	} else if (strcmp(user, "big") == 0) {
		static char chunk[65536];
		memset(chunk, 'x', sizeof chunk);
		for (int i = 0; i < 160; i++)
			if (write(1, chunk, sizeof chunk) < 0)
				return 9;
	} else if (strcmp(user, "unknown") == 0) {
		reply("PAM_PERM_DENIED", "notice", "fake: unknown result");
	} else if (strcmp(user, "stderr") == 0) {
		/* An escape sequence, a raw U+202E (bidi override) and a byte that is not UTF-8. */
		const char e[] = "fatal: \x1b[31mboom\x1b[0m in \xe2\x80\xaehelper\xff\nsecond line\n";
		if (write(2, e, sizeof e - 1) < 0)
			return 9;
		return 3;
	} else if (strcmp(user, "hang") == 0 || strcmp(user, "hangterm") == 0) {
		if (strcmp(user, "hangterm") == 0)
			signal(SIGTERM, SIG_IGN);
		if (fork() == 0) {
			record_pid();
			hang_ms(600000);
			_exit(0);
		}
		hang_ms(600000);
	} else if (strncmp(user, "slow-", 5) == 0) {
		char want[1100];
		sleep_ms(atol(user + 5));
		snprintf(want, sizeof want, "pw-%s", user);
		reply(strcmp(tok, want) == 0 ? "PAM_SUCCESS" : "PAM_AUTH_ERR", "notice", "fake: slow");
	} else if (strcmp(user, "fds") == 0) {
		DIR *d = opendir("/proc/self/fd");
		struct dirent *e;
		strcpy(msg, "fds=");
		while (d && (e = readdir(d))) {
			if (e->d_name[0] == '.' || atoi(e->d_name) == dirfd(d))
				continue;
			strcat(msg, e->d_name);
			strcat(msg, ",");
		}
		if (d)
			closedir(d);
		reply("PAM_AUTH_ERR", "notice", msg);
	} else if (strcmp(user, "env") == 0) {
		char ign[64], blk[64];
		status_line("SigIgn:", ign, sizeof ign);
		status_line("SigBlk:", blk, sizeof blk);
		snprintf(msg, sizeof msg, "argv=");
		for (int i = 0; argv[i]; i++) {
			strcat(msg, argv[i]);
			strcat(msg, "|");
		}
		strcat(msg, " env=");
		for (char **e = environ; *e; e++) {
			strcat(msg, *e);
			strcat(msg, "|");
		}
		snprintf(msg + strlen(msg), sizeof msg - strlen(msg),
			 " pgrp_is_pid=%d sigign=%s sigblk=%s stdin_is_socket=%d", getpgrp() == getpid(),
			 ign, blk, ({ struct stat st; fstat(0, &st) == 0 && S_ISSOCK(st.st_mode); }));
		reply("PAM_AUTH_ERR", "notice", msg);
	} else if (strcmp(user, "args") == 0) {
		const char *p = strstr(req, "\"args\":[");
		snprintf(msg, sizeof msg, "service=%s rhost=%s args=", svc, rhost);
		if (p) {
			p += 8;
			while (*p == '"') {
				char a[1024];
				b64dec(p + 1, a, sizeof a);
				strcat(msg, a);
				strcat(msg, "|");
				p = strchr(p + 1, '"');
				if (!p)
					break;
				p++;
				if (*p == ',')
					p++;
			}
		}
		reply("PAM_AUTH_ERR", "notice", msg);
	} else if (strcmp(user, "ctrl") == 0) {
		static const char out[] = "{\"v\":1,\"result\":\"PAM_AUTH_ERR\",\"log\":[{\"priority\":"
			"\"notice\",\"message\":\"a\\u001b[31mb\\tc\\u0000d\\u007fe\\nf\"}]}";
		if (write(1, out, sizeof out - 1) < 0)
			return 9;
	} else if (strcmp(user, "bidi") == 0) {
		/* U+202E U+0085 U+200B U+2066 U+2069 U+FEFF U+2028 U+061C U+00AD as escapes, U+202E raw,
		 * U+E0041 (a tag) as a surrogate pair, U+FE0F raw; then visible non-ASCII text. */
		static const char out[] = "{\"v\":1,\"result\":\"PAM_AUTH_ERR\",\"log\":[{\"priority\":"
			"\"notice\",\"message\":\"a\\u202eb\\u0085c\\u200bd\\u2066e\\u2069f\\ufeffg\\u2028h"
			"\\u061ci\\u00adj\xe2\x80\xaek\\udb40\\udc41l\xef\xb8\x8fm j\xc3\xbcrgen \xe2\x82\xac "
			"\xf0\x9f\x98\x80\"}]}";
		if (write(1, out, sizeof out - 1) < 0)
			return 9;
	} else if (strcmp(user, "loglines") == 0) {
		static const char out[] = "{\"v\":1,\"result\":\"PAM_AUTH_ERR\",\"log\":["
			"{\"priority\":\"err\",\"message\":\"line err\"},"
			"{\"priority\":\"warning\",\"message\":\"line warning\"},"
			"{\"priority\":\"notice\",\"message\":\"line notice\"},"
			"{\"priority\":\"info\",\"message\":\"line info\"},"
			"{\"priority\":\"debug\",\"message\":\"line debug\"}]}\n";
		if (write(1, out, sizeof out - 1) < 0)
			return 9;
	} else {
		char want[1100];
		snprintf(want, sizeof want, "pw-%s", user);
		snprintf(msg, sizeof msg, "fake: %s user=%s", strcmp(tok, want) == 0 ? "accepted" : "refused",
			 user);
		reply(strcmp(tok, want) == 0 ? "PAM_SUCCESS" : "PAM_AUTH_ERR", "notice", msg);
	}
	return 0;
}
