/*
 * bench_migpipe: hvnoded's migration stream alone, no QEMU, no lab: a writer thread
 * feeds N MiB through a socketpair into the sender (LZ4 blocks, CURVE, ZeroMQ over
 * tcp://127.0.0.1), the server writes them into a socketpair a reader thread drains.
 * One row per case: data kind (zero, counter, text, random), compression on/off,
 * compression threads; MB/s of raw stream, wire ratio, CPU seconds of the process.
 *
 *   tests/bench/bench_migpipe [MiB]     (default 256)
 *   MIG_WINDOW=N                        the sender's window in blocks (default: the library's)
 *
 * It shows what the stream itself costs per byte, apart from QEMU's side and from the
 * lab's network: what limits the live path on a machine with few cores.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../../migrate/migrate.h"

struct run {
	mig_server_t *srv;
	mig_sender_t *snd;
	const uint8_t *data;
	size_t len;
	int feed_fd;
	int drain_fd;
	size_t drained;
	pthread_t feed_thr, drain_thr;
	bool drain_started;
	bool finished, fin_ok, ended;
	char why[512];
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static double cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
	       ru.ru_stime.tv_usec / 1e6;
}

static void *feed_main(void *arg)
{
	struct run *r = arg;
	size_t off = 0;

	while (off < r->len) {
		size_t chunk = r->len - off > (1u << 20) ? (1u << 20) : r->len - off;
		ssize_t n = write(r->feed_fd, r->data + off, chunk);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	close(r->feed_fd);
	return NULL;
}

static void *drain_main(void *arg)
{
	struct run *r = arg;
	static uint8_t buf[1u << 20];

	for (;;) {
		ssize_t n = read(r->drain_fd, buf, sizeof(buf));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		r->drained += (size_t)n;
	}
	close(r->drain_fd);
	return NULL;
}

static void on_incoming(void *arg, uint64_t conn, const char *hello, const char *key)
{
	struct run *r = arg;
	int sv[2];

	(void)hello;
	(void)key;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		abort();
	r->drain_fd = sv[0];
	pthread_create(&r->drain_thr, NULL, drain_main, r);
	r->drain_started = true;
	mig_server_accept(r->srv, conn, "{\"ok\":1}", sv[1]);
}

static void on_ended(void *arg, uint64_t conn, bool ok, const char *why)
{
	struct run *r = arg;

	r->ended = true;
	if (!ok)
		snprintf(r->why, sizeof(r->why), "target: %s", why);
	mig_server_finish(r->srv, conn, ok, ok ? "" : why);
}

static void on_finished(void *arg, bool ok, const char *why)
{
	struct run *r = arg;

	r->finished = true;
	r->fin_ok = ok;
	if (!ok)
		snprintf(r->why, sizeof(r->why), "source: %s", why);
}

static const struct mig_server_ops srv_ops = {.incoming = on_incoming, .ended = on_ended};
static const struct mig_send_ops snd_ops = {.finished = on_finished};

static void fill(uint8_t *p, size_t len, const char *kind)
{
	uint64_t x = 0x9e3779b97f4a7c15ull;
	static const char *words[] = {"the ", "migration ", "stream ", "of ", "a ", "guest ",
				      "page ", "kernel ", "0x7f3a ", "buffer\n", "cache ", "= "};

	if (!strcmp(kind, "zero")) {
		memset(p, 0, len);
	} else if (!strcmp(kind, "counter")) {
		/* the test guest's dirty pattern: stamp ^ word index */
		for (size_t i = 0; i + 4 <= len; i += 4) {
			uint32_t v = 0x9e3779b9u ^ (uint32_t)(i / 4);
			memcpy(p + i, &v, 4);
		}
	} else if (!strcmp(kind, "text")) {
		size_t off = 0;

		while (off < len) {
			const char *w;
			size_t n;

			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			w = words[x % 12];
			n = strlen(w);
			if (n > len - off)
				n = len - off;
			memcpy(p + off, w, n);
			off += n;
		}
	} else {
		for (size_t i = 0; i + 8 <= len; i += 8) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			memcpy(p + i, &x, 8);
		}
	}
}

