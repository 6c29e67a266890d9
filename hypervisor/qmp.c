/*
 * QMP: the line parser and the client on the loop.
 *
 * Everything QEMU sends is validated: QEMU runs the guest's code paths and
 * may be compromised, so a bad line is a broken connection, never a crash.
 * The client only writes from the loop's dispatch (a send queues and asks
 * for POLLOUT), so no callback ever runs inside the call that caused it.
 */
#include "qmp.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <qb/qblog.h>

#define READ_CHUNK 65536
#define EXCERPT 80

/* --- parser ------------------------------------------------------------------ */

void qmp_parser_init(struct qmp_parser *p, size_t max_line)
{
	memset(p, 0, sizeof(*p));
	p->max_line = max_line;
}

void qmp_parser_fini(struct qmp_parser *p)
{
	free(p->buf);
	qmp_parser_init(p, p->max_line);
}

int qmp_parser_feed(struct qmp_parser *p, const void *data, size_t len)
{
	size_t cap;
	char *nb;

	if (len == 0)
		return 0;
	if (p->start && p->start + p->len + len > p->cap) {
		memmove(p->buf, p->buf + p->start, p->len);
		p->start = 0;
	}
	if (p->start + p->len + len > p->cap) {
		cap = p->cap ? p->cap : 4096;
		while (cap < p->start + p->len + len)
			cap *= 2;
		nb = realloc(p->buf, cap);
		if (!nb)
			return -ENOMEM;
		p->buf = nb;
		p->cap = cap;
	}
	memcpy(p->buf + p->start + p->len, data, len);
	p->len += len;
	if (!memchr(p->buf + p->start + p->scanned, '\n', p->len - p->scanned)) {
		p->scanned = p->len;
		if (p->len > p->max_line)
			return -EMSGSIZE;
	}
	return 0;
}

void qmp_msg_clear(struct qmp_msg *msg)
{
	json_decref(msg->root);
	memset(msg, 0, sizeof(*msg));
}

/* The start of @line, printable, for error messages. */
static void excerpt(const char *line, size_t len, char *out, size_t outlen)
{
	size_t n = 0;

	for (size_t i = 0; i < len && i < EXCERPT && n + 1 < outlen; i++)
		out[n++] = (line[i] >= 0x20 && line[i] < 0x7f) ? line[i] : '?';
	if (len > EXCERPT && n + 4 < outlen) {
		memcpy(out + n, "...", 3);
		n += 3;
	}
	if (outlen)
		out[n < outlen ? n : outlen - 1] = '\0';
}

static const char *classify(json_t *root, struct qmp_msg *msg)
{
	json_t *qmp = json_object_get(root, "QMP");
	json_t *ret = json_object_get(root, "return");
	json_t *error = json_object_get(root, "error");
	json_t *event = json_object_get(root, "event");
	json_t *data;

	if (!json_is_object(root))
		return "not a JSON object";
	if (!!qmp + !!ret + !!error + !!event != 1)
		return "not exactly one of QMP, return, error, event";
	msg->root = root;
	msg->id = json_object_get(root, "id");
	if (qmp) {
		if (!json_is_object(qmp))
			return "QMP greeting is not an object";
		msg->type = QMP_MSG_GREETING;
		msg->value = qmp;
	} else if (ret) {
		msg->type = QMP_MSG_RETURN;
		msg->value = ret;
	} else if (error) {
		msg->type = QMP_MSG_ERROR;
		msg->err_class = json_string_value(json_object_get(error, "class"));
		msg->err_desc = json_string_value(json_object_get(error, "desc"));
		if (!json_is_object(error) || !msg->err_class || !msg->err_desc)
			return "error without a string class and desc";
	} else {
		msg->type = QMP_MSG_EVENT;
		msg->event = json_string_value(event);
		data = json_object_get(root, "data");
		if (!msg->event || !msg->event[0])
			return "event name is not a string";
		if (data && !json_is_object(data))
			return "event data is not an object";
		msg->value = data;
	}
	return NULL;
}

static int parse_line(const char *line, size_t len, struct qmp_msg *msg, char *err, size_t errlen)
{
	char ex[EXCERPT + 8];
	json_error_t jerr;
	const char *why;
	json_t *root;

	root = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
	why = root ? classify(root, msg) : jerr.text;
	if (!why)
		return 1;
	excerpt(line, len, ex, sizeof(ex));
	snprintf(err, errlen, "malformed QMP message (%s): %s", why, ex);
	json_decref(root);
	memset(msg, 0, sizeof(*msg));
	return -EPROTO;
}

