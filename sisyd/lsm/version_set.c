/* version_set.c — the current version, the MANIFEST that persists it, and
 * CURRENT, the pointer to the live MANIFEST.
 *
 * MANIFEST-NNNNNN is a record log (wal.h, kind MANIFEST) of version edits
 * (version_edit.c). Its first record is a snapshot of the whole state (every
 * file, log number, next file number, last sequence, metadata, compaction
 * pointers); each later record is one synced edit. A MANIFEST is never
 * reopened for appending: open, and a MANIFEST grown past
 * manifest_max_bytes, start a new one.
 *
 * CURRENT is one line of text, written to CURRENT.tmp, synced, renamed over
 * CURRENT, and the directory synced:
 *     "sisy-current 1 MANIFEST-000005 1a2b3c4d\n"
 * (format name, format version, the MANIFEST's name, sisy_checksum32 of the
 * text before the last space in hex). An old MANIFEST is deleted only after
 * the directory sync that made the new CURRENT durable.
 *
 * Errors and the failed state: an edit that could not be made durable is
 * not installed. The caller learns from vs->fatal whether the files may
 * have been left in an unknown state (a failed sync, an I/O error, a rename
 * whose durability is unknown): then the engine must stop writing. A clean
 * ENOSPC on a write (nothing half-written remains) is not fatal: the work is
 * retried later. */
#include "version.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"

#define CURRENT_FORMAT	"sisy-current"
#define CURRENT_VERSION 1
#define CURRENT_MAX	256

/* --- building versions --------------------------------------------------- */

typedef struct vbuilder {
	lsm_file_meta **files[LSM_NUM_LEVELS];
	int n[LSM_NUM_LEVELS];
	int cap[LSM_NUM_LEVELS];
} vbuilder;

static void vb_free(vbuilder *b)
{
	for (int l = 0; l < LSM_NUM_LEVELS; l++) {
		for (int i = 0; i < b->n[l]; i++)
			lsm_file_meta_unref(b->files[l][i]);
		free(b->files[l]);
	}
	memset(b, 0, sizeof *b);
}

static sisy_err vb_push(vbuilder *b, int l, lsm_file_meta *f)
{
	if (b->n[l] == b->cap[l]) {
		int ncap = b->cap[l] ? b->cap[l] * 2 : 8;
		lsm_file_meta **p =
		    realloc(b->files[l], (size_t)ncap * sizeof *p);
		if (p == NULL)
			return sisy_errf(SISY_E_NOMEM,
					 "version_set.c: out of memory");
		b->files[l] = p;
		b->cap[l] = ncap;
	}
	f->refs++;
	b->files[l][b->n[l]++] = f;
	return SISY_OK;
}

static sisy_err vb_init(vbuilder *b, const lsm_version *base)
{
	memset(b, 0, sizeof *b);
	for (int l = 0; base != NULL && l < LSM_NUM_LEVELS; l++)
		for (int i = 0; i < base->nfiles[l]; i++) {
			sisy_err rc = vb_push(b, l, base->files[l][i]);
			if (rc != SISY_OK) {
				vb_free(b);
				return rc;
			}
		}
	return SISY_OK;
}

/* Applies e's deletions, then its additions. A deletion of an absent file
 * or an addition of a present one means the MANIFEST is inconsistent. */
static sisy_err vb_apply(vbuilder *b, const lsm_version_edit *e)
{
	for (int d = 0; d < e->ndeleted; d++) {
		int l = e->deleted[d].level;
		int i = 0;
		while (i < b->n[l] &&
		       b->files[l][i]->number != e->deleted[d].number)
			i++;
		if (i == b->n[l])
			return sisy_errf(SISY_E_CORRUPT,
					 "version_set.c: edit deletes table "
					 "%06" PRIu64 " which level %d lacks",
					 e->deleted[d].number, l);
		lsm_file_meta_unref(b->files[l][i]);
		b->files[l][i] = b->files[l][--b->n[l]];
	}
	for (int a = 0; a < e->nadded; a++) {
		for (int l = 0; l < LSM_NUM_LEVELS; l++)
			for (int i = 0; i < b->n[l]; i++)
				if (b->files[l][i]->number ==
				    e->added[a].f->number)
					return sisy_errf(
					    SISY_E_CORRUPT,
					    "version_set.c: edit adds "
					    "table %06" PRIu64 " twice",
					    e->added[a].f->number);
		sisy_err rc = vb_push(b, e->added[a].level, e->added[a].f);
		if (rc != SISY_OK)
			return rc;
	}
	return SISY_OK;
}

