/*
 * Strict reading of JSON objects that come from outside (state files, CPG
 * messages, hvctl): unknown keys refused, types and ranges checked, a message
 * naming the field. A missing key leaves the caller's default. Private to cluster/.
 */
#ifndef HV_CLUSTER_JSONV_H
#define HV_CLUSTER_JSONV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* Write the message to @err and return -EINVAL. */
int jv_fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* @j must be an object whose keys are all in @keys (NULL-terminated). */
int jv_check_keys(const json_t *j, const char *const *keys, const char *what, char *err,
		  size_t errlen);

int jv_bool(const json_t *j, const char *key, bool *out, char *err, size_t errlen);
int jv_u32(const json_t *j, const char *key, uint32_t *out, char *err, size_t errlen);
int jv_uint(const json_t *j, const char *key, unsigned int *out, char *err, size_t errlen);
int jv_u64(const json_t *j, const char *key, uint64_t *out, char *err, size_t errlen);
/* A string that fits @len (with its NUL) and holds no control characters. */
int jv_str(const json_t *j, const char *key, char *out, size_t len, char *err, size_t errlen);

/*
 * Cut @s before an incomplete UTF-8 character at its end (what "%.Ns" leaves
 * when N falls inside one): JSON strings must be valid UTF-8.
 */
void jv_utf8_trim(char *s);

#endif
