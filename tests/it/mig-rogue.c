/*
 * mig-rogue: a hostile client of a target's migration server, for the integration tests.
 *
 *   mig-rogue curve ENDPOINT SERVER_PUBKEY HELLO [KEYDIR]
 *	a DEALER says HELLO (a JSON text: make it a plausible migration's, so that only
 *	the key can be what refuses it) with a fresh CURVE keypair, one the server does
 *	not know, or with the one in KEYDIR (migrate.key, migrate.pub: a member's);
 *   mig-rogue nocurve ENDPOINT HELLO
 *	the same without CURVE (the NULL mechanism)
 *	Exit 0: "refused": the handshake itself failed (ZAP said no, or the mechanism was
 *	refused) and not a byte came back; 1: "PAST THE HANDSHAKE": the handshake
 *	succeeded or the server answered at all (a REJECT for another reason, an
 *	ACCEPT); 3: neither within 3 s
 *   mig-rogue garbage HOST PORT
 *	plain TCP: 64 KiB of random bytes on one connection, a ZMTP greeting asking for
 *	CURVE followed by junk on another; exits 0 when the server closed them or said
 *	nothing back (prints what happened), 1 on a local error
 *
 * Exit status 2: usage (or a key file that cannot be read).
 */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <zmq.h>

#include "../../migrate/proto.h"

#define WAIT_MS 3000

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static const char *event_name(uint16_t ev)
{
	switch (ev) {
	case ZMQ_EVENT_CONNECTED:
		return "connected";
	case ZMQ_EVENT_CONNECT_RETRIED:
		return "connect retried";
	case ZMQ_EVENT_DISCONNECTED:
		return "disconnected";
	case ZMQ_EVENT_HANDSHAKE_SUCCEEDED:
		return "handshake succeeded";
	case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
		return "handshake failed: authentication";
	case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
		return "handshake failed: protocol";
	case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
		return "handshake failed";
	default:
		return "other event";
	}
}

/* The first 40 characters of @dir/@file: a Z85 key. */
static int read_key(const char *dir, const char *file, char key[41])
{
	char path[4096];
	FILE *f;
	bool ok;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	f = fopen(path, "r");
	if (!f) {
		fprintf(stderr, "mig-rogue: %s: %s\n", path, strerror(errno));
		return -1;
	}
	ok = fread(key, 1, 40, f) == 40;
	key[40] = '\0';
	fclose(f);
	if (!ok)
		fprintf(stderr, "mig-rogue: %s: not a key\n", path);
	return ok ? 0 : -1;
}

/* A DEALER says HELLO; see the usage for the exit status. */
static int hello_client(const char *endpoint, const char *server_key, const char *text,
			const char *keydir)
{
	char pub[41], sec[41];
	struct mig_msg hello = {.type = MIG_MSG_HELLO, .text = text, .text_len = strlen(text)};
	uint64_t end = now_ms() + WAIT_MS;
	bool sent = false, failed = false;
	int linger = 0, rc = 3;
	void *ctx = zmq_ctx_new();
	void *sock, *mon;

	if (!ctx) {
		fprintf(stderr, "mig-rogue: zmq_ctx_new: %s\n", zmq_strerror(zmq_errno()));
		return 2;
	}
	sock = zmq_socket(ctx, ZMQ_DEALER);
	mon = zmq_socket(ctx, ZMQ_PAIR);
	if (!sock || !mon || zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof(linger)) < 0)
		goto err;
	if (server_key) {
		if (keydir) {
			if (read_key(keydir, "migrate.pub", pub) || read_key(keydir, "migrate.key", sec)) {
				rc = 2;
				goto out;
			}
		} else if (zmq_curve_keypair(pub, sec) < 0) {
			goto err;
		}
		if (zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, server_key, strlen(server_key)) < 0 ||
		    zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, pub, 40) < 0 ||
		    zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, sec, 40) < 0)
			goto err;
		printf("our key: %s (%s)\n", pub, keydir ? keydir : "fresh, unknown to the server");
	}
	if (zmq_socket_monitor(sock, "inproc://rogue-mon", ZMQ_EVENT_ALL) < 0 ||
	    zmq_connect(mon, "inproc://rogue-mon") < 0 || zmq_connect(sock, endpoint) < 0)
		goto err;

	while (now_ms() < end) {
		zmq_pollitem_t items[2] = {
			{.socket = sock, .events = ZMQ_POLLIN | (sent ? 0 : ZMQ_POLLOUT)},
			{.socket = mon, .events = ZMQ_POLLIN},
		};
		uint16_t ev;
		uint32_t val;

		if (zmq_poll(items, 2, 100) < 0 && zmq_errno() != EINTR)
			goto err;
		while (mig_zmq_monitor_event(mon, &ev, &val) > 0) {
			printf("event: %s (%u)\n", event_name(ev), val);
			if (ev == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
				printf("PAST THE HANDSHAKE\n");
				rc = 1;
			} else if (ev == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL) {
				printf("the server says: %s\n", mig_zmq_protocol_error(val));
				failed = true;
			} else if (ev == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) {
				printf("the server's ZAP handler says: %u\n", val);
				failed = true;
			} else if (ev == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) {
				/* a server that will not speak our mechanism may close at once
				 * (EPIPE) or first say why (the PROTOCOL event): either way no */
				failed = true;
			}
		}
		if (!sent && (items[0].revents & ZMQ_POLLOUT)) {
			sent = mig_zmq_send(sock, NULL, 0, &hello) == 0;
			if (sent)
				printf("HELLO sent: %s\n", text);
		}
		if (items[0].revents & ZMQ_POLLIN) {
			uint8_t buf[1024];
			struct mig_msg m;
			int n = zmq_recv(sock, buf, sizeof(buf), ZMQ_DONTWAIT);

			if (n < 0)
				continue;
			rc = 1;
			if (mig_msg_decode(buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf),
					   &m, NULL, 0))
				printf("got %d bytes of garbage\n", n);
			else
				printf("got %s: %.*s\n", mig_msg_name(m.type), (int)m.text_len,
				       m.text ? m.text : "");
			printf("PAST THE HANDSHAKE\n");
			goto out;
		}
		/* refused: a while longer, so that a late answer would still be seen */
		if (failed && rc == 3 && now_ms() + WAIT_MS / 2 < end)
			end = now_ms() + WAIT_MS / 2;
	}
	if (rc == 3 && failed) {
		printf("refused\n");
		rc = 0;
	} else if (rc == 3) {
		printf("no handshake result and no answer in %d ms\n", WAIT_MS);
	}
	goto out;