static int cmp_number(const void *a, const void *b)
{
	const lsm_file_meta *x = *(lsm_file_meta *const *)a;
	const lsm_file_meta *y = *(lsm_file_meta *const *)b;
	return x->number < y->number ? -1 : x->number > y->number;
}

static int cmp_smallest(const void *a, const void *b)
{
	const lsm_file_meta *x = *(lsm_file_meta *const *)a;
	const lsm_file_meta *y = *(lsm_file_meta *const *)b;
	int c = lsm_ikey_cmp(sisy_buf_slice(&x->smallest),
			     sisy_buf_slice(&y->smallest));
	return c != 0 ? c : cmp_number(a, b);
}

uint64_t lsm_vset_max_bytes_for_level(const lsm_version_set *vs, int level)
{
	uint64_t b = vs->o.l1_max_bytes;
	for (int l = 1; l < level; l++)
		b *= 10;
	return b;
}

static void version_score(lsm_version_set *vs, lsm_version *v)
{
	v->compaction_level = -1;
	v->compaction_score = -1;
	for (int l = 0; l < LSM_NUM_LEVELS - 1; l++) {
		double s;
		if (l == 0)
			s = (double)v->nfiles[0] / vs->o.l0_compaction_trigger;
		else
			s = (double)lsm_version_level_bytes(v, l) /
			    (double)lsm_vset_max_bytes_for_level(vs, l);
		if (s > v->compaction_score) {
			v->compaction_score = s;
			v->compaction_level = l;
		}
	}
}

/* Turns the builder into a version (the builder is emptied). Levels >= 1
 * must not overlap: a MANIFEST that says otherwise is corrupt. */
static sisy_err vb_finish(vbuilder *b, lsm_version_set *vs, lsm_version **out)
{
	lsm_version *v = calloc(1, sizeof *v);
	if (v == NULL)
		return sisy_errf(SISY_E_NOMEM, "version_set.c: out of memory");
	v->vset = vs;
	for (int l = 0; l < LSM_NUM_LEVELS; l++) {
		if (b->n[l] > 1)
			qsort(b->files[l], (size_t)b->n[l],
			      sizeof(lsm_file_meta *),
			      l == 0 ? cmp_number : cmp_smallest);
		for (int i = 1; l > 0 && i < b->n[l]; i++) {
			sisy_slice prev_hi = lsm_ikey_user(
			    sisy_buf_slice(&b->files[l][i - 1]->largest));
			sisy_slice lo = lsm_ikey_user(
			    sisy_buf_slice(&b->files[l][i]->smallest));
			if (sisy_slice_cmp(prev_hi, lo) >= 0) {
				free(v);
				return sisy_errf(
				    SISY_E_CORRUPT,
				    "version_set.c: tables %06" PRIu64
				    " and %06" PRIu64 " overlap in level %d",
				    b->files[l][i - 1]->number,
				    b->files[l][i]->number, l);
			}
		}
		v->files[l] = b->files[l];
		v->nfiles[l] = b->n[l];
		b->files[l] = NULL;
		b->n[l] = b->cap[l] = 0;
	}
	version_score(vs, v);
	*out = v;
	return SISY_OK;
}

static void vset_install(lsm_version_set *vs, lsm_version *v)
{
	v->prev = vs->head.prev;
	v->next = &vs->head;
	v->prev->next = v;
	v->next->prev = v;
	atomic_init(&v->refs, 1);
	lsm_version *old = vs->current;
	vs->current = v;
	if (old != NULL)
		lsm_version_unref(old);
	if (vs->o.installed != NULL)
		vs->o.installed(vs->o.installed_ctx, v);
}

