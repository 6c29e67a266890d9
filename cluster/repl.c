#include "repl.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "members.h"
#include "ops.h"

struct queued {
	struct queued *next;
	uint32_t sender;
	uint32_t pid;
	json_t *op;
};

/* A message corosync could not take yet (CS_ERR_TRY_AGAIN): sent later, in order. */
struct outmsg {
	struct outmsg *next;
	enum repl_msg_type type;
	size_t len;
	uint8_t buf[];
};

struct sync_in {
	uint32_t node;
	uint32_t pid; /* the process that sent the sync: it speaks for the node */
	uint32_t want_pid; /* when known: only this process may sync for the node */
	bool got;
	bool invalid; /* its state does not load here */
	bool quorate_side;
	bool needs_state; /* it has no state of its own: it cannot win */
	uint64_t version;
	json_t *state;
};

struct repl {
	cluster_state_t *state;
	const struct repl_ops *ops;
	void *arg;
	uint32_t local;
	bool quorate;
	bool synced;
	bool quorate_side; /* synced member of a quorate configuration since the last round */
	bool needs_state;  /* our state is no one's (corrupt file): wait for a peer's */
	bool in_round;
	uint64_t round_start_ms; /* 0 until the first tick of the round */
	bool close_sent;
	uint32_t members[MEMBERS_MAX];
	uint32_t pids[MEMBERS_MAX]; /* per member: the process that synced, 0 until then */
	size_t nmembers;
	struct sync_in in[MEMBERS_MAX];
	struct queued *queue, **tail;
	struct outmsg *out, **out_tail;
};

__attribute__((format(printf, 3, 4))) static void rlog(repl_t *r, int level, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	if (!r->ops->log)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	r->ops->log(r->arg, level, msg);
}

/* --- wire ----------------------------------------------------------------------- */

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

void *repl_encode(enum repl_msg_type type, const json_t *body, size_t *len)
{
	char *text = json_dumps(body, JSON_COMPACT);
	size_t n;
	uint8_t *buf;

	if (!text)
		return NULL;
	n = strlen(text);
	if (n > REPL_BODY_MAX) {
		free(text);
		errno = EMSGSIZE;
		return NULL;
	}
	buf = malloc(REPL_HDR_LEN + n);
	if (buf) {
		put32(buf, REPL_MAGIC);
		put16(buf + 4, REPL_FORMAT);
		put16(buf + 6, (uint16_t)type);
		put32(buf + 8, (uint32_t)n);
		put32(buf + 12, 0);
		memcpy(buf + REPL_HDR_LEN, text, n);
		*len = REPL_HDR_LEN + n;
	}
	free(text);
	return buf;
}

int repl_decode(const void *msg, size_t len, enum repl_msg_type *type, json_t **body, char *err,
		size_t errlen)
{
	const uint8_t *p = msg;
	json_error_t jerr;
	uint32_t blen;
	uint16_t fmt, t;

	*body = NULL;
	if (len < REPL_HDR_LEN) {
		snprintf(err, errlen, "message of %zu bytes is shorter than a header", len);
		return -EPROTO;
	}
	if (get32(p) != REPL_MAGIC) {
		snprintf(err, errlen, "bad magic 0x%08x", get32(p));
		return -EPROTO;
	}
	fmt = get16(p + 4);
	t = get16(p + 6);
	blen = get32(p + 8);
	if (fmt != REPL_FORMAT) {
		snprintf(err, errlen, "message format %u is not supported (this build speaks %d)",
			 fmt, REPL_FORMAT);
		return -EPROTO;
	}
	if (t != REPL_MSG_OP && t != REPL_MSG_SYNC && t != REPL_MSG_CLOSE) {
		snprintf(err, errlen, "unknown message type %u", t);
		return -EPROTO;
	}
	if (get32(p + 12) != 0 || blen > REPL_BODY_MAX || blen != len - REPL_HDR_LEN) {
		snprintf(err, errlen, "body length %u does not match the message (%zu bytes)", blen,
			 len);
		return -EPROTO;
	}
	*body = json_loadb((const char *)p + REPL_HDR_LEN, blen, JSON_REJECT_DUPLICATES, &jerr);
	if (!*body || !json_is_object(*body)) {
		snprintf(err, errlen, "body is not a JSON object%s%s", *body ? "" : ": ",
			 *body ? "" : jerr.text);
		json_decref(*body);
		*body = NULL;
		return -EINVAL;
	}
	*type = (enum repl_msg_type)t;
	return 0;
}