int qmp_parser_next(struct qmp_parser *p, struct qmp_msg *msg, char *err, size_t errlen)
{
	char *line, *nl;
	size_t len;

	memset(msg, 0, sizeof(*msg));
	for (;;) {
		line = p->buf + p->start;
		nl = p->len > p->scanned ? memchr(line + p->scanned, '\n', p->len - p->scanned)
					 : NULL;
		if (!nl) {
			p->scanned = p->len;
			if (p->len <= p->max_line)
				return 0;
			snprintf(err, errlen, "QMP line longer than %zu bytes", p->max_line);
			return -EMSGSIZE;
		}
		len = nl - line;
		p->start += len + 1;
		p->len -= len + 1;
		p->scanned = 0;
		if (!p->len)
			p->start = 0;
		if (len > p->max_line) {
			snprintf(err, errlen, "QMP line of %zu bytes, longer than %zu", len,
				 p->max_line);
			return -EMSGSIZE;
		}
		while (len &&
		       (line[len - 1] == '\r' || line[len - 1] == ' ' || line[len - 1] == '\t'))
			len--;
		if (len)
			return parse_line(line, len, msg, err, errlen);
	}
}

/* --- client ------------------------------------------------------------------ */

struct qmp_cmd {
	struct qmp_cmd *next;
	uint64_t id;
	char *line; /* JSON + '\n' */
	size_t len;
	qmp_reply_fn cb;
	void *arg;
	int fd; /* passed with the command's first byte (SCM_RIGHTS), -1 none; ours to close */
};

struct cmd_list {
	struct qmp_cmd *head, **tail;
};

enum phase {
	PH_DETACHED,
	PH_GREETING,	/* connected, waiting for QEMU's greeting */
	PH_NEGOTIATING, /* qmp_capabilities sent */
	PH_READY,
};

struct qmp_client {
	qb_loop_t *loop;
	char *name;
	const struct qmp_client_ops *ops;
	void *arg;

	int fd;
	enum phase phase;
	unsigned int generation; /* bumped by every detach */
	int32_t events;		 /* what the loop polls fd for */
	struct qmp_parser parser;
	char *out;
	size_t out_len, out_cap;

	struct cmd_list queue;	  /* not written yet: waits for a ready connection */
	struct cmd_list inflight; /* written (or in out): waits for a reply */
	uint64_t next_id;
	uint64_t caps_id;

	unsigned int depth; /* in a dispatch or a callback: destroy only marks dead */
	bool dead;
};

static void list_init(struct cmd_list *l)
{
	l->head = NULL;
	l->tail = &l->head;
}

static void list_append(struct cmd_list *l, struct qmp_cmd *cmd)
{
	cmd->next = NULL;
	*l->tail = cmd;
	l->tail = &cmd->next;
}

static struct qmp_cmd *list_take(struct cmd_list *l, uint64_t id)
{
	struct qmp_cmd **pp, *cmd;

	for (pp = &l->head; *pp; pp = &(*pp)->next) {
		if ((*pp)->id != id)
			continue;
		cmd = *pp;
		*pp = cmd->next;
		if (l->tail == &cmd->next)
			l->tail = pp;
		return cmd;
	}
	return NULL;
}

static void cmd_free(struct qmp_cmd *cmd)
{
	if (cmd->fd >= 0)
		close(cmd->fd);
	free(cmd->line);
	free(cmd);
}

static void hold(qmp_client_t *c)
{
	c->depth++;
}

static void release(qmp_client_t *c)
{
	if (--c->depth || !c->dead)
		return;
	qmp_parser_fini(&c->parser);
	free(c->out);
	free(c->name);
	free(c);
}

/* Run and free every command of @l with an error. Callbacks may do anything. */
static void fail_list(qmp_client_t *c, struct cmd_list *l, const char *err_class, const char *desc)
{
	struct qmp_cmd *cmd = l->head, *next;

	list_init(l);
	hold(c);
	for (; cmd; cmd = next) {
		next = cmd->next;
		if (cmd->cb)
			cmd->cb(NULL, err_class, desc, cmd->arg);
		cmd_free(cmd);
	}
	release(c);
}

