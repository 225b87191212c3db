/* out.h — prints results as tables in four formats, or as status tags.
 *
 * A result is either a table (columns, then rows streamed one at a time,
 * then the end) or a status tag ("PUT 1 VERSION 7", "BEGIN"). Formats:
 *
 *   aligned    psql's default: centred header, a rule, cells padded to the
 *              column width (numbers to the right), "(N rows)" and a blank
 *              line. Bytes that could upset a terminal are escaped (see
 *              text.h), so every cell is one line. Widths are computed per
 *              chunk of CLI_ALIGN_CHUNK_ROWS rows, so memory stays bounded
 *              on a huge SCAN.
 *   unaligned  cells joined by the field separator ('|'), raw bytes; a
 *              header line and a "(N rows)" footer unless tuples_only.
 *   csv        RFC 4180 fields (quoted when they hold the separator, a
 *              quote, CR or LF; quotes doubled), lines end in LF as psql's
 *              do; a header row unless tuples_only; no footer. A row that
 *              is a single empty field is written "" so that it is not
 *              mistaken for a blank line.
 *   json       one JSON array of objects per result (one object per row,
 *              one per line); INT columns are numbers, BOOL columns
 *              true/false, text is a JSON string when it is valid UTF-8,
 *              otherwise an object {"hex":"..."} (JSON strings cannot hold
 *              arbitrary bytes). A tag prints as {"status":"..."}.
 *
 * A missing key is never a row: a GET of a missing key prints zero rows
 * (nothing at all with -At), an empty value prints one row with an empty
 * cell (an empty line with -At). That is how every format keeps the two
 * apart.
 *
 * Write errors (a full disk behind \o, a closed pipe) are sticky: the first
 * is remembered and returned by every later call until cli_out_reset_err.
 */
#ifndef CLI_OUT_H
#define CLI_OUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "buf.h"
#include "err.h"

typedef enum cli_format {
	CLI_FMT_ALIGNED = 0,
	CLI_FMT_UNALIGNED,
	CLI_FMT_CSV,
	CLI_FMT_JSON,
} cli_format;

typedef enum cli_coltype {
	CLI_COL_TEXT = 0,
	CLI_COL_INT,  /* decimal digits */
	CLI_COL_BOOL, /* "true" / "false" */
} cli_coltype;

typedef struct cli_col {
	const char *name;
	cli_coltype type;
} cli_col;

#define CLI_OUT_MAX_COLS 16

/* One buffered cell of an aligned chunk. */
typedef struct cli_cellref {
	size_t off, len; /* escaped text in cli_out.text */
	size_t width;	 /* display columns */
} cli_cellref;

typedef struct cli_out {
	/* Settings; change them between results only. */
	FILE *fp;
	cli_format fmt;
	bool tuples_only;
	bool quiet; /* no status tags */
	char fieldsep;
	/* The table in progress. */
	bool in_table;
	cli_col cols[CLI_OUT_MAX_COLS];
	size_t ncols;
	uint64_t nrows;
	bool header_done;
	sisy_buf text;	   /* aligned: escaped cells of the chunk */
	sisy_buf cellrefs; /* aligned: cli_cellref per cell of the chunk */
	size_t chunk_rows;
	sisy_err err; /* sticky write error */
} cli_out;

/* Aligned, to fp, '|' as separator. */
void cli_out_init(cli_out *o, FILE *fp);
void cli_out_free(cli_out *o);

/* "aligned" | "unaligned" | "csv" | "json"; -1 when none of them. */
int cli_format_parse(const char *name);
const char *cli_format_name(cli_format f);

sisy_err cli_out_begin(cli_out *o, const cli_col *cols, size_t ncols);
/* cells[i] for each column; the bytes are copied or written at once. */
sisy_err cli_out_row(cli_out *o, const sisy_slice *cells);
sisy_err cli_out_end(cli_out *o);
/* A status tag, on a line of its own (nothing when quiet). */
sisy_err cli_out_tag(cli_out *o, const char *tag);
/* Ends a table in progress without its footer (an error cut it short):
 * prints what was buffered so the output stays well formed. */
void cli_out_abort(cli_out *o);
/* Flushes fp and returns (and clears) the sticky error. */
sisy_err cli_out_flush(cli_out *o);

#endif