/* A version never installed (an edit that failed). */
static void version_discard(lsm_version *v)
{
	for (int l = 0; l < LSM_NUM_LEVELS; l++) {
		for (int i = 0; i < v->nfiles[l]; i++)
			lsm_file_meta_unref(v->files[l][i]);
		free(v->files[l]);
	}
	free(v);
}

/* --- the set ------------------------------------------------------------- */

sisy_err lsm_vset_new(const lsm_vset_options *o, lsm_version_set **out)
{
	lsm_version_set *vs = calloc(1, sizeof *vs);
	if (vs == NULL)
		return sisy_errf(SISY_E_NOMEM, "version_set.c: out of memory");
	vs->o = *o;
	vs->head.prev = vs->head.next = &vs->head;
	vs->next_file = 2; /* 1 is the first MANIFEST's, by convention */
	lsm_version *v = calloc(1, sizeof *v);
	if (v == NULL) {
		free(vs);
		return sisy_errf(SISY_E_NOMEM, "version_set.c: out of memory");
	}
	v->vset = vs;
	version_score(vs, v);
	vset_install(vs, v);
	*out = vs;
	return SISY_OK;
}

void lsm_vset_free(lsm_version_set *vs)
{
	if (vs == NULL)
		return;
	if (vs->current != NULL)
		lsm_version_unref(vs->current);
	/* every other version must have been released by its reader */
	assert(vs->head.next == &vs->head);
	lsm_wal_close(vs->manifest);
	for (int l = 0; l < LSM_NUM_LEVELS; l++)
		sisy_buf_free(&vs->pointers[l]);
	sisy_buf_free(&vs->meta);
	free(vs);
}

void lsm_vset_live_files(lsm_version_set *vs, void (*fn)(void *, uint64_t),
			 void *ctx)
{
	for (lsm_version *v = vs->head.next; v != &vs->head; v = v->next)
		for (int l = 0; l < LSM_NUM_LEVELS; l++)
			for (int i = 0; i < v->nfiles[l]; i++)
				fn(ctx, v->files[l][i]->number);
}

/* Applies the bookkeeping fields of an edit to the set. */
static sisy_err vset_take_fields(lsm_version_set *vs, const lsm_version_edit *e)
{
	if (e->has_log_number)
		vs->log_number = e->log_number;
	if (e->has_next_file && e->next_file > vs->next_file)
		vs->next_file = e->next_file;
	if (e->has_last_seq && e->last_seq > vs->last_seq)
		vs->last_seq = e->last_seq;
	sisy_err rc = SISY_OK;
	for (int i = 0; rc == SISY_OK && i < e->npointers; i++)
		rc = sisy_buf_set(&vs->pointers[e->pointers[i].level],
				  e->pointers[i].key.data,
				  e->pointers[i].key.len);
	if (rc == SISY_OK && e->has_meta) {
		vs->has_meta = true;
		rc = sisy_buf_set(&vs->meta, e->meta.data, e->meta.len);
	}
	return rc;
}

/* --- CURRENT ------------------------------------------------------------- */

static void path_in(const lsm_version_set *vs, char *out, size_t cap,
		    const char *name)
{
	snprintf(out, cap, "%s/%s", vs->o.dir, name);
}

