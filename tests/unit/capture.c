#include "capture.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <cmocka.h>

static FILE *out;
static int saved_stdout = -1;

void capture(void)
{
	fflush(stdout);
	out = tmpfile();
	assert_non_null(out);
	saved_stdout = dup(STDOUT_FILENO);
	assert_true(saved_stdout >= 0);
	assert_true(dup2(fileno(out), STDOUT_FILENO) >= 0);
}

char *captured(void)
{
	long n;
	char *s;

	fflush(stdout);
	dup2(saved_stdout, STDOUT_FILENO);
	close(saved_stdout);
	saved_stdout = -1;
	n = ftell(out);
	s = calloc(1, (size_t)n + 1);
	assert_non_null(s);
	rewind(out);
	assert_int_equal(fread(s, 1, (size_t)n, out), (size_t)n);
	fclose(out);
	out = NULL;
	return s;
}

void capture_cleanup(void)
{
	if (saved_stdout >= 0) {
		fflush(stdout);
		dup2(saved_stdout, STDOUT_FILENO);
		close(saved_stdout);
		saved_stdout = -1;
	}
	if (out)
		fclose(out);
	out = NULL;
}
