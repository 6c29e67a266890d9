#include "hvctl_fakes.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "../../node/hvctl.h"

int64_t fake_ms;
size_t fake_json_flags = JSON_COMPACT;

void print_json(json_t *obj)
{
	char *s = json_dumps(obj, fake_json_flags);

	printf("%s\n", s ? s : "(null)");
	free(s);
}

int usage_error(const char *help, const char *fmt, ...)
{
	return EXIT_USAGE;
}

int __wrap_nanosleep(const struct timespec *req, struct timespec *rem);
int __wrap_nanosleep(const struct timespec *req, struct timespec *rem)
{
	fake_ms += req->tv_sec * 1000 + req->tv_nsec / 1000000;
	return 0;
}

int __wrap_clock_gettime(clockid_t id, struct timespec *ts);
int __wrap_clock_gettime(clockid_t id, struct timespec *ts)
{
	ts->tv_sec = fake_ms / 1000;
	ts->tv_nsec = (fake_ms % 1000) * 1000000;
	return 0;
}
