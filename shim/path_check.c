/* The helper runs with the host's privileges (root, for saslauthd) and its answer decides who may
 * relay mail, so only a file that nobody but a trusted owner (root; for the launcher also the
 * user it runs as) could have put in place is used, reached by a path nobody else could change:
 *  - the path is resolved by hand, one name at a time with lstat, following symbolic links with
 *    readlink (at most 40, as the kernel does). Every directory a name is looked up in (on the
 *    path as written, inside a link's target, for "." and ".." too) must be owned by a trusted
 *    owner and not writable by group or others, because whoever can write a directory can replace
 *    any entry in it, a symbolic link included. The exception is a sticky directory owned by a
 *    trusted owner (like /tmp): others may add entries there but not rename or remove one they do
 *    not own, so a link used there must be owned by a trusted owner (a directory or the file must
 *    be anyway). Not for a daemon's socket: there the name itself matters while it is free (no
 *    daemon listens), and in a sticky directory anyone could take it;
 *  - ".." leaves the directory reached so far, as the kernel does after a link, and the resolved
 *    path is what the caller opens or executes, so a link changed after the check changes nothing;
 *  - then the rules for the file (or directory) itself. */
#include "path_check.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int path_owner_ok(const struct path_owners *own, uid_t uid)
{
	return uid == 0 || (own->has_extra && uid == own->extra);
}

const char *path_owners_text(const struct path_owners *own, char *buf, size_t len)
{
	if (own->label)
		return own->label;
	if (!own->has_extra || own->extra == 0)
		return "root";
	snprintf(buf, len, "root or uid %u", (unsigned)own->extra);
	return buf;
}

struct walk {
	const struct path_owners *own;
	char owners[32];
	char *cur;               /* the directory (at the end: the object) reached so far */
	size_t len;
	char *rest;              /* what is left to resolve */
	char *link;              /* a link's target */
	struct stat holder;      /* lstat of cur, taken by check_holder */
	bool no_sticky;          /* a directory others may write to is refused even when sticky */
	bool missing;            /* the walk failed because a name does not exist */
	char *why;
	size_t whylen;
};

static int __attribute__((format(printf, 2, 3))) fail(struct walk *w, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(w->why, w->whylen, fmt, ap);
	va_end(ap);
	return -1;
}

/* The directory reached so far, before a name is looked up in it. */
static int check_holder(struct walk *w)
{
	const char *owners = path_owners_text(w->own, w->owners, sizeof w->owners);

	if (lstat(w->cur, &w->holder) != 0)
		return fail(w, "cannot stat directory %s: %s", w->cur, strerror(errno));
	if (!S_ISDIR(w->holder.st_mode))
		return fail(w, "%s is not a directory", w->cur);
	if (!path_owner_ok(w->own, w->holder.st_uid))
		return fail(w, "directory %s is not owned by %s", w->cur, owners);
	if (!(w->holder.st_mode & (S_IWGRP | S_IWOTH)))
		return 0;
	if (!(w->holder.st_mode & S_ISVTX))
		return fail(w, "directory %s is writable by group or others", w->cur);
	if (w->no_sticky)
		return fail(w, "directory %s is sticky but writable by group or others: anyone could "
			    "take the socket's name while no daemon listens", w->cur);
	return 0;
}

/* True when only slashes follow p: the name before p is the last one. */
static bool last_name(const char *p)
{
	while (*p == '/')
		p++;
	return *p == '\0';
}

/* A symbolic link at cur, in the directory cur[0..dir_len) ("/" has length 1): its target and what was left of
 * the path after it become the rest, and the walk goes on from its directory (or from / for an
 * absolute target). */
static int follow(struct walk *w, const struct stat *st, size_t dir_len, const char *after,
		  int *links)
{
	const char *owners = path_owners_text(w->own, w->owners, sizeof w->owners);
	size_t tail = strlen(after);
	ssize_t n;

	if ((w->holder.st_mode & S_ISVTX) && (w->holder.st_mode & (S_IWGRP | S_IWOTH)) &&
	    !path_owner_ok(w->own, st->st_uid))
		return fail(w, "symbolic link %s in the sticky directory %.*s is not owned by %s",
			    w->cur, (int)dir_len, w->cur, owners);
	if (++*links > PATH_CHECK_MAX_LINKS)
		return fail(w, "too many symbolic links (more than %d; a loop?) at %s",
			    PATH_CHECK_MAX_LINKS, w->cur);
	n = readlink(w->cur, w->link, PATH_MAX);
	if (n < 0)
		return fail(w, "cannot read symbolic link %s: %s", w->cur, strerror(errno));
	if (n == 0)
		return fail(w, "symbolic link %s is empty", w->cur);
	if ((size_t)n + tail >= PATH_MAX)
		return fail(w, "path too long");
	/* after points into rest: move it behind where the target goes, then put the target. */
	memmove(w->rest + n, after, tail + 1);
	memcpy(w->rest, w->link, (size_t)n);
	w->len = w->link[0] == '/' ? 1 : dir_len;
	w->cur[w->len] = '\0';
	return 0;
}

/* Resolves path into w->cur, checking every directory on the way; *st is the lstat of the result
 * (never a link). */
