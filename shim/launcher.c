/* pam_mapi_helper when the helper is the bundled JavaScript: starts Deno on the bundle (for exactly
 * `--pam`, the module's request on every forked login, on a bundle of that code alone), and decides
 * first whether Deno may use its code cache. Deno loads compiled V8 code from the cache directory
 * (DENO_DIR/v8_code_cache_v2) before any of the helper's code runs, and runs it as root: whoever
 * can write that directory or a file in it can make a wrong password pass. So, in this order:
 *   every descriptor above 2 closed (a shell or a host may hold a secret open: `exec 7</etc/shadow;
 *   runuser -u pam_mapi -- pam_mapi_helper serve` must not hand it on to the daemon);
 *   umask 077 (what Deno creates is root's alone), RLIMIT_CORE 0/0 (no core, also for `check`
 *   run by hand);
 *   the Deno runtime and the bundle must be regular files owned by root (or the user running this)
 *   that neither group nor others can write, reached through directories like that
 *   (path_check.c, the rules of helper=): otherwise nothing runs;
 *   the cache directory is created 0700 if missing (its parent must pass the same checks), and it
 *   is trusted when it and every entry in it (recursively, bounded) pass them too: an attacker's
 *   file planted while the directory was writable must not be used after an admin fixes the mode.
 * A trusted cache is Deno's DENO_DIR; an untrusted one is not used at all: Deno gets --no-code-cache
 * and DENO_DIR=/dev/null, where it can neither read nor create anything, and the helper gets a first
 * argument --cache-untrusted=REASON, which it logs at warning (src/pam/launch.ts). `serve`, the resident
 * helper, always runs without the cache and with V8 flags for a long-lived process. The environment
 * is built from scratch. One execve, as the #! line's env was. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fds.h"
#include "launcher_paths.h"   /* PAM_MAPI_DENO, PAM_MAPI_BUNDLE, PAM_MAPI_PAM_BUNDLE, PAM_MAPI_CACHE_DIR */
#include "path_check.h"

#define CACHE_MAX_ENTRIES 256
#define CACHE_MAX_DEPTH 8
#define EXIT_SETUP 3            /* as `check` for a setup error */

/* Deno's flags: permissions the helper narrows at start (src/pam/permissions.ts), nothing else, no
 * prompt; the file is JavaScript whatever its name; V8 flags for a short-lived process
 * (README "Performance"), the last entry. */
static const char *const deno_flags[] = {
	"run", "--no-config", "--no-lock", "--no-prompt", "-N", "-R", "-W", "--ext=js",
	"--v8-flags=--no-lazy,--jitless,--single-threaded",
};

/* `serve` is one process for days, not 20 ms: it compiles lazily and keeps its memory flat with a
 * small young generation and V8's memory-saving mode (README "The resident helper"); still no
 * JIT, so that pam_mapi.service can forbid writable executable memory. It also runs without the
 * code cache: it starts once, and under the unit the cache directory is read-only to it. */
static const char serve_v8_flags[] =
	"--v8-flags=--jitless,--single-threaded,--max-semi-space-size=1,--optimize-for-size";

/* An empty DENO_TLS_CA_STORE: no built-in roots, https:// trusts only what the helper passes.
 * DENO_DISABLE_NODE_SHIM=1: where PATH has no `node` (a mail server), `deno run` would link
 * DENO_DIR/node_compat_bin/node to itself for child processes to find (Deno 2.9,
 * cli/node_compat_shim.rs), a symbolic link that the cache check rightly refuses from then on;
 * the helper starts no child process. */
static const char *const fixed_env[] = {
	"DENO_TLS_CA_STORE=", "DENO_DISABLE_NODE_SHIM=1", "DENO_NO_UPDATE_CHECK=1", "NO_COLOR=1",
	"PATH=/usr/bin:/bin",
};

/* Writes the reason (a message cut to the buffer is fine). */
static int __attribute__((format(printf, 3, 4))) reason(char *why, size_t whylen, const char *fmt,
							 ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
	return -1;
}

static void __attribute__((noreturn)) die(const char *what, const char *why)
{
	fprintf(stderr, "pam_mapi_helper: %s: %s\n", what, why);
	exit(EXIT_SETUP);
}

