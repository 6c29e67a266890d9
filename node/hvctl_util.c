/*
 * Small pieces every hvctl command family uses: tables (aligned, or CSV), JSON fields,
 * sizes, paths.
 */
#include "hvctl.h"

#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

void ctl_table_init(struct ctl_table *t, size_t ncols)
{
	t->rows = json_array();
	t->ncols = ncols < CTL_TABLE_COLS ? ncols : CTL_TABLE_COLS;
}

void ctl_table_row(struct ctl_table *t, ...)
{
	json_t *row = json_array();
	va_list ap;

	va_start(ap, t);
	for (size_t i = 0; i < t->ncols; i++) {
		const char *s = va_arg(ap, const char *);

		json_array_append_new(row, json_string(s ? s : ""));
	}
	va_end(ap);
	json_array_append_new(t->rows, row);
}

/* Cell @c of @row as the aligned table shows it: "-" when empty. */
static const char *cell_text(json_t *row, size_t c)
{
	const char *s = json_string_value(json_array_get(row, c));

	return s && *s ? s : "-";
}

void ctl_table_print(struct ctl_table *t, const char *indent)
{
	size_t width[CTL_TABLE_COLS] = { 0 }, i;
	json_t *row;

	json_array_foreach(t->rows, i, row)
		for (size_t c = 0; c < t->ncols; c++) {
			size_t w = strlen(cell_text(row, c));

			width[c] = w > width[c] ? w : width[c];
		}
	json_array_foreach(t->rows, i, row)
	{
		fputs(indent, stdout);
		for (size_t c = 0; c < t->ncols; c++) {
			const char *cell = cell_text(row, c);

			if (c + 1 < t->ncols)
				printf("%-*s  ", (int)width[c], cell);
			else
				puts(cell);
		}
	}
	json_decref(t->rows);
	t->rows = NULL;
}

/* One field, RFC 4180: quoted when it holds a comma, a quote, CR or LF; quotes doubled. */
static void csv_field(const char *s)
{
	if (!s[strcspn(s, ",\"\r\n")]) {
		fputs(s, stdout);
		return;
	}
	putchar('"');
	for (; *s; s++) {
		if (*s == '"')
			putchar('"');
		putchar(*s);
	}
	putchar('"');
}

void ctl_table_print_csv(struct ctl_table *t)
{
	json_t *row;
	size_t i;

	json_array_foreach(t->rows, i, row)
	{
		for (size_t c = 0; c < t->ncols; c++) {
			if (c)
				putchar(',');
			csv_field(json_string_value(json_array_get(row, c)) ?: "");
		}
		fputs("\r\n", stdout);
	}
	json_decref(t->rows);
	t->rows = NULL;
}

int ctl_csv_check(const struct ctl *ctl, const char *help, const char *cmd)
{
	if (ctl->csv && ctl->json)
		return usage_error(help, "%s: --csv and --json exclude each other", cmd);
	return -1;
}

const char *ctl_str(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s && *s ? s : "-";
}

const char *ctl_join(json_t *a, char *buf, size_t len)
{
	size_t off = 0;
	json_t *v;
	size_t i;

	buf[0] = '\0';
	json_array_foreach(a, i, v)
	{
		int n = snprintf(buf + off, len - off, "%s%s", i ? "," : "", json_string_value(v));

		if (n < 0 || (size_t)n >= len - off)
			break;
		off += (size_t)n;
	}
	return buf;
}

const char *ctl_size(uint64_t bytes, char *buf, size_t len)
{
	static const char *const unit[] = { "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
	double v = (double)bytes / 1024;
	size_t u = 0;

	if (bytes < 1024) {
		snprintf(buf, len, "%llu B", (unsigned long long)bytes);
		return buf;
	}
	/* 1023.96 KiB would print as "1024.0 KiB": take the next unit a little early */
	while (v >= 1023.95 && u + 1 < sizeof(unit) / sizeof(unit[0])) {
		v /= 1024;
		u++;
	}
	snprintf(buf, len, "%.1f %s", v, unit[u]);
	return buf;
}

json_t *ctl_abs_path(const char *p)
{
	char buf[PATH_MAX];

	if (p[0] == '/' || !realpath(p, buf))
		return json_string(p);
	return json_string(buf);
}

int64_t ctl_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void ctl_sleep_ms(int ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}
