/*
 * hvnoded's configuration file: hv_config_load() (node/config.c) on any bytes, written
 * to a temporary file (the loader takes a path), then hv_config_free().
 *
 * Checks: no crash, no leak (what a load allocated, also a failed one, the free
 * releases); an error message is a C string; a loaded configuration has its mandatory
 * and defaulted fields set.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../node/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what)
{
	fprintf(stderr, "check failed: config: %s\n", what);
	abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[] = "/tmp/hvfuzz-config.XXXXXX";
	struct hv_config cfg;
	char err[512];
	size_t off = 0;
	int fd, rc;

	fd = mkstemp(path);
	if (fd < 0)
		return 0;
	while (off < size) {
		ssize_t n = write(fd, data + off, size - off);

		if (n <= 0)
			break;
		off += (size_t)n;
	}
	close(fd);
	if (off != size) {
		unlink(path);
		return 0;
	}
	memset(&cfg, 0xa5, sizeof(cfg)); /* the loader must not rely on a zeroed config */
	memset(err, 0x55, sizeof(err));
	rc = hv_config_load(&cfg, path, err, sizeof(err));
	if (rc) {
		if (!memchr(err, '\0', sizeof(err)))
			fail("error message not terminated");
	} else if (!cfg.cluster_name || !cfg.state_dir || !cfg.run_dir || !cfg.node_name) {
		fail("loaded without its mandatory or default fields");
	}
	hv_config_free(&cfg);
	unlink(path);
	return 0;
}
