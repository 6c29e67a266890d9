/*
 * state_from_json() (cluster/state.c) on any JSON text, parsed as node/statefile.c
 * parses the state file (JSON_REJECT_DUPLICATES). The state also arrives whole in a
 * CPG sync message.
 *
 * Checks: no crash; a refused state leaves the target state unchanged (all or nothing,
 * as state.h promises); an accepted one survives the round trip to_json -> from_json
 * -> to_json unchanged (what a node writes, it can read back after a restart).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "../../cluster/state.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_NAME "state"
#include "check.h"

/* A target that is not empty, so that a partial load would show. */
static cluster_state_t *target(void)
{
	static const char *const text =
		"{\"format\":2,\"version\":7,\"vms\":[{\"name\":\"keep\","
		"\"uuid\":\"00000000-0000-4000-8000-0000000000aa\",\"vcpus\":1,\"memory\":64,"
		"\"disks\":[\"iscsi://h/iqn.2026-01.org.example:k/1\"]}],"
		"\"nodes\":[{\"id\":9,\"name\":\"keep-node\",\"vcpus\":2,\"memory\":1024,"
		"\"state\":\"online\",\"ready\":true}]}";
	cluster_state_t *s = state_create();
	json_t *j = json_loads(text, 0, NULL);
	char err[512];

	if (!s || !j)
		fail("setup", "out of memory");
	if (state_from_json(s, j, err, sizeof(err)))
		fail("setup state refused", err);
	json_decref(j);
	return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	cluster_state_t *s, *t;
	json_t *j, *before, *after, *again;
	json_error_t jerr;
	char err[512];

	j = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
	if (!j)
		return 0;
	s = target();
	before = state_to_json(s);
	if (state_from_json(s, j, err, sizeof(err))) {
		if (!memchr(err, '\0', sizeof(err)))
			fail("refused", "message not terminated");
		after = state_to_json(s);
		expect_equal(before, after, "refused, yet the state changed");
		goto out;
	}
	after = state_to_json(s);
	t = state_create();
	if (!t || !after)
		fail("round trip", "out of memory");
	if (state_from_json(t, after, err, sizeof(err))) {
		char *text = json_dumps(after, JSON_COMPACT);

		fprintf(stderr, "note: state: written as %s\n", text ? text : "?");
		fail("a state it loaded, once written, is refused", err);
	}
	again = state_to_json(t);
	expect_equal(after, again, "round trip changed the state");
	json_decref(again);
	state_destroy(t);
out:
	json_decref(before);
	json_decref(after);
	json_decref(j);
	state_destroy(s);
	return 0;
}
