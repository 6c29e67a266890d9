#include "power.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "agent.h"

/* How long status may take to say "off" after off said yes. */
#define CONFIRM_MS 10000

int fence_power_off(const struct fence_device *dev, const char *plug, unsigned int timeout_s,
		    char *msg, size_t len)
{
	struct fence_agent_param params[FENCE_PARAMS_MAX];
	struct fence_agent_call call = {
		.agent = dev->agent,
		.action = "off",
		.plug = plug,
		.nodename = plug,
		.params = params,
		.nparams = dev->nparams,
		.timeout_ms = timeout_s * 1000,
	};
	struct fence_agent_result res;
	int rc;

	for (size_t i = 0; i < dev->nparams; i++)
		params[i] = (struct fence_agent_param){ .key = dev->params[i].key,
							.value = dev->params[i].value,
							.from_file = dev->params[i].secret };
	rc = fence_agent_power_off(&call, CONFIRM_MS, &res);
	snprintf(msg, len, "%s", res.summary);
	return rc;
}
