/*
 * The source of a migration, private to migrate/send*.c: the sender's state and the
 * calls between send.c (setup, the reader, the compressors, the caller's side) and
 * send_net.c (the net thread, which owns the ZeroMQ socket).
 */
#ifndef HV_MIGRATE_SEND_INT_H
#define HV_MIGRATE_SEND_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "proto.h"

#define ABORT_LINGER_MS 250 /* how long closing waits to deliver an ABORT */
#define WHY_MAX 512

struct mig_sender;

struct slot {
	struct mig_sender *s;
	struct slot *next; /* free list, work queue */
	uint64_t seq;
	size_t raw_len;
	size_t wire_len; /* the message: type byte + frame */
	bool raw_frame;
	uint8_t *raw;
	uint8_t *wire;
};

/* An accepted() to report; the one finished() has its place in the sender. */
struct event {
	struct event *next;
	char *text;
};

enum net_state { S_HELLO, S_WAIT_ACCEPT, S_STREAM, S_WAIT_DONE };

struct mig_sender {
	struct mig_send_ops ops;
	void *arg;
	char *hello;
	int fd;
	unsigned int nthreads;
	bool compress;
	unsigned int window;
	unsigned int timeout_ms;
	uint64_t corrupt_seq;
	int ctx_tag; /* ZMQ_THREAD_NAME_PREFIX, to find ZeroMQ's I/O thread */
	int io_tid;  /* the net thread's: that thread's tid, once found */

	void *ctx;
	void *sock;    /* the net thread's */
	void *mon;     /* the net thread's */
	int wake_fd;   /* -> net thread */
	int stop_fd;   /* -> reader, blocked in poll() on the fd */
	int notify_fd; /* -> caller */

	pthread_mutex_t lock;
	pthread_cond_t free_cond; /* reader: a free slot, go, stop */
	pthread_cond_t work_cond; /* compressors: work, stop */
	struct slot *slots;
	unsigned int nslots;
	struct slot *free_list;
	struct slot *work_head, *work_tail;
	struct slot **ready; /* compressed, unsent: [seq % nslots] */
	bool go;
	bool stopping;
	bool eof;
	uint64_t total_blocks, total_raw;
	int read_err;
	bool abort_req;
	char abort_why[WHY_MAX];
	bool finished; /* fin_* set (or freed): nothing more is posted */
	bool fin_posted, fin_ok;
	char fin_why[WHY_MAX];
	struct event *ev_head, *ev_tail;
	bool dispatching, free_pending, quiet;

	_Atomic uint64_t st_raw, st_wire, st_blocks, st_raw_blocks, st_cpu, st_io_cpu;

	pthread_t reader_thr, net_thr, *comp_thr;
	unsigned int ncomp;
	bool reader_started, net_started;
};

/* send.c */
__attribute__((format(printf, 3, 4))) void snd_set_err(char *err, size_t errlen, const char *fmt,
						       ...);
void snd_cpu_account(struct mig_sender *s, uint64_t *last);
void snd_post_accepted(struct mig_sender *s, const char *text);
void snd_post_finished(struct mig_sender *s, bool ok, const char *why);
void snd_stop_all(struct mig_sender *s);
/* ZeroMQ's free function for a frame sent without a copy: the slot is free again. */
void snd_slot_release(void *data, void *hint);

/* send_net.c */
int snd_setup_socket(struct mig_sender *s, const struct mig_send_cfg *cfg, char *err,
		     size_t errlen);
void *snd_net_main(void *arg);

#endif
