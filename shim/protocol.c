/* Request encoder and reply decoder. The decoder is the only path from helper output to a PAM
 * result, so it accepts exactly the documented shape and nothing else: a result name outside the
 * whitelist, an unknown or duplicate key, a wrong type, v != 1 or any trailing byte but one
 * newline makes the whole reply malformed. */
#include "protocol.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <security/pam_modules.h>

#include "base64.h"
#include "json.h"

/* ---- request ---- */

static char *put(char *o, const char *s)
{
	size_t n = strlen(s);
	memcpy(o, s, n);
	return o + n;
}

static char *put_b64(char *o, const unsigned char *p, size_t n)
{
	*o++ = '"';
	b64_encode(p, n, o);
	o += b64_encoded_len(n);
	*o++ = '"';
	return o;
}

int request_encode(const struct request_fields *f, unsigned char **out, size_t *out_len)
{
	static const char k_head[] = "{\"v\":1,\"user\":";
	static const char k_tok[] = ",\"authtok\":";
	static const char k_svc[] = ",\"service\":";
	static const char k_rhost[] = ",\"rhost\":";
	static const char k_args[] = ",\"args\":[";
	size_t need, total;
	char *buf, *o;

	/* Each part and the running sum are checked against the protocol limit before anything is
	 * allocated, so the size arithmetic cannot overflow. */
	if (f->user.len > PROTO_MAX_REQUEST || f->authtok.len > PROTO_MAX_REQUEST ||
	    f->service.len > PROTO_MAX_REQUEST || f->rhost.len > PROTO_MAX_REQUEST)
		return -2;
	need = sizeof k_head - 1 + sizeof k_tok - 1 + sizeof k_svc - 1 + sizeof k_rhost - 1 +
	       sizeof k_args - 1 + 2 /* ]} */;
	need += b64_encoded_len(f->user.len) + 2 + b64_encoded_len(f->authtok.len) + 2 +
		b64_encoded_len(f->service.len) + 2 + b64_encoded_len(f->rhost.len) + 2;
	for (int i = 0; i < f->argc; i++) {
		size_t n = strlen(f->argv[i]);
		if (n > PROTO_MAX_REQUEST)
			return -2;
		need += b64_encoded_len(n) + 2 + (i > 0);
		if (need > PROTO_MAX_REQUEST)
			return -2;
	}
	if (need > PROTO_MAX_REQUEST)
		return -2;

	buf = malloc(need);
	if (!buf)
		return -1;
	o = put(buf, k_head);
	o = put_b64(o, f->user.p, f->user.len);
	o = put(o, k_tok);
	o = put_b64(o, f->authtok.p, f->authtok.len);
	o = put(o, k_svc);
	o = put_b64(o, f->service.p, f->service.len);
	o = put(o, k_rhost);
	o = put_b64(o, f->rhost.p, f->rhost.len);
	o = put(o, k_args);
	for (int i = 0; i < f->argc; i++) {
		if (i > 0)
			*o++ = ',';
		o = put_b64(o, (const unsigned char *)f->argv[i], strlen(f->argv[i]));
	}
	*o++ = ']';
	*o++ = '}';
	total = (size_t)(o - buf);
	if (total != need) {            /* cannot happen; never send a request of the wrong size */
		explicit_bzero(buf, need);
		free(buf);
		return -1;
	}
	*out = (unsigned char *)buf;
	*out_len = total;
	return 0;
}

/* ---- reply ---- */

static const struct {
	const char *name;
	int code;
} results[] = {
	{ "PAM_SUCCESS", PAM_SUCCESS },
	{ "PAM_AUTH_ERR", PAM_AUTH_ERR },
	{ "PAM_AUTHINFO_UNAVAIL", PAM_AUTHINFO_UNAVAIL },
	{ "PAM_IGNORE", PAM_IGNORE },
	{ "PAM_SERVICE_ERR", PAM_SERVICE_ERR },
};

static const struct {
	const char *name;
	int priority;
} priorities[] = {
	{ "err", LOG_ERR },
	{ "warning", LOG_WARNING },
	{ "notice", LOG_NOTICE },
	{ "info", LOG_INFO },
	{ "debug", LOG_DEBUG },
};

