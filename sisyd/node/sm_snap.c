/* sm_snap.c — a group's engine directory: opening it, checkpoints for
 * sending, and installing a received snapshot (apply thread).
 *
 * Layout of a group directory (DIR/g<id>/):
 *   CURRENT       "db-NNNNNN\n": the engine directory in use
 *   db-NNNNNN/    the engine (WAL off)
 *   db-MMMMMM/    a snapshot being received (staging), until CURRENT names
 *                 it
 *   snap-<index>/ a checkpoint being sent (hard-linked SSTables)
 * Open removes every db-* that CURRENT does not name and every snap-*: a
 * staging directory or a checkpoint does not survive a restart.
 *
 * Install order (each step durable before the next; docs/node.md):
 *   1. the staging directory is complete and synced (snap_in.c);
 *   2. it opens as an engine whose applied index is the snapshot's;
 *   3. CURRENT names it (temp file, fsync, rename, directory fsync);
 *   4. the loop records the snapshot in the Raft log (set_snapshot), and
 *      only then are older entries dropped.
 * A crash after 3 and before 4 leaves an engine ahead of the log: group.c
 * finishes step 4 on recovery.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "node_int.h"

static void eng_opts(const node_sm *sm, const char *path, bool create,
		     sisy_lsm_options *lo)
{
	sisy_lsm_options_init(lo);
	lo->dir = path;
	lo->fs = sm->fs;
	lo->logger = sm->logger;
	lo->wal = false;
	lo->create_if_missing = create;
	if (sm->cfg.memtable_bytes)
		lo->memtable_bytes = sm->cfg.memtable_bytes;
	if (sm->cfg.memtable_run_bytes)
		lo->memtable_run_bytes = sm->cfg.memtable_run_bytes;
	if (sm->cfg.block_cache_bytes)
		lo->block_cache_bytes = sm->cfg.block_cache_bytes;
	lo->bg_nice = sm->cfg.compaction_nice;
	/* L1 as large as the L0 files that trigger its compaction (RocksDB's
	 * rule for max_bytes_for_level_base): an L0->L1 compaction then
	 * rewrites about as much L1 as it brings in, where LevelDB's 10 MiB
	 * pushes a small key space down into L2 and rewrites it twice per
	 * round (overwrites of 100,000 keys: compaction bytes written -20%). */
	size_t l0_bytes =
	    (size_t)lo->l0_compaction_trigger * lo->memtable_bytes;
	if (lo->l1_max_bytes < l0_bytes)
		lo->l1_max_bytes = l0_bytes;
}

static sisy_err path_of(char *out, size_t cap, const char *dir,
			const char *name)
{
	if (snprintf(out, cap, "%s/%s", dir, name) >= (int)cap)
		return sisy_errf(SISY_E_TOOBIG, "node: path too long: %s/%s",
				 dir, name);
	return SISY_OK;
}

/* ---- directories --------------------------------------------------------- */

typedef struct names {
	char (*v)[256];
	size_t n, cap;
	bool nomem;
} names;

static void collect(void *ctx, const char *name)
{
	names *ns = ctx;
	if (ns->n == ns->cap) {
		size_t cap = ns->cap ? ns->cap * 2 : 32;
		char(*v)[256] = realloc(ns->v, cap * sizeof *v);
		if (v == NULL) {
			ns->nomem = true;
			return;
		}
		ns->v = v;
		ns->cap = cap;
	}
	snprintf(ns->v[ns->n++], 256, "%s", name);
}

static sisy_err list_dir(sisy_fs *fs, const char *dir, names *ns)
{
	memset(ns, 0, sizeof *ns);
	sisy_err rc = sisy_fs_list(fs, dir, collect, ns);
	if (rc == SISY_OK && ns->nomem)
		rc = sisy_errf(SISY_E_NOMEM, "node: out of memory");
	return rc;
}

