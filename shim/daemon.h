/* Asking the resident helper (pam_mapi_helper serve, docs/protocol.md 7) instead of starting one.
 * The password goes to whoever listens on the socket, so nothing is sent before the daemon has
 * proved itself: the path and its directories are root's or the service account's and nobody
 * else can write them, and the peer's SO_PEERCRED uid is 0 or the service account's. */
#ifndef PAM_MAPI_DAEMON_H
#define PAM_MAPI_DAEMON_H

#include <stddef.h>

enum daemon_outcome {
	DAEMON_ABSENT,     /* no socket, connection refused or not permitted: start the helper */
	DAEMON_UNTRUSTED,  /* the socket or the peer failed the trust check: nothing was sent */
	DAEMON_FAILED,     /* trusted, but no complete reply (deadline, closed early, too large) */
	DAEMON_REPLIED,    /* a reply arrived and the daemon closed the connection after it */
};

struct daemon_result {
	enum daemon_outcome outcome;
	unsigned char *reply;      /* malloc'd when DAEMON_REPLIED or DAEMON_FAILED; caller frees */
	size_t reply_len;
	long peer_pid;             /* from SO_PEERCRED, once connected */
	long elapsed_ms;
	char why[512];             /* ABSENT, UNTRUSTED, FAILED: a one-line reason */
};

/* Sends request to the daemon at socket_path and reads its reply, all within deadline_s seconds.
 * Always fills *res. */
void daemon_ask(const char *socket_path, const unsigned char *request, size_t request_len,
		int deadline_s, struct daemon_result *res);

#endif
