/*
 * fence_agent_meta_parse() (fencing/agent_meta.c) on any bytes: the XML an agent prints
 * for action=metadata, read with its length and no NUL, as fence_agent_metadata() does.
 *
 * Checks: no crash, no read outside the @len bytes (the input is copied into a buffer
 * of exactly that size); on success every name is a C string within its field, counts
 * within their arrays, and the lookups that use the result work; on error the message
 * is a C string.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../fencing/agent.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what)
{
	fprintf(stderr, "check failed: fence metadata: %s\n", what);
	abort();
}

static void check_name(const char *s, size_t len)
{
	if (!memchr(s, '\0', len))
		fail("a name is not terminated within its field");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct fence_agent_meta meta;
	static const char *const keys[] = { "ip", "username", "password", "plug" };
	char err[512], err2[512];
	char *xml = malloc(size ? size : 1);

	if (!xml)
		return 0;
	memcpy(xml, data, size);
	if (fence_agent_meta_parse(xml, size, &meta, err, sizeof(err))) {
		check_name(err, sizeof(err));
		free(xml);
		return 0;
	}
	check_name(meta.name, sizeof(meta.name));
	if (meta.nparams > FENCE_AGENT_PARAMS_MAX || meta.nactions > FENCE_AGENT_ACTIONS_MAX)
		fail("counts out of range");
	for (size_t i = 0; i < meta.nparams; i++) {
		check_name(meta.params[i].name, sizeof(meta.params[i].name));
		check_name(meta.params[i].obsoletes, sizeof(meta.params[i].obsoletes));
	}
	for (size_t i = 0; i < meta.nactions; i++)
		check_name(meta.actions[i], sizeof(meta.actions[i]));
	fence_agent_meta_has_action(&meta, "off");
	fence_agent_meta_has_param(&meta, "ip");
	fence_agent_meta_plug_arg(&meta);
	if (fence_agent_check_params(&meta, keys, sizeof(keys) / sizeof(keys[0]), err2,
				     sizeof(err2)))
		check_name(err2, sizeof(err2));
	free(xml);
	return 0;
}
