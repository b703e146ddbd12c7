/* Running the helper once: start it safely, hand it the request, collect reply, stderr and exit
 * status within one deadline, and never leave it (or anything in its process group) behind. */
#ifndef PAM_MAPI_SPAWN_H
#define PAM_MAPI_SPAWN_H

#include <stddef.h>
#include <sys/types.h>

#define SPAWN_STDERR_KEEP 4096

enum spawn_outcome {
	SPAWN_EXITED,        /* the helper exited (or died by a signal) and was reaped: see status */
	SPAWN_START_FAILED,  /* nothing was started (socketpair/pipe/clone failed): see why */
	SPAWN_TIMEOUT,       /* deadline passed: the group got SIGTERM then SIGKILL and was reaped */
	SPAWN_OVERSIZE,      /* more than PROTO_MAX_REPLY bytes on stdout: killed and reaped */
	SPAWN_WAIT_FAILED,   /* waitpid failed or the helper would not die: see why */
};

struct spawn_result {
	enum spawn_outcome outcome;
	pid_t pid;
	int status;                          /* waitpid status when outcome == SPAWN_EXITED */
	unsigned char *reply;                /* malloc'd stdout (at most PROTO_MAX_REPLY bytes) */
	size_t reply_len;
	char err[SPAWN_STDERR_KEEP + 1];     /* first bytes of stderr, NUL-terminated */
	size_t err_len;
	long elapsed_ms;
	char why[256];
};

/* Runs path with argv [path, "--pam"] and the environment PATH=/usr/bin:/bin, writes the request
 * on its stdin, and waits at most deadline_s seconds for everything. Always fills *res; the
 * caller frees res->reply. */
void spawn_helper(const char *path, const unsigned char *request, size_t request_len,
		  int deadline_s, struct spawn_result *res);

#endif
