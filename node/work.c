/*
 * Blocking work (iSCSI logins, persistent reservations) runs in worker
 * threads so the loop never waits on the network. A finished job is handed
 * back through a pipe and completed on the loop, where all state lives.
 */
#include "hvnoded.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <qb/qblog.h>

struct job {
	struct hvnoded *d;
	int (*fn)(void *arg);
	void (*done)(void *arg, int rc);
	void *arg;
	int rc;
};

static void *job_thread(void *data)
{
	struct job *j = data;
	ssize_t n;

	j->rc = j->fn(j->arg);
	/* a pointer is smaller than PIPE_BUF: the write is atomic */
	do {
		n = write(j->d->work_pipe[1], &j, sizeof(j));
	} while (n < 0 && errno == EINTR);
	if (n != sizeof(j))
		qb_log(LOG_CRIT, "worker cannot report a finished job: %s", strerror(errno));
	return NULL;
}

static int32_t work_dispatch(int32_t fd, int32_t revents, void *data)
{
	struct hvnoded *d = data;
	struct job *j;

	while (read(fd, &j, sizeof(j)) == sizeof(j)) {
		d->work_running--;
		j->done(j->arg, j->rc);
		free(j);
	}
	return 0;
}

int work_submit(struct hvnoded *d, int (*fn)(void *arg), void (*done)(void *arg, int rc),
		void *arg)
{
	struct job *j = calloc(1, sizeof(*j));
	pthread_attr_t attr;
	pthread_t t;
	int rc;

	if (!j)
		return -ENOMEM;
	j->d = d;
	j->fn = fn;
	j->done = done;
	j->arg = arg;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	rc = pthread_create(&t, &attr, job_thread, j);
	pthread_attr_destroy(&attr);
	if (rc != 0) {
		free(j);
		return -rc;
	}
	d->work_running++;
	return 0;
}

int work_init(struct hvnoded *d)
{
	if (pipe2(d->work_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
		return -errno;
	return qb_loop_poll_add(d->loop, QB_LOOP_HIGH, d->work_pipe[0], POLLIN, d, work_dispatch);
}

void work_drain(struct hvnoded *d)
{
	/* their completions may submit more: wait until none runs */
	while (d->work_running) {
		struct pollfd p = { .fd = d->work_pipe[0], .events = POLLIN };

		poll(&p, 1, 1000);
		work_dispatch(d->work_pipe[0], POLLIN, d);
	}
}

void work_fini(struct hvnoded *d)
{
	/* let running jobs finish: they touch d's pipe */
	work_drain(d);
	qb_loop_poll_del(d->loop, d->work_pipe[0]);
	close(d->work_pipe[0]);
	close(d->work_pipe[1]);
}