qmp_client_t *qmp_client_create(qb_loop_t *loop, const char *name, const struct qmp_client_ops *ops,
				void *arg)
{
	qmp_client_t *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->name = strdup(name ? name : "qmp");
	if (!c->name) {
		free(c);
		return NULL;
	}
	c->loop = loop;
	c->ops = ops;
	c->arg = arg;
	c->fd = -1;
	c->next_id = 1;
	qmp_parser_init(&c->parser, QMP_LINE_MAX);
	list_init(&c->queue);
	list_init(&c->inflight);
	return c;
}

static void close_fd(qmp_client_t *c)
{
	if (c->fd < 0)
		return;
	qb_loop_poll_del(c->loop, c->fd);
	close(c->fd);
	c->fd = -1;
	c->phase = PH_DETACHED;
	c->generation++;
	c->out_len = 0;
	qmp_parser_fini(&c->parser);
}

void qmp_client_destroy(qmp_client_t *c)
{
	if (!c || c->dead)
		return;
	c->dead = true;
	hold(c);
	close_fd(c);
	fail_list(c, &c->inflight, "Cancelled", "the QMP client was destroyed");
	fail_list(c, &c->queue, "Cancelled", "the QMP client was destroyed");
	release(c);
}

bool qmp_client_is_attached(const qmp_client_t *c)
{
	return c->fd >= 0;
}

bool qmp_client_is_ready(const qmp_client_t *c)
{
	return c->phase == PH_READY;
}

void qmp_client_detach(qmp_client_t *c, const char *err_class, const char *why)
{
	close_fd(c);
	fail_list(c, &c->inflight, err_class, why);
}

void qmp_client_fail_all(qmp_client_t *c, const char *err_class, const char *desc)
{
	hold(c);
	fail_list(c, &c->inflight, err_class, desc);
	fail_list(c, &c->queue, err_class, desc);
	release(c);
}

static void set_events(qmp_client_t *c, int32_t events);

/* The connection is unusable: detach, then tell the owner. */
static void broken(qmp_client_t *c, const char *why)
{
	hold(c);
	qmp_client_detach(c, "Disconnected", why);
	if (!c->dead && c->ops->broken)
		c->ops->broken(c, why, c->arg);
	release(c);
}

