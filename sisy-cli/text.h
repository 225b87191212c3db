/* text.h — showing untrusted bytes to a person, and reading whole files.
 *
 * Keys and values are binary; before any of them reaches a terminal in a
 * message or the aligned format, control bytes and invalid UTF-8 are
 * escaped so that output can neither lie (a fake prompt) nor drive the
 * terminal (escape sequences). The escapes are the ones the lexer reads
 * back inside quotes: \\ \n \t \r \xHH, so what is shown can be typed.
 */
#ifndef CLI_TEXT_H
#define CLI_TEXT_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "err.h"

/* Appends `s` to `out` escaped: printable ASCII and valid UTF-8 as they
 * are (except the backslash, doubled), \n \t \r for those, \xHH for other
 * control bytes and for bytes of invalid UTF-8. Returns the number of
 * display columns appended (one per code point; wide characters are not
 * measured, so East Asian text may misalign). */
size_t cli_escape_append(sisy_buf *out, sisy_slice s);

/* Writes `s` escaped into buf (NUL-terminated, at most cap-1 bytes), cut
 * with "..." when longer than `max` input bytes: for error messages. */
const char *cli_show(sisy_slice s, size_t max, char *buf, size_t cap);

/* True when s is entirely valid UTF-8 (no overlongs, no surrogates). */
bool cli_utf8_valid(sisy_slice s);

/* Length in bytes of the valid UTF-8 sequence at p (1-4), or 0 when the
 * bytes at p do not start one. */
size_t cli_utf8_seq(const uint8_t *p, size_t avail);

/* Reads all of `path` ("-" = the stream `stdin_fp`) into out, replacing
 * its contents, refusing more than `max` bytes. */
sisy_err cli_read_file(const char *path, void *stdin_fp, size_t max,
		       sisy_buf *out);

#endif