static sisy_err read_current(lsm_version_set *vs, uint64_t *number)
{
	char path[4096];
	path_in(vs, path, sizeof path, "CURRENT");
	uint8_t *data = NULL;
	size_t len = 0;
	sisy_err rc =
	    sisy_fs_read_all(vs->o.fs, path, CURRENT_MAX, &data, &len);
	if (rc != SISY_OK)
		return rc;
	char text[CURRENT_MAX + 1];
	memcpy(text, data, len);
	text[len] = '\0';
	free(data);
	char fmt[32], name[64];
	int version = 0;
	unsigned crc = 0;
	int used = 0;
	char *sp = strrchr(text, ' ');
	if (len == 0 || text[len - 1] != '\n' || sp == NULL ||
	    sscanf(text, "%31s %d %63s %8x\n%n", fmt, &version, name, &crc,
		   &used) != 4 ||
	    (size_t)used != len || strcmp(fmt, CURRENT_FORMAT) != 0 ||
	    crc != sisy_checksum32(text, (size_t)(sp - text)))
		return sisy_errf(SISY_E_CORRUPT,
				 "version_set.c: %s is damaged (offset 0); "
				 "restore the database from a backup",
				 path);
	if (version != CURRENT_VERSION)
		return sisy_errf(SISY_E_VERSION,
				 "version_set.c: %s has format version %d, "
				 "this build reads %d",
				 path, version, CURRENT_VERSION);
	unsigned long long n;
	char tail;
	if (sscanf(name, "MANIFEST-%llu%c", &n, &tail) != 1)
		return sisy_errf(SISY_E_CORRUPT,
				 "version_set.c: %s names '%s', not a "
				 "MANIFEST",
				 path, name);
	*number = n;
	return SISY_OK;
}

sisy_err lsm_write_current(sisy_fs *fs, const char *dir, uint64_t number,
			   bool *fatal)
{
	char body[128], text[160], tmp[4096], path[4096];
	snprintf(body, sizeof body, "%s %d MANIFEST-%06" PRIu64, CURRENT_FORMAT,
		 CURRENT_VERSION, number);
	int len = snprintf(text, sizeof text, "%s %08x\n", body,
			   (unsigned)sisy_checksum32(body, strlen(body)));
	snprintf(tmp, sizeof tmp, "%s/CURRENT.tmp", dir);
	snprintf(path, sizeof path, "%s/CURRENT", dir);
	sisy_file *f = NULL;
	*fatal = false;
	sisy_err rc = sisy_fs_open(
	    fs, tmp, SISY_O_WRITE | SISY_O_CREATE | SISY_O_TRUNC, &f);
	if (rc == SISY_OK)
		rc = sisy_file_append(f, text, (size_t)len);
	if (rc == SISY_OK) {
		rc = sisy_file_sync(f);
		*fatal = rc != SISY_OK;
	}
	if (f != NULL) {
		sisy_err crc = sisy_file_close(f);
		if (rc == SISY_OK)
			rc = crc;
	}
	if (rc == SISY_OK) {
		rc = sisy_fs_rename(fs, tmp, path);
		if (rc == SISY_OK) {
			rc = sisy_fs_sync_dir(fs, dir);
			*fatal = rc != SISY_OK;
			return rc;
		}
	}
	if (rc != SISY_E_NOSPC)
		*fatal = true;
	sisy_fs_unlink(fs, tmp);
	return rc;
}

/* --- recovery ------------------------------------------------------------ */

