/* out.c — result printing in the aligned, unaligned, CSV and JSON formats
 * (the formats are specified in out.h).
 *
 * State: between cli_out_begin and cli_out_end a table is in progress
 * (in_table); the aligned format holds at most one chunk of rows in
 * `text`/`cellrefs` and prints it when the chunk is full or the table ends.
 * Every write goes through put(), which records the first failure.
 */
#include "out.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "limits.h"
#include "text.h"

void cli_out_init(cli_out *o, FILE *fp)
{
	memset(o, 0, sizeof *o);
	o->fp = fp;
	o->fmt = CLI_FMT_ALIGNED;
	o->fieldsep = '|';
}

void cli_out_free(cli_out *o)
{
	sisy_buf_free(&o->text);
	sisy_buf_free(&o->cellrefs);
}

int cli_format_parse(const char *name)
{
	static const char *const names[] = {"aligned", "unaligned", "csv",
					    "json"};
	for (int i = 0; i < 4; i++)
		if (strcmp(name, names[i]) == 0)
			return i;
	return -1;
}

const char *cli_format_name(cli_format f)
{
	static const char *const names[] = {"aligned", "unaligned", "csv",
					    "json"};
	assert((unsigned)f < 4);
	return names[f];
}

static void put(cli_out *o, const void *p, size_t n)
{
	if (o->err != SISY_OK || n == 0)
		return;
	if (fwrite(p, 1, n, o->fp) != n) {
		int e = errno;
		o->err = sisy_errf(sisy_err_from_errno(e),
				   "cannot write the output: %s", strerror(e));
	}
}

static void puts_(cli_out *o, const char *s)
{
	put(o, s, strlen(s));
}

static void pad(cli_out *o, size_t n)
{
	static const char spaces[] = "                                ";
	while (n > 0) {
		size_t k = n < sizeof spaces - 1 ? n : sizeof spaces - 1;
		put(o, spaces, k);
		n -= k;
	}
}

/* ------------------------------------------------------------ aligned */

static cli_cellref *chunk_cell(cli_out *o, size_t row, size_t col)
{
	cli_cellref *refs = (cli_cellref *)o->cellrefs.data;
	return &refs[row * o->ncols + col];
}

static void aligned_flush(cli_out *o)
{
	size_t width[CLI_OUT_MAX_COLS];
	for (size_t c = 0; c < o->ncols; c++) {
		width[c] = strlen(o->cols[c].name);
		for (size_t r = 0; r < o->chunk_rows; r++)
			if (chunk_cell(o, r, c)->width > width[c])
				width[c] = chunk_cell(o, r, c)->width;
	}
	if (!o->header_done && !o->tuples_only) {
		for (size_t c = 0; c < o->ncols; c++) {
			size_t len = strlen(o->cols[c].name);
			size_t left = (width[c] - len) / 2;
			puts_(o, c ? "| " : " ");
			pad(o, left);
			puts_(o, o->cols[c].name);
			pad(o, width[c] - len - left);
			puts_(o, " ");
		}
		puts_(o, "\n");
		for (size_t c = 0; c < o->ncols; c++) {
			if (c)
				puts_(o, "+");
			for (size_t i = 0; i < width[c] + 2; i++)
				puts_(o, "-");
		}
		puts_(o, "\n");
	}
	o->header_done = true;
	for (size_t r = 0; r < o->chunk_rows; r++) {
		for (size_t c = 0; c < o->ncols; c++) {
			const cli_cellref *ref = chunk_cell(o, r, c);
			bool last = c + 1 == o->ncols;
			bool right = o->cols[c].type == CLI_COL_INT;
			puts_(o, c ? "| " : " ");
			if (right)
				pad(o, width[c] - ref->width);
			put(o, o->text.data + ref->off, ref->len);
			if (!right && !last)
				pad(o, width[c] - ref->width);
			if (!last)
				puts_(o, " ");
		}
		puts_(o, "\n");
	}
	o->chunk_rows = 0;
	o->text.len = 0;
	o->cellrefs.len = 0;
}

