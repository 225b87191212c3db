/* checkpoint.c — a consistent copy of the database in another directory,
 * for Raft snapshots and backups.
 *
 *   1. flush (through the writer queue): every write acknowledged before
 *      the call is now in a table;
 *   2. under mu, pin the current version and copy what its MANIFEST state
 *      says (last sequence, next file number, the metadata of the last
 *      flushed memtable: the version and the metadata change together);
 *   3. hard-link each table into the new directory (copy when the file
 *      system cannot link), write a MANIFEST holding one snapshot edit
 *      (log number past every file: the copy has no WAL) and CURRENT, sync
 *      the new directory and its parent.
 * The copy opens as a database of its own. Tables are immutable, so a link
 * shares bytes safely; the pin keeps the source files from being deleted
 * while they are linked. On failure the partial copy is removed. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"

/* Copies a file byte for byte (when links are not possible), synced. */
static sisy_err copy_file(sisy_fs *fs, const char *from, const char *to)
{
	sisy_file *in = NULL, *out = NULL;
	uint8_t *buf = malloc(1u << 16);
	sisy_err rc = buf != NULL ? SISY_OK : SISY_E_NOMEM;
	if (rc == SISY_OK)
		rc = sisy_fs_open(fs, from, SISY_O_READ, &in);
	if (rc == SISY_OK)
		rc = sisy_fs_open(
		    fs, to, SISY_O_WRITE | SISY_O_CREATE | SISY_O_EXCL, &out);
	for (uint64_t off = 0; rc == SISY_OK;) {
		size_t got = 0;
		rc = sisy_file_pread(in, buf, 1u << 16, off, &got);
		if (rc != SISY_OK || got == 0)
			break;
		rc = sisy_file_append(out, buf, got);
		off += got;
	}
	if (rc == SISY_OK)
		rc = sisy_file_sync(out);
	if (in != NULL)
		sisy_file_close(in);
	if (out != NULL) {
		sisy_err c = sisy_file_close(out);
		if (rc == SISY_OK)
			rc = c;
	}
	free(buf);
	return rc;
}

typedef struct ckpt {
	sisy_lsm *db;
	const char *dir;
	lsm_version *v;
	lsm_version_edit edit;
	uint64_t manifest;
} ckpt;

static sisy_err place_tables(ckpt *c)
{
	sisy_err rc = SISY_OK;
	for (int l = 0; l < LSM_NUM_LEVELS && rc == SISY_OK; l++) {
		for (int i = 0; i < c->v->nfiles[l] && rc == SISY_OK; i++) {
			const lsm_file_meta *f = c->v->files[l][i];
			char from[4096], to[4096];
			db_path(c->db, from, sizeof from, f->number,
				LSM_FILE_TABLE);
			lsm_file_name(to, sizeof to, c->dir, f->number,
				      LSM_FILE_TABLE);
			rc = sisy_fs_link(c->db->fs, from, to);
			if (rc != SISY_OK && rc != SISY_E_EXISTS &&
			    rc != SISY_E_NOSPC && rc != SISY_E_IO)
				rc = copy_file(c->db->fs, from, to);
			if (rc == SISY_OK)
				rc = lsm_edit_add_file(
				    &c->edit, l, f->number, f->size,
				    sisy_buf_slice(&f->smallest),
				    sisy_buf_slice(&f->largest));
		}
	}
	return rc;
}

static sisy_err write_manifest(ckpt *c)
{
	char path[4096];
	lsm_file_name(path, sizeof path, c->dir, c->manifest,
		      LSM_FILE_MANIFEST);
	sisy_buf rec = {0};
	lsm_wal_writer *w = NULL;
	bool fatal;
	sisy_err rc = lsm_edit_encode(&c->edit, &rec);
	if (rc == SISY_OK)
		rc = lsm_wal_create(c->db->fs, path, LSM_WAL_MANIFEST,
				    c->manifest, &w);
	if (rc == SISY_OK)
		rc = lsm_wal_add(w, sisy_buf_slice(&rec));
	if (rc == SISY_OK)
		rc = lsm_wal_sync(w);
	if (w != NULL) {
		sisy_err cr = lsm_wal_close(w);
		if (rc == SISY_OK)
			rc = cr;
	}
	if (rc == SISY_OK) /* also syncs the directory: names durable */
		rc = lsm_write_current(c->db->fs, c->dir, c->manifest, &fatal);
	sisy_buf_free(&rec);
	return rc;
}

