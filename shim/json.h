/* A small strict JSON reader (RFC 8259) for the helper's reply: bounded nesting, strict UTF-8,
 * escapes with surrogate pairs, duplicate object keys rejected. It builds a small tree that the
 * protocol layer checks against the reply's exact shape. */
#ifndef PAM_MAPI_JSON_H
#define PAM_MAPI_JSON_H

#include <stdbool.h>
#include <stddef.h>

#define JSON_MAX_DEPTH 16         /* the reply needs 3 levels */
#define JSON_MAX_MEMBERS 256      /* per object; keeps the duplicate-key check cheap */

enum json_type { JSON_NULL, JSON_FALSE, JSON_TRUE, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT };

struct json_value {
	enum json_type type;
	/* JSON_NUMBER: the literal as written (points into the input). */
	const char *num;
	size_t num_len;
	/* JSON_STRING: decoded bytes (NUL-terminated for convenience, may contain NUL), and
	 * whether the literal used any escape (names in the reply must be written literally). */
	char *str;
	size_t str_len;
	bool escaped;
	/* JSON_ARRAY / JSON_OBJECT: children in order; count of them. */
	struct json_value *first;
	size_t count;
	/* Sibling link, and for object members the member's key (decoded). */
	struct json_value *next;
	char *key;
	size_t key_len;
};

/* Parses one JSON value that starts at in (leading whitespace allowed). On success returns 0,
 * stores the tree in *out and the number of bytes consumed (up to the end of the value, trailing
 * whitespace NOT consumed) in *used. On error returns -1 and a static reason in *why. */
int json_parse(const unsigned char *in, size_t len, struct json_value **out, size_t *used,
	       const char **why);

void json_free(struct json_value *v);

/* Member of an object by key, or NULL. */
const struct json_value *json_get(const struct json_value *obj, const char *key);

#endif
