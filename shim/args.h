/* The module arguments (pam_mapi(8) OPTIONS). The shim knows every argument name so that a
 * misspelt one fails closed before a password is asked for; it reads only the values it needs
 * itself (protocol.md 6). The helper validates everything again, values included. */
#ifndef PAM_MAPI_ARGS_H
#define PAM_MAPI_ARGS_H

#include <stdbool.h>
#include <stddef.h>

#define ARGS_MAX 32               /* protocol.md 3: at most 32 arguments in a request */
#define TIMEOUT_DEFAULT 10
#define TIMEOUT_MAX 300

struct mapi_args {
	int timeout;              /* seconds per server attempt, 1..300 */
	int sockets;              /* number of socket= arguments (the deadline depends on it) */
	const char *helper;       /* absolute path: helper= or the compiled-in default */
	const char *daemon;       /* resident helper's socket: daemon= or the default; NULL: off */
	bool try_first_pass;
	bool use_first_pass;
	bool debug;
};

/* Returns 0, or -1 with a one-line reason in err (which may quote the offending argument). */
int args_parse(int argc, const char **argv, struct mapi_args *out, char *err, size_t errlen);

/* The whole-run deadline in seconds: timeout x max(1, sockets) + 2 (protocol.md 1). */
int args_deadline(const struct mapi_args *a);

#endif
