/*
 * Tap devices for VM NICs: made by hvnoded (root), attached to the bridge the
 * VM definition names, and handed to QEMU as an open fd, so QEMU itself
 * needs no network privilege. The tap is not persistent: it goes away with
 * the last fd, that is when QEMU exits.
 */
#include "tap.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

static int set_up(int sock, const char *ifname)
{
	struct ifreq ifr = { 0 };

	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	if (ioctl(sock, SIOCGIFFLAGS, &ifr) < 0)
		return -errno;
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(sock, SIOCSIFFLAGS, &ifr) < 0)
		return -errno;
	return 0;
}

static int add_to_bridge(int sock, const char *bridge, const char *ifname, char *err,
			 size_t errlen)
{
	struct ifreq ifr = { 0 };
	unsigned int idx = if_nametoindex(ifname);

	if (!idx) {
		snprintf(err, errlen, "tap %s vanished: %s", ifname, strerror(errno));
		return -errno;
	}
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", bridge);
	ifr.ifr_ifindex = (int)idx;
	if (ioctl(sock, SIOCBRADDIF, &ifr) < 0) {
		int rc = -errno;

		if (rc == -ENODEV || rc == -EINVAL || rc == -EOPNOTSUPP)
			snprintf(err, errlen, "bridge %s: no such bridge on this node", bridge);
		else
			snprintf(err, errlen, "cannot add %s to bridge %s: %s", ifname, bridge,
				 strerror(-rc));
		return rc;
	}
	return 0;
}

int tap_open(const char *ifname, const char *bridge, char *err, size_t errlen)
{
	struct ifreq ifr = { 0 };
	int fd, sock, rc;

	if (!if_nametoindex(bridge)) {
		snprintf(err, errlen, "bridge %s: no such interface on this node", bridge);
		return -ENODEV;
	}
	fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		snprintf(err, errlen, "/dev/net/tun: %s", strerror(errno));
		return rc;
	}
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		rc = -errno;
		snprintf(err, errlen, "cannot create tap %s: %s", ifname, strerror(errno));
		goto err_fd;
	}
	sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (sock < 0) {
		rc = -errno;
		snprintf(err, errlen, "socket: %s", strerror(errno));
		goto err_fd;
	}
	rc = add_to_bridge(sock, bridge, ifname, err, errlen);
	if (rc)
		goto err_sock;
	rc = set_up(sock, ifname);
	if (rc) {
		snprintf(err, errlen, "cannot bring tap %s up: %s", ifname, strerror(-rc));
		goto err_sock;
	}
	close(sock);
	return fd;

err_sock:
	close(sock);
err_fd:
	close(fd);
	return rc;
}
