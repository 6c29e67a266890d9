/*
 * QEMU's side of QMP: the line parser of hypervisor/qmp.c (qmp_parser_feed() and
 * qmp_parser_next(), pure: no I/O, no loop) on any byte stream, as a QEMU that is
 * compromised by its guest could send it.
 *
 * Input: byte 0 chooses the line limit (bit 0 set: QMP_LINE_MAX; else 16..143 bytes,
 * so that the limit is hit), byte 1 the size of the chunks the stream is fed in
 * (1..256: lines split across reads), the rest is the stream.
 *
 * Checks: no crash; every message returned has the fields its type promises (qmp.h);
 * after an error the harness stops, as the client does.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../hypervisor/qmp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what)
{
	fprintf(stderr, "check failed: qmp: %s\n", what);
	abort();
}

static void check_msg(const struct qmp_msg *m)
{
	if (!json_is_object(m->root))
		fail("a message without its root object");
	switch (m->type) {
	case QMP_MSG_GREETING:
		if (!json_is_object(m->value))
			fail("a greeting without its QMP object");
		break;
	case QMP_MSG_RETURN:
		if (!m->value)
			fail("a return without its value");
		break;
	case QMP_MSG_ERROR:
		if (!m->err_class || !m->err_desc)
			fail("an error without class and desc");
		break;
	case QMP_MSG_EVENT:
		if (!m->event || !m->event[0] || (m->value && !json_is_object(m->value)))
			fail("an event without a name, or with data that is not an object");
		break;
	default:
		fail("a message of no known type");
	}
}

/* Take every complete message; false after an error (the stream is then unusable). */
static bool drain(struct qmp_parser *p)
{
	struct qmp_msg m;
	char err[256];
	int rc;

	for (;;) {
		memset(err, 0x55, sizeof(err));
		rc = qmp_parser_next(p, &m, err, sizeof(err));
		if (rc == 0)
			return true;
		if (rc < 0) {
			if (!memchr(err, '\0', sizeof(err)))
				fail("error message not terminated");
			if (m.root)
				fail("a message left set after an error");
			return false;
		}
		check_msg(&m);
		qmp_msg_clear(&m);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct qmp_parser p;
	size_t max_line, chunk;

	if (size < 2)
		return 0;
	max_line = data[0] & 1 ? QMP_LINE_MAX : 16 + (size_t)(data[0] >> 1);
	chunk = (size_t)data[1] + 1;
	data += 2;
	size -= 2;
	qmp_parser_init(&p, max_line);
	for (size_t off = 0; off < size; off += chunk) {
		size_t n = size - off < chunk ? size - off : chunk;

		if (qmp_parser_feed(&p, data + off, n) < 0 || !drain(&p))
			break;
	}
	qmp_parser_fini(&p);
	return 0;
}