/* --- state ------------------------------------------------------------------------ */

repl_t *repl_create(cluster_state_t *state, const struct repl_ops *ops, void *arg)
{
	repl_t *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->state = state;
	r->ops = ops;
	r->arg = arg;
	r->tail = &r->queue;
	r->out_tail = &r->out;
	return r;
}

static void clear_round(repl_t *r)
{
	for (size_t i = 0; i < MEMBERS_MAX; i++) {
		json_decref(r->in[i].state);
		memset(&r->in[i], 0, sizeof(r->in[i]));
	}
}

static void drop_queue(repl_t *r)
{
	struct queued *q, *next;

	for (q = r->queue; q; q = next) {
		next = q->next;
		json_decref(q->op);
		free(q);
	}
	r->queue = NULL;
	r->tail = &r->queue;
}

/* Drop unsent messages (all, or only sync messages of an older round). */
static void drop_out(repl_t *r, bool only_sync)
{
	struct outmsg **pp = &r->out, *m;

	while ((m = *pp)) {
		if (only_sync && m->type != REPL_MSG_SYNC) {
			pp = &m->next;
			continue;
		}
		*pp = m->next;
		free(m);
	}
	r->out_tail = &r->out;
	for (m = r->out; m; m = m->next)
		r->out_tail = &m->next;
}

void repl_destroy(repl_t *r)
{
	if (!r)
		return;
	clear_round(r);
	drop_queue(r);
	drop_out(r, false);
	free(r);
}

void repl_set_local(repl_t *r, uint32_t id)
{
	r->local = id;
}

void repl_quorum(repl_t *r, bool quorate)
{
	r->quorate = quorate;
	if (!quorate && r->quorate_side) {
		r->quorate_side = false;
		rlog(r, LOG_WARNING, "quorum lost: this node's state no longer speaks for the cluster");
	}
	/*
	 * Quorum coming while synced does not make this state the quorate side's:
	 * after a cold start quorum comes with another node's corosync, before its
	 * hvnoded (with maybe a newer state) joined. Only a round decides that.
	 */
}

void repl_set_needs_state(repl_t *r)
{
	r->needs_state = true;
	r->synced = false;
}

bool repl_needs_state(const repl_t *r)
{
	return r->needs_state;
}

bool repl_is_synced(const repl_t *r)
{
	return r->synced && !r->in_round;
}

uint32_t repl_leader(const repl_t *r)
{
	return r->nmembers ? r->members[0] : 0;
}

void repl_reset(repl_t *r)
{
	clear_round(r);
	drop_queue(r);
	r->synced = false;
	r->in_round = false;
	r->quorate_side = false;
	r->nmembers = 0;
	drop_out(r, false);
}

int repl_flush(repl_t *r)
{
	struct outmsg *m;
	int rc;

	while ((m = r->out)) {
		rc = r->ops->send(r->arg, m->buf, m->len);
		if (rc && rc != -EMSGSIZE) {
			/* keep it and the ones after it, in order: corosync may be back soon */
			if (rc != -EAGAIN)
				rlog(r, LOG_WARNING, "a message could not be sent yet: %s",
				     strerror(-rc));
			return -EAGAIN;
		}
		if (rc)
			rlog(r, LOG_ERR, "a message of %zu bytes is too big for corosync: dropped",
			     m->len);
		r->out = m->next;
		if (!r->out)
			r->out_tail = &r->out;
		free(m);
	}
	return 0;
}

bool repl_has_unsent(const repl_t *r)
{
	return r->out != NULL;
}

/* Send now, or keep it for repl_flush() when corosync says "try again" (or others wait). */
static int send_body(repl_t *r, enum repl_msg_type type, const json_t *body)
{
	size_t len;
	void *buf = repl_encode(type, body, &len);
	struct outmsg *m;
	int rc = -EAGAIN;

	if (!buf)
		return -ENOMEM;
	if (!r->out)
		rc = r->ops->send(r->arg, buf, len);
	if (rc && rc != -EMSGSIZE) {
		m = malloc(sizeof(*m) + len);
		if (!m) {
			free(buf);
			return -ENOMEM;
		}
		m->next = NULL;
		m->type = type;
		m->len = len;
		memcpy(m->buf, buf, len);
		*r->out_tail = m;
		r->out_tail = &m->next;
		rc = 0;
	}
	free(buf);
	return rc;
}