typedef struct rm_ctx {
	sisy_fs *fs;
	const char *dir;
	char **names;
	int n, cap;
} rm_ctx;

static void rm_collect(void *arg, const char *name)
{
	rm_ctx *r = arg;
	if (r->n == r->cap) {
		int ncap = r->cap ? r->cap * 2 : 32;
		char **p = realloc(r->names, (size_t)ncap * sizeof *p);
		if (p == NULL)
			return;
		r->names = p;
		r->cap = ncap;
	}
	r->names[r->n] = strdup(name);
	if (r->names[r->n] != NULL)
		r->n++;
}

/* Best effort: removes a partial checkpoint. */
static void remove_dir(sisy_fs *fs, const char *dir)
{
	rm_ctx r = {.fs = fs, .dir = dir};
	if (sisy_fs_list(fs, dir, rm_collect, &r) == SISY_OK)
		for (int i = 0; i < r.n; i++) {
			char p[4096];
			snprintf(p, sizeof p, "%s/%s", dir, r.names[i]);
			sisy_fs_unlink(fs, p);
		}
	for (int i = 0; i < r.n; i++)
		free(r.names[i]);
	free(r.names);
	sisy_fs_rmdir(fs, dir);
}

static sisy_err parent_sync(sisy_fs *fs, const char *dir)
{
	char parent[4096];
	snprintf(parent, sizeof parent, "%s", dir);
	char *slash = strrchr(parent, '/');
	if (slash == NULL)
		return sisy_fs_sync_dir(fs, ".");
	if (slash == parent)
		slash[1] = '\0';
	else
		*slash = '\0';
	return sisy_fs_sync_dir(fs, parent);
}

sisy_err sisy_lsm_checkpoint(sisy_lsm *db, const char *dir)
{
	if (dir == NULL || dir[0] == '\0' || strlen(dir) > 3000)
		return sisy_errf(SISY_E_INVAL,
				 "lsm: checkpoint needs a directory name");
	bool exists = false;
	sisy_err rc = sisy_fs_exists(db->fs, dir, &exists);
	if (rc != SISY_OK)
		return rc;
	if (exists)
		return sisy_errf(SISY_E_EXISTS,
				 "lsm: checkpoint: %s already exists", dir);
	if ((rc = sisy_lsm_flush(db)) != SISY_OK)
		return rc;

	ckpt c = {.db = db, .dir = dir};
	lsm_edit_init(&c.edit);
	pthread_mutex_lock(&db->mu);
	c.v = db->vs->current;
	lsm_version_ref(c.v);
	lsm_version_set *vs = db->vs;
	lsm_edit_set_last_seq(&c.edit, vs->last_seq);
	c.manifest = vs->next_file; /* past every file the copy holds */
	lsm_edit_set_next_file(&c.edit, c.manifest + 1);
	lsm_edit_set_log_number(&c.edit, c.manifest + 1);
	if (vs->has_meta)
		rc = lsm_edit_set_meta(&c.edit, sisy_buf_slice(&vs->meta));
	pthread_mutex_unlock(&db->mu);

	bool made_dir = false;
	if (rc == SISY_OK)
		rc = sisy_fs_mkdir(db->fs, dir);
	made_dir = rc == SISY_OK;
	if (rc == SISY_OK)
		rc = place_tables(&c);
	if (rc == SISY_OK)
		rc = write_manifest(&c);
	if (rc == SISY_OK)
		rc = parent_sync(db->fs, dir);
	if (rc != SISY_OK && made_dir) {
		char msg[512];
		snprintf(msg, sizeof msg, "%s", sisy_errmsg());
		remove_dir(db->fs, dir);
		rc = sisy_errf(rc, "lsm: checkpoint into %s failed: %s", dir,
			       msg);
	}
	pthread_mutex_lock(&db->mu);
	lsm_version_unref(c.v);
	pthread_mutex_unlock(&db->mu);
	lsm_edit_free(&c.edit);
	return rc;
}