sisy_err lsm_vset_recover(lsm_version_set *vs)
{
	uint64_t mnum = 0;
	sisy_err rc = read_current(vs, &mnum);
	if (rc != SISY_OK)
		return rc;
	char path[4096];
	lsm_file_name(path, sizeof path, vs->o.dir, mnum, LSM_FILE_MANIFEST);
	lsm_wal_reader *r = NULL;
	vbuilder b;
	vb_init(&b, NULL);
	lsm_version_edit e;
	lsm_edit_init(&e);
	bool seen_log = false, seen_next = false, seen_seq = false;
	int records = 0;
	rc = lsm_wal_reader_open(vs->o.fs, path, LSM_WAL_MANIFEST, mnum, &r);
	if (rc == SISY_E_NOTFOUND)
		rc = sisy_errf(SISY_E_CORRUPT,
			       "version_set.c: CURRENT names %s, which is "
			       "missing",
			       path);
	sisy_slice rec;
	while (rc == SISY_OK && (rc = lsm_wal_next(r, &rec)) == SISY_OK) {
		lsm_edit_free(&e);
		rc = lsm_edit_decode(&e, rec);
		if (rc == SISY_OK)
			rc = vb_apply(&b, &e);
		if (rc == SISY_OK)
			rc = vset_take_fields(vs, &e);
		if (rc != SISY_OK) {
			if (rc == SISY_E_CORRUPT)
				rc = sisy_errf(
				    rc, "%s at offset %" PRIu64 ": %s", path,
				    lsm_wal_reader_offset(r), sisy_errmsg());
			break;
		}
		seen_log |= e.has_log_number;
		seen_next |= e.has_next_file;
		seen_seq |= e.has_last_seq;
		records++;
	}
	if (rc == SISY_E_NOTFOUND) {
		rc = SISY_OK;
		if (lsm_wal_reader_torn(r))
			sisy_log(vs->o.logger, SISY_LOG_WARN, "lsm",
				 "%s: dropped a torn tail at offset %" PRIu64
				 " (an edit cut short by a crash)",
				 path, lsm_wal_reader_valid_end(r));
		if (records == 0 || !seen_log || !seen_next || !seen_seq)
			rc = sisy_errf(SISY_E_CORRUPT,
				       "version_set.c: %s lacks its snapshot "
				       "record (offset %d); the MANIFEST is "
				       "corrupt",
				       path, LSM_WAL_HEADER);
	}
	lsm_version *v = NULL;
	if (rc == SISY_OK)
		rc = vb_finish(&b, vs, &v);
	if (rc == SISY_OK) {
		lsm_vset_mark_used(vs, mnum);
		vs->manifest_number = mnum;
		vset_install(vs, v);
	}
	lsm_edit_free(&e);
	vb_free(&b);
	lsm_wal_reader_close(r);
	return rc;
}

/* --- writing edits ------------------------------------------------------- */

/* The snapshot edit describing v and the set's fields. */
static sisy_err snapshot_edit(const lsm_version_set *vs, const lsm_version *v,
			      sisy_buf *out)
{
	lsm_version_edit e;
	lsm_edit_init(&e);
	lsm_edit_set_log_number(&e, vs->log_number);
	lsm_edit_set_next_file(&e, vs->next_file);
	lsm_edit_set_last_seq(&e, vs->last_seq);
	sisy_err rc = SISY_OK;
	if (vs->has_meta)
		rc = lsm_edit_set_meta(&e, sisy_buf_slice(&vs->meta));
	for (int l = 0; rc == SISY_OK && l < LSM_NUM_LEVELS; l++) {
		if (vs->pointers[l].len > 0)
			rc = lsm_edit_set_pointer(
			    &e, l, sisy_buf_slice(&vs->pointers[l]));
		for (int i = 0; rc == SISY_OK && i < v->nfiles[l]; i++) {
			const lsm_file_meta *f = v->files[l][i];
			rc = lsm_edit_add_file(&e, l, f->number, f->size,
					       sisy_buf_slice(&f->smallest),
					       sisy_buf_slice(&f->largest));
		}
	}
	if (rc == SISY_OK)
		rc = lsm_edit_encode(&e, out);
	lsm_edit_free(&e);
	return rc;
}

/* Fills the fields an edit must carry. */
static void edit_fill(const lsm_version_set *vs, lsm_version_edit *e)
{
	if (!e->has_log_number)
		lsm_edit_set_log_number(e, vs->log_number);
	if (!e->has_last_seq)
		lsm_edit_set_last_seq(e, vs->last_seq);
	lsm_edit_set_next_file(e, vs->next_file);
}

/* Writes a new MANIFEST with `snap` as its first record and points CURRENT
 * at it. Runs without mu. */
static sisy_err write_manifest(lsm_version_set *vs, uint64_t num,
			       sisy_slice snap, lsm_wal_writer **out,
			       bool *fatal)
{
	char path[4096];
	lsm_file_name(path, sizeof path, vs->o.dir, num, LSM_FILE_MANIFEST);
	lsm_wal_writer *w = NULL;
	*fatal = false;
	sisy_err rc = lsm_wal_create(vs->o.fs, path, LSM_WAL_MANIFEST, num, &w);
	if (rc == SISY_OK)
		rc = lsm_wal_add(w, snap);
	if (rc == SISY_OK) {
		rc = lsm_wal_sync(w);
		*fatal = rc != SISY_OK;
	}
	if (rc == SISY_OK)
		rc = lsm_write_current(vs->o.fs, vs->o.dir, num, fatal);
	if (rc == SISY_OK) {
		*out = w;
		return SISY_OK;
	}
	if (rc != SISY_E_NOSPC)
		*fatal = true;
	lsm_wal_close(w);
	if (!*fatal)
		sisy_fs_unlink(vs->o.fs, path); /* CURRENT never named it */
	return rc;
}

