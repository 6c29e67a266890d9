/* Power fencing through an external agent (fencing/agent.c). Private to fencing/. */
#ifndef HV_FENCING_POWER_H
#define HV_FENCING_POWER_H

#include <stddef.h>

#include "../cluster/fenceconf.h"

/*
 * Ask @dev's agent to power @plug off (action=off), then confirm with
 * action=status that it is off. 0 or -errno; @msg says what happened (the
 * agent's last output line on failure), secrets never in it.
 */
int fence_power_off(const struct fence_device *dev, const char *plug, unsigned int timeout_s,
		    char *msg, size_t len);

#endif
