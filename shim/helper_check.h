/* Deciding whether the helper file may be run at all (SPEC 3, protocol.md 5). */
#ifndef PAM_MAPI_HELPER_CHECK_H
#define PAM_MAPI_HELPER_CHECK_H

#include <stddef.h>

/* Resolves path (absolute) to its real path and checks the file and every directory above it.
 * Returns 0 and a malloc'd real path in *resolved (the path to execute), or -1 with a one-line
 * reason in why. */
int helper_check(const char *path, char **resolved, char *why, size_t whylen);

#endif