int repl_submit(repl_t *r, const json_t *op)
{
	if (!repl_is_synced(r))
		return -EAGAIN;
	return send_body(r, REPL_MSG_OP, op);
}

static bool is_member(const repl_t *r, uint32_t id);

static json_t *members_json(const uint32_t *ids, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; a && i < n; i++)
		json_array_append_new(a, json_integer(ids[i]));
	return a;
}

/* The process that speaks for @node in the round: the previous one if it is still here. */
static uint32_t expected_pid(const repl_t *r, const uint32_t *prev_ids, const uint32_t *prev_pids,
			     size_t nprev, uint32_t node, const uint32_t *members,
			     const uint32_t *pids, size_t n)
{
	uint32_t only = 0;
	unsigned int count = 0;

	if (!pids)
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (members[i] != node)
			continue;
		for (size_t k = 0; k < nprev; k++)
			if (prev_ids[k] == node && prev_pids[k] && prev_pids[k] == pids[i])
				return pids[i];
		only = pids[i];
		count++;
	}
	return count == 1 ? only : 0; /* several new ones: the first sync decides */
}

void repl_confchg(repl_t *r, const uint32_t *members, const uint32_t *pids, size_t n)
{
	uint32_t prev_ids[MEMBERS_MAX], prev_pids[MEMBERS_MAX];
	size_t nprev = r->nmembers;
	json_t *body, *st;
	const char *ours = r->needs_state ? " (we need the cluster's state)"
			   : r->quorate_side && r->synced ? " (quorate side)"
			   : "";
	int rc;

	memcpy(prev_ids, r->members, sizeof(prev_ids));
	memcpy(prev_pids, r->pids, sizeof(prev_pids));
	clear_round(r);
	drop_out(r, true); /* a sync of an older round means nothing now */
	r->nmembers = 0;
	for (size_t i = 0; i < n && r->nmembers < MEMBERS_MAX; i++) {
		size_t k = r->nmembers;

		if (is_member(r, members[i]))
			continue; /* a second process of a node: the node counts once */
		/* sorted, so that every node sees the same list and the same leader */
		while (k > 0 && r->members[k - 1] > members[i]) {
			r->members[k] = r->members[k - 1];
			k--;
		}
		r->members[k] = members[i];
		r->nmembers++;
	}
	for (size_t i = 0; i < r->nmembers; i++) {
		r->in[i].node = r->members[i];
		r->in[i].want_pid = expected_pid(r, prev_ids, prev_pids, nprev, r->members[i], members,
						 pids, n);
		r->pids[i] = 0;
	}
	r->in_round = true;
	r->round_start_ms = 0;
	r->close_sent = false;
	st = state_to_json(r->state);
	body = json_pack("{s:o,s:b,s:I,s:o}", "members", members_json(r->members, r->nmembers),
			 "quorate_side", r->quorate_side && r->synced, "version",
			 (json_int_t)state_version(r->state), "state", st);
	/* only when set: the sync of a node with a state is what it always was */
	if (body && r->needs_state)
		json_object_set_new(body, "needs_state", json_true());
	rlog(r, LOG_NOTICE, "sync round: %zu members, our state version %" PRIu64 "%s", r->nmembers,
	     state_version(r->state), ours);
	rc = body ? send_body(r, REPL_MSG_SYNC, body) : -ENOMEM;
	json_decref(body);
	if (rc)
		rlog(r, LOG_ERR, "cannot send our state for the sync round: %s", strerror(-rc));
}

static void apply_one(repl_t *r, uint32_t sender, const json_t *op)
{
	struct op_ctx ctx = { .sender = sender, .leader = repl_leader(r) };
	char err[1024] = "";
	int rc;

	rc = state_apply(r->state, op, &ctx, err, sizeof(err));
	if (rc == 0 && r->ops->persist)
		r->ops->persist(r->arg);
	if (r->ops->applied)
		r->ops->applied(r->arg, op, sender, rc, err);
}

static bool is_member(const repl_t *r, uint32_t id)
{
	for (size_t i = 0; i < r->nmembers; i++)
		if (r->members[i] == id)
			return true;
	return false;
}

static bool same_members(const repl_t *r, const json_t *list)
{
	size_t i;
	json_t *v;

	if (!json_is_array(list) || json_array_size(list) != r->nmembers)
		return false;
	json_array_foreach(list, i, v) {
		if (!json_is_integer(v) || json_integer_value(v) != r->members[i])
			return false;
	}
	return true;
}

