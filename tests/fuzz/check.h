/*
 * The checks of the harnesses that compare cluster states (fuzz_state, fuzz_statefile,
 * fuzz_repl, fuzz_replsync): a failed one says which harness and what, then aborts, which
 * libFuzzer reports as a crash with its reproducer. Define FUZZ_NAME before including.
 */
#ifndef HV_FUZZ_CHECK_H
#define HV_FUZZ_CHECK_H

#include <stdio.h>
#include <stdlib.h>

#include <jansson.h>

#ifndef FUZZ_NAME
#error "define FUZZ_NAME (the harness, for the messages) before including check.h"
#endif

static inline void fail(const char *what, const char *detail)
{
	fprintf(stderr, "check failed: " FUZZ_NAME ": %s: %s\n", what, detail);
	abort();
}

/* @a and @b equal as JSON, else both printed (sorted keys) and abort. */
static inline void expect_equal(const json_t *a, const json_t *b, const char *what)
{
	char *ta, *tb;

	if (a && b && json_equal(a, b))
		return;
	ta = a ? json_dumps(a, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	tb = b ? json_dumps(b, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	fprintf(stderr, "check failed: " FUZZ_NAME ": %s\n before: %s\n after:  %s\n", what,
		ta ? ta : "(null)", tb ? tb : "(null)");
	abort();
}

#endif
