/* Strict recursive-descent JSON reader. Recursion depth is capped at JSON_MAX_DEPTH, so a hostile
 * reply cannot exhaust the host's stack; every allocation is freed on every error path. */
#include "json.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct parser {
	const unsigned char *p;
	const unsigned char *end;
	const char *why;
};

static int fail(struct parser *ps, const char *why)
{
	if (!ps->why)
		ps->why = why;
	return -1;
}

static void skip_ws(struct parser *ps)
{
	while (ps->p < ps->end &&
	       (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
		ps->p++;
}

static struct json_value *new_value(enum json_type t)
{
	struct json_value *v = calloc(1, sizeof *v);
	if (v)
		v->type = t;
	return v;
}

void json_free(struct json_value *v)
{
	while (v) {
		struct json_value *next = v->next;
		json_free(v->first);
		free(v->str);
		free(v->key);
		free(v);
		v = next;
	}
}

static int hex4(struct parser *ps, uint32_t *out)
{
	uint32_t v = 0;

	if (ps->end - ps->p < 4)
		return fail(ps, "truncated \\u escape");
	for (int i = 0; i < 4; i++) {
		unsigned char c = *ps->p++;
		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= c - '0';
		else if (c >= 'a' && c <= 'f')
			v |= c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			v |= c - 'A' + 10;
		else
			return fail(ps, "bad \\u escape");
	}
	*out = v;
	return 0;
}

static size_t put_utf8(uint32_t cp, char *o)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xc0 | cp >> 6);
		o[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xe0 | cp >> 12);
		o[1] = (char)(0x80 | (cp >> 6 & 0x3f));
		o[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	o[0] = (char)(0xf0 | cp >> 18);
	o[1] = (char)(0x80 | (cp >> 12 & 0x3f));
	o[2] = (char)(0x80 | (cp >> 6 & 0x3f));
	o[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/* Length of the well-formed UTF-8 sequence at p (Unicode 3.9 table 3-7: no overlongs, no
 * surrogates, nothing above U+10FFFF), or 0. */
static size_t utf8_seq(const unsigned char *p, const unsigned char *end)
{
	unsigned char c = p[0];
	size_t n;
	unsigned char lo = 0x80, hi = 0xbf;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2;
	else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		if (c == 0xe0)
			lo = 0xa0;
		else if (c == 0xed)
			hi = 0x9f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f;
	} else
		return 0;
	if ((size_t)(end - p) < n)
		return 0;
	if (p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++)
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	return n;
}

/* Parses a string literal at ps->p (which is at the opening quote). The decoded form is never
 * longer than the literal, so one allocation of the literal's length suffices. */
static int parse_string(struct parser *ps, char **out, size_t *out_len, bool *escaped)
{
	const unsigned char *start = ++ps->p;
	const unsigned char *q = start;
	char *buf, *o;

	*escaped = false;
	/* Find the closing quote first to size the buffer. */
	while (q < ps->end && *q != '"') {
		if (*q == '\\') {
			q++;
			if (q >= ps->end)
				break;
		}
		q++;
	}
	if (q >= ps->end)
		return fail(ps, "unterminated string");
	buf = malloc((size_t)(q - start) + 1);
	if (!buf)
		return fail(ps, "out of memory");
	o = buf;
	while (ps->p < q) {
		unsigned char c = *ps->p;
		if (c < 0x20) {
			free(buf);
			return fail(ps, "control character in string");
		}
		if (c == '\\') {
			uint32_t cp;
			*escaped = true;
			ps->p++;
			switch (*ps->p++) {
			case '"': *o++ = '"'; break;
			case '\\': *o++ = '\\'; break;
			case '/': *o++ = '/'; break;
			case 'b': *o++ = '\b'; break;
			case 'f': *o++ = '\f'; break;
			case 'n': *o++ = '\n'; break;
			case 'r': *o++ = '\r'; break;
			case 't': *o++ = '\t'; break;
			case 'u':
				if (hex4(ps, &cp) < 0)
					goto bad;
				if (cp >= 0xdc00 && cp <= 0xdfff) {
					fail(ps, "lone low surrogate");
					goto bad;
				}
				if (cp >= 0xd800 && cp <= 0xdbff) {
					uint32_t lo;
					if (q - ps->p < 6 || ps->p[0] != '\\' || ps->p[1] != 'u') {
						fail(ps, "lone high surrogate");
						goto bad;
					}
					ps->p += 2;
					if (hex4(ps, &lo) < 0)
						goto bad;
					if (lo < 0xdc00 || lo > 0xdfff) {
						fail(ps, "bad surrogate pair");
						goto bad;
					}
					cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
				}
				o += put_utf8(cp, o);
				break;
			default:
				fail(ps, "bad escape");
				goto bad;
			}
			/* A \u escape may not run past the closing quote found above. */
			if (ps->p > q) {
				fail(ps, "bad escape");
				goto bad;
			}
		} else {
			size_t n = utf8_seq(ps->p, q);
			if (n == 0) {
				fail(ps, "invalid UTF-8");
				goto bad;
			}
			memcpy(o, ps->p, n);
			o += n;
			ps->p += n;
		}
	}
	ps->p = q + 1;
	*o = '\0';
	*out = buf;
	*out_len = (size_t)(o - buf);
	return 0;
bad:
	free(buf);
	return -1;
}

static int parse_number(struct parser *ps, struct json_value *v)
{
	const unsigned char *s = ps->p;

	if (ps->p < ps->end && *ps->p == '-')
		ps->p++;
	if (ps->p >= ps->end)
		return fail(ps, "bad number");
	if (*ps->p == '0') {
		ps->p++;
	} else if (*ps->p >= '1' && *ps->p <= '9') {
		while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9')
			ps->p++;
	} else {
		return fail(ps, "bad number");
	}
	if (ps->p < ps->end && *ps->p == '.') {
		ps->p++;
		if (ps->p >= ps->end || *ps->p < '0' || *ps->p > '9')
			return fail(ps, "bad number");
		while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9')
			ps->p++;
	}
	if (ps->p < ps->end && (*ps->p == 'e' || *ps->p == 'E')) {
		ps->p++;
		if (ps->p < ps->end && (*ps->p == '+' || *ps->p == '-'))
			ps->p++;
		if (ps->p >= ps->end || *ps->p < '0' || *ps->p > '9')
			return fail(ps, "bad number");
		while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9')
			ps->p++;
	}
	v->num = (const char *)s;
	v->num_len = (size_t)(ps->p - s);
	return 0;
}

static int literal(struct parser *ps, const char *word)
{
	size_t n = strlen(word);
	if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0)
		return fail(ps, "invalid JSON");
	ps->p += n;
	return 0;
}

static struct json_value *parse_value(struct parser *ps, int depth);

/* Parses the elements or members after '[' or '{' into v. */
static int parse_container(struct parser *ps, struct json_value *v, int depth)
{
	bool object = v->type == JSON_OBJECT;
	char close = object ? '}' : ']';
	struct json_value **tail = &v->first;

	ps->p++;
	skip_ws(ps);
	if (ps->p < ps->end && *ps->p == close) {
		ps->p++;
		return 0;
	}
	for (;;) {
		char *key = NULL;
		size_t key_len = 0;
		struct json_value *child;

		if (object) {
			bool esc;
			skip_ws(ps);
			if (ps->p >= ps->end || *ps->p != '"')
				return fail(ps, "expected a key");
			if (parse_string(ps, &key, &key_len, &esc) < 0)
				return -1;
			for (const struct json_value *m = v->first; m; m = m->next) {
				if (m->key_len == key_len && memcmp(m->key, key, key_len) == 0) {
					free(key);
					return fail(ps, "duplicate key");
				}
			}
			if (v->count >= JSON_MAX_MEMBERS) {
				free(key);
				return fail(ps, "too many members");
			}
			skip_ws(ps);
			if (ps->p >= ps->end || *ps->p != ':') {
				free(key);
				return fail(ps, "expected ':'");
			}
			ps->p++;
		}
		child = parse_value(ps, depth + 1);
		if (!child) {
			free(key);
			return -1;
		}
		child->key = key;
		child->key_len = key_len;
		*tail = child;
		tail = &child->next;
		v->count++;
		skip_ws(ps);
		if (ps->p >= ps->end)
			return fail(ps, "truncated");
		if (*ps->p == ',') {
			ps->p++;
			continue;
		}
		if (*ps->p == close) {
			ps->p++;
			return 0;
		}
		return fail(ps, "expected ',' or a closing bracket");
	}
}

static struct json_value *parse_value(struct parser *ps, int depth)
{
	struct json_value *v;
	int rc;

	if (depth > JSON_MAX_DEPTH) {
		fail(ps, "nested too deep");
		return NULL;
	}
	skip_ws(ps);
	if (ps->p >= ps->end) {
		fail(ps, "truncated");
		return NULL;
	}
	switch (*ps->p) {
	case '{': v = new_value(JSON_OBJECT); break;
	case '[': v = new_value(JSON_ARRAY); break;
	case '"': v = new_value(JSON_STRING); break;
	case 't': v = new_value(JSON_TRUE); break;
	case 'f': v = new_value(JSON_FALSE); break;
	case 'n': v = new_value(JSON_NULL); break;
	default:
		if (*ps->p == '-' || (*ps->p >= '0' && *ps->p <= '9')) {
			v = new_value(JSON_NUMBER);
			break;
		}
		fail(ps, "invalid JSON");
		return NULL;
	}
	if (!v) {
		fail(ps, "out of memory");
		return NULL;
	}
	switch (v->type) {
	case JSON_OBJECT:
	case JSON_ARRAY: rc = parse_container(ps, v, depth); break;
	case JSON_STRING: rc = parse_string(ps, &v->str, &v->str_len, &v->escaped); break;
	case JSON_TRUE: rc = literal(ps, "true"); break;
	case JSON_FALSE: rc = literal(ps, "false"); break;
	case JSON_NULL: rc = literal(ps, "null"); break;
	default: rc = parse_number(ps, v); break;
	}
	if (rc < 0) {
		json_free(v);
		return NULL;
	}
	return v;
}

int json_parse(const unsigned char *in, size_t len, struct json_value **out, size_t *used,
	       const char **why)
{
	struct parser ps = { in, in + len, NULL };
	struct json_value *v = parse_value(&ps, 1);

	if (!v) {
		*why = ps.why ? ps.why : "invalid JSON";
		return -1;
	}
	*out = v;
	*used = (size_t)(ps.p - in);
	return 0;
}

const struct json_value *json_get(const struct json_value *obj, const char *key)
{
	size_t n = strlen(key);

	if (!obj || obj->type != JSON_OBJECT)
		return NULL;
	for (const struct json_value *m = obj->first; m; m = m->next)
		if (m->key_len == n && memcmp(m->key, key, n) == 0)
			return m;
	return NULL;
}
