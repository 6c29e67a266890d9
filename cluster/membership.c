/*
 * corosync glue: CPG for the group of hvnoded processes (and, later, the
 * replicated state), votequorum for the quorate flag and the membership,
 * cmap for node names and the crypto corosync runs with.
 */
#include "membership.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <corosync/cmap.h>
#include <corosync/corotypes.h>
#include <corosync/cpg.h>
#include <corosync/votequorum.h>
#include <qb/qblog.h>

#define NAME_CACHE_MAX MEMBERS_MAX

struct name_entry {
	uint32_t id;
	char name[MEMBER_NAME_MAX];
};

struct membership {
	qb_loop_t *loop;
	const struct membership_ops *ops;
	void *arg;
	char group[CPG_MAX_NAME_LENGTH];

	bool connected;
	cpg_handle_t cpg;
	votequorum_handle_t vq;
	cmap_handle_t cmap;
	int cpg_fd;
	int vq_fd;
	bool broken;		/* a dispatch failed: teardown queued */
	char reason[128];
	unsigned int backoff_ms;
	qb_loop_timer_handle reconnect_timer;
	bool timer_armed;

	uint32_t local_id;
	bool quorate;
	uint32_t cpg_ids[MEMBERS_MAX];
	uint32_t cpg_pids[MEMBERS_MAX];
	size_t ncpg;
	uint32_t quorum_ids[MEMBERS_MAX];
	size_t nquorum;
	uint32_t ids[MEMBERS_MAX];
	size_t nids;

	struct name_entry names[NAME_CACHE_MAX];
	size_t nnames;
	char fallback_name[MEMBER_NAME_MAX];
};

static void connect_now(void *data);

/* cs_error_t to -errno, once, at the boundary. */
static int cs_to_errno(cs_error_t err)
{
	switch (err) {
	case CS_OK:
		return 0;
	case CS_ERR_TRY_AGAIN:
		return -EAGAIN;
	case CS_ERR_NO_MEMORY:
		return -ENOMEM;
	case CS_ERR_NOT_EXIST:
		return -ENOENT;
	case CS_ERR_ACCESS:
		return -EACCES;
	case CS_ERR_TOO_BIG:
		return -EMSGSIZE;
	case CS_ERR_INVALID_PARAM:
		return -EINVAL;
	default:
		return -ENOTCONN;
	}
}

static void recompute(membership_t *m)
{
	m->nids = members_merge(m->cpg_ids, m->ncpg, m->quorum_ids, m->nquorum, m->ids,
				MEMBERS_MAX);
}

static void notify(membership_t *m)
{
	recompute(m);
	if (m->ops->changed)
		m->ops->changed(m, m->arg);
}

/* The index of node @id in corosync's nodelist (nodelist.node.X.nodeid), -1 if none. */
static int cmap_node_index(membership_t *m, uint32_t id)
{
	char key[CMAP_KEYNAME_MAXLEN];
	uint32_t nodeid;

	if (!m->connected)
		return -1;
	for (int i = 0; i < MEMBERS_MAX; i++) {
		snprintf(key, sizeof(key), "nodelist.node.%d.nodeid", i);
		if (cmap_get_uint32(m->cmap, key, &nodeid) != CS_OK)
			return -1;
		if (nodeid == id)
			return i;
	}
	return -1;
}

/* nodelist.node.X.@field of node @id (the first of @field, @alt that is set). */
static bool cmap_node_string(membership_t *m, uint32_t id, const char *field, const char *alt,
			     char *out, size_t outlen)
{
	char key[CMAP_KEYNAME_MAXLEN];
	int i = cmap_node_index(m, id);
	char *str = NULL;

	if (i < 0)
		return false;
	snprintf(key, sizeof(key), "nodelist.node.%d.%s", i, field);
	if (cmap_get_string(m->cmap, key, &str) != CS_OK) {
		if (!alt)
			return false;
		snprintf(key, sizeof(key), "nodelist.node.%d.%s", i, alt);
		if (cmap_get_string(m->cmap, key, &str) != CS_OK)
			return false;
	}
	snprintf(out, outlen, "%s", str);
	free(str);
	return true;
}

/* Node names come from corosync's nodelist: nodelist.node.X.{nodeid,name,ring0_addr}. */
static bool cmap_lookup_name(membership_t *m, uint32_t id, char *out, size_t outlen)
{
	return cmap_node_string(m, id, "name", "ring0_addr", out, outlen);
}