/* Names are compared as written: a literal without escapes whose bytes equal the name. */
static bool literal_is(const struct json_value *v, const char *name)
{
	return v->type == JSON_STRING && !v->escaped && v->str_len == strlen(name) &&
	       memcmp(v->str, name, v->str_len) == 0;
}

/* True when obj has exactly the listed keys (the reader already refused duplicates). */
static bool has_exactly(const struct json_value *obj, const char *const *keys, size_t n)
{
	if (obj->type != JSON_OBJECT || obj->count != n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!json_get(obj, keys[i]))
			return false;
	return true;
}

void reply_free(struct reply *r)
{
	for (size_t i = 0; i < r->nlogs; i++)
		free(r->logs[i].message);
	r->nlogs = 0;
}

static int check_reply(const struct json_value *root, struct reply *out, const char **why)
{
	static const char *const top_keys[] = { "v", "result", "log" };
	static const char *const log_keys[] = { "priority", "message" };
	const struct json_value *v, *res, *log;
	size_t i;

	if (root->type != JSON_OBJECT) {
		*why = "not a JSON object";
		return -1;
	}
	if (!has_exactly(root, top_keys, 3)) {
		*why = "missing or unknown key";
		return -1;
	}
	v = json_get(root, "v");
	if (v->type != JSON_NUMBER || v->num_len != 1 || v->num[0] != '1') {
		*why = "protocol version is not 1";
		return -1;
	}
	res = json_get(root, "result");
	for (i = 0; i < sizeof results / sizeof *results; i++)
		if (literal_is(res, results[i].name))
			break;
	if (i == sizeof results / sizeof *results) {
		*why = "unknown result";
		return -1;
	}
	out->pam_result = results[i].code;
	out->result_name = results[i].name;

	log = json_get(root, "log");
	if (log->type != JSON_ARRAY || log->count > PROTO_MAX_LOGS) {
		*why = log->type != JSON_ARRAY ? "log is not an array" : "too many log records";
		return -1;
	}
	for (const struct json_value *e = log->first; e; e = e->next) {
		const struct json_value *pr, *msg;
		if (!has_exactly(e, log_keys, 2)) {
			*why = "bad log record";
			return -1;
		}
		pr = json_get(e, "priority");
		msg = json_get(e, "message");
		for (i = 0; i < sizeof priorities / sizeof *priorities; i++)
			if (literal_is(pr, priorities[i].name))
				break;
		if (i == sizeof priorities / sizeof *priorities) {
			*why = "unknown log priority";
			return -1;
		}
		if (msg->type != JSON_STRING || msg->str_len > PROTO_MAX_MESSAGE) {
			*why = msg->type != JSON_STRING ? "log message is not a string"
							: "log message too long";
			return -1;
		}
	}
	/* Only now copy the records out, so a failure above leaves nothing to free. */
	for (const struct json_value *e = log->first; e; e = e->next) {
		const struct json_value *pr = json_get(e, "priority");
		const struct json_value *msg = json_get(e, "message");
		struct reply_log *rl = &out->logs[out->nlogs];
		for (i = 0; !literal_is(pr, priorities[i].name); i++)
			;
		rl->priority = priorities[i].priority;
		rl->priority_name = priorities[i].name;
		rl->message = malloc(msg->str_len + 1);
		if (!rl->message) {
			reply_free(out);
			*why = "out of memory";
			return -1;
		}
		memcpy(rl->message, msg->str, msg->str_len + 1);
		rl->message_len = msg->str_len;
		out->nlogs++;
	}
	return 0;
}

int reply_decode(const unsigned char *buf, size_t len, struct reply *out, const char **why)
{
	struct json_value *root;
	size_t used;
	int rc;

	memset(out, 0, sizeof *out);
	if (len == 0) {
		*why = "empty reply";
		return -1;
	}
	if (len > PROTO_MAX_REPLY) {
		*why = "reply larger than 65536 bytes";
		return -1;
	}
	if (json_parse(buf, len, &root, &used, why) < 0)
		return -1;
	/* protocol.md 2: one object, then at most a single newline. */
	if (!(used == len || (used + 1 == len && buf[used] == '\n'))) {
		json_free(root);
		*why = "data after the reply object";
		return -1;
	}
	rc = check_reply(root, out, why);
	json_free(root);
	return rc;
}
