/*
 * lun_url_parse() (storage/lun_url.c) on any bytes, made a C string: a VM definition's
 * disk URL comes from hvctl, a state file or a CPG message.
 *
 * Checks: no crash, no read past the string; the message is a C string within its
 * buffer; a URL it accepts parses again to the same result (a parse is a function of
 * the text, with no hidden state).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../storage/storage.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct lun_url a, b;
	char err[256], err2[256];
	char *s = malloc(size + 1);
	int rc;

	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	memset(err, 0x55, sizeof(err));
	rc = lun_url_parse(s, &a, err, sizeof(err));
	if (rc && !memchr(err, '\0', sizeof(err))) {
		fprintf(stderr, "check failed: lun_url_parse: error message not terminated\n");
		abort();
	}
	if (!rc) {
		memset(&b, 0, sizeof(b));
		if (lun_url_parse(s, &b, err2, sizeof(err2)) != 0) {
			fprintf(stderr, "check failed: lun_url_parse: accepted once, refused the second time\n");
			abort();
		}
		if (memcmp(&a, &b, sizeof(a))) {
			fprintf(stderr, "check failed: lun_url_parse: two parses of one URL differ\n");
			abort();
		}
	}
	/* a tiny buffer must stay bounded too */
	lun_url_parse(s, &b, err2, 1);
	lun_url_parse(s, &b, NULL, 0);
	free(s);
	return 0;
}