static void parent_of(const char *path, char *out, size_t cap)
{
	snprintf(out, cap, "%s", path);
	char *slash = strrchr(out, '/');
	if (slash == NULL)
		snprintf(out, cap, ".");
	else if (slash == out)
		out[1] = '\0';
	else
		*slash = '\0';
}

sisy_err node_rmdir_all(sisy_fs *fs, const char *dir)
{
	names ns;
	char path[NODE_PATH], parent[NODE_PATH];
	bool exists;
	sisy_err rc = sisy_fs_exists(fs, dir, &exists);
	if (rc != SISY_OK || !exists)
		return rc;
	if ((rc = list_dir(fs, dir, &ns)) != SISY_OK)
		goto out;
	for (size_t i = 0; i < ns.n && rc == SISY_OK; i++)
		if ((rc = path_of(path, sizeof path, dir, ns.v[i])) == SISY_OK)
			rc = sisy_fs_unlink(fs, path);
	if (rc == SISY_OK)
		rc = sisy_fs_rmdir(fs, dir);
	parent_of(dir, parent, sizeof parent);
	if (rc == SISY_OK)
		rc = sisy_fs_sync_dir(fs, parent);
out:
	free(ns.v);
	return rc;
}

static sisy_err read_current(node_sm *sm, bool *found)
{
	char path[NODE_PATH];
	uint8_t *data = NULL;
	size_t len = 0;
	sisy_err rc = path_of(path, sizeof path, sm->gdir, "CURRENT");
	*found = false;
	if (rc == SISY_OK)
		rc = sisy_fs_read_all(sm->fs, path, 64, &data, &len);
	if (rc == SISY_E_NOTFOUND)
		return SISY_OK;
	if (rc != SISY_OK)
		return rc;
	while (len > 0 && data[len - 1] == '\n')
		len--;
	if (len < 4 || len >= sizeof sm->dbname || memcmp(data, "db-", 3) ||
	    memchr(data, '/', len) || memchr(data, '\0', len)) {
		free(data);
		return sisy_errf(SISY_E_CORRUPT,
				 "node: %s holds no engine name", path);
	}
	memcpy(sm->dbname, data, len);
	sm->dbname[len] = '\0';
	free(data);
	*found = true;
	return SISY_OK;
}

static sisy_err write_current(node_sm *sm, const char *dbname)
{
	char path[NODE_PATH], line[64];
	int len = snprintf(line, sizeof line, "%s\n", dbname);
	sisy_err rc = path_of(path, sizeof path, sm->gdir, "CURRENT");
	if (rc == SISY_OK)
		rc = sisy_fs_write_atomic(sm->fs, sm->gdir, path, line,
					  (size_t)len);
	return rc;
}

/* Leftovers of an earlier run: staging directories, old engines,
 * checkpoints. */
static sisy_err remove_leftovers(node_sm *sm)
{
	names ns;
	char path[NODE_PATH];
	sisy_err rc = list_dir(sm->fs, sm->gdir, &ns);
	for (size_t i = 0; i < ns.n && rc == SISY_OK; i++) {
		const char *name = ns.v[i];
		bool stale = (strncmp(name, "db-", 3) == 0 &&
			      strcmp(name, sm->dbname) != 0) ||
			     strncmp(name, "snap-", 5) == 0;
		if (!stale)
			continue;
		if ((rc = path_of(path, sizeof path, sm->gdir, name)) ==
		    SISY_OK)
			rc = node_rmdir_all(sm->fs, path);
	}
	free(ns.v);
	return rc;
}

static sisy_err mkdir_durable(sisy_fs *fs, const char *dir)
{
	bool exists;
	char parent[NODE_PATH];
	sisy_err rc = sisy_fs_exists(fs, dir, &exists);
	if (rc != SISY_OK || exists)
		return rc;
	if ((rc = sisy_fs_mkdir(fs, dir)) != SISY_OK)
		return rc;
	parent_of(dir, parent, sizeof parent);
	return sisy_fs_sync_dir(fs, parent);
}

