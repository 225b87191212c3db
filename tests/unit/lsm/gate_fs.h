/* gate_fs.h — a pass-through sisy_fs whose chosen operations can be held
 * at a gate: a test arms it for file syncs or reads on paths containing a
 * substring, waits (bounded) until the engine's thread is parked there,
 * checks what the rest of the engine does meanwhile, then opens the gate.
 * This makes "while the flush is stuck" or "while the WAL sync is in
 * progress" deterministic, without sleeping and hoping. The substring may
 * list alternatives separated by '|'.
 * It also records the first operation that failed with SISY_E_CRASHED (over
 * the fault layer: where a simulated crash hit), so crash tests can show
 * which kinds of crash points they covered. Header-only. */
#ifndef SISY_TEST_GATE_FS_H
#define SISY_TEST_GATE_FS_H

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fs.h"

enum { GATE_SYNC = 1, GATE_READ = 2 };

typedef struct gate_fs {
	sisy_fs base;
	sisy_fs *inner;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int ops; /* GATE_* held while armed */
	char substr[128];
	bool armed;
	int waiting;	   /* threads parked at the gate */
	int passed_syncs;  /* syncs that went through on matching paths */
	char crash_op[16]; /* first operation that returned SISY_E_CRASHED */
	char crash_path[512];
} gate_fs;

typedef struct gate_file {
	sisy_file base;
	sisy_file *inner;
	char path[512];
} gate_file;

#define GATE(fs) ((gate_fs *)(fs))
#define GF(f)	 ((gate_file *)(f))

static inline sisy_err gate_note(gate_fs *g, sisy_err rc, const char *op,
				 const char *path)
{
	if (rc == SISY_E_CRASHED) {
		pthread_mutex_lock(&g->mu);
		if (g->crash_op[0] == '\0') {
			snprintf(g->crash_op, sizeof g->crash_op, "%s", op);
			snprintf(g->crash_path, sizeof g->crash_path, "%s",
				 path);
		}
		pthread_mutex_unlock(&g->mu);
	}
	return rc;
}

/* Does path contain one of the '|'-separated parts of g->substr? */
static inline bool gate_match(const gate_fs *g, const char *path)
{
	const char *p = g->substr;
	for (;;) {
		const char *bar = strchr(p, '|');
		size_t n = bar != NULL ? (size_t)(bar - p) : strlen(p);
		char part[128];
		snprintf(part, sizeof part, "%.*s", (int)n, p);
		if (strstr(path, part) != NULL)
			return true;
		if (bar == NULL)
			return false;
		p = bar + 1;
	}
}

static inline void gate_pass(gate_fs *g, int op, const char *path)
{
	pthread_mutex_lock(&g->mu);
	while (g->armed && (g->ops & op) && gate_match(g, path)) {
		g->waiting++;
		pthread_cond_broadcast(&g->cv);
		pthread_cond_wait(&g->cv, &g->mu);
		g->waiting--;
	}
	if (op == GATE_SYNC && gate_match(g, path))
		g->passed_syncs++;
	pthread_mutex_unlock(&g->mu);
}

