/* May this file be run (or this directory be trusted)? Shared by the module (the helper file,
 * pam_mapi(8) helper=) and the helper's launcher (the Deno runtime, the bundle, the code cache
 * directory). */
#ifndef PAM_MAPI_PATH_CHECK_H
#define PAM_MAPI_PATH_CHECK_H

#include <stddef.h>
#include <sys/types.h>

#define PATH_CHECK_MAX_LINKS 40   /* as the kernel's MAXSYMLINKS */

/* Who may own what is trusted: root, and optionally one more uid (the launcher's euid, the
 * resident helper's service account). */
struct path_owners {
	uid_t extra;
	int has_extra;
	const char *label;        /* for messages, e.g. "root or pam_mapi"; NULL: "root or uid N" */
};

#define PATH_CHECK_EXEC 1         /* the file must be executable */

/* Resolves the absolute path by hand and checks the file it names: a regular file owned by a
 * trusted owner that neither group nor others can write (and executable with PATH_CHECK_EXEC).
 * Returns 0 and a malloc'd resolved path in *resolved (the path to open or execute), or -1 with a
 * one-line reason in why. */
int path_check_file(const char *path, const struct path_owners *own, int flags, char **resolved,
		    char *why, size_t whylen);

/* The same for a directory: owned by a trusted owner, not writable by group or others (no sticky
 * exception: it is the directory whose entries are used). */
int path_check_dir(const char *path, const struct path_owners *own, char **resolved, char *why,
		   size_t whylen);

/* The same for a UNIX socket to connect to: a socket owned by a trusted owner (its mode is the
 * daemon's business: it decides who may connect), below directories none of which group or others
 * may write, sticky or not (while no daemon listens, anyone could take a free name in a sticky
 * one). Returns 0 with *resolved, -2 when a name on the path does not exist (nothing listens there;
 * the directories before it passed), -1 otherwise. */
int path_check_socket(const char *path, const struct path_owners *own, char **resolved, char *why,
		      size_t whylen);

/* The label, "root" or "root or uid N", for messages. */
const char *path_owners_text(const struct path_owners *own, char *buf, size_t len);

/* Whether uid is a trusted owner. */
int path_owner_ok(const struct path_owners *own, uid_t uid);

#endif