/* ---- open / close
 * ------------------------------------------------------------ */

sisy_err node_sm_open(node_sm *sm, sisy_fs *fs, const char *gdir,
		      const node_sm_cfg *cfg, const sisy_logger *logger,
		      node_users *users)
{
	char path[NODE_PATH];
	sisy_lsm_options lo;
	bool found;
	memset(sm, 0, sizeof *sm);
	sm->cfg = *cfg;
	sm->fs = fs;
	sm->logger = logger;
	sm->users = users;
	pthread_rwlock_init(&sm->lock, NULL);
	snprintf(sm->gdir, sizeof sm->gdir, "%s", gdir);
	sm->batch = sisy_lsm_batch_new();
	sisy_err rc = sm->batch
			  ? SISY_OK
			  : sisy_errf(SISY_E_NOMEM, "node: out of memory");
	if (rc == SISY_OK)
		rc = mkdir_durable(fs, gdir);
	if (rc == SISY_OK)
		rc = read_current(sm, &found);
	if (rc == SISY_OK && !found)
		snprintf(sm->dbname, sizeof sm->dbname, "db-000001");
	if (rc == SISY_OK)
		rc = remove_leftovers(sm);
	if (rc == SISY_OK)
		rc = path_of(path, sizeof path, gdir, sm->dbname);
	if (rc == SISY_OK && !found)
		rc = mkdir_durable(fs, path);
	if (rc == SISY_OK) {
		eng_opts(sm, path, !found, &lo);
		rc = sisy_lsm_open(&lo, &sm->db);
	}
	if (rc == SISY_OK && !found)
		rc = write_current(sm, sm->dbname);
	if (rc == SISY_OK)
		rc = node_sm_load(sm);
	if (rc != SISY_OK) {
		char msg[512];
		snprintf(msg, sizeof msg, "%s", sisy_errmsg());
		node_sm_close(sm);
		return sisy_errf(rc, "node: opening the engine of %s: %s", gdir,
				 msg);
	}
	return SISY_OK;
}

void node_sm_close(node_sm *sm)
{
	if (sm->db != NULL) {
		sisy_err rc = sisy_lsm_close(sm->db);
		if (rc != SISY_OK)
			sisy_log(sm->logger, SISY_LOG_ERROR, "node",
				 "closing the engine of %s: %s", sm->gdir,
				 sisy_errmsg());
		sm->db = NULL;
	}
	node_clients_free(&sm->clients);
	sisy_lsm_batch_free(sm->batch);
	sm->batch = NULL;
	sisy_buf_free(&sm->val);
	sisy_buf_free(&sm->key);
	pthread_rwlock_destroy(&sm->lock);
}

/* ---- checkpoints
 * ---------------------------------------------------------------- */

static sisy_err file_sum(sisy_fs *fs, const char *path, uint64_t *size,
			 uint64_t *sum)
{
	sisy_file *f = NULL;
	uint8_t *buf = malloc(1u << 16);
	XXH64_state_t *st = XXH64_createState();
	uint64_t off = 0;
	sisy_err rc = buf && st
			  ? SISY_OK
			  : sisy_errf(SISY_E_NOMEM, "node: out of memory");
	if (rc == SISY_OK)
		rc = sisy_fs_open(fs, path, SISY_O_READ, &f);
	if (rc == SISY_OK)
		XXH64_reset(st, 0);
	while (rc == SISY_OK) {
		size_t got = 0;
		rc = sisy_file_pread(f, buf, 1u << 16, off, &got);
		if (rc != SISY_OK || got == 0)
			break;
		XXH64_update(st, buf, got);
		off += got;
	}
	if (rc == SISY_OK) {
		*size = off;
		*sum = XXH64_digest(st);
	}
	if (f)
		sisy_file_close(f);
	if (st)
		XXH64_freeState(st);
	free(buf);
	return rc;
}

