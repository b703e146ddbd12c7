/* The helper runs with the host's privileges (root, for saslauthd) and its answer decides who may
 * relay mail, so only a file that nobody but root could have written is run:
 *  - the path is resolved once (realpath) and that resolved path is both checked and executed, so
 *    a symlink swapped after the check changes nothing;
 *  - the file is a regular file, owned by root, not writable by group or others, executable;
 *  - every directory on the resolved path is owned by root and not writable by group or others,
 *    because whoever can write a directory can replace the file in it. The one exception is a
 *    root-owned directory with the sticky bit (like /tmp): others may add entries there but cannot
 *    rename or remove root's.
 * The interpreter named in a "#!" line is not checked: it is the administrator's deno install. */
#include "helper_check.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int check_dir(const char *dir, char *why, size_t whylen)
{
	struct stat st;

	if (stat(dir, &st) != 0) {
		snprintf(why, whylen, "cannot stat directory %s: %s", dir, strerror(errno));
		return -1;
	}
	if (st.st_uid != 0) {
		snprintf(why, whylen, "directory %s is not owned by root", dir);
		return -1;
	}
	if ((st.st_mode & (S_IWGRP | S_IWOTH)) && !(st.st_mode & S_ISVTX)) {
		snprintf(why, whylen, "directory %s is writable by group or others", dir);
		return -1;
	}
	return 0;
}

int helper_check(const char *path, char **resolved, char *why, size_t whylen)
{
	struct stat st;
	char *real, *dir;
	int rc;

	*resolved = NULL;
	if (path[0] != '/') {
		snprintf(why, whylen, "not an absolute path");
		return -1;
	}
	real = realpath(path, NULL);
	if (!real) {
		snprintf(why, whylen, "%s", strerror(errno));
		return -1;
	}
	if (stat(real, &st) != 0) {
		snprintf(why, whylen, "%s", strerror(errno));
		goto refuse;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(why, whylen, "not a regular file");
		goto refuse;
	}
	if (st.st_uid != 0) {
		snprintf(why, whylen, "not owned by root");
		goto refuse;
	}
	if (st.st_mode & (S_IWGRP | S_IWOTH)) {
		snprintf(why, whylen, "writable by group or others");
		goto refuse;
	}
	if (!(st.st_mode & (S_IXUSR | S_IXGRP | S_IXOTH)) ||
	    faccessat(AT_FDCWD, real, X_OK, AT_EACCESS) != 0) {
		snprintf(why, whylen, "not executable");
		goto refuse;
	}
	/* Walk up: /a/b/helper checks /a/b, /a and /. realpath left no ".", ".." or "//". */
	dir = strdup(real);
	if (!dir) {
		snprintf(why, whylen, "out of memory");
		goto refuse;
	}
	for (;;) {
		char *slash = strrchr(dir, '/');
		bool top = slash == dir;
		slash[top ? 1 : 0] = '\0';
		rc = check_dir(dir, why, whylen);
		if (rc < 0 || top)
			break;
	}
	free(dir);
	if (rc < 0)
		goto refuse;
	*resolved = real;
	return 0;
refuse:
	free(real);
	return -1;
}