/* Every entry below the directory open at fd: owned by a trusted owner, not writable by group or
 * others, a regular file or a directory. */
static int check_tree(int fd, const char *path, const struct path_owners *own, int depth,
		      int *budget, char *why, size_t whylen)
{
	char owners[32];
	struct dirent *e;
	DIR *d = fdopendir(fd);
	int rc = 0;

	if (!d) {
		reason(why, whylen, "cannot read %s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	while (rc == 0 && (errno = 0, e = readdir(d))) {
		struct stat st;
		char sub[4096];

		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
		if (--*budget < 0) {
			reason(why, whylen, "%s holds more than %d entries", path, CACHE_MAX_ENTRIES);
			rc = -1;
		} else if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
			reason(why, whylen, "cannot stat %s: %s", sub, strerror(errno));
			rc = -1;
		} else if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) {
			/* a link could lead anywhere */
			reason(why, whylen, "%s is not a regular file or directory", sub);
			rc = -1;
		} else if (!path_owner_ok(own, st.st_uid)) {
			reason(why, whylen, "%s is not owned by %s", sub,
				 path_owners_text(own, owners, sizeof owners));
			rc = -1;
		} else if (st.st_mode & (S_IWGRP | S_IWOTH)) {
			reason(why, whylen, "%s is writable by group or others", sub);
			rc = -1;
		} else if (S_ISDIR(st.st_mode)) {
			int sfd = depth >= CACHE_MAX_DEPTH ? -1 :
				  openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (depth >= CACHE_MAX_DEPTH) {
				reason(why, whylen, "%s is nested more than %d deep", sub, CACHE_MAX_DEPTH);
				rc = -1;
			} else if (sfd < 0) {
				reason(why, whylen, "cannot open %s: %s", sub, strerror(errno));
				rc = -1;
			} else {
				rc = check_tree(sfd, sub, own, depth + 1, budget, why, whylen);
			}
		}
	}
	if (rc == 0 && errno != 0) {
		reason(why, whylen, "cannot read %s: %s", path, strerror(errno));
		rc = -1;
	}
	closedir(d);
	return rc;
}

/* Whether Deno may use the cache directory (made 0700 if missing). Returns 0 with its resolved
 * path in *dir, or -1 with the reason. */
static int trust_cache(const struct path_owners *own, char **dir, char *why, size_t whylen)
{
	char parent[4096], inner[1024], *rparent, *made;
	const char *name = strrchr(PAM_MAPI_CACHE_DIR, '/') + 1;
	int budget = CACHE_MAX_ENTRIES, fd;

	*dir = NULL;
	if (PAM_MAPI_CACHE_DIR[0] != '/' || *name == '\0') {
		reason(why, whylen, "%s is not an absolute path to a directory", PAM_MAPI_CACHE_DIR);
		return -1;
	}
	/* "/var/cache" of "/var/cache/pam_mapi" ("/" of "/cache") */
	snprintf(parent, sizeof parent, "%.*s", name - PAM_MAPI_CACHE_DIR > 1 ?
		 (int)(name - PAM_MAPI_CACHE_DIR - 1) : 1, PAM_MAPI_CACHE_DIR);
	if (path_check_dir(parent, own, &rparent, inner, sizeof inner) < 0)
		return reason(why, whylen, "%s: %s", parent, inner);
	made = malloc(strlen(rparent) + strlen(name) + 2);
	if (!made) {
		free(rparent);
		reason(why, whylen, "out of memory");
		return -1;
	}
	sprintf(made, "%s/%s", strcmp(rparent, "/") == 0 ? "" : rparent, name);
	free(rparent);
	if (mkdir(made, 0700) != 0 && errno != EEXIST) {
		reason(why, whylen, "cannot create %s: %s", made, strerror(errno));
		free(made);
		return -1;
	}
	free(made);
	if (path_check_dir(PAM_MAPI_CACHE_DIR, own, dir, why, whylen) < 0)
		return -1;
	fd = open(*dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		reason(why, whylen, "cannot open %s: %s", *dir, strerror(errno));
	} else if (check_tree(fd, *dir, own, 1, &budget, why, whylen) == 0) {
		return 0;
	}
	free(*dir);
	*dir = NULL;
	return -1;
}