sisy_err node_sm_checkpoint(node_sm *sm, char *dir, size_t cap, uint64_t *index,
			    uint64_t *term, node_file **files, size_t *nfiles)
{
	char path[NODE_PATH], name[64];
	names ns = {0};
	node_file *fv = NULL;
	bool exists;
	*files = NULL;
	*nfiles = 0;
	snprintf(name, sizeof name, "snap-%020" PRIu64, sm->applied);
	sisy_err rc = path_of(dir, cap, sm->gdir, name);
	if (rc == SISY_OK)
		rc = sisy_fs_exists(sm->fs, dir, &exists);
	if (rc == SISY_OK && !exists)
		rc = sisy_lsm_checkpoint(sm->db, dir);
	if (rc == SISY_OK)
		rc = node_sm_meta(sm->db, SISY_LSM_META_LATEST, index, term);
	if (rc == SISY_OK)
		rc = list_dir(sm->fs, dir, &ns);
	if (rc == SISY_OK && ns.n > 0 &&
	    (fv = calloc(ns.n, sizeof *fv)) == NULL)
		rc = sisy_errf(SISY_E_NOMEM, "node: out of memory");
	for (size_t i = 0; i < ns.n && rc == SISY_OK; i++) {
		if (strlen(ns.v[i]) >= sizeof fv[i].name ||
		    strcmp(ns.v[i], "LOCK") == 0)
			continue;
		node_file *f = &fv[(*nfiles)++];
		snprintf(f->name, sizeof f->name, "%s", ns.v[i]);
		if ((rc = path_of(path, sizeof path, dir, f->name)) == SISY_OK)
			rc = file_sum(sm->fs, path, &f->size, &f->checksum);
	}
	free(ns.v);
	if (rc != SISY_OK) {
		free(fv);
		*nfiles = 0;
		return rc;
	}
	*files = fv;
	return SISY_OK;
}

/* ---- install
 * ---------------------------------------------------------------------- */

sisy_err node_sm_install(node_sm *sm, const char *dbname, uint64_t index)
{
	char path[NODE_PATH], old[NODE_PATH];
	sisy_lsm_options lo;
	sisy_lsm *db = NULL;
	uint64_t applied = 0, term = 0;
	sisy_err rc = path_of(path, sizeof path, sm->gdir, dbname);
	if (rc == SISY_OK) {
		eng_opts(sm, path, false, &lo);
		rc = sisy_lsm_open(&lo, &db);
	}
	if (rc == SISY_OK)
		rc = node_sm_meta(db, SISY_LSM_META_LATEST, &applied, &term);
	if (rc == SISY_OK && applied != index)
		rc = sisy_errf(SISY_E_CORRUPT,
			       "node: snapshot %s holds applied index %" PRIu64
			       ", expected %" PRIu64,
			       path, applied, index);
	if (rc == SISY_OK)
		rc = write_current(sm, dbname);
	if (rc != SISY_OK) {
		if (db)
			sisy_lsm_close(db);
		return rc;
	}
	path_of(old, sizeof old, sm->gdir, sm->dbname);
	pthread_rwlock_wrlock(&sm->lock);
	sisy_lsm *prev = sm->db;
	sm->db = db;
	snprintf(sm->dbname, sizeof sm->dbname, "%s", dbname);
	pthread_rwlock_unlock(&sm->lock);
	if (sisy_lsm_close(prev) != SISY_OK)
		sisy_log(sm->logger, SISY_LOG_WARN, "node",
			 "closing the replaced engine %s: %s", old,
			 sisy_errmsg());
	if (node_rmdir_all(sm->fs, old) != SISY_OK)
		sisy_log(sm->logger, SISY_LOG_WARN, "node",
			 "removing the replaced engine %s: %s (removed at the "
			 "next start)",
			 old, sisy_errmsg());
	return node_sm_load(sm);
}
