/*
 * What hvctl's unit tests fake around the command under test: print_json and
 * usage_error (node/hvctl.h), and a clock that only sleeping advances (link with
 * -Wl,--wrap=nanosleep -Wl,--wrap=clock_gettime to use it). Each test defines its
 * own call() and parse_common().
 */
#ifndef HV_TESTS_UNIT_HVCTL_FAKES_H
#define HV_TESTS_UNIT_HVCTL_FAKES_H

#include <stddef.h>
#include <stdint.h>

/* The fake clock, in ms: CLOCK_MONOTONIC and CLOCK_REALTIME alike. */
extern int64_t fake_ms;
/* How print_json dumps (jansson flags): JSON_COMPACT (keys in order) unless a test says. */
extern size_t fake_json_flags;

#endif
