/* Small pieces every hvctl command family uses: aligned tables, JSON fields, sizes, paths. */
#include "hvctl.h"

#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

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

		json_array_append_new(row, json_string(s && *s ? s : "-"));
	}
	va_end(ap);
	json_array_append_new(t->rows, row);
}

void ctl_table_print(struct ctl_table *t, const char *indent)
{
	size_t width[CTL_TABLE_COLS] = { 0 }, i;
	json_t *row;

	json_array_foreach(t->rows, i, row)
		for (size_t c = 0; c < t->ncols; c++) {
			size_t w = strlen(json_string_value(json_array_get(row, c)) ?: "");

			width[c] = w > width[c] ? w : width[c];
		}
	json_array_foreach(t->rows, i, row)
	{
		fputs(indent, stdout);
		for (size_t c = 0; c < t->ncols; c++) {
			const char *cell = json_string_value(json_array_get(row, c)) ?: "";

			if (c + 1 < t->ncols)
				printf("%-*s  ", (int)width[c], cell);
			else
				puts(cell);
		}
	}
	json_decref(t->rows);
	t->rows = NULL;
}

static void csv_cell(const char *cell)
{
	if (!strpbrk(cell, ",\"\r\n")) {
		fputs(cell, stdout);
		return;
	}
	putchar('"');
	for (; *cell; cell++) {
		if (*cell == '"')
			putchar('"');
		putchar(*cell);
	}
	putchar('"');
}

void ctl_table_print_csv(struct ctl_table *t)
{
	json_t *row;
	size_t i;

	json_array_foreach(t->rows, i, row)
		for (size_t c = 0; c < t->ncols; c++) {
			const char *cell = json_string_value(json_array_get(row, c)) ?: "";

			csv_cell(strcmp(cell, "-") ? cell : "");
			fputs(c + 1 < t->ncols ? "," : "\r\n", stdout);
		}
	json_decref(t->rows);
	t->rows = NULL;
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
