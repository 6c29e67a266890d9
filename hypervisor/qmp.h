/*
 * QMP, private to hypervisor/: a line parser (bytes in, validated messages
 * out; no I/O, unit-tested on its own) and a client on a qb_loop that owns
 * one connection at a time and keeps its queue of commands across
 * reconnections.
 */
#ifndef HV_HYPERVISOR_QMP_H
#define HV_HYPERVISOR_QMP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <qb/qbloop.h>

#define QMP_LINE_MAX (1024 * 1024) /* a longer line from QEMU breaks the connection */

/* --- parser ------------------------------------------------------------------ */

enum qmp_msg_type {
	QMP_MSG_GREETING, /* {"QMP": {...}} */
	QMP_MSG_RETURN,	  /* {"return": ..., "id": ...} */
	QMP_MSG_ERROR,	  /* {"error": {"class": ..., "desc": ...}, "id": ...} */
	QMP_MSG_EVENT,	  /* {"event": ..., "data": {...}, "timestamp": ...} */
};

/* Pointers into @root, valid until qmp_msg_clear(). */
struct qmp_msg {
	enum qmp_msg_type type;
	json_t *root;
	json_t *id;	       /* RETURN/ERROR: the id, or NULL */
	json_t *value;	       /* RETURN: the value; EVENT: data (NULL if none); GREETING: "QMP" */
	const char *event;     /* EVENT */
	const char *err_class; /* ERROR */
	const char *err_desc;  /* ERROR */
};

struct qmp_parser {
	char *buf;
	size_t start, len, cap; /* pending bytes are buf[start .. start+len) */
	size_t scanned;		/* of those, bytes already known to hold no newline */
	size_t max_line;
};

void qmp_parser_init(struct qmp_parser *p, size_t max_line);
void qmp_parser_fini(struct qmp_parser *p);
/* Append bytes. 0, -ENOMEM, or -EMSGSIZE when an unfinished line exceeds max_line. */
int qmp_parser_feed(struct qmp_parser *p, const void *data, size_t len);
/*
 * Take the next complete message: 1 with @msg filled (clear it with
 * qmp_msg_clear()), 0 when no complete line is pending, -EPROTO (a line
 * that is not a valid QMP message) or -EMSGSIZE with a message in @err.
 * After an error the stream is unusable.
 */
int qmp_parser_next(struct qmp_parser *p, struct qmp_msg *msg, char *err, size_t errlen);
void qmp_msg_clear(struct qmp_msg *msg);

/* --- client ------------------------------------------------------------------ */

typedef struct qmp_client qmp_client_t;

/* A reply: @result, or @result NULL and an error class and description. Valid during the call. */
typedef void (*qmp_reply_fn)(json_t *result, const char *err_class, const char *err_desc,
			     void *arg);

struct qmp_client_ops {
	/* Capabilities negotiated on a new connection; queued commands are on their way. */
	void (*ready)(qmp_client_t *c, void *arg);
	/* An event; @data never NULL, borrowed. */
	void (*event)(qmp_client_t *c, const char *name, json_t *data, void *arg);
	/* The connection ended (EOF, I/O or protocol error); the client is detached already. */
	void (*broken)(qmp_client_t *c, const char *why, void *arg);
};

/* @name (copied) prefixes log lines. NULL with errno set. Callbacks may destroy the client. */
qmp_client_t *qmp_client_create(qb_loop_t *loop, const char *name, const struct qmp_client_ops *ops,
				void *arg);
/* Fails every command with @err_class "Cancelled" (callbacks run inside), frees. */
void qmp_client_destroy(qmp_client_t *c);
/* Take connected, non-blocking @fd; expects QEMU's greeting. 0 or -errno (fd closed then). */
int qmp_client_attach(qmp_client_t *c, int fd);
bool qmp_client_is_attached(const qmp_client_t *c);
bool qmp_client_is_ready(const qmp_client_t *c);
/*
 * Close the connection (no callback). Commands sent on it fail with
 * @err_class; those not sent yet stay queued for the next connection.
 */
void qmp_client_detach(qmp_client_t *c, const char *err_class, const char *why);
/* Read and handle whatever the peer has sent already, without waiting. */
void qmp_client_drain(qmp_client_t *c);
/* Fail every command, sent or queued, with @err_class/@desc. */
void qmp_client_fail_all(qmp_client_t *c, const char *err_class, const char *desc);
/* Queue @cmd with @args (object or NULL, borrowed). 0, -EINVAL or -ENOMEM. */
int qmp_client_send(qmp_client_t *c, const char *cmd, json_t *args, qmp_reply_fn cb, void *arg);
/* The same, passing a copy of @fd along (SCM_RIGHTS), for getfd and add-fd; -errno if dup fails. */
int qmp_client_send_fd(qmp_client_t *c, const char *cmd, json_t *args, int fd, qmp_reply_fn cb,
		       void *arg);

#endif
