/* Resolving a path by hand and checking every directory on the way (trusted_path.h). */
#include "trusted_path.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define LINKS_MAX 40    /* as the kernel's ELOOP limit */

int trusted_owner(const struct trusted_owners *owners, uid_t uid)
{
	for (size_t i = 0; i < owners->n; i++)
		if (owners->uid[i] == uid)
			return 1;
	return 0;
}

static int check_dir(const char *dir, const struct stat *st, const struct trusted_owners *owners,
		     char *why, size_t whylen)
{
	if (!trusted_owner(owners, st->st_uid)) {
		snprintf(why, whylen, "directory %s is not owned by %s", dir, owners->label);
		return -1;
	}
	if ((st->st_mode & (S_IWGRP | S_IWOTH)) && !((st->st_mode & S_ISVTX) && st->st_uid == 0)) {
		snprintf(why, whylen, "directory %s is writable by group or others", dir);
		return -1;
	}
	return 0;
}

/* Drops the last component of dir ("/a/b" -> "/a", "/a" -> "/"). */
static void parent(char *dir)
{
	char *slash = strrchr(dir, '/');
	if (slash == dir)
		dir[1] = '\0';
	else if (slash)
		*slash = '\0';
}

int trusted_path(const char *path, const struct trusted_owners *owners, char *resolved,
		 size_t cap, struct stat *st, char *why, size_t whylen)
{
	/* todo: the components still to walk; cur: the checked directory reached so far. */
	char todo[2 * PATH_MAX], cur[PATH_MAX], next[PATH_MAX], target[PATH_MAX];
	int links = 0;

	if (path[0] != '/') {
		snprintf(why, whylen, "not an absolute path");
		return -1;
	}
	if (strlen(path) >= sizeof todo) {
		snprintf(why, whylen, "path too long");
		return -1;
	}
	strcpy(todo, path);
	strcpy(cur, "/");
	if (lstat("/", st) != 0) {
		snprintf(why, whylen, "cannot stat /: %s", strerror(errno));
		return -1;
	}
	if (check_dir("/", st, owners, why, whylen) < 0)
		return -1;
	for (;;) {
		char *p = todo, *end;
		size_t len;
		bool last;

		while (*p == '/')
			p++;
		if (!*p) {
			snprintf(why, whylen, "the path names a directory");
			return -1;
		}
		end = strchr(p, '/');
		len = end ? (size_t)(end - p) : strlen(p);
		while (end && *end == '/')
			end++;
		last = !end || !*end;
		if (len == 1 && p[0] == '.') {
			memmove(todo, p + len, strlen(p + len) + 1);
			if (last) {
				snprintf(why, whylen, "the path names a directory");
				return -1;
			}
			continue;
		}
		if (len == 2 && p[0] == '.' && p[1] == '.') {
			/* The parent of a checked directory was checked on the way down. */
			parent(cur);
			memmove(todo, p + len, strlen(p + len) + 1);
			if (last) {
				snprintf(why, whylen, "the path names a directory");
				return -1;
			}
			continue;
		}
		if (snprintf(next, sizeof next, "%s%s%.*s", cur, strcmp(cur, "/") ? "/" : "", (int)len,
			     p) >= (int)sizeof next) {
			snprintf(why, whylen, "path too long");
			return -1;
		}
		if (lstat(next, st) != 0) {
			int missing = errno == ENOENT;
			snprintf(why, whylen, "%s: %s", next, strerror(errno));
			return missing ? -2 : -1;
		}
		if (S_ISLNK(st->st_mode)) {
			/* Its directory (cur) was checked, so only a trusted owner could have made it. */
			ssize_t n = readlink(next, target, sizeof target - 1);
			size_t rest;
			if (++links > LINKS_MAX) {
				snprintf(why, whylen, "too many levels of symbolic links");
				return -1;
			}
			if (n <= 0) {
				snprintf(why, whylen, "cannot read symlink %s: %s", next,
					 n < 0 ? strerror(errno) : "empty");
				return -1;
			}
			target[n] = '\0';
			rest = last ? 0 : strlen(end);
			if ((size_t)n + 1 + rest >= sizeof todo) {
				snprintf(why, whylen, "path too long");
				return -1;
			}
			/* todo = target + "/" + rest; an absolute target starts again from "/". */
			if (rest)
				memmove(todo + n + 1, end, rest + 1);
			else
				todo[n + 1] = '\0';
			memcpy(todo, target, (size_t)n);
			todo[n] = rest ? '/' : '\0';
			if (target[0] == '/')
				strcpy(cur, "/");
			continue;
		}
		if (last) {
			if (strlen(next) >= cap) {
				snprintf(why, whylen, "path too long");
				return -1;
			}
			strcpy(resolved, next);
			return 0;
		}
		if (!S_ISDIR(st->st_mode)) {
			snprintf(why, whylen, "%s: %s", next, strerror(ENOTDIR));
			return -1;
		}
		if (check_dir(next, st, owners, why, whylen) < 0)
			return -1;
		strcpy(cur, next);
		memmove(todo, end, strlen(end) + 1);
	}
}
