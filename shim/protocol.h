/* The shim's half of protocol v1 (docs/protocol.md): encoding the request, decoding the reply. */
#ifndef PAM_MAPI_PROTOCOL_H
#define PAM_MAPI_PROTOCOL_H

#include <stddef.h>

#define PROTO_MAX_REQUEST 65536
#define PROTO_MAX_REPLY 65536
#define PROTO_MAX_LOGS 64
#define PROTO_MAX_MESSAGE 1024

struct bytes {
	const unsigned char *p;
	size_t len;
};

struct request_fields {
	struct bytes user, authtok, service, rhost;
	int argc;                   /* at most ARGS_MAX, checked by args_parse */
	const char **argv;
};

/* Builds the request. Returns 0 and a malloc'd buffer (which holds the password: the caller wipes
 * it with explicit_bzero before free), -1 when out of memory, -2 when it would exceed
 * PROTO_MAX_REQUEST bytes. */
int request_encode(const struct request_fields *f, unsigned char **out, size_t *out_len);

struct reply_log {
	int priority;               /* LOG_ERR ... LOG_DEBUG */
	const char *priority_name;
	char *message;              /* decoded UTF-8, may contain control characters and NUL */
	size_t message_len;
};

struct reply {
	int pam_result;             /* one of the whitelisted PAM codes */
	const char *result_name;
	size_t nlogs;
	struct reply_log logs[PROTO_MAX_LOGS];
};

/* Decodes one reply. Returns 0 when it is well-formed, with a whitelisted result; otherwise -1
 * with a static reason in *why and nothing to free. On success call reply_free. */
int reply_decode(const unsigned char *buf, size_t len, struct reply *out, const char **why);
void reply_free(struct reply *r);

#endif