err:
	fprintf(stderr, "mig-rogue: %s\n", zmq_strerror(zmq_errno()));
	rc = 2;
out:
	if (sock)
		zmq_socket_monitor(sock, NULL, 0);
	if (mon)
		zmq_close(mon);
	if (sock)
		zmq_close(sock);
	zmq_ctx_term(ctx);
	return rc;
}

static int tcp_connect(const char *host, const char *port)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai, *a;
	int fd = -1, rc;

	rc = getaddrinfo(host, port, &hints, &ai);
	if (rc) {
		fprintf(stderr, "mig-rogue: %s:%s: %s\n", host, port, gai_strerror(rc));
		return -1;
	}
	for (a = ai; a; a = a->ai_next) {
		fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
		if (fd < 0)
			continue;
		if (connect(fd, a->ai_addr, a->ai_addrlen) == 0)
			break;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(ai);
	if (fd < 0)
		fprintf(stderr, "mig-rogue: connect to %s:%s: %s\n", host, port, strerror(errno));
	return fd;
}

/* Write what the peer takes; then wait for its answer or its close. */
static int junk_connection(const char *what, const char *host, const char *port,
			   const uint8_t *junk, size_t len)
{
	size_t off = 0, back = 0;
	uint64_t end;
	int fd = tcp_connect(host, port);

	if (fd < 0)
		return 1;
	while (off < len) {
		ssize_t n = send(fd, junk + off, len - off, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			printf("%s: the server closed the connection after %zu bytes (%s)\n", what,
			       off, strerror(errno));
			close(fd);
			return 0;
		}
		off += (size_t)n;
	}
	end = now_ms() + WAIT_MS;
	for (;;) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		uint64_t now = now_ms();
		uint8_t buf[4096];
		ssize_t n;

		if (now >= end) {
			printf("%s: %zu bytes out, %zu back, still open after %d ms\n", what, off,
			       back, WAIT_MS);
			break;
		}
		if (poll(&pfd, 1, (int)(end - now)) <= 0)
			continue;
		n = recv(fd, buf, sizeof(buf), 0);
		if (n > 0) {
			back += (size_t)n;
			continue;
		}
		printf("%s: %zu bytes out, %zu back, then the server closed it%s%s\n", what, off,
		       back, n < 0 ? ": " : "", n < 0 ? strerror(errno) : "");
		break;
	}
	close(fd);
	return 0;
}

static int garbage(const char *host, const char *port)
{
	static uint8_t junk[64 * 1024];
	uint8_t zmtp[64 + 4096];
	uint64_t x = (uint64_t)time(NULL) * 0x9e3779b97f4a7c15ull | 1;
	int rc;

	for (size_t i = 0; i < sizeof(junk); i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		junk[i] = (uint8_t)x;
	}
	rc = junk_connection("random bytes", host, port, junk, sizeof(junk));

	/* A ZMTP 3.0 greeting asking for CURVE as a client, then junk where HELLO goes. */
	memset(zmtp, 0, sizeof(zmtp));
	zmtp[0] = 0xff;
	zmtp[9] = 0x7f;
	zmtp[10] = 3;
	zmtp[11] = 0;
	memcpy(zmtp + 12, "CURVE", 5);
	zmtp[32] = 0; /* as-server: no */
	memcpy(zmtp + 64, junk, sizeof(zmtp) - 64);
	zmtp[64] = 0x04; /* a command frame... */
	zmtp[65] = 0xc8; /* ...that is not a valid HELLO */
	rc |= junk_connection("ZMTP greeting and junk", host, port, zmtp, sizeof(zmtp));
	return rc;
}

static int usage(void)
{
	fprintf(stderr,
		"usage: mig-rogue curve ENDPOINT SERVER_PUBKEY HELLO [KEYDIR]\n"
		"       mig-rogue nocurve ENDPOINT HELLO\n"
		"       mig-rogue garbage HOST PORT\n");
	return 2;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	if ((argc == 5 || argc == 6) && !strcmp(argv[1], "curve")) {
		if (strlen(argv[3]) != 40) {
			fprintf(stderr, "mig-rogue: %s is not a Z85 key\n", argv[3]);
			return 2;
		}
		return hello_client(argv[2], argv[3], argv[4], argc == 6 ? argv[5] : NULL);
	}
	if (argc == 4 && !strcmp(argv[1], "nocurve"))
		return hello_client(argv[2], NULL, argv[3], NULL);
	if (argc == 4 && !strcmp(argv[1], "garbage"))
		return garbage(argv[2], argv[3]);
	return usage();
}
