/* version_edit.c — version edits and their MANIFEST encoding.
 *
 * ENCODING of one edit (one MANIFEST record), a sequence of fields:
 *   varint32 tag, then
 *     1 LOG_NUMBER  varint64 n        WALs below n are obsolete
 *     2 NEXT_FILE   varint64 n        next unused file number
 *     3 LAST_SEQ    varint64 s        last sequence in the tables
 *     4 POINTER     varint32 level, varint32 len, internal key
 *     5 DELETED     varint32 level, varint64 number
 *     6 NEW_FILE    varint32 level, varint64 number, varint64 size,
 *                   varint32 len, smallest internal key,
 *                   varint32 len, largest internal key
 *     7 META        varint32 len, metadata (of the last flushed memtable)
 * An unknown tag is corruption: new fields come with a new file format
 * version (wal.h). Decoding bounds every length (keys <= SISY_LSM_MAX_KEY +
 * 8, metadata <= SISY_LSM_MAX_META, level < LSM_NUM_LEVELS).
 */
#include "version.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "coding.h"
#include "lsm.h"

enum {
	TAG_LOG_NUMBER = 1,
	TAG_NEXT_FILE = 2,
	TAG_LAST_SEQ = 3,
	TAG_POINTER = 4,
	TAG_DELETED = 5,
	TAG_NEW_FILE = 6,
	TAG_META = 7,
};

#define EDIT_MAX_IKEY (SISY_LSM_MAX_KEY + 8)

lsm_file_meta *lsm_file_meta_new(uint64_t number, uint64_t size,
				 sisy_slice smallest, sisy_slice largest)
{
	lsm_file_meta *f = calloc(1, sizeof *f);
	if (f == NULL)
		return NULL;
	f->refs = 1;
	f->number = number;
	f->size = size;
	if (sisy_buf_set(&f->smallest, smallest.data, smallest.len) !=
		SISY_OK ||
	    sisy_buf_set(&f->largest, largest.data, largest.len) != SISY_OK) {
		lsm_file_meta_unref(f);
		return NULL;
	}
	return f;
}

void lsm_file_meta_unref(lsm_file_meta *f)
{
	if (f == NULL)
		return;
	assert(f->refs > 0);
	if (--f->refs == 0) {
		lsm_file_unpin(f);
		sisy_buf_free(&f->smallest);
		sisy_buf_free(&f->largest);
		free(f);
	}
}

void lsm_edit_init(lsm_version_edit *e)
{
	memset(e, 0, sizeof *e);
}

void lsm_edit_free(lsm_version_edit *e)
{
	for (int i = 0; i < e->nadded; i++)
		lsm_file_meta_unref(e->added[i].f);
	for (int i = 0; i < e->npointers; i++)
		sisy_buf_free(&e->pointers[i].key);
	free(e->added);
	free(e->deleted);
	free(e->pointers);
	sisy_buf_free(&e->meta);
	memset(e, 0, sizeof *e);
}

void lsm_edit_set_log_number(lsm_version_edit *e, uint64_t n)
{
	e->has_log_number = true;
	e->log_number = n;
}

void lsm_edit_set_next_file(lsm_version_edit *e, uint64_t n)
{
	e->has_next_file = true;
	e->next_file = n;
}

void lsm_edit_set_last_seq(lsm_version_edit *e, uint64_t s)
{
	e->has_last_seq = true;
	e->last_seq = s;
}

sisy_err lsm_edit_set_meta(lsm_version_edit *e, sisy_slice meta)
{
	e->has_meta = true;
	return sisy_buf_set(&e->meta, meta.data, meta.len);
}

/* Grows an array of `size`-byte elements to hold one more. */
static sisy_err edit_grow(void **arr, int n, int *cap, size_t size)
{
	if (n < *cap)
		return SISY_OK;
	int ncap = *cap ? *cap * 2 : 4;
	void *p = realloc(*arr, (size_t)ncap * size);
	if (p == NULL)
		return sisy_errf(SISY_E_NOMEM, "version_edit.c: out of memory");
	*arr = p;
	*cap = ncap;
	return SISY_OK;
}