static sisy_err aligned_row(cli_out *o, const sisy_slice *cells)
{
	for (size_t c = 0; c < o->ncols; c++) {
		cli_cellref ref = {.off = o->text.len};
		ref.width = cli_escape_append(&o->text, cells[c]);
		ref.len = o->text.len - ref.off;
		sisy_err rc = sisy_buf_append(&o->cellrefs, &ref, sizeof ref);
		if (rc != SISY_OK)
			return rc;
	}
	o->chunk_rows++;
	if (o->chunk_rows >= CLI_ALIGN_CHUNK_ROWS ||
	    o->text.len >= CLI_ALIGN_CHUNK_BYTES)
		aligned_flush(o);
	return SISY_OK;
}

/* ---------------------------------------------------------------- csv */

static void csv_field(cli_out *o, sisy_slice s)
{
	bool quote = false;
	for (size_t i = 0; i < s.len && !quote; i++)
		quote = s.data[i] == ',' || s.data[i] == '"' ||
			s.data[i] == '\n' || s.data[i] == '\r';
	if (!quote) {
		put(o, s.data, s.len);
		return;
	}
	puts_(o, "\"");
	size_t run = 0;
	for (size_t i = 0; i < s.len; i++) {
		if (s.data[i] != '"')
			continue;
		put(o, s.data + run, i + 1 - run); /* through the quote */
		puts_(o, "\"");
		run = i + 1;
	}
	put(o, s.data + run, s.len - run);
	puts_(o, "\"");
}

static void csv_row(cli_out *o, const sisy_slice *cells)
{
	if (o->ncols == 1 && cells[0].len == 0) {
		puts_(o, "\"\"\n");
		return;
	}
	for (size_t c = 0; c < o->ncols; c++) {
		if (c)
			puts_(o, ",");
		csv_field(o, cells[c]);
	}
	puts_(o, "\n");
}

/* --------------------------------------------------------------- json */

static void json_string(cli_out *o, sisy_slice s)
{
	static const char hex[] = "0123456789abcdef";
	puts_(o, "\"");
	size_t run = 0;
	for (size_t i = 0; i < s.len; i++) {
		uint8_t c = s.data[i];
		char esc[7];
		size_t n = 0;
		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			n = 2;
		} else if (c == '\n' || c == '\t' || c == '\r') {
			esc[0] = '\\';
			esc[1] = c == '\n' ? 'n' : c == '\t' ? 't' : 'r';
			n = 2;
		} else if (c < 0x20) {
			memcpy(esc, "\\u00", 4);
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 15];
			n = 6;
		}
		if (n == 0)
			continue;
		put(o, s.data + run, i - run);
		put(o, esc, n);
		run = i + 1;
	}
	put(o, s.data + run, s.len - run);
	puts_(o, "\"");
}

static void json_value(cli_out *o, cli_coltype type, sisy_slice s)
{
	static const char hex[] = "0123456789abcdef";
	if (type != CLI_COL_TEXT) {
		/* Numbers and booleans come from the shell itself, never
		 * from the server's bytes; still, refuse to print anything
		 * that is not what the type promises. */
		bool ok = s.len > 0;
		for (size_t i = 0; i < s.len && ok; i++)
			ok = type == CLI_COL_INT
				 ? (s.data[i] >= '0' && s.data[i] <= '9')
				 : (s.data[i] >= 'a' && s.data[i] <= 'z');
		if (ok) {
			put(o, s.data, s.len);
			return;
		}
	}
	if (cli_utf8_valid(s)) {
		json_string(o, s);
		return;
	}
	puts_(o, "{\"hex\":\"");
	for (size_t i = 0; i < s.len; i++) {
		char h[2] = {hex[s.data[i] >> 4], hex[s.data[i] & 15]};
		put(o, h, 2);
	}
	puts_(o, "\"}");
}

