#include "jsonv.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int jv_fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

int jv_check_keys(const json_t *j, const char *const *keys, const char *what, char *err,
		  size_t errlen)
{
	const char *key;
	json_t *v;

	if (!json_is_object(j))
		return jv_fail(err, errlen, "%s: not a JSON object", what);
	json_object_foreach((json_t *)j, key, v) {
		size_t i;

		for (i = 0; keys[i] && strcmp(keys[i], key); i++)
			;
		if (!keys[i])
			return jv_fail(err, errlen, "%s: unknown key '%.64s'", what, key);
	}
	return 0;
}

int jv_bool(const json_t *j, const char *key, bool *out, char *err, size_t errlen)
{
	json_t *v = json_object_get(j, key);

	if (!v)
		return 0;
	if (!json_is_boolean(v))
		return jv_fail(err, errlen, "%s must be true or false", key);
	*out = json_is_true(v);
	return 0;
}

static int integer(const json_t *j, const char *key, uint64_t max, uint64_t *out, char *err,
		   size_t errlen)
{
	json_t *v = json_object_get(j, key);

	if (!v)
		return 1;
	if (!json_is_integer(v) || json_integer_value(v) < 0 ||
	    (uint64_t)json_integer_value(v) > max)
		return jv_fail(err, errlen, "%s must be an integer in 0..%llu", key,
			       (unsigned long long)max);
	*out = (uint64_t)json_integer_value(v);
	return 0;
}

int jv_u32(const json_t *j, const char *key, uint32_t *out, char *err, size_t errlen)
{
	uint64_t v;
	int rc = integer(j, key, UINT32_MAX, &v, err, errlen);

	if (rc == 0)
		*out = (uint32_t)v;
	return rc < 0 ? rc : 0;
}

int jv_uint(const json_t *j, const char *key, unsigned int *out, char *err, size_t errlen)
{
	uint32_t v = *out;
	int rc = jv_u32(j, key, &v, err, errlen);

	*out = v;
	return rc;
}

int jv_u64(const json_t *j, const char *key, uint64_t *out, char *err, size_t errlen)
{
	uint64_t v;
	int rc = integer(j, key, INT64_MAX, &v, err, errlen);

	if (rc == 0)
		*out = v;
	return rc < 0 ? rc : 0;
}

int jv_str(const json_t *j, const char *key, char *out, size_t len, char *err, size_t errlen)
{
	json_t *v = json_object_get(j, key);
	const char *s;
	size_t n;

	if (!v)
		return 0;
	s = json_string_value(v);
	if (!s)
		return jv_fail(err, errlen, "%s must be a string", key);
	n = strlen(s);
	if (n >= len || n != json_string_length(v))
		return jv_fail(err, errlen, "%s is longer than %zu bytes", key, len - 1);
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20)
			return jv_fail(err, errlen, "%s holds a control character", key);
	memcpy(out, s, n + 1);
	return 0;
}

void jv_utf8_trim(char *s)
{
	size_t n = strlen(s), start = n, need;
	unsigned char c;

	/* back to the lead byte of the last character (at most 3 continuation bytes) */
	while (start > 0 && n - start < 4 && ((unsigned char)s[start - 1] & 0xc0) == 0x80)
		start--;
	if (start == 0)
		return;
	c = (unsigned char)s[start - 1];
	if (c < 0x80) {
		s[start] = '\0'; /* continuation bytes without a lead: not UTF-8 */
		return;
	}
	need = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
	if (n - (start - 1) < need)
		s[start - 1] = '\0';
}
