/* Could anyone but the trusted owners have changed what this path names? Whoever can write a
 * directory on a path can replace what follows it, and whoever can write the directory that holds
 * a symlink can re-point it. So the path is resolved by hand, one component at a time: every
 * directory it passes through, also those reached through a symlink's target, must be owned by a
 * trusted owner and not writable by group or others. A root-owned sticky directory (like /tmp) is
 * the one exception: others may add entries there but cannot rename or remove root's. */
#ifndef PAM_MAPI_TRUSTED_PATH_H
#define PAM_MAPI_TRUSTED_PATH_H

#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

#define TRUSTED_OWNERS_MAX 2

struct trusted_owners {
	uid_t uid[TRUSTED_OWNERS_MAX];
	size_t n;
	const char *label;          /* "root", "root or pam_mapi": for messages */
};

/* Walks the absolute path. Returns 0 with the fully resolved path in resolved (cap bytes) and the
 * lstat of its last component in *st (not a symlink: those are followed); -2 when a component
 * does not exist (after the directories before it passed); otherwise -1. why gets a one-line
 * reason naming the offending path. The last component's owner and mode are the caller's to
 * judge. */
int trusted_path(const char *path, const struct trusted_owners *owners, char *resolved,
		 size_t cap, struct stat *st, char *why, size_t whylen);

/* Whether uid is one of the trusted owners. */
int trusted_owner(const struct trusted_owners *owners, uid_t uid);

#endif