bool membership_node_addr(membership_t *m, uint32_t id, char *out, size_t outlen)
{
	return cmap_node_string(m, id, "ring0_addr", NULL, out, outlen);
}

/* totem.@key as corosync runs it; "none" when unset, which is corosync's default too. */
static int cmap_totem_string(membership_t *m, const char *key, char *out, size_t outlen)
{
	cs_error_t err;
	char *str = NULL;

	err = cmap_get_string(m->cmap, key, &str);
	if (err == CS_ERR_NOT_EXIST) {
		snprintf(out, outlen, "none");
		return 0;
	}
	if (err != CS_OK)
		return cs_to_errno(err);
	snprintf(out, outlen, "%s", str);
	free(str);
	return 0;
}

int membership_crypto(membership_t *m, char *cipher, size_t cipherlen, char *hash,
		      size_t hashlen)
{
	int rc;

	if (!m->connected)
		return -ENOTCONN;
	rc = cmap_totem_string(m, "totem.crypto_cipher", cipher, cipherlen);
	return rc ?: cmap_totem_string(m, "totem.crypto_hash", hash, hashlen);
}

const char *membership_node_name(membership_t *m, uint32_t id)
{
	struct name_entry *e;

	for (size_t i = 0; i < m->nnames; i++)
		if (m->names[i].id == id)
			return m->names[i].name;
	if (m->nnames < NAME_CACHE_MAX) {
		e = &m->names[m->nnames];
		if (cmap_lookup_name(m, id, e->name, sizeof(e->name))) {
			e->id = id;
			m->nnames++;
			return e->name;
		}
	}
	snprintf(m->fallback_name, sizeof(m->fallback_name), "node%u", id);
	return m->fallback_name;
}

static void cpg_deliver_cb(cpg_handle_t handle, const struct cpg_name *group, uint32_t nodeid,
			   uint32_t pid, void *msg, size_t len)
{
	membership_t *m = NULL;

	if (cpg_context_get(handle, (void **)&m) != CS_OK || !m)
		return;
	if (m->ops->deliver)
		m->ops->deliver(m, nodeid, pid, msg, len, m->arg);
}

static void cpg_confchg_cb(cpg_handle_t handle, const struct cpg_name *group,
			   const struct cpg_address *members, size_t nmembers,
			   const struct cpg_address *left, size_t nleft,
			   const struct cpg_address *joined, size_t njoined)
{
	membership_t *m = NULL;

	if (cpg_context_get(handle, (void **)&m) != CS_OK || !m)
		return;
	m->ncpg = 0;
	for (size_t i = 0; i < nmembers && m->ncpg < MEMBERS_MAX; i++) {
		m->cpg_pids[m->ncpg] = members[i].pid;
		m->cpg_ids[m->ncpg++] = members[i].nodeid;
	}
	for (size_t i = 0; i < nleft; i++)
		qb_log(LOG_NOTICE, "hvnoded on node %u (pid %u) left the group (reason %u)",
		       left[i].nodeid, left[i].pid, left[i].reason);
	for (size_t i = 0; i < njoined; i++)
		qb_log(LOG_NOTICE, "hvnoded on node %u (pid %u) joined the group", joined[i].nodeid,
		       joined[i].pid);
	if (m->ops->confchg)
		m->ops->confchg(m, m->cpg_ids, m->cpg_pids, m->ncpg, m->arg);
	notify(m);
}

static void cpg_totem_cb(cpg_handle_t handle, struct cpg_ring_id ring_id, uint32_t n,
			 const uint32_t *ids)
{
	qb_log(LOG_INFO, "corosync ring %u.%" PRIu64 ": %u nodes", ring_id.nodeid, ring_id.seq, n);
}

static void vq_quorum_cb(votequorum_handle_t handle, uint64_t context, uint32_t quorate,
			 uint32_t n, votequorum_node_t nodes[])
{
	membership_t *m = (membership_t *)(uintptr_t)context;

	if (m->quorate != !!quorate)
		qb_log(quorate ? LOG_NOTICE : LOG_WARNING, "cluster is %s",
		       quorate ? "quorate" : "NOT quorate");
	m->quorate = quorate;
	notify(m);
}

static void vq_nodelist_cb(votequorum_handle_t handle, uint64_t context,
			   votequorum_ring_id_t ring_id, uint32_t n, uint32_t nodes[])
{
	membership_t *m = (membership_t *)(uintptr_t)context;

	m->nquorum = 0;
	for (uint32_t i = 0; i < n && m->nquorum < MEMBERS_MAX; i++)
		m->quorum_ids[m->nquorum++] = nodes[i];
	qb_log(LOG_INFO, "quorum membership ring %u.%" PRIu64 ": %u nodes", ring_id.nodeid,
	       ring_id.seq, n);
	notify(m);
}

