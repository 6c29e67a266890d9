/* hvctl's aligned tables: each column as wide as its widest cell. */
#include "hvctl.h"

#include <stdarg.h>
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