__attribute__((format(printf, 2, 3))) static void brokenf(qmp_client_t *c, const char *fmt, ...)
{
	char why[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	broken(c, why);
}

static int out_append(qmp_client_t *c, const char *data, size_t len)
{
	size_t cap = c->out_cap ? c->out_cap : 4096;
	char *nb;

	while (cap < c->out_len + len)
		cap *= 2;
	if (cap != c->out_cap) {
		nb = realloc(c->out, cap);
		if (!nb)
			return -ENOMEM;
		c->out = nb;
		c->out_cap = cap;
	}
	memcpy(c->out + c->out_len, data, len);
	c->out_len += len;
	set_events(c, POLLIN | POLLOUT);
	return 0;
}

/*
 * The first byte of @cmd's line goes alone with its fd as SCM_RIGHTS, so
 * QEMU has the fd when it parses the command (getfd, add-fd); the rest
 * goes the normal way. Only with nothing else pending before it.
 */
static int send_with_fd(qmp_client_t *c, struct qmp_cmd *cmd)
{
	char cbuf[CMSG_SPACE(sizeof(int))] = { 0 };
	struct iovec iov = { .iov_base = cmd->line, .iov_len = 1 };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			      .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
	ssize_t n;

	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &cmd->fd, sizeof(int));
	do
		n = sendmsg(c->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	close(cmd->fd);
	cmd->fd = -1;
	return out_append(c, cmd->line + 1, cmd->len - 1);
}

/* Ready: every queued command goes out, in order. */
static void flush_queue(qmp_client_t *c)
{
	struct qmp_cmd *cmd;
	int rc;

	while (c->phase == PH_READY && (cmd = c->queue.head)) {
		if (cmd->fd >= 0) {
			if (c->out_len)
				return; /* write_out() calls us again once the bytes before it left */
			rc = send_with_fd(c, cmd);
			if (rc == -EAGAIN)
				return;
			if (rc) {
				brokenf(c, "passing an fd to QEMU: %s", strerror(-rc));
				return;
			}
		} else if (out_append(c, cmd->line, cmd->len)) {
			return; /* no memory: stays queued, retried on the next send */
		}
		c->queue.head = cmd->next;
		if (!c->queue.head)
			c->queue.tail = &c->queue.head;
		list_append(&c->inflight, cmd);
	}
}

static char *serialize(const char *cmd, json_t *args, uint64_t id, size_t *len)
{
	json_t *j = json_pack("{s:s, s:I}", "execute", cmd, "id", (json_int_t)id);
	char *s, *line = NULL;

	if (!j)
		return NULL;
	if (args && json_object_set(j, "arguments", args)) {
		json_decref(j);
		return NULL;
	}
	s = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	if (s && asprintf(&line, "%s\n", s) < 0)
		line = NULL;
	free(s);
	if (line)
		*len = strlen(line);
	return line;
}

int qmp_client_send(qmp_client_t *c, const char *cmd, json_t *args, qmp_reply_fn cb, void *arg)
{
	return qmp_client_send_fd(c, cmd, args, -1, cb, arg);
}

int qmp_client_send_fd(qmp_client_t *c, const char *cmd, json_t *args, int fd, qmp_reply_fn cb,
		       void *arg)
{
	struct qmp_cmd *q;

	if (c->dead || !cmd || !cmd[0] || (args && !json_is_object(args)))
		return -EINVAL;
	q = calloc(1, sizeof(*q));
	if (!q)
		return -ENOMEM;
	q->fd = -1;
	if (fd >= 0 && (q->fd = fcntl(fd, F_DUPFD_CLOEXEC, 3)) < 0) {
		free(q);
		return -errno;
	}
	q->id = c->next_id++;
	q->line = serialize(cmd, args, q->id, &q->len);
	if (!q->line) {
		if (q->fd >= 0)
			close(q->fd);
		free(q);
		return -ENOMEM;
	}
	q->cb = cb;
	q->arg = arg;
	list_append(&c->queue, q);
	flush_queue(c);
	return 0;
}

static void send_capabilities(qmp_client_t *c)
{
	size_t len;
	char *line;

	c->caps_id = c->next_id++;
	line = serialize("qmp_capabilities", NULL, c->caps_id, &len);
	if (!line || out_append(c, line, len)) {
		free(line);
		broken(c, "out of memory sending qmp_capabilities");
		return;
	}
	free(line);
	c->phase = PH_NEGOTIATING;
}

static void on_reply(qmp_client_t *c, const struct qmp_msg *m)
{
	struct qmp_cmd *cmd;
	json_int_t id;

	if (!json_is_integer(m->id) || (id = json_integer_value(m->id)) <= 0) {
		qb_log(LOG_WARNING, "%s: QMP reply without a valid id ignored", c->name);
		return;
	}
	if (c->phase == PH_NEGOTIATING && (uint64_t)id == c->caps_id) {
		if (m->type == QMP_MSG_ERROR) {
			brokenf(c, "qmp_capabilities refused: %s: %s", m->err_class, m->err_desc);
			return;
		}
		c->phase = PH_READY;
		flush_queue(c);
		if (c->ops->ready)
			c->ops->ready(c, c->arg);
		return;
	}
	cmd = list_take(&c->inflight, (uint64_t)id);
	if (!cmd) {
		qb_log(LOG_WARNING, "%s: QMP reply to unknown id %lld ignored", c->name,
		       (long long)id);
		return;
	}
	if (cmd->cb) {
		if (m->type == QMP_MSG_RETURN)
			cmd->cb(m->value, NULL, NULL, cmd->arg);
		else
			cmd->cb(NULL, m->err_class, m->err_desc, cmd->arg);
	}
	cmd_free(cmd);
}

static void on_event(qmp_client_t *c, const struct qmp_msg *m)
{
	json_t *empty = NULL;

	if (!c->ops->event)
		return;
	if (!m->value)
		empty = json_object();
	if (m->value || empty)
		c->ops->event(c, m->event, m->value ? m->value : empty, c->arg);
	json_decref(empty);
}

static void on_message(qmp_client_t *c, const struct qmp_msg *m)
{
	switch (m->type) {
	case QMP_MSG_GREETING:
		if (c->phase != PH_GREETING) {
			broken(c, "unexpected second QMP greeting");
			return;
		}
		send_capabilities(c);
		break;
	case QMP_MSG_RETURN:
	case QMP_MSG_ERROR:
		if (c->phase == PH_GREETING) {
			broken(c, "QMP reply before the greeting");
			return;
		}
		on_reply(c, m);
		break;
	case QMP_MSG_EVENT:
		on_event(c, m);
		break;
	}
}

/* Handle every complete message, as long as the connection lasts. */
static void process(qmp_client_t *c)
{
	unsigned int gen = c->generation;
	struct qmp_msg m;
	char err[256];
	int rc;

	while (!c->dead && gen == c->generation) {
		rc = qmp_parser_next(&c->parser, &m, err, sizeof(err));
		if (rc == 0)
			return;
		if (rc < 0) {
			qb_log(LOG_ERR, "%s: %s", c->name, err);
			broken(c, err);
			return;
		}
		on_message(c, &m);
		qmp_msg_clear(&m);
	}
}

/* One read; false when the connection ended. */
static bool read_once(qmp_client_t *c)
{
	char buf[READ_CHUNK];
	ssize_t n;
	int rc;

	n = read(c->fd, buf, sizeof(buf));
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return true;
	if (n < 0) {
		brokenf(c, "reading QMP: %s", strerror(errno));
		return false;
	}
	if (n == 0) {
		broken(c, "QEMU closed the QMP connection");
		return false;
	}
	rc = qmp_parser_feed(&c->parser, buf, n);
	if (rc) {
		brokenf(c, "QMP input: %s", rc == -EMSGSIZE ? "line too long" : strerror(-rc));
		return false;
	}
	process(c);
	return true;
}

static void write_out(qmp_client_t *c)
{
	size_t off = 0;
	ssize_t n;

	while (off < c->out_len) {
		n = send(c->fd, c->out + off, c->out_len - off, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n < 0) {
			brokenf(c, "writing QMP: %s", strerror(errno));
			return;
		}
		off += n;
	}
	memmove(c->out, c->out + off, c->out_len - off);
	c->out_len -= off;
	if (!c->out_len) {
		set_events(c, POLLIN);
		flush_queue(c); /* a command with an fd waited for the bytes before it */
	}
}

static int32_t on_fd(int32_t fd, int32_t revents, void *data)
{
	qmp_client_t *c = data;
	unsigned int gen = c->generation;
	bool gone;

	hold(c);
	if ((revents & POLLOUT) && c->out_len)
		write_out(c);
	if (!c->dead && gen == c->generation && (revents & (POLLIN | POLLHUP | POLLERR)))
		read_once(c);
	if (!c->dead && gen == c->generation && (revents & POLLNVAL))
		broken(c, "QMP socket invalid");
	gone = c->dead || gen != c->generation;
	release(c);
	/* this fd's poll entry was deleted: tell the loop not to revive it */
	return gone ? -1 : 0;
}

static void set_events(qmp_client_t *c, int32_t events)
{
	if (c->fd < 0 || c->events == events)
		return;
	if (qb_loop_poll_mod(c->loop, QB_LOOP_MED, c->fd, events, c, on_fd) == 0)
		c->events = events;
}

int qmp_client_attach(qmp_client_t *c, int fd)
{
	int rc;

	if (c->dead || c->fd >= 0) {
		close(fd);
		return -EBUSY;
	}
	rc = qb_loop_poll_add(c->loop, QB_LOOP_MED, fd, POLLIN, c, on_fd);
	if (rc) {
		close(fd);
		return rc < 0 ? rc : -EIO;
	}
	c->fd = fd;
	c->events = POLLIN;
	c->phase = PH_GREETING;
	c->out_len = 0;
	qmp_parser_init(&c->parser, QMP_LINE_MAX);
	return 0;
}

void qmp_client_drain(qmp_client_t *c)
{
	unsigned int gen = c->generation;

	hold(c);
	/* bounded: a peer that keeps writing cannot keep us here */
	for (int i = 0; i < 64 && !c->dead && c->fd >= 0 && gen == c->generation; i++) {
		struct pollfd pfd = {.fd = c->fd, .events = POLLIN};

		if (poll(&pfd, 1, 0) <= 0 || !read_once(c))
			break;
	}
	release(c);
}