sisy_err lsm_vset_new_manifest(lsm_version_set *vs, lsm_version_edit *e,
			       pthread_mutex_t *mu)
{
	return lsm_vset_log_and_apply_ex(vs, e, mu, true);
}

sisy_err lsm_vset_log_and_apply(lsm_version_set *vs, lsm_version_edit *e,
				pthread_mutex_t *mu)
{
	bool rotate = vs->manifest == NULL ||
		      lsm_wal_size(vs->manifest) >= vs->o.manifest_max_bytes;
	return lsm_vset_log_and_apply_ex(vs, e, mu, rotate);
}

sisy_err lsm_vset_log_and_apply_ex(lsm_version_set *vs, lsm_version_edit *e,
				   pthread_mutex_t *mu, bool new_manifest)
{
	assert(!vs->applying);
	vs->applying = true;
	vs->fatal = false;
	lsm_version_edit empty;
	lsm_edit_init(&empty);
	if (e == NULL)
		e = &empty;
	sisy_buf rec = {0};
	lsm_version *v = NULL;
	vbuilder b;
	uint64_t num = 0;
	edit_fill(vs, e);
	sisy_err rc = vb_init(&b, vs->current);
	if (rc == SISY_OK)
		rc = vb_apply(&b, e);
	if (rc == SISY_OK)
		rc = vb_finish(&b, vs, &v);
	vb_free(&b);
	if (rc != SISY_OK) {
		vs->fatal = true; /* an inconsistent edit is our own bug */
		goto out;
	}
	if (new_manifest) {
		/* The snapshot must describe the state after e: a shallow,
		 * read-only copy of the set with e's fields laid over. */
		num = lsm_vset_new_file_number(vs);
		lsm_version_set after = *vs;
		after.log_number = e->log_number;
		after.last_seq =
		    e->last_seq > vs->last_seq ? e->last_seq : vs->last_seq;
		if (e->has_meta) {
			after.has_meta = true;
			after.meta = e->meta;
		}
		for (int i = 0; i < e->npointers; i++)
			after.pointers[e->pointers[i].level] =
			    e->pointers[i].key;
		rc = snapshot_edit(&after, v, &rec);
	} else {
		rc = lsm_edit_encode(e, &rec);
	}
	if (rc != SISY_OK)
		goto out;
	bool fatal = false;
	lsm_wal_writer *nw = NULL;
	if (mu != NULL)
		pthread_mutex_unlock(mu);
	if (new_manifest) {
		rc = write_manifest(vs, num, sisy_buf_slice(&rec), &nw, &fatal);
	} else {
		rc = lsm_wal_add(vs->manifest, sisy_buf_slice(&rec));
		fatal = rc != SISY_OK &&
			(rc != SISY_E_NOSPC || lsm_wal_broken(vs->manifest));
		if (rc == SISY_OK) {
			rc = lsm_wal_sync(vs->manifest);
			fatal = rc != SISY_OK;
		}
	}
	if (mu != NULL)
		pthread_mutex_lock(mu);
	vs->fatal = fatal;
	if (rc != SISY_OK)
		goto out;
	if (new_manifest) {
		lsm_wal_close(vs->manifest);
		vs->manifest = nw;
		vs->manifest_number = num;
	}
	rc = vset_take_fields(vs, e);
	if (rc != SISY_OK) {
		vs->fatal = true;
		goto out;
	}
	vset_install(vs, v);
	v = NULL;
out:
	if (v != NULL)
		version_discard(v);
	sisy_buf_free(&rec);
	lsm_edit_free(&empty);
	vs->applying = false;
	return rc;
}