/* Whether process @pid is the one that synced for node @node in this configuration. */
static bool speaks_for(const repl_t *r, uint32_t node, uint32_t pid)
{
	for (size_t i = 0; i < r->nmembers; i++)
		if (r->members[i] == node)
			return r->pids[i] == pid;
	return false;
}

/*
 * Better candidate for the winner: a node with a state of its own, the quorate
 * side, then version, then lowest id (earlier).
 */
static bool better(const struct sync_in *a, const struct sync_in *b)
{
	if (a->needs_state != b->needs_state)
		return !a->needs_state;
	if (a->quorate_side != b->quorate_side)
		return a->quorate_side;
	return a->version > b->version;
}

static void finish_round(repl_t *r)
{
	struct sync_in *win = NULL;
	char err[1024];
	struct queued *q;
	int rc;

	for (size_t i = 0; i < r->nmembers; i++)
		if (r->in[i].got && !r->in[i].invalid && (!win || better(&r->in[i], win)))
			win = &r->in[i];
	if (!win || win->needs_state) {
		/* no state to adopt: keep ours (never persisted), stay unsynced */
		if (!win)
			rlog(r, LOG_CRIT, "sync: no member's state loads here: this node stays out "
					  "of the cluster state until upgraded");
		else
			rlog(r, LOG_CRIT, "sync: no member of this configuration has a state to "
					  "give (%s): this node waits for one that has",
			     r->nmembers > 1 ? "every one needs it" : "this node is alone");
		clear_round(r);
		drop_queue(r); /* ops of a round nobody could sync: no state to apply them to */
		r->in_round = false;
		r->synced = false;
		return;
	}
	rc = state_from_json(r->state, win->state, err, sizeof(err)); /* loaded once already */
	if (rc) {
		/* the winner's state does not load here: keep ours, say so loudly */
		rlog(r, LOG_CRIT, "sync: the state of node %u (version %" PRIu64 ") is invalid: %s",
		     win->node, win->version, err);
	} else {
		rlog(r, LOG_NOTICE, "sync: adopted the state of node %u, version %" PRIu64 "%s",
		     win->node, win->version, win->quorate_side ? " (quorate side)" : "");
		if (r->needs_state)
			rlog(r, LOG_NOTICE, "sync: this node has the cluster's state again");
		r->needs_state = false;
	}
	if (r->needs_state) {
		/* the winner's state did not load: ours is still no one's */
		clear_round(r);
		drop_queue(r);
		r->in_round = false;
		r->synced = false;
		return;
	}
	for (size_t i = 0; i < r->nmembers; i++)
		r->pids[i] = r->in[i].pid;
	clear_round(r);
	r->in_round = false;
	r->synced = true;
	r->quorate_side = r->quorate;
	if (r->ops->persist)
		r->ops->persist(r->arg);
	if (r->ops->synced)
		r->ops->synced(r->arg, win ? win->node : 0, state_version(r->state));
	while ((q = r->queue)) {
		r->queue = q->next;
		if (!r->queue)
			r->tail = &r->queue;
		if (speaks_for(r, q->sender, q->pid))
			apply_one(r, q->sender, q->op);
		else
			rlog(r, LOG_WARNING, "op from process %u of node %u, not the node's agent: "
					     "ignored", q->pid, q->sender);
		json_decref(q->op);
		free(q);
	}
}

