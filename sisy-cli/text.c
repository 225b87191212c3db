/* text.c — escaping bytes for display, and whole-file reads (see text.h). */
#include "text.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

size_t cli_utf8_seq(const uint8_t *p, size_t avail)
{
	if (avail == 0)
		return 0;
	uint8_t c = p[0];
	if (c < 0x80)
		return 1;
	size_t n;
	uint32_t cp;
	if (c >= 0xc2 && c <= 0xdf) {
		n = 2;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	if (avail < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	/* Overlong forms, surrogates and values past U+10FFFF. */
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	return n;
}

bool cli_utf8_valid(sisy_slice s)
{
	size_t i = 0;
	while (i < s.len) {
		size_t n = cli_utf8_seq(s.data + i, s.len - i);
		if (n == 0)
			return false;
		i += n;
	}
	return true;
}

size_t cli_escape_append(sisy_buf *out, sisy_slice s)
{
	static const char hex[] = "0123456789abcdef";
	size_t cols = 0;
	size_t i = 0;
	while (i < s.len) {
		uint8_t c = s.data[i];
		char esc[4];
		size_t elen = 0;
		if (c == '\\') {
			esc[0] = esc[1] = '\\';
			elen = 2;
		} else if (c == '\n' || c == '\t' || c == '\r') {
			esc[0] = '\\';
			esc[1] = c == '\n' ? 'n' : c == '\t' ? 't' : 'r';
			elen = 2;
		} else if (c < 0x20 || c == 0x7f) {
			elen = 4;
		}
		size_t n = elen ? 1 : cli_utf8_seq(s.data + i, s.len - i);
		/* C1 controls (U+0080..U+009F) drive terminals too. */
		if (n == 2 && c == 0xc2 && s.data[i + 1] < 0xa0)
			n = 0;
		if (n == 0) {
			n = 1;
			elen = 4;
		}
		if (elen == 4) {
			esc[0] = '\\';
			esc[1] = 'x';
			esc[2] = hex[c >> 4];
			esc[3] = hex[c & 15];
		}
		/* Allocation failure leaves the output short; callers
		 * check the buffer's state through their own appends. */
		if (elen)
			(void)sisy_buf_append(out, esc, elen);
		else
			(void)sisy_buf_append(out, s.data + i, n);
		cols += elen ? elen : 1;
		i += n;
	}
	return cols;
}

const char *cli_show(sisy_slice s, size_t max, char *buf, size_t cap)
{
	sisy_buf b = {0};
	bool cut = s.len > max;
	if (cut)
		s.len = max;
	cli_escape_append(&b, s);
	if (cut)
		(void)sisy_buf_append(&b, "...", 3);
	size_t n = b.len < cap - 1 ? b.len : cap - 1;
	if (n)
		memcpy(buf, b.data, n);
	buf[n] = '\0';
	sisy_buf_free(&b);
	return buf;
}

sisy_err cli_read_file(const char *path, void *stdin_fp, size_t max,
		       sisy_buf *out)
{
	bool is_stdin = strcmp(path, "-") == 0;
	FILE *f = is_stdin ? (FILE *)stdin_fp : fopen(path, "rb");
	sisy_err rc = SISY_OK;
	out->len = 0;
	if (f == NULL) {
		int e = errno;
		return sisy_errf(sisy_err_from_errno(e), "cannot open %s: %s",
				 path, strerror(e));
	}
	for (;;) {
		if ((rc = sisy_buf_reserve(out, 65536)) != SISY_OK)
			goto done;
		size_t room = out->cap - out->len;
		size_t n = fread(out->data + out->len, 1, room, f);
		out->len += n;
		if (out->len > max) {
			rc = sisy_errf(SISY_E_TOOBIG,
				       "%s is larger than %zu bytes",
				       is_stdin ? "standard input" : path, max);
			goto done;
		}
		if (n < room)
			break;
	}
	if (ferror(f)) {
		int e = errno;
		rc = sisy_errf(SISY_E_IO, "cannot read %s: %s",
			       is_stdin ? "standard input" : path, strerror(e));
	}
done:
	if (!is_stdin)
		fclose(f);
	return rc;
}