static void teardown(membership_t *m)
{
	if (!m->connected)
		return;
	if (m->cpg_fd >= 0)
		qb_loop_poll_del(m->loop, m->cpg_fd);
	if (m->vq_fd >= 0)
		qb_loop_poll_del(m->loop, m->vq_fd);
	cpg_finalize(m->cpg);
	votequorum_finalize(m->vq);
	cmap_finalize(m->cmap);
	m->cpg_fd = m->vq_fd = -1;
	m->connected = false;
	m->quorate = false;
	m->ncpg = m->nquorum = 0;
	m->nnames = 0;
}

static void schedule_reconnect(membership_t *m)
{
	if (m->timer_armed)
		return;
	m->backoff_ms = members_backoff_next(m->backoff_ms);
	if (qb_loop_timer_add(m->loop, QB_LOOP_MED, (uint64_t)m->backoff_ms * QB_TIME_NS_IN_MSEC,
			      m, connect_now, &m->reconnect_timer) == 0)
		m->timer_armed = true;
	else
		qb_log(LOG_ERR, "cannot arm the corosync reconnect timer");
}

static void broken_job(void *data)
{
	membership_t *m = data;

	m->broken = false;
	teardown(m);
	qb_log(LOG_ERR, "corosync unavailable: %s; reconnecting", m->reason);
	notify(m);
	schedule_reconnect(m);
}

static void mark_broken(membership_t *m, const char *what, cs_error_t err)
{
	if (m->broken)
		return;
	m->broken = true;
	snprintf(m->reason, sizeof(m->reason), "%s failed (cs_error %d)", what, (int)err);
	/* tear down outside of the dispatch callback that found the failure */
	qb_loop_job_add(m->loop, QB_LOOP_HIGH, m, broken_job);
}

static int32_t cpg_fd_cb(int32_t fd, int32_t revents, void *data)
{
	membership_t *m = data;
	cs_error_t err;

	err = cpg_dispatch(m->cpg, CS_DISPATCH_ALL);
	if (err != CS_OK && err != CS_ERR_TRY_AGAIN) {
		mark_broken(m, "cpg_dispatch", err);
		return -1;
	}
	if (revents & (POLLHUP | POLLERR | POLLNVAL)) {
		mark_broken(m, "cpg connection hung up;", CS_ERR_LIBRARY);
		return -1;
	}
	return 0;
}

static int32_t vq_fd_cb(int32_t fd, int32_t revents, void *data)
{
	membership_t *m = data;
	cs_error_t err;

	err = votequorum_dispatch(m->vq, CS_DISPATCH_ALL);
	if (err != CS_OK && err != CS_ERR_TRY_AGAIN) {
		mark_broken(m, "votequorum_dispatch", err);
		return -1;
	}
	if (revents & (POLLHUP | POLLERR | POLLNVAL)) {
		mark_broken(m, "votequorum connection hung up;", CS_ERR_LIBRARY);
		return -1;
	}
	return 0;
}

static cs_error_t connect_cpg(membership_t *m)
{
	cpg_model_v1_data_t model = {
		.model = CPG_MODEL_V1,
		.cpg_deliver_fn = cpg_deliver_cb,
		.cpg_confchg_fn = cpg_confchg_cb,
		.cpg_totem_confchg_fn = cpg_totem_cb,
		.flags = CPG_MODEL_V1_DELIVER_INITIAL_TOTEM_CONF,
	};
	struct cpg_name name;
	cs_error_t err;

	err = cpg_model_initialize(&m->cpg, CPG_MODEL_V1, (cpg_model_data_t *)&model, m);
	if (err != CS_OK)
		return err;
	err = cpg_local_get(m->cpg, &m->local_id);
	if (err != CS_OK)
		goto err_finalize;
	name.length = strlen(m->group);
	memcpy(name.value, m->group, name.length);
	err = cpg_join(m->cpg, &name);
	if (err != CS_OK)
		goto err_finalize;
	err = cpg_fd_get(m->cpg, &m->cpg_fd);
	if (err != CS_OK)
		goto err_finalize;
	return CS_OK;
err_finalize:
	cpg_finalize(m->cpg);
	return err;
}

