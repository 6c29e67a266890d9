/*
 * Watchdog self-fencing (as sbd does): hvnoded opens the watchdog device
 * ([watchdog] device; softdog or hardware) and pets it only while this node
 * is healthy: quorate, or running no VM. On quorum loss the agent stops the
 * local VMs; if some still run after half the timeout, petting stops and the
 * device resets the host before the other side counts the node as fenced
 * (twice the timeout after it left, see fencing/fence.c). A clean shutdown
 * disarms it with the magic close ('V').
 */
#include "hvnoded.h"
#include "vmrun.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/watchdog.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include <qb/qblog.h>

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static bool runs_vms(struct hvnoded *d)
{
	struct vm_run_iter it = { 0 };

	return vmrun_next(d, &it);
}

static void pet(void *data)
{
	struct hvnoded *d = data;
	uint64_t now = mono_ms(), grace = (uint64_t)d->cfg.watchdog_timeout_s * 500;
	bool quorate = d->membership && membership_is_quorate(d->membership);
	bool healthy;

	if (quorate)
		d->wd_lost_ms = 0;
	else if (!d->wd_lost_ms)
		d->wd_lost_ms = now;
	healthy = quorate || !runs_vms(d) || now - d->wd_lost_ms < grace;
	if (healthy) {
		if (write(d->wd_fd, "1", 1) != 1 && !d->wd_warned) {
			qb_log(LOG_ERR, "watchdog %s: cannot pet: %s", d->cfg.watchdog_device,
			       strerror(errno));
			d->wd_warned = true;
		}
	} else if (!d->wd_starving) {
		d->wd_starving = true;
		qb_log(LOG_CRIT, "watchdog %s: no quorum for %llu ms and VMs still run here: "
				 "no more petting, the host resets within %u s",
		       d->cfg.watchdog_device, (unsigned long long)(now - d->wd_lost_ms),
		       d->cfg.watchdog_timeout_s);
	}
	qb_loop_timer_add(d->loop, QB_LOOP_HIGH,
			  (uint64_t)d->cfg.watchdog_timeout_s * 1000 / 4 * QB_TIME_NS_IN_MSEC, d, pet,
			  &d->wd_timer);
}

int watchdog_start(struct hvnoded *d)
{
	int timeout = (int)d->cfg.watchdog_timeout_s;

	d->wd_fd = -1;
	if (!d->cfg.watchdog_device || !d->cfg.watchdog_device[0])
		return 0;
	d->wd_fd = open(d->cfg.watchdog_device, O_WRONLY | O_CLOEXEC);
	if (d->wd_fd < 0) {
		int rc = -errno;

		qb_log(LOG_ERR, "watchdog %s: cannot open: %s", d->cfg.watchdog_device,
		       strerror(errno));
		return rc;
	}
	/* a test device (a FIFO) knows no ioctl: its timeout is the emulator's */
	if (ioctl(d->wd_fd, WDIOC_SETTIMEOUT, &timeout) < 0 && errno != ENOTTY)
		qb_log(LOG_WARNING, "watchdog %s: cannot set the timeout to %d s: %s",
		       d->cfg.watchdog_device, timeout, strerror(errno));
	qb_log(LOG_NOTICE, "watchdog %s armed, timeout %u s", d->cfg.watchdog_device,
	       d->cfg.watchdog_timeout_s);
	pet(d);
	return 0;
}

void watchdog_stop(struct hvnoded *d)
{
	if (d->wd_fd < 0)
		return;
	qb_loop_timer_del(d->loop, d->wd_timer);
	/* the magic close: a clean stop must not reset the host */
	if (write(d->wd_fd, "V", 1) != 1)
		qb_log(LOG_WARNING, "watchdog %s: magic close failed: %s", d->cfg.watchdog_device,
		       strerror(errno));
	close(d->wd_fd);
	d->wd_fd = -1;
	qb_log(LOG_NOTICE, "watchdog %s disarmed", d->cfg.watchdog_device);
}

unsigned int watchdog_timeout(struct hvnoded *d)
{
	return d->wd_fd >= 0 ? d->cfg.watchdog_timeout_s : 0;
}
