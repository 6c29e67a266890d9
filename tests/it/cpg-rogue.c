/*
 * A rogue member of the hvcluster CPG group, for tests: joins the group of
 * cluster NAME, waits until its join is seen and the members' sync round is
 * over, then multicasts hostile messages - random bytes, a short header, an
 * unknown format version, a lying length, a body that is not JSON, a
 * well-formed op the sender may not send (mgr.* from a non-leader), an op with
 * wrong types - and, when given VM, well-formed ops that would do harm if a
 * node applied them: delete VM, bind a user to admin, stop VM in the name of
 * a forged root - then leaves. Each must be refused because its sender is
 * not the node's agent.
 *
 *   cpg-rogue CLUSTER_NAME [VM]
 */
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <corosync/cpg.h>

static cpg_handle_t cpg;
static int joined; /* our own join was delivered */

static void confchg(cpg_handle_t h, const struct cpg_name *group,
		    const struct cpg_address *members, size_t nmembers,
		    const struct cpg_address *left, size_t nleft,
		    const struct cpg_address *join, size_t njoin)
{
	for (size_t i = 0; i < njoin; i++)
		if (join[i].pid == (uint32_t)getpid())
			joined = 1;
}

/* Until our join is delivered (at most @ms). */
static int wait_joined(int ms)
{
	int fd;

	if (cpg_fd_get(cpg, &fd) != CS_OK)
		return 1;
	while (!joined && ms > 0) {
		struct pollfd p = { .fd = fd, .events = POLLIN };

		if (poll(&p, 1, 100) > 0 && cpg_dispatch(cpg, CS_DISPATCH_ALL) != CS_OK)
			return 1;
		ms -= 100;
	}
	return !joined;
}

static int send_raw(const void *buf, size_t len)
{
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	cs_error_t err;
	int tries = 0;

	do {
		err = cpg_mcast_joined(cpg, CPG_TYPE_AGREED, &iov, 1);
		if (err == CS_ERR_TRY_AGAIN)
			usleep(10000);
	} while (err == CS_ERR_TRY_AGAIN && ++tries < 500);
	if (err != CS_OK) {
		fprintf(stderr, "cpg-rogue: cpg_mcast_joined: error %d\n", err);
		return 1;
	}
	return 0;
}

/* A message with our header: magic "HVC1", @format, @type, @len claimed, then @body. */
static int send_msg(uint16_t format, uint16_t type, const char *body, int32_t claimed)
{
	size_t n = strlen(body);
	uint8_t *buf = malloc(16 + n);
	uint32_t len = claimed >= 0 ? (uint32_t)claimed : (uint32_t)n;
	int rc;

	if (!buf)
		return 1;
	memcpy(buf, "HVC1", 4);
	buf[4] = (uint8_t)format;
	buf[5] = (uint8_t)(format >> 8);
	buf[6] = (uint8_t)type;
	buf[7] = (uint8_t)(type >> 8);
	for (int i = 0; i < 4; i++)
		buf[8 + i] = (uint8_t)(len >> (8 * i));
	memset(buf + 12, 0, 4);
	memcpy(buf + 16, body, n);
	rc = send_raw(buf, 16 + n);
	free(buf);
	return rc;
}

/* Well-formed ops that would do harm if applied, about VM @vm. */
static int send_forged(const char *vm)
{
	char body[512];
	int rc = 0;

	snprintf(body, sizeof(body), "{\"op\":\"vm.delete\",\"name\":\"%s\"}", vm);
	rc |= send_msg(1, 1, body, -1);
	rc |= send_msg(1, 1, "{\"op\":\"acl.add\",\"binding\":{\"name\":\"rogue\",\"user\":"
			     "\"nobody\",\"role\":\"admin\"}}", -1);
	snprintf(body, sizeof(body),
		 "{\"op\":\"vm.want\",\"name\":\"%s\",\"running\":false,\"req\":1,\"cmd\":"
		 "\"vm.stop\",\"who\":{\"uid\":0,\"user\":\"root\",\"role\":\"admin\","
		 "\"node\":\"n1\"}}",
		 vm);
	rc |= send_msg(1, 1, body, -1);
	return rc;
}

int main(int argc, char **argv)
{
	cpg_callbacks_t cb = { .cpg_confchg_fn = confchg };
	struct cpg_name name;
	uint8_t junk[300];
	int rc = 0;

	if (argc != 2 && argc != 3) {
		fprintf(stderr, "usage: cpg-rogue CLUSTER_NAME [VM]\n");
		return 2;
	}
	name.length = (uint32_t)snprintf(name.value, sizeof(name.value), "hvcluster:%s", argv[1]);
	if (cpg_initialize(&cpg, &cb) != CS_OK || cpg_join(cpg, &name) != CS_OK) {
		fprintf(stderr, "cpg-rogue: cannot join %s\n", name.value);
		return 1;
	}
	/* the members sync when we join: what we send after that meets the origin check */
	if (wait_joined(10000)) {
		fprintf(stderr, "cpg-rogue: our join to %s was not seen\n", name.value);
		return 1;
	}
	sleep(2);
	srand((unsigned int)getpid());
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (uint8_t)rand();
	rc |= send_raw(junk, sizeof(junk));
	rc |= send_raw(junk, 5);
	rc |= send_msg(7, 1, "{\"op\":\"vm.delete\",\"name\":\"x\"}", -1);	  /* unknown format */
	rc |= send_msg(1, 9, "{}", -1);					  /* unknown type */
	rc |= send_msg(1, 1, "{\"op\":\"vm.delete\"}", 4000);			  /* lying length */
	rc |= send_msg(1, 1, "not json at all", -1);
	rc |= send_msg(1, 1, "[1,2,3]", -1);
	rc |= send_msg(1, 1, "{\"op\":\"mgr.node\",\"id\":1,\"expect\":\"online\",\"status\":\"fenced\"}", -1);
	rc |= send_msg(1, 1, "{\"op\":\"vm.create\",\"def\":{\"name\":[],\"vcpus\":\"x\"}}", -1);
	rc |= send_msg(1, 1, "{\"op\":\"vm.want\",\"name\":\"../../etc\",\"running\":1}", -1);
	rc |= send_msg(1, 2, "{\"members\":\"all\",\"quorate_side\":true}", -1);   /* bad sync */
	if (argc == 3)
		rc |= send_forged(argv[2]);
	sleep(1);
	cpg_leave(cpg, &name);
	cpg_finalize(cpg);
	return rc;
}
