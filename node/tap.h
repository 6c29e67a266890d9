/* Tap devices for VM NICs. Private to node/. */
#ifndef HV_NODE_TAP_H
#define HV_NODE_TAP_H

#include <stddef.h>

/*
 * Create tap @ifname (IFF_VNET_HDR, not persistent), attach it to @bridge and
 * bring it up. Returns the tap's fd (O_CLOEXEC; the caller hands it to QEMU
 * and closes its own copy), or -errno with a message naming the tap or bridge.
 */
int tap_open(const char *ifname, const char *bridge, char *err, size_t errlen);

#endif