static int one(const struct mig_keys *sk, const struct mig_keys *ck, const uint8_t *data,
	       size_t len, const char *kind, bool compress, unsigned int threads)
{
	struct run r = {.data = data, .len = len, .drain_fd = -1};
	char err[512] = "", endpoint[64];
	struct mig_stats st = {0};
	int sv[2];
	uint64_t t0;
	double c0, secs;

	r.srv = mig_server_start("tcp://127.0.0.1:*", sk, &srv_ops, &r, err, sizeof(err));
	if (!r.srv) {
		fprintf(stderr, "server: %s\n", err);
		return 1;
	}
	mig_server_set_allowed(r.srv, (const char(*)[MIG_KEY_Z85])ck->pub, 1);
	snprintf(endpoint, sizeof(endpoint), "tcp://127.0.0.1:%d", mig_server_port(r.srv));
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return 1;
	struct mig_send_cfg cfg = {
		.endpoint = endpoint,
		.server_key = sk->pub,
		.keys = ck,
		.hello = "{\"vm\":\"bench\"}",
		.fd = sv[0],
		.nthreads = threads,
		.compress = compress,
		.window = getenv("MIG_WINDOW") ? (unsigned int)atoi(getenv("MIG_WINDOW")) : 0,
	};
	c0 = cpu_s();
	t0 = now_ns();
	r.snd = mig_send_start(&cfg, &snd_ops, &r, err, sizeof(err));
	if (!r.snd) {
		fprintf(stderr, "sender: %s\n", err);
		return 1;
	}
	r.feed_fd = sv[1];
	pthread_create(&r.feed_thr, NULL, feed_main, &r);
	while (!(r.finished && r.ended)) {
		struct pollfd pfd[2] = {
			{.fd = mig_server_notify_fd(r.srv), .events = POLLIN},
			{.fd = mig_send_notify_fd(r.snd), .events = POLLIN},
		};

		poll(pfd, 2, 100);
		if (pfd[0].revents)
			mig_server_dispatch(r.srv);
		if (pfd[1].revents)
			mig_send_dispatch(r.snd);
		if (r.finished && !r.fin_ok)
			break;
	}
	secs = (double)(now_ns() - t0) / 1e9;
	mig_send_stats(r.snd, &st);
	mig_send_free(r.snd);
	pthread_join(r.feed_thr, NULL);
	mig_server_free(r.srv);
	if (r.drain_started)
		pthread_join(r.drain_thr, NULL);
	if (!r.fin_ok || r.drained != len) {
		fprintf(stderr, "%s: failed (%s), %zu of %zu bytes\n", kind, r.why, r.drained, len);
		return 1;
	}
	printf("%-8s %-5s %7u %9.0f %7.2f %8.2f %8.2f\n", kind, compress ? "lz4" : "raw", threads,
	       (double)len / 1e6 / secs, st.wire_bytes ? (double)st.raw_bytes / st.wire_bytes : 0,
	       cpu_s() - c0, (cpu_s() - c0) / ((double)len / 1e9));
	return 0;
}

int main(int argc, char **argv)
{
	size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 256;
	size_t len = mib << 20;
	const char *kinds[] = {"zero", "counter", "text", "random"};
	char dir[] = "/tmp/bench-migpipe-XXXXXX", sub[64], err[512];
	struct mig_keys sk, ck;
	uint8_t *data = malloc(len);
	int rc = 0;

	if (!data || !mkdtemp(dir))
		return 1;
	snprintf(sub, sizeof(sub), "%s/s", dir);
	mkdir(sub, 0700);
	if (mig_keys_load(sub, &sk, err, sizeof(err)))
		return fprintf(stderr, "%s\n", err), 1;
	snprintf(sub, sizeof(sub), "%s/c", dir);
	mkdir(sub, 0700);
	if (mig_keys_load(sub, &ck, err, sizeof(err)))
		return fprintf(stderr, "%s\n", err), 1;
	printf("%zu MiB through sender -> tcp://127.0.0.1 (CURVE) -> server, one process\n", mib);
	printf("%-8s %-5s %7s %9s %7s %8s %8s\n", "data", "mode", "threads", "MB/s", "ratio",
	       "cpu s", "cpu s/GB");
	for (size_t k = 0; k < 4; k++) {
		fill(data, len, kinds[k]);
		rc |= one(&sk, &ck, data, len, kinds[k], false, 1);
		rc |= one(&sk, &ck, data, len, kinds[k], true, 1);
		rc |= one(&sk, &ck, data, len, kinds[k], true, 2);
	}
	free(data);
	return rc;
}