sisy_err lsm_edit_add_file(lsm_version_edit *e, int level, uint64_t number,
			   uint64_t size, sisy_slice smallest,
			   sisy_slice largest)
{
	assert(level >= 0 && level < LSM_NUM_LEVELS);
	sisy_err rc = edit_grow((void **)&e->added, e->nadded, &e->capadded,
				sizeof *e->added);
	if (rc != SISY_OK)
		return rc;
	lsm_file_meta *f = lsm_file_meta_new(number, size, smallest, largest);
	if (f == NULL)
		return sisy_errf(SISY_E_NOMEM, "version_edit.c: out of memory");
	e->added[e->nadded++] =
	    (lsm_edit_file){.level = level, .f = f, .number = number};
	return SISY_OK;
}

sisy_err lsm_edit_delete_file(lsm_version_edit *e, int level, uint64_t number)
{
	assert(level >= 0 && level < LSM_NUM_LEVELS);
	sisy_err rc = edit_grow((void **)&e->deleted, e->ndeleted,
				&e->capdeleted, sizeof *e->deleted);
	if (rc != SISY_OK)
		return rc;
	e->deleted[e->ndeleted++] =
	    (lsm_edit_file){.level = level, .number = number};
	return SISY_OK;
}

sisy_err lsm_edit_set_pointer(lsm_version_edit *e, int level, sisy_slice key)
{
	assert(level >= 0 && level < LSM_NUM_LEVELS);
	sisy_err rc = edit_grow((void **)&e->pointers, e->npointers,
				&e->cappointers, sizeof *e->pointers);
	if (rc != SISY_OK)
		return rc;
	e->pointers[e->npointers].level = level;
	memset(&e->pointers[e->npointers].key, 0, sizeof(sisy_buf));
	rc = sisy_buf_set(&e->pointers[e->npointers].key, key.data, key.len);
	if (rc == SISY_OK)
		e->npointers++;
	return rc;
}

static sisy_err put_bytes(sisy_buf *out, sisy_slice s)
{
	sisy_err rc = sisy_buf_append_varint(out, s.len);
	return rc == SISY_OK ? sisy_buf_append(out, s.data, s.len) : rc;
}

static sisy_err put_tag_u64(sisy_buf *out, uint32_t tag, uint64_t v)
{
	sisy_err rc = sisy_buf_append_varint(out, tag);
	return rc == SISY_OK ? sisy_buf_append_varint(out, v) : rc;
}

sisy_err lsm_edit_encode(const lsm_version_edit *e, sisy_buf *out)
{
	sisy_err rc = SISY_OK;
	if (e->has_log_number)
		rc = put_tag_u64(out, TAG_LOG_NUMBER, e->log_number);
	if (rc == SISY_OK && e->has_next_file)
		rc = put_tag_u64(out, TAG_NEXT_FILE, e->next_file);
	if (rc == SISY_OK && e->has_last_seq)
		rc = put_tag_u64(out, TAG_LAST_SEQ, e->last_seq);
	for (int i = 0; rc == SISY_OK && i < e->npointers; i++) {
		rc = put_tag_u64(out, TAG_POINTER,
				 (uint64_t)e->pointers[i].level);
		if (rc == SISY_OK)
			rc =
			    put_bytes(out, sisy_buf_slice(&e->pointers[i].key));
	}
	for (int i = 0; rc == SISY_OK && i < e->ndeleted; i++) {
		rc = put_tag_u64(out, TAG_DELETED,
				 (uint64_t)e->deleted[i].level);
		if (rc == SISY_OK)
			rc = sisy_buf_append_varint(out, e->deleted[i].number);
	}
	for (int i = 0; rc == SISY_OK && i < e->nadded; i++) {
		const lsm_file_meta *f = e->added[i].f;
		rc =
		    put_tag_u64(out, TAG_NEW_FILE, (uint64_t)e->added[i].level);
		if (rc == SISY_OK)
			rc = sisy_buf_append_varint(out, f->number);
		if (rc == SISY_OK)
			rc = sisy_buf_append_varint(out, f->size);
		if (rc == SISY_OK)
			rc = put_bytes(out, sisy_buf_slice(&f->smallest));
		if (rc == SISY_OK)
			rc = put_bytes(out, sisy_buf_slice(&f->largest));
	}
	if (rc == SISY_OK && e->has_meta) {
		rc = sisy_buf_append_varint(out, TAG_META);
		if (rc == SISY_OK)
			rc = put_bytes(out, sisy_buf_slice(&e->meta));
	}
	return rc;
}

