/*
 * Sends one malformed request to hvnoded over its libqb IPC service, the
 * way a buggy or hostile client would, and reports what came back.
 *
 * Usage: ipc-garbage IPC_NAME MODE
 * Modes: short, badid, notjson, notobject, nocmd, badargs, oversize, unknown
 * Exit: 0 if the daemon answered with an error or dropped the connection,
 *       1 if it answered as if the request were fine, 3 if unreachable.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <qb/qbipcc.h>

#include "../../node/proto.h"

int main(int argc, char **argv)
{
	struct qb_ipc_request_header hdr = { .id = HV_IPC_REQUEST };
	const char *body = "{}";
	struct iovec iov[2];
	qb_ipcc_connection_t *c;
	char *buf;
	ssize_t n;
	int niov = 2;

	if (argc != 3) {
		fprintf(stderr, "usage: ipc-garbage IPC_NAME MODE\n");
		return 2;
	}
	c = qb_ipcc_connect(argv[1], HV_IPC_MAX_MSG);
	if (!c) {
		fprintf(stderr, "ipc-garbage: connect %s: %s\n", argv[1], strerror(errno));
		return 3;
	}
	if (!strcmp(argv[2], "short")) {
		/* libqb needs at least a header; send a header claiming 2 bytes */
		hdr.size = 2;
		niov = 1;
	} else if (!strcmp(argv[2], "badid")) {
		hdr.id = 4242;
	} else if (!strcmp(argv[2], "notjson")) {
		body = "\x01\xff{{{ garbage";
	} else if (!strcmp(argv[2], "notobject")) {
		body = "[1,2,3]";
	} else if (!strcmp(argv[2], "nocmd")) {
		body = "{\"command\":\"status\"}";
	} else if (!strcmp(argv[2], "badargs")) {
		body = "{\"cmd\":\"status\",\"args\":7}";
	} else if (!strcmp(argv[2], "unknown")) {
		body = "{\"cmd\":\"format-all-disks\"}";
	} else if (!strcmp(argv[2], "oversize")) {
		/* the header claims more than was sent */
		hdr.size = 100000;
	} else {
		fprintf(stderr, "ipc-garbage: unknown mode %s\n", argv[2]);
		return 2;
	}
	iov[0].iov_base = &hdr;
	iov[0].iov_len = sizeof(hdr);
	iov[1].iov_base = (void *)body;
	iov[1].iov_len = strlen(body);
	if (hdr.size == 0)
		hdr.size = sizeof(hdr) + strlen(body);
	buf = malloc(HV_IPC_MAX_MSG);
	if (!buf)
		return 2;
	n = qb_ipcc_sendv_recv(c, iov, niov, buf, HV_IPC_MAX_MSG, 5000);
	if (n < 0) {
		printf("dropped: %s\n", strerror((int)-n));
		free(buf);
		qb_ipcc_disconnect(c);
		return 0;
	}
	if (n >= (ssize_t)sizeof(struct qb_ipc_response_header)) {
		struct qb_ipc_response_header *rh = (void *)buf;
		int error = rh->error;

		printf("answer error=%d body=%.*s\n", error, (int)(n - sizeof(*rh)),
		       buf + sizeof(*rh));
		free(buf);
		qb_ipcc_disconnect(c);
		return error ? 0 : 1;
	}
	printf("short answer of %zd bytes\n", n);
	free(buf);
	qb_ipcc_disconnect(c);
	return 0;
}
