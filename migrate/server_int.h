/*
 * The target's server, private to migrate/server*.c: its state and the calls between
 * server.c (setup, the ZAP handler, the caller's side) and server_conn.c (the router
 * thread: connections and their writers).
 */
#ifndef HV_MIGRATE_SERVER_INT_H
#define HV_MIGRATE_SERVER_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <zmq.h>

#include "proto.h"

#define MON_ENDPOINT "inproc://mig-server-monitor"
#define WHY_MAX 512
#define RID_MAX 256
#define SOCKS_MAX 256 /* TCP connections the router tracks to tell garbage from a source */

enum conn_state { C_PENDING, C_STREAM, C_ENDED, C_GONE };
enum writer_state { WR_RUNNING, WR_OK, WR_FAILED };

/* What the router queues for a writer: a BLOCK message, or the END mark. */
struct item {
	struct item *next;
	bool end;
	uint64_t blocks, raw_bytes; /* END */
	zmq_msg_t msg;		    /* BLOCK: the whole message, type byte first */
};

/* One source, by its routing id. */
struct conn {
	struct conn *next;
	struct mig_server *srv;
	uint64_t id;
	uint8_t rid[RID_MAX];
	size_t rid_len;
	char key[MIG_KEY_Z85];
	char peer[64];
	enum conn_state state; /* written by the router only, under the lock */
	bool answered;	       /* the caller accepted or rejected */
	unsigned int refs;     /* queued events and commands */
	uint64_t last_rx;      /* router */
	uint64_t acked;	       /* router: the last ACK sent */
	bool end_queued;       /* router */

	/* the writer; the fields below the lock are shared with it */
	int fd;
	int stop_fd;
	pthread_t writer;
	bool writer_started;
	pthread_cond_t cond;
	struct item *q_head, *q_tail;
	unsigned int qlen;
	bool stop;
	uint64_t written;
	enum writer_state wstate;
	char werr[WHY_MAX];
	struct mig_stats st;
};

/* A TCP connection as the monitor saw it accepted: did it ever deliver a message? */
struct sock {
	int fd;
	bool spoke;
	char peer[64]; /* " from ADDR:PORT", or "" when it closed before we looked */
};

/* Router or ZAP thread -> the caller's mig_server_dispatch(). */
enum ev_kind { EV_INCOMING, EV_ENDED, EV_REJECTED };

struct event {
	struct event *next;
	enum ev_kind kind;
	struct conn *conn; /* holds a reference */
	uint64_t conn_id;
	bool ok;
	char *text;
	char key[MIG_KEY_Z85];
};

/* The caller's mig_server_accept()... -> the router thread. */
enum cmd_kind { CMD_ACCEPT, CMD_REJECT, CMD_FINISH, CMD_ABORT };

struct cmd {
	struct cmd *next;
	enum cmd_kind kind;
	struct conn *conn; /* holds a reference */
	bool ok;
	int fd;
	char *text;
};

struct mig_server {
	struct mig_server_ops ops;
	void *arg;
	void *ctx;
	void *router; /* the router thread's */
	void *mon;    /* the router thread's */
	void *zap;    /* the zap thread's */
	int port;
	int wake_fd;   /* -> router thread */
	int notify_fd; /* -> caller */

	pthread_mutex_t lock; /* everything below, and the conns' shared fields */
	struct conn *conns;
	uint64_t next_id;
	struct cmd *cmd_head, *cmd_tail;
	struct event *ev_head, *ev_tail;
	char (*allowed)[MIG_KEY_Z85];
	size_t nallowed;
	bool stopping;
	uint64_t rl_sec;
	unsigned int rl_count, rl_dropped;
	bool dispatching, free_pending, quiet;

	/* the router thread's: garbage is a connection closed before it said a word */
	struct sock socks[SOCKS_MAX];
	size_t nsocks;
	unsigned int failed_handshakes; /* reported, not yet matched with their close */

	pthread_t router_thr, zap_thr;
	bool router_started, zap_started;
};

/* server.c */
void srv_post_event(struct mig_server *srv, enum ev_kind kind, struct conn *c, bool ok,
		    const char *text);
__attribute__((format(printf, 2, 3))) void srv_post_rejected(struct mig_server *srv,
							     const char *fmt, ...);
bool srv_rate_limit(struct mig_server *srv, bool report);

/* server_conn.c */
void *srv_router_main(void *arg);
struct conn *srv_find_id(struct mig_server *srv, uint64_t id);
void srv_conn_free(struct conn *c);

#endif