static int walk(struct walk *w, const char *path, struct stat *st)
{
	int links = 0;
	char *p;

	if (path[0] != '/')
		return fail(w, "not an absolute path");
	if (strlen(path) >= PATH_MAX)
		return fail(w, "path too long");
	strcpy(w->rest, path);
	strcpy(w->cur, "/");
	w->len = 1;
	p = w->rest;
	for (;;) {
		char *end;
		size_t n, dir_len;

		while (*p == '/')
			p++;
		if (*p == '\0')
			break;
		end = strchrnul(p, '/');
		n = (size_t)(end - p);
		if (check_holder(w) < 0)
			return -1;
		if (n == 1 && p[0] == '.') {
			p = end;
			continue;
		}
		if (n == 2 && p[0] == '.' && p[1] == '.') {
			char *slash = strrchr(w->cur, '/');
			w->len = slash == w->cur ? 1 : (size_t)(slash - w->cur);
			w->cur[w->len] = '\0';
			p = end;
			continue;
		}
		dir_len = w->len;
		if (w->len + 1 + n >= PATH_MAX)
			return fail(w, "path too long");
		if (w->len > 1)
			w->cur[w->len++] = '/';
		memcpy(w->cur + w->len, p, n);
		w->len += n;
		w->cur[w->len] = '\0';
		if (lstat(w->cur, st) != 0) {
			w->missing = errno == ENOENT;
			return fail(w, "%s", strerror(errno));
		}
		if (S_ISLNK(st->st_mode)) {
			if (follow(w, st, dir_len, end, &links) < 0)
				return -1;
			p = w->rest;
			continue;
		}
		if (!last_name(end) && !S_ISDIR(st->st_mode))
			return fail(w, "%s", strerror(ENOTDIR));
		p = end;
	}
	/* The last name may have been "." or "..": look at what the walk ended on. */
	if (lstat(w->cur, st) != 0)
		return fail(w, "%s", strerror(errno));
	return 0;
}

/* Runs the walk with its buffers; returns its result, *resolved on success. */
static int resolve(const char *path, const struct path_owners *own, bool no_sticky,
		   struct walk *w, struct stat *st, char *why, size_t whylen)
{
	memset(w, 0, sizeof *w);
	w->own = own;
	w->no_sticky = no_sticky;
	w->why = why;
	w->whylen = whylen;
	w->cur = malloc(3 * (size_t)PATH_MAX);
	if (!w->cur) {
		snprintf(why, whylen, "out of memory");
		return -1;
	}
	w->rest = w->cur + PATH_MAX;
	w->link = w->rest + PATH_MAX;
	if (walk(w, path, st) < 0) {
		free(w->cur);
		w->cur = NULL;
		return -1;
	}
	return 0;
}

/* Hands the resolved path to the caller (shrunk to its length). */
static int done(struct walk *w, char **resolved)
{
	*resolved = strdup(w->cur);
	free(w->cur);
	if (!*resolved) {
		snprintf(w->why, w->whylen, "out of memory");
		return -1;
	}
	return 0;
}

static int refuse(struct walk *w, const char *fmt, const char *a, const char *b)
{
	snprintf(w->why, w->whylen, fmt, a, b);
	free(w->cur);
	return -1;
}

int path_check_file(const char *path, const struct path_owners *own, int flags, char **resolved,
		    char *why, size_t whylen)
{
	struct walk w;
	struct stat st;

	*resolved = NULL;
	if (resolve(path, own, false, &w, &st, why, whylen) < 0)
		return -1;
	if (!S_ISREG(st.st_mode))
		return refuse(&w, "not a regular file%s%s", "", "");
	if (!path_owner_ok(own, st.st_uid))
		return refuse(&w, "not owned by %s%s",
			      path_owners_text(own, w.owners, sizeof w.owners), "");
	if (st.st_mode & (S_IWGRP | S_IWOTH))
		return refuse(&w, "writable by group or others%s%s", "", "");
	if ((flags & PATH_CHECK_EXEC) && (!(st.st_mode & (S_IXUSR | S_IXGRP | S_IXOTH)) ||
					  faccessat(AT_FDCWD, w.cur, X_OK, AT_EACCESS) != 0))
		return refuse(&w, "not executable%s%s", "", "");
	return done(&w, resolved);
}

/* A directory or a socket at path: its type and owner, and for a directory its mode (its entries
 * are used, so no sticky exception); a socket's mode only says who may connect. A socket's path
 * has no sticky exception either: a name that is free while no daemon listens must not be free for
 * everyone. -2 when a name on the path does not exist. */
static int check_named(const char *path, const struct path_owners *own, mode_t type,
		       const char *noun, char **resolved, char *why, size_t whylen)
{
	struct walk w;
	struct stat st;

	*resolved = NULL;
	if (resolve(path, own, type == S_IFSOCK, &w, &st, why, whylen) < 0)
		return w.missing ? -2 : -1;
	if ((st.st_mode & S_IFMT) != type)
		return refuse(&w, "%s is not a %s", w.cur, noun);
	if (!path_owner_ok(own, st.st_uid)) {
		char msg[PATH_MAX + 128];
		snprintf(msg, sizeof msg, "%s %s is not owned by %s", noun, w.cur,
			 path_owners_text(own, w.owners, sizeof w.owners));
		return refuse(&w, "%s%s", msg, "");
	}
	if (type == S_IFDIR && (st.st_mode & (S_IWGRP | S_IWOTH)))
		return refuse(&w, "directory %s is writable by group or others%s", w.cur, "");
	return done(&w, resolved);
}

int path_check_dir(const char *path, const struct path_owners *own, char **resolved, char *why,
		   size_t whylen)
{
	return check_named(path, own, S_IFDIR, "directory", resolved, why, whylen) < 0 ? -1 : 0;
}

int path_check_socket(const char *path, const struct path_owners *own, char **resolved, char *why,
		      size_t whylen)
{
	return check_named(path, own, S_IFSOCK, "socket", resolved, why, whylen);
}