static inline sisy_err gf_open(sisy_fs *fs, const char *path, int flags,
			       sisy_file **out)
{
	gate_file *f = calloc(1, sizeof *f);
	sisy_err rc = sisy_fs_open(GATE(fs)->inner, path, flags, &f->inner);
	if (rc != SISY_OK) {
		free(f);
		return gate_note(GATE(fs), rc, "open", path);
	}
	f->base.fs = fs;
	snprintf(f->path, sizeof f->path, "%s", path);
	*out = &f->base;
	return SISY_OK;
}
static inline sisy_err gf_close(sisy_file *f)
{
	sisy_err rc = sisy_file_close(GF(f)->inner);
	free(f);
	return rc;
}
static inline sisy_err gf_pread(sisy_file *f, void *b, size_t n, uint64_t o,
				size_t *got)
{
	gate_pass(GATE(f->fs), GATE_READ, GF(f)->path);
	return sisy_file_pread(GF(f)->inner, b, n, o, got);
}
static inline sisy_err gf_pwrite(sisy_file *f, const void *b, size_t n,
				 uint64_t o)
{
	return gate_note(GATE(f->fs), sisy_file_pwrite(GF(f)->inner, b, n, o),
			 "write", GF(f)->path);
}
static inline sisy_err gf_append(sisy_file *f, const void *b, size_t n)
{
	return gate_note(GATE(f->fs), sisy_file_append(GF(f)->inner, b, n),
			 "write", GF(f)->path);
}
static inline sisy_err gf_sync(sisy_file *f)
{
	gate_pass(GATE(f->fs), GATE_SYNC, GF(f)->path);
	return gate_note(GATE(f->fs), sisy_file_sync(GF(f)->inner), "sync",
			 GF(f)->path);
}
static inline sisy_err gf_truncate(sisy_file *f, uint64_t s)
{
	return gate_note(GATE(f->fs), sisy_file_truncate(GF(f)->inner, s),
			 "truncate", GF(f)->path);
}
static inline sisy_err gf_size(sisy_file *f, uint64_t *s)
{
	return sisy_file_size(GF(f)->inner, s);
}
static inline sisy_err gf_prealloc(sisy_file *f, uint64_t s)
{
	return sisy_file_preallocate(GF(f)->inner, s);
}
static inline sisy_err gf_map(sisy_file *f, const uint8_t **d, size_t *n)
{
	gate_pass(GATE(f->fs), GATE_READ, GF(f)->path);
	return sisy_file_map(GF(f)->inner, d, n);
}
static inline sisy_err gf_unmap(sisy_file *f)
{
	return sisy_file_unmap(GF(f)->inner);
}
static inline sisy_err gf_rename(sisy_fs *fs, const char *a, const char *b)
{
	return gate_note(GATE(fs), sisy_fs_rename(GATE(fs)->inner, a, b),
			 "rename", b);
}
static inline sisy_err gf_unlink(sisy_fs *fs, const char *p)
{
	return gate_note(GATE(fs), sisy_fs_unlink(GATE(fs)->inner, p), "unlink",
			 p);
}
static inline sisy_err gf_link(sisy_fs *fs, const char *a, const char *b)
{
	return gate_note(GATE(fs), sisy_fs_link(GATE(fs)->inner, a, b), "link",
			 b);
}
static inline sisy_err gf_mkdir(sisy_fs *fs, const char *p)
{
	return gate_note(GATE(fs), sisy_fs_mkdir(GATE(fs)->inner, p), "mkdir",
			 p);
}
static inline sisy_err gf_rmdir(sisy_fs *fs, const char *p)
{
	return sisy_fs_rmdir(GATE(fs)->inner, p);
}
static inline sisy_err gf_sync_dir(sisy_fs *fs, const char *p)
{
	return gate_note(GATE(fs), sisy_fs_sync_dir(GATE(fs)->inner, p),
			 "syncdir", p);
}
static inline sisy_err gf_exists(sisy_fs *fs, const char *p, bool *e)
{
	return sisy_fs_exists(GATE(fs)->inner, p, e);
}
static inline sisy_err gf_file_size(sisy_fs *fs, const char *p, uint64_t *s)
{
	return sisy_fs_file_size(GATE(fs)->inner, p, s);
}
static inline sisy_err gf_list(sisy_fs *fs, const char *d, sisy_fs_list_fn fn,
			       void *ctx)
{
	return sisy_fs_list(GATE(fs)->inner, d, fn, ctx);
}
static inline sisy_err gf_lock(sisy_fs *fs, const char *p, sisy_lockfile **l)
{
	return sisy_fs_lock(GATE(fs)->inner, p, l);
}
static inline sisy_err gf_unlock(sisy_lockfile *l)
{
	return sisy_fs_unlock(l);
}

static const sisy_fs_ops gate_fs_ops = {
    gf_open,	  gf_close, gf_pread,	 gf_pwrite, gf_append,	 gf_sync,
    gf_truncate,  gf_size,  gf_prealloc, gf_map,    gf_unmap,	 gf_rename,
    gf_unlink,	  gf_link,  gf_mkdir,	 gf_rmdir,  gf_sync_dir, gf_exists,
    gf_file_size, gf_list,  gf_lock,	 gf_unlock,
};

static inline void gate_init(gate_fs *g, sisy_fs *inner)
{
	memset(g, 0, sizeof *g);
	g->base.ops = &gate_fs_ops;
	g->inner = inner;
	pthread_mutex_init(&g->mu, NULL);
	pthread_cond_init(&g->cv, NULL);
}

static inline void gate_arm(gate_fs *g, int ops, const char *substr)
{
	pthread_mutex_lock(&g->mu);
	g->ops = ops;
	snprintf(g->substr, sizeof g->substr, "%s", substr);
	g->armed = true;
	g->passed_syncs = 0;
	pthread_mutex_unlock(&g->mu);
}

static inline void gate_open(gate_fs *g)
{
	pthread_mutex_lock(&g->mu);
	g->armed = false;
	pthread_cond_broadcast(&g->cv);
	pthread_mutex_unlock(&g->mu);
}

/* Waits up to 30 s until n threads are parked; true when they are. */
static inline bool gate_wait_parked(gate_fs *g, int n)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 30;
	pthread_mutex_lock(&g->mu);
	int rc = 0;
	while (g->waiting < n && rc == 0)
		rc = pthread_cond_timedwait(&g->cv, &g->mu, &ts);
	bool ok = g->waiting >= n;
	pthread_mutex_unlock(&g->mu);
	return ok;
}

/* Forgets the recorded crash point. */
static inline void gate_clear_crash(gate_fs *g)
{
	pthread_mutex_lock(&g->mu);
	g->crash_op[0] = '\0';
	g->crash_path[0] = '\0';
	pthread_mutex_unlock(&g->mu);
}

static inline int gate_passed_syncs(gate_fs *g)
{
	pthread_mutex_lock(&g->mu);
	int n = g->passed_syncs;
	pthread_mutex_unlock(&g->mu);
	return n;
}

static inline void gate_destroy(gate_fs *g)
{
	pthread_mutex_destroy(&g->mu);
	pthread_cond_destroy(&g->cv);
}

#endif
