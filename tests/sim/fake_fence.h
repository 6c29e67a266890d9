/*
 * Fakes of what fencing/fence.c calls outside itself, for hvsim (tests/sim):
 * power agents (fence_power_off) and the LUNs the built-in "storage" device
 * PREEMPTs on (lun_open, lun_read_pr, lun_acquire, lun_pr_count_key,
 * lun_close). The real level logic of fence_run() runs on top of them; the
 * script decides their outcomes.
 *
 * LUNs: one registration table per URL, created on first use. A VM start
 * takes its LUNs over with the node's key (fake_lun_take, like vmrun's
 * lun_acquire with takeover); a storage fence PREEMPTs the node's key with the
 * fencer's. Power: a device powers the plug off unless a failure is scripted;
 * the simulator's hook is told, so that the node really goes off.
 */
#ifndef HV_TESTS_SIM_FAKE_FENCE_H
#define HV_TESTS_SIM_FAKE_FENCE_H

#include <stdbool.h>
#include <stdint.h>

/* Called when a device powered @plug off (it may already have been off). */
typedef void (*fake_power_hook)(void *arg, const char *device, const char *plug);

void fake_fence_init(fake_power_hook hook, void *arg);
void fake_fence_free(void);

/* The next @count power-offs through device @name fail (0: none). */
void fake_fence_device_fail(const char *name, unsigned int count);
/* The next @count PREEMPTs of @key (on any LUN) fail (0: none). */
void fake_fence_storage_fail(uint64_t key, unsigned int count);

/* @key takes @url over: it is the one key registered there, and holds the reservation. */
void fake_lun_take(const char *url, uint64_t key);
/* @key leaves @url (a migration's source after its QEMU stopped): unregistered, released. */
void fake_lun_release(const char *url, uint64_t key);
/* Whether @key is registered on @url. */
bool fake_lun_has_key(const char *url, uint64_t key);

#endif
