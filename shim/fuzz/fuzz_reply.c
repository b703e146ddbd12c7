/* libFuzzer target for the reply decoder, the one path from helper output to a PAM result.
 * Besides the sanitizers' memory checks it asserts the decoder's promises: success only for a
 * whitelisted result with an exact-name literal in the input, at most 64 records of at most
 * 1 024 bytes, and never for an input over the size limit. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <security/pam_modules.h>

#include "protocol.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct reply r;
	const char *why = NULL;

	if (reply_decode(data, size, &r, &why) == 0) {
		if (size > PROTO_MAX_REPLY || r.nlogs > PROTO_MAX_LOGS || !r.result_name)
			abort();
		if (!memmem(data, size, r.result_name, strlen(r.result_name)))
			abort();
		if (r.pam_result == PAM_SUCCESS && strcmp(r.result_name, "PAM_SUCCESS") != 0)
			abort();
		for (size_t i = 0; i < r.nlogs; i++)
			if (r.logs[i].message_len > PROTO_MAX_MESSAGE)
				abort();
		reply_free(&r);
	} else if (!why) {
		abort();
	}
	return 0;
}
