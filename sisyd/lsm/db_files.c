/* db_files.c — deleting files nothing needs any more.
 *
 * A file is obsolete when
 *   NNNNNN.sst       no live version lists it (a version lives while the
 *                    current one or any reader or compaction pins it);
 *   NNNNNN.log       its number is below the MANIFEST's log number (its
 *                    writes are all in tables);
 *   MANIFEST-NNNNNN  it is not the one CURRENT names;
 *   *.tmp            a temporary file (only the background thread writes
 *                    them, and it is the one running this).
 * Other names are left alone. Deleting needs no directory sync: a deletion
 * lost in a crash only leaves a file the next pass deletes again.
 * Runs on the background thread between jobs, or at open: no output of a
 * running job can be mistaken for an orphan. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "u64set.h"

typedef struct name_list {
	char **names;
	int n, cap;
	bool nomem;
} name_list;

static void collect(void *ctx, const char *name)
{
	name_list *l = ctx;
	if (l->n == l->cap) {
		int ncap = l->cap ? l->cap * 2 : 64;
		char **p = realloc(l->names, (size_t)ncap * sizeof *p);
		if (p == NULL) {
			l->nomem = true;
			return;
		}
		l->names = p;
		l->cap = ncap;
	}
	char *s = strdup(name);
	if (s == NULL) {
		l->nomem = true;
		return;
	}
	l->names[l->n++] = s;
}

typedef struct live_set {
	uint64_t *nums;
	size_t n, cap;
	bool nomem;
} live_set;

static void add_live(void *ctx, uint64_t num)
{
	live_set *s = ctx;
	if (s->n == s->cap) {
		size_t ncap = s->cap ? s->cap * 2 : 64;
		uint64_t *p = realloc(s->nums, ncap * sizeof *p);
		if (p == NULL) {
			s->nomem = true;
			return;
		}
		s->nums = p;
		s->cap = ncap;
	}
	s->nums[s->n++] = num;
}

static bool is_live(const live_set *s, uint64_t num)
{
	return lsm_u64_has(s->nums, s->n, num);
}

/* Parses "NNNNNN.sst" / "NNNNNN.log" / "MANIFEST-NNNNNN". */
static bool parse_name(const char *name, uint64_t *num, int *kind)
{
	unsigned long long n;
	char suffix[8], tail;
	if (sscanf(name, "MANIFEST-%llu%c", &n, &tail) == 1) {
		*num = n;
		*kind = LSM_FILE_MANIFEST;
		return true;
	}
	if (strspn(name, "0123456789") == 0 ||
	    sscanf(name, "%llu.%7s", &n, suffix) != 2)
		return false;
	*num = n;
	if (strcmp(suffix, "sst") == 0)
		*kind = LSM_FILE_TABLE;
	else if (strcmp(suffix, "log") == 0)
		*kind = LSM_FILE_WAL;
	else
		return false;
	return true;
}

void db_delete_obsolete(sisy_lsm *db)
{
	if (db->failed != NULL)
		return;
	live_set live = {0};
	lsm_vset_live_files(db->vs, add_live, &live);
	if (live.nomem) {
		free(live.nums);
		return;
	}
	if (live.n > 1)
		qsort(live.nums, live.n, sizeof *live.nums, lsm_u64_cmp);
	uint64_t log_number = db->vs->log_number;
	uint64_t manifest = db->vs->manifest_number;
	pthread_mutex_unlock(&db->mu);

	name_list l = {0};
	if (sisy_fs_list(db->fs, db->dir, collect, &l) == SISY_OK && !l.nomem) {
		for (int i = 0; i < l.n; i++) {
			const char *name = l.names[i];
			uint64_t num;
			int kind;
			bool del = false;
			size_t len = strlen(name);
			if (len > 4 && strcmp(name + len - 4, ".tmp") == 0)
				del = true;
			else if (parse_name(name, &num, &kind))
				del = (kind == LSM_FILE_TABLE &&
				       !is_live(&live, num)) ||
				      (kind == LSM_FILE_WAL &&
				       num < log_number) ||
				      (kind == LSM_FILE_MANIFEST &&
				       num != manifest);
			if (!del)
				continue;
			char path[4096];
			snprintf(path, sizeof path, "%s/%s", db->dir, name);
			if (parse_name(name, &num, &kind) &&
			    kind == LSM_FILE_TABLE)
				lsm_table_cache_evict(db->tc, num);
			if (sisy_fs_unlink(db->fs, path) == SISY_OK)
				sisy_log(db->log, SISY_LOG_DEBUG, DB_COMPONENT,
					 "deleted obsolete %s", path);
		}
	}
	for (int i = 0; i < l.n; i++)
		free(l.names[i]);
	free(l.names);
	free(live.nums);
	pthread_mutex_lock(&db->mu);
}
