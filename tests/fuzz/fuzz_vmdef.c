/*
 * vm_def_from_json() (cluster/vm.c) on any JSON text: a VM definition comes from hvctl
 * (vm.create), a state file and CPG messages.
 *
 * Checks: no crash; a definition it accepts survives the round trip that the cluster
 * state makes of it (identity assigned, to JSON, back) unchanged, and its JSON is
 * accepted again: a VM that exists is a valid one.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "../../cluster/vm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what, const char *err)
{
	fprintf(stderr, "check failed: vm_def: %s: %s\n", what, err);
	abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t rnd[16] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 };
	static struct vm_def a, b;
	char err[512];
	json_error_t jerr;
	json_t *j, *out;

	j = json_loadb((const char *)data, size, JSON_DECODE_ANY, &jerr);
	if (!j)
		return 0;
	memset(&a, 0, sizeof(a));
	if (vm_def_from_json(j, &a, err, sizeof(err))) {
		if (!memchr(err, '\0', sizeof(err)))
			fail("refused", "message not terminated");
		json_decref(j);
		return 0;
	}
	json_decref(j);
	vm_def_assign_identity(&a, rnd);
	out = vm_def_to_json(&a);
	if (!out)
		fail("vm_def_to_json", "NULL");
	memset(&b, 0, sizeof(b));
	if (vm_def_from_json(out, &b, err, sizeof(err)))
		fail("its own JSON is refused", err);
	if (memcmp(&a, &b, sizeof(a)))
		fail("round trip", "the definition changed");
	json_decref(out);
	return 0;
}