/* --- decoding ------------------------------------------------------------ */

typedef struct edit_reader {
	const uint8_t *p, *end;
	bool bad;
} edit_reader;

static uint64_t rd_u64(edit_reader *r)
{
	uint64_t v = 0;
	const uint8_t *q = r->bad ? NULL : sisy_get_varint64(r->p, r->end, &v);
	if (q == NULL) {
		r->bad = true;
		return 0;
	}
	r->p = q;
	return v;
}

static int rd_level(edit_reader *r)
{
	uint64_t v = rd_u64(r);
	if (v >= LSM_NUM_LEVELS)
		r->bad = true;
	return r->bad ? 0 : (int)v;
}

static sisy_slice rd_bytes(edit_reader *r, size_t min, size_t max)
{
	uint64_t n = rd_u64(r);
	if (r->bad || n < min || n > max || n > (uint64_t)(r->end - r->p)) {
		r->bad = true;
		return sisy_slice_make(NULL, 0);
	}
	sisy_slice s = sisy_slice_make(r->p, (size_t)n);
	r->p += n;
	return s;
}

sisy_err lsm_edit_decode(lsm_version_edit *e, sisy_slice in)
{
	edit_reader r = {in.data, in.data + in.len, false};
	sisy_err rc = SISY_OK;
	while (rc == SISY_OK && !r.bad && r.p < r.end) {
		uint64_t tag = rd_u64(&r);
		int level;
		uint64_t num, size;
		sisy_slice a, b;
		switch (tag) {
		case TAG_LOG_NUMBER:
			lsm_edit_set_log_number(e, rd_u64(&r));
			break;
		case TAG_NEXT_FILE:
			lsm_edit_set_next_file(e, rd_u64(&r));
			break;
		case TAG_LAST_SEQ:
			lsm_edit_set_last_seq(e, rd_u64(&r));
			if (e->last_seq > LSM_MAX_SEQ)
				r.bad = true;
			break;
		case TAG_POINTER:
			level = rd_level(&r);
			a = rd_bytes(&r, 8, EDIT_MAX_IKEY);
			if (!r.bad)
				rc = lsm_edit_set_pointer(e, level, a);
			break;
		case TAG_DELETED:
			level = rd_level(&r);
			num = rd_u64(&r);
			if (!r.bad)
				rc = lsm_edit_delete_file(e, level, num);
			break;
		case TAG_NEW_FILE:
			level = rd_level(&r);
			num = rd_u64(&r);
			size = rd_u64(&r);
			a = rd_bytes(&r, 9, EDIT_MAX_IKEY);
			b = rd_bytes(&r, 9, EDIT_MAX_IKEY);
			if (!r.bad && lsm_ikey_cmp(a, b) > 0)
				r.bad = true;
			if (!r.bad)
				rc = lsm_edit_add_file(e, level, num, size, a,
						       b);
			break;
		case TAG_META:
			a = rd_bytes(&r, 0, SISY_LSM_MAX_META);
			if (!r.bad)
				rc = lsm_edit_set_meta(e, a);
			break;
		default:
			r.bad = true;
			break;
		}
	}
	if (rc == SISY_OK && r.bad)
		rc = sisy_errf(SISY_E_CORRUPT,
			       "version_edit.c: malformed version edit at "
			       "byte %zu",
			       (size_t)(r.p - in.data));
	return rc;
}