int main(int argc, char **argv)
{
	static const struct rlimit no_core = { 0, 0 };
	const size_t nflags = sizeof deno_flags / sizeof *deno_flags;
	const size_t nenv = sizeof fixed_env / sizeof *fixed_env;
	struct path_owners own = { geteuid(), 1, NULL };
	char why[1024], *deno, *bundle, *cache, **args, **env;
	struct stat devnull;
	size_t n = 0;
	bool serve, pam;

	fds_close_span(3, ~0U, fds_loop_max());
	umask(077);
	if (setrlimit(RLIMIT_CORE, &no_core) != 0)
		die("setrlimit", strerror(errno));
	if (argc == 2 && strcmp(argv[1], "--launcher-info") == 0) {
		/* What this launcher was built with (packaging/install.sh and the tests read it). */
		printf("deno=%s\nbundle=%s\npam_bundle=%s\ncache=%s\nenv=", PAM_MAPI_DENO,
		       PAM_MAPI_BUNDLE, PAM_MAPI_PAM_BUNDLE, PAM_MAPI_CACHE_DIR);
		for (size_t i = 0; i < nenv; i++)
			printf("%s%s", i ? " " : "", fixed_env[i]);
		printf("\nflags=");
		for (size_t i = 0; i < nflags; i++)
			printf("%s%s", i ? " " : "", deno_flags[i]);
		printf("\nserve_v8_flags=%s\n", serve_v8_flags);
		return fflush(stdout) == 0 ? 0 : EXIT_SETUP;
	}
	if (path_check_file(PAM_MAPI_DENO, &own, PATH_CHECK_EXEC, &deno, why, sizeof why) < 0)
		die("the Deno runtime " PAM_MAPI_DENO " is refused", why);
	/* The module's request gets the bundle of its code alone (src/pam_main.ts): less to load. */
	pam = argc == 2 && strcmp(argv[1], "--pam") == 0;
	if (path_check_file(pam ? PAM_MAPI_PAM_BUNDLE : PAM_MAPI_BUNDLE, &own, 0, &bundle, why,
			    sizeof why) < 0)
		die(pam ? "the bundle " PAM_MAPI_PAM_BUNDLE " is refused" :
			  "the bundle " PAM_MAPI_BUNDLE " is refused", why);

	args = calloc(nflags + (size_t)argc + 4, sizeof *args);
	env = calloc(nenv + 2, sizeof *env);
	if (!args || !env)
		die("start", "out of memory");
	serve = argc >= 2 && strcmp(argv[1], "serve") == 0;
	args[n++] = deno;
	for (size_t i = 0; i < nflags; i++)
		args[n++] = (char *)(serve && i == nflags - 1 ? serve_v8_flags : deno_flags[i]);
	/* Without a trusted cache (and always for serve): a DENO_DIR that is not a directory, so
	 * that Deno reads and writes no cache at all. */
	if (serve || trust_cache(&own, &cache, why, sizeof why) != 0) {
		if (lstat("/dev/null", &devnull) != 0 || !S_ISCHR(devnull.st_mode))
			die("start", "/dev/null is not a character device");
		env[0] = "DENO_DIR=/dev/null";
		args[n++] = "--no-code-cache";
		args[n++] = bundle;
		if (!serve) {
			char *note = malloc(strlen(why) + sizeof PAM_MAPI_CACHE_DIR + 64);
			if (!note)
				die("start", "out of memory");
			sprintf(note, "--cache-untrusted=%s not used: %s", PAM_MAPI_CACHE_DIR, why);
			args[n++] = note;
		}
	} else {
		env[0] = malloc(strlen(cache) + sizeof "DENO_DIR=");
		if (!env[0])
			die("start", "out of memory");
		sprintf(env[0], "DENO_DIR=%s", cache);
		args[n++] = bundle;
	}
	for (int i = 1; i < argc; i++)
		args[n++] = argv[i];
	for (size_t i = 0; i < nenv; i++)
		env[1 + i] = (char *)fixed_env[i];
	execve(deno, args, env);
	die(deno, strerror(errno));
}
