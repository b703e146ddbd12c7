/* Runs the shim's protocol and argument code on the shared vectors (tests/protocol/ JSON files),
 * which protocol_test.ts feeds in a simple form:
 *   vectors reply FILE                  -> "PAM_X" then "<priority> <hex message>" per record,
 *                                          or "malformed <reason>"
 *   vectors request USER AUTHTOK SERVICE RHOST [ARG...]   (all hex) -> the request bytes
 *   vectors args [ARG...]               -> "ok timeout=.. sockets=.. helper=.. try=.. use=.. debug=.."
 *                                          or "error <message>"
 *   vectors logvalue HEX MAX            -> the log field log_value makes of the bytes HEX */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "log.h"
#include "protocol.h"

static unsigned char *unhex(const char *h, size_t *len)
{
	size_t n = strlen(h) / 2;
	unsigned char *out = malloc(n + 1);
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		sscanf(h + 2 * i, "%2x", &v);
		out[i] = (unsigned char)v;
	}
	out[n] = 0;
	*len = n;
	return out;
}

int main(int argc, char **argv)
{
	if (argc >= 3 && strcmp(argv[1], "reply") == 0) {
		static unsigned char buf[1 << 20];
		FILE *f = fopen(argv[2], "rb");
		size_t len;
		struct reply r;
		const char *why;
		if (!f)
			return 2;
		len = fread(buf, 1, sizeof buf, f);
		fclose(f);
		if (reply_decode(buf, len, &r, &why) < 0) {
			printf("malformed %s\n", why);
			return 0;
		}
		printf("%s\n", r.result_name);
		for (size_t i = 0; i < r.nlogs; i++) {
			printf("%s ", r.logs[i].priority_name);
			for (size_t j = 0; j < r.logs[i].message_len; j++)
				printf("%02x", (unsigned char)r.logs[i].message[j]);
			printf("\n");
		}
		reply_free(&r);
		return 0;
	}
	if (argc >= 6 && strcmp(argv[1], "request") == 0) {
		struct request_fields f;
		const char *args[64];
		unsigned char *out;
		size_t out_len, n;
		int rc;
		f.user.p = unhex(argv[2], &f.user.len);
		f.authtok.p = unhex(argv[3], &f.authtok.len);
		f.service.p = unhex(argv[4], &f.service.len);
		f.rhost.p = unhex(argv[5], &f.rhost.len);
		f.argc = argc - 6;
		for (int i = 0; i < f.argc && i < 64; i++)
			args[i] = (const char *)unhex(argv[6 + i], &n);
		f.argv = args;
		rc = request_encode(&f, &out, &out_len);
		free((void *)f.user.p);
		free((void *)f.authtok.p);
		free((void *)f.service.p);
		free((void *)f.rhost.p);
		for (int i = 0; i < f.argc && i < 64; i++)
			free((void *)args[i]);
		if (rc < 0) {
			printf("error %d\n", rc);
			return 1;
		}
		fwrite(out, 1, out_len, stdout);
		free(out);
		return 0;
	}
	if (argc >= 2 && strcmp(argv[1], "args") == 0) {
		struct mapi_args a;
		char err[512];
		if (args_parse(argc - 2, (const char **)argv + 2, &a, err, sizeof err) < 0) {
			printf("error %s\n", err);
			return 0;
		}
		printf("ok timeout=%d sockets=%d helper=%s try=%d use=%d debug=%d deadline=%d\n",
		       a.timeout, a.sockets, a.helper, a.try_first_pass, a.use_first_pass, a.debug,
		       args_deadline(&a));
		return 0;
	}
	if (argc == 4 && strcmp(argv[1], "logvalue") == 0) {
		size_t n;
		unsigned char *v = unhex(argv[2], &n);
		char out[2048];
		log_value(out, sizeof out, (const char *)v, (size_t)atoi(argv[3]));
		printf("%s\n", out);
		free(v);
		return 0;
	}
	fprintf(stderr, "usage: vectors reply FILE | request U T S R [ARG...] | args [ARG...]\n");
	return 2;
}