static void on_sync(repl_t *r, uint32_t sender, uint32_t pid, json_t *body)
{
	static const char *const keys[] = { "members", "quorate_side", "version", "state" };
	json_t *v, *needs = json_object_get(body, "needs_state");
	size_t i;

	if (json_object_size(body) != 4 + (needs != NULL) || (needs && !json_is_true(needs)))
		goto bad;
	for (i = 0; i < 4; i++)
		if (!json_object_get(body, keys[i]))
			goto bad;
	if (!r->in_round || !same_members(r, json_object_get(body, "members")))
		return; /* a sync of another configuration: not ours */
	for (i = 0; i < r->nmembers && r->in[i].node != sender; i++)
		;
	if (i == r->nmembers || r->in[i].got)
		return;
	if (r->in[i].want_pid && pid != r->in[i].want_pid) {
		rlog(r, LOG_WARNING, "sync from process %u of node %u, not its agent (%u): ignored",
		     pid, sender, r->in[i].want_pid);
		return;
	}
	v = json_object_get(body, "version");
	if (!json_is_boolean(json_object_get(body, "quorate_side")) || !json_is_integer(v) ||
	    json_integer_value(v) < 0 || !json_is_object(json_object_get(body, "state")))
		goto bad;
	{
		/* a state that does not load here cannot win: leave it out of the choice */
		cluster_state_t *probe = state_create();
		char err[256];

		if (!probe || state_from_json(probe, json_object_get(body, "state"), err,
					      sizeof(err))) {
			rlog(r, LOG_ERR, "sync: the state of node %u does not load here (%s): "
					 "it cannot win this round",
			     sender, probe ? err : "out of memory");
			r->in[i].invalid = true;
		}
		state_destroy(probe);
	}
	r->in[i].got = true;
	r->in[i].pid = pid;
	r->in[i].quorate_side = json_is_true(json_object_get(body, "quorate_side"));
	r->in[i].needs_state = needs != NULL;
	r->in[i].version = (uint64_t)json_integer_value(v);
	r->in[i].state = json_incref(json_object_get(body, "state"));
	for (i = 0; i < r->nmembers; i++)
		if (!r->in[i].got)
			return;
	finish_round(r);
	return;
bad:
	rlog(r, LOG_WARNING, "sync message from node %u is malformed: ignored", sender);
}

void repl_tick(repl_t *r, uint64_t now_ms)
{
	json_t *body;
	size_t i;

	if (!r->in_round || r->close_sent)
		return;
	if (!r->round_start_ms) {
		r->round_start_ms = now_ms;
		return;
	}
	if (now_ms - r->round_start_ms < REPL_ROUND_TIMEOUT_MS)
		return;
	/* the lowest member that synced closes: one close, whoever else waits */
	for (i = 0; i < r->nmembers && !r->in[i].got; i++)
		;
	if (i == r->nmembers || r->in[i].node != r->local)
		return;
	body = json_pack("{s:o}", "members", members_json(r->members, r->nmembers));
	if (body && send_body(r, REPL_MSG_CLOSE, body) == 0) {
		r->close_sent = true;
		rlog(r, LOG_WARNING, "sync round still incomplete after %d ms: closing it",
		     REPL_ROUND_TIMEOUT_MS);
	}
	json_decref(body);
}

static void on_close(repl_t *r, uint32_t sender, uint32_t pid, json_t *body)
{
	size_t i;

	if (!r->in_round || json_object_size(body) != 1 ||
	    !same_members(r, json_object_get(body, "members")))
		return;
	for (i = 0; i < r->nmembers && r->in[i].node != sender; i++)
		;
	if (i == r->nmembers || !r->in[i].got || r->in[i].pid != pid)
		return; /* only a member that synced in this round may close it */
	for (i = 0; i < r->nmembers; i++)
		if (!r->in[i].got)
			rlog(r, LOG_WARNING, "sync: node %u sent no state in time: it speaks for "
					     "nothing until the next round",
			     r->in[i].node);
	finish_round(r);
}

void repl_deliver(repl_t *r, uint32_t sender, uint32_t pid, const void *msg, size_t len)
{
	enum repl_msg_type type;
	char err[256];
	json_t *body;
	struct queued *q;

	if (repl_decode(msg, len, &type, &body, err, sizeof(err))) {
		rlog(r, LOG_WARNING, "message from node %u refused: %s", sender, err);
		return;
	}
	if (!is_member(r, sender)) {
		rlog(r, LOG_WARNING, "message from node %u, not a member: ignored", sender);
	} else if (type == REPL_MSG_SYNC) {
		on_sync(r, sender, pid, body);
	} else if (type == REPL_MSG_CLOSE) {
		on_close(r, sender, pid, body);
	} else if (r->in_round) {
		q = calloc(1, sizeof(*q));
		if (q) {
			q->sender = sender;
			q->pid = pid;
			q->op = json_incref(body);
			*r->tail = q;
			r->tail = &q->next;
		} else {
			rlog(r, LOG_CRIT, "out of memory: op from node %u lost", sender);
		}
	} else if (r->synced && speaks_for(r, sender, pid)) {
		apply_one(r, sender, body);
	} else if (r->synced) {
		rlog(r, LOG_WARNING, "op from process %u of node %u, not the node's agent: ignored",
		     pid, sender);
	}
	json_decref(body);
}