static void json_row(cli_out *o, const sisy_slice *cells)
{
	puts_(o, o->nrows ? ",\n{" : "{");
	for (size_t c = 0; c < o->ncols; c++) {
		if (c)
			puts_(o, ",");
		json_string(o, sisy_slice_str(o->cols[c].name));
		puts_(o, ":");
		json_value(o, o->cols[c].type, cells[c]);
	}
	puts_(o, "}");
}

/* ------------------------------------------------------------- tables */

sisy_err cli_out_begin(cli_out *o, const cli_col *cols, size_t ncols)
{
	assert(!o->in_table);
	assert(ncols >= 1 && ncols <= CLI_OUT_MAX_COLS);
	memcpy(o->cols, cols, ncols * sizeof *cols);
	o->ncols = ncols;
	o->nrows = 0;
	o->header_done = false;
	o->chunk_rows = 0;
	o->text.len = 0;
	o->cellrefs.len = 0;
	o->in_table = true;
	if (o->fmt == CLI_FMT_JSON) {
		puts_(o, "[");
	} else if (!o->tuples_only && o->fmt != CLI_FMT_ALIGNED) {
		for (size_t c = 0; c < ncols; c++) {
			if (c)
				put(o,
				    o->fmt == CLI_FMT_CSV ? "," : &o->fieldsep,
				    1);
			puts_(o, cols[c].name);
		}
		puts_(o, "\n");
	}
	return o->err;
}

sisy_err cli_out_row(cli_out *o, const sisy_slice *cells)
{
	assert(o->in_table);
	sisy_err rc = SISY_OK;
	switch (o->fmt) {
	case CLI_FMT_ALIGNED:
		rc = aligned_row(o, cells);
		break;
	case CLI_FMT_UNALIGNED:
		for (size_t c = 0; c < o->ncols; c++) {
			if (c)
				put(o, &o->fieldsep, 1);
			put(o, cells[c].data, cells[c].len);
		}
		puts_(o, "\n");
		break;
	case CLI_FMT_CSV:
		csv_row(o, cells);
		break;
	case CLI_FMT_JSON:
		json_row(o, cells);
		break;
	}
	o->nrows++;
	return rc != SISY_OK ? rc : o->err;
}

static void footer(cli_out *o)
{
	char line[48];
	if (o->tuples_only || o->fmt == CLI_FMT_CSV)
		return;
	snprintf(line, sizeof line, "(%" PRIu64 " row%s)\n", o->nrows,
		 o->nrows == 1 ? "" : "s");
	puts_(o, line);
}

sisy_err cli_out_end(cli_out *o)
{
	assert(o->in_table);
	switch (o->fmt) {
	case CLI_FMT_ALIGNED:
		aligned_flush(o);
		footer(o);
		puts_(o, "\n");
		break;
	case CLI_FMT_UNALIGNED:
		footer(o);
		break;
	case CLI_FMT_CSV:
		break;
	case CLI_FMT_JSON:
		puts_(o, "]\n");
		break;
	}
	o->in_table = false;
	return o->err;
}

void cli_out_abort(cli_out *o)
{
	if (!o->in_table)
		return;
	if (o->fmt == CLI_FMT_ALIGNED)
		aligned_flush(o);
	else if (o->fmt == CLI_FMT_JSON)
		puts_(o, "]\n");
	o->in_table = false;
}

sisy_err cli_out_tag(cli_out *o, const char *tag)
{
	assert(!o->in_table);
	if (o->quiet)
		return o->err;
	if (o->fmt == CLI_FMT_JSON) {
		puts_(o, "{\"status\":");
		json_string(o, sisy_slice_str(tag));
		puts_(o, "}\n");
	} else {
		puts_(o, tag);
		puts_(o, "\n");
	}
	return o->err;
}

sisy_err cli_out_flush(cli_out *o)
{
	if (fflush(o->fp) != 0 && o->err == SISY_OK) {
		int e = errno;
		o->err = sisy_errf(sisy_err_from_errno(e),
				   "cannot write the output: %s", strerror(e));
	}
	sisy_err rc = o->err;
	o->err = SISY_OK;
	return rc;
}
