/* Standard base64 (RFC 4648 section 4, with padding, no line breaks): the request carries every
 * byte string from PAM in this form so that the shim never has to escape JSON (protocol.md 2). */
#ifndef PAM_MAPI_BASE64_H
#define PAM_MAPI_BASE64_H

#include <stddef.h>

/* Encoded length of n input bytes; callers check n against their own limits first. */
size_t b64_encoded_len(size_t n);

/* Writes exactly b64_encoded_len(n) characters to out (no terminating NUL). */
void b64_encode(const unsigned char *in, size_t n, char *out);

#endif