static cs_error_t connect_vq(membership_t *m)
{
	votequorum_callbacks_t cb = {
		.votequorum_quorum_notify_fn = vq_quorum_cb,
		.votequorum_nodelist_notify_fn = vq_nodelist_cb,
	};
	cs_error_t err;

	err = votequorum_initialize(&m->vq, &cb);
	if (err != CS_OK)
		return err;
	err = votequorum_trackstart(m->vq, (uint64_t)(uintptr_t)m,
				    CS_TRACK_CURRENT | CS_TRACK_CHANGES);
	if (err != CS_OK)
		goto err_finalize;
	err = votequorum_fd_get(m->vq, &m->vq_fd);
	if (err != CS_OK)
		goto err_finalize;
	return CS_OK;
err_finalize:
	votequorum_finalize(m->vq);
	return err;
}

static void connect_now(void *data)
{
	membership_t *m = data;
	const char *what;
	cs_error_t err;

	m->timer_armed = false;
	what = "cmap_initialize";
	err = cmap_initialize(&m->cmap);
	if (err != CS_OK)
		goto err_none;
	what = "votequorum_initialize";
	err = connect_vq(m);
	if (err != CS_OK)
		goto err_cmap;
	what = "cpg_join";
	err = connect_cpg(m);
	if (err != CS_OK)
		goto err_vq;
	if (qb_loop_poll_add(m->loop, QB_LOOP_HIGH, m->vq_fd, POLLIN | POLLPRI, m, vq_fd_cb) ||
	    qb_loop_poll_add(m->loop, QB_LOOP_HIGH, m->cpg_fd, POLLIN | POLLPRI, m, cpg_fd_cb)) {
		m->connected = true; /* so teardown undoes everything */
		snprintf(m->reason, sizeof(m->reason), "cannot watch corosync fds");
		teardown(m);
		schedule_reconnect(m);
		return;
	}
	m->connected = true;
	m->backoff_ms = 0;
	m->reason[0] = '\0';
	qb_log(LOG_NOTICE, "connected to corosync as node %u, group %s", m->local_id, m->group);
	notify(m);
	return;
err_vq:
	votequorum_finalize(m->vq);
err_cmap:
	cmap_finalize(m->cmap);
err_none:
	snprintf(m->reason, sizeof(m->reason), "%s failed (cs_error %d)", what, (int)err);
	/* log loudly only on the first failure of a series */
	qb_log(m->backoff_ms ? LOG_DEBUG : LOG_WARNING, "corosync unavailable: %s; retrying",
	       m->reason);
	schedule_reconnect(m);
}

membership_t *membership_create(qb_loop_t *loop, const char *cluster_name,
				const struct membership_ops *ops, void *arg)
{
	membership_t *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	m->loop = loop;
	m->ops = ops;
	m->arg = arg;
	m->cpg_fd = m->vq_fd = -1;
	snprintf(m->group, sizeof(m->group), "hvcluster:%s", cluster_name);
	snprintf(m->reason, sizeof(m->reason), "not connected yet");
	connect_now(m);
	return m;
}

void membership_destroy(membership_t *m)
{
	if (!m)
		return;
	if (m->timer_armed)
		qb_loop_timer_del(m->loop, m->reconnect_timer);
	if (m->connected) {
		struct cpg_name name;

		name.length = strlen(m->group);
		memcpy(name.value, m->group, name.length);
		cpg_leave(m->cpg, &name);
	}
	teardown(m);
	free(m);
}

bool membership_is_available(const membership_t *m)
{
	return m->connected;
}

bool membership_is_quorate(const membership_t *m)
{
	return m->connected && m->quorate;
}

uint32_t membership_local_id(const membership_t *m)
{
	return m->local_id;
}

uint32_t membership_leader(const membership_t *m)
{
	return members_leader(m->ids, m->nids, membership_is_quorate(m));
}

size_t membership_members(membership_t *m, struct member *out, size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i < m->nids && n < max; i++, n++) {
		out[n].id = m->ids[i];
		snprintf(out[n].name, sizeof(out[n].name), "%s",
			 membership_node_name(m, m->ids[i]));
	}
	return n;
}

const char *membership_unavailable_reason(const membership_t *m)
{
	return m->connected ? "" : m->reason;
}

int membership_send(membership_t *m, const struct iovec *iov, unsigned int iovcnt)
{
	cs_error_t err;

	if (!m->connected)
		return -ENOTCONN;
	err = cpg_mcast_joined(m->cpg, CPG_TYPE_AGREED, iov, iovcnt);
	return cs_to_errno(err);
}
