/*
 * The state file: statefile_parse() (node/statefile.c), what statefile_load() and
 * statefile_load_at_start() run on the bytes they read, on any bytes: a truncated,
 * corrupt, hand-edited or hostile file.
 *
 * Checks: no crash; a refused file leaves the target state unchanged (all or nothing:
 * a node never starts from a half-read file) with a terminated message; an accepted
 * one, written back as statefile_save() writes it, parses again to the same state
 * (what a node writes, it reads back after a restart).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "../../cluster/state.h"
#include "../../node/statefile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_NAME "statefile"
#include "check.h"

/* A target that is not empty, so that a partial load would show. */
static cluster_state_t *target(void)
{
	static const char text[] =
		"{\"format\":2,\"version\":7,\"vms\":[{\"name\":\"keep\","
		"\"uuid\":\"00000000-0000-4000-8000-0000000000aa\",\"vcpus\":1,\"memory\":64,"
		"\"disks\":[\"iscsi://h/iqn.2026-01.org.example:k/1\"]}],"
		"\"nodes\":[{\"id\":9,\"name\":\"keep-node\",\"vcpus\":2,\"memory\":1024,"
		"\"state\":\"online\",\"ready\":true}]}";
	cluster_state_t *s = state_create();
	char err[512];

	if (!s)
		fail("setup", "out of memory");
	if (statefile_parse(text, sizeof(text) - 1, s, err, sizeof(err)))
		fail("setup state refused", err);
	return s;
}

/* Write @s as statefile_save() does, parse it back: the same state. */
static void check_round_trip(const json_t *written)
{
	char *text = json_dumps(written, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
	cluster_state_t *t = state_create();
	json_t *again;
	char err[512];

	if (!text || !t)
		fail("round trip", "out of memory");
	if (statefile_parse(text, strlen(text), t, err, sizeof(err))) {
		fprintf(stderr, "note: statefile: written as %s\n", text);
		fail("a state file it loaded, once saved, is refused", err);
	}
	again = state_to_json(t);
	expect_equal(written, again, "the saved state changed in its round trip");
	json_decref(again);
	state_destroy(t);
	free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	cluster_state_t *s = target();
	json_t *before = state_to_json(s), *after;
	char err[512];

	memset(err, 0x55, sizeof(err));
	if (statefile_parse((const char *)data, size, s, err, sizeof(err))) {
		if (!memchr(err, '\0', sizeof(err)))
			fail("refused", "message not terminated");
		after = state_to_json(s);
		expect_equal(before, after, "refused, yet the state changed");
	} else {
		after = state_to_json(s);
		if (!after)
			fail("to_json", "out of memory");
		check_round_trip(after);
	}
	json_decref(before);
	json_decref(after);
	state_destroy(s);
	return 0;
}
