/* fs_fault_int.h — the state of the fault-injecting file system, shared by
 * its three files (not for other modules):
 *   fs_fault_tree.c  the in-memory model: inodes, op logs, directories,
 *                    paths, garbage collection, what a crash keeps;
 *   fs_fault_file.c  the sisy_file operations;
 *   fs_fault.c       names (rename, link, ...), the gate every operation
 *                    passes (crashes, injected errors) and the control API.
 *
 * State. Everything lives under one mutex in a sisy_fs_fault:
 *   - inodes: a file has `cur` (what reads see) and `dur` (what a crash
 *     keeps) plus `ops`, the log of writes and truncates made since its last
 *     sync. Invariant: cur == apply(dur, ops). A sync applies ops to dur and
 *     empties the log, so it costs the unsynced bytes, not the file size.
 *     A directory has `ents` (current entries) and `dur_ents` (as of its last
 *     sisy_fs_sync_dir); hard links are two entries naming one inode.
 *   - a crash sets `crashed` and bumps `epoch`: every handle remembers the
 *     epoch it was opened in, so handles from before a crash are dead forever.
 *     Restart then sets every directory's ents to dur_ents and every file's
 *     cur to dur plus (with torn writes on) a random prefix of its op log, in
 *     the order the ops were made: a prefix of the bytes written since the
 *     last sync survives, whether they were appends or pwrites in the middle
 *     of the file. A truncate in the log counts as one unit of that prefix.
 *     With torn sectors on, the disk reorders instead: the file gets its old
 *     or its new size, and each 512-byte sector that the unsynced ops
 *     changed is, at random, all old or all new (zeros past an end).
 *   - memory: an inode lives while it is reachable from the root through
 *     current or durable entries, or is held by a live handle or lock; gc()
 *     sweeps the rest (mark and sweep, run after the operations that drop
 *     references). A file that no current name and no live handle reach can
 *     never be read again before a crash, so its current bytes are dropped
 *     at once (the disk gives that space back); a crash restores it from dur.
 *   - space: `used` is the sum over files of max(size, preallocated bytes),
 *     current state; with a capacity set, a write, truncate or preallocate
 *     that would push it over fails with SISY_E_NOSPC and changes nothing.
 *
 *
 * Maps: sisy_file_map() hands out a private copy of the file's bytes taken at
 * map time, valid until unmap or close, even across a crash or later writes.
 * Our callers only map immutable files (SSTables), where a copy and a shared
 * mapping are indistinguishable.
 */
#ifndef SISY_FS_FAULT_INT_H
#define SISY_FS_FAULT_INT_H

#include <assert.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "buf.h"
#include "fs_fault.h"
#include "rand.h"

#define FF_PATH_MAX  4096
#define FF_DEPTH_MAX 64
#define FF_NAME_MAX  255
#define FF_SECTOR    512

typedef struct ff_inode ff_inode;

typedef struct ff_dirent {
	char *name;
	ff_inode *ino;
} ff_dirent;

typedef struct ff_dirents {
	ff_dirent *v;
	size_t n, cap;
} ff_dirents;

enum { OP_WRITE, OP_TRUNC };

typedef struct ff_op {
	int kind;
	uint64_t off; /* OP_WRITE: where; OP_TRUNC: the new size */
	uint8_t *data;
	size_t len, cap;
} ff_op;

struct ff_inode {
	bool is_dir;
	bool mark;   /* gc */
	bool locked; /* held by a live sisy_lockfile */
	uint32_t cur_links;
	uint32_t opens; /* live handles and locks */
	uint64_t reserved;
	/* file */
	sisy_buf cur, dur;
	ff_op *ops;
	size_t nops, ops_cap;
	uint64_t op_units; /* write bytes + one per truncate */
	/* directory */
	ff_dirents ents, dur_ents;
};

typedef struct ff_rule {
	int mask;
	char *substr;
	uint64_t skip, count;
	sisy_err err;
} ff_rule;

struct sisy_fs_fault {
	sisy_fs base;
	pthread_mutex_t mu;
	sisy_rand rng;
	ff_inode *root;
	ff_inode **inodes;
	size_t ninodes, inodes_cap;
	uint64_t epoch;
	bool crashed;
	uint64_t crash_at; /* 0: not armed; else the mutation number to fail */
	uint64_t mutations;
	bool torn;
	bool torn_sectors;
	char *ignore_dir_sync;
	ff_rule *rules;
	size_t nrules;
	uint64_t capacity, used;
	size_t handles; /* open sisy_file and lock handles, live or dead */
};

typedef struct ff_file {
	sisy_file base;
	sisy_fs_fault *ff;
	ff_inode *ino;
	int flags;
	uint64_t epoch;
	char *path;
	uint8_t *map;
	size_t map_len;
} ff_file;

typedef struct ff_lock {
	sisy_lockfile base;
	sisy_fs_fault *ff;
	ff_inode *ino;
	uint64_t epoch;
} ff_lock;

typedef struct ff_path {
	char buf[FF_PATH_MAX];
	const char *comp[FF_DEPTH_MAX];
	size_t n;
} ff_path;

extern const sisy_fs_ops fs_fault_ops;

static inline sisy_fs_fault *fs_fault_of(sisy_fs *fs)
{
	assert(fs->ops == &fs_fault_ops);
	return (sisy_fs_fault *)fs;
}

static inline void fs_fault_lock(sisy_fs_fault *ff)
{
	pthread_mutex_lock(&ff->mu);
}

static inline void fs_fault_unlock(sisy_fs_fault *ff)
{
	pthread_mutex_unlock(&ff->mu);
}

/* All below: with the mutex held. */

/* --- fs_fault_tree.c ---------------------------------------------------- */

uint64_t fs_fault_usage(const ff_inode *ino);
bool fs_fault_over_capacity(const sisy_fs_fault *ff, const ff_inode *ino,
			    uint64_t new_usage);
void fs_fault_account(sisy_fs_fault *ff, uint64_t old_usage,
		      const ff_inode *ino);
ff_dirent *fs_fault_dir_find(ff_dirents *d, const char *name);
sisy_err fs_fault_dir_add(ff_dirents *d, const char *name, ff_inode *ino);
void fs_fault_dir_remove(ff_dirents *d, ff_dirent *e);
void fs_fault_dirents_free(ff_dirents *d);
sisy_err fs_fault_dirents_copy(ff_dirents *dst, const ff_dirents *src);
void fs_fault_ops_free(ff_inode *ino);
void fs_fault_inode_free(ff_inode *ino);
ff_inode *fs_fault_inode_new(sisy_fs_fault *ff, bool is_dir);
sisy_err fs_fault_buf_resize(sisy_buf *b, size_t n);
sisy_err fs_fault_buf_write(sisy_buf *b, uint64_t off, const void *data,
			    size_t n);
sisy_err fs_fault_op_log(ff_inode *ino, int kind, uint64_t off,
			 const void *data, size_t n);
sisy_err fs_fault_inode_sync(ff_inode *ino);
void fs_fault_drop_current(sisy_fs_fault *ff, ff_inode *ino);
void fs_fault_unlink_entry(sisy_fs_fault *ff, ff_inode *parent, ff_dirent *e);
void fs_fault_gc(sisy_fs_fault *ff);
sisy_err fs_fault_walk_dir(sisy_fs_fault *ff, const ff_path *p, size_t depth,
			   const char *path, ff_inode **out);
sisy_err fs_fault_resolve_parent(sisy_fs_fault *ff, const char *path,
				 ff_path *p, ff_inode **parent,
				 const char **name);
sisy_err fs_fault_resolve(sisy_fs_fault *ff, const char *path, ff_inode **out);
void fs_fault_restore_file(sisy_fs_fault *ff, ff_inode *ino);
void fs_fault_count_links(ff_inode *d);

/* --- fs_fault_file.c (the sisy_file operations; they take the lock) ---- */

sisy_err fs_fault_file_open(sisy_fs *fs, const char *path, int flags,
			    sisy_file **out);
sisy_err fs_fault_file_close(sisy_file *file);
sisy_err fs_fault_file_pread(sisy_file *file, void *buf, size_t n, uint64_t off,
			     size_t *got);
sisy_err fs_fault_file_pwrite(sisy_file *file, const void *buf, size_t n,
			      uint64_t off);
sisy_err fs_fault_file_append(sisy_file *file, const void *buf, size_t n);
sisy_err fs_fault_file_sync(sisy_file *file);
sisy_err fs_fault_file_truncate(sisy_file *file, uint64_t size);
sisy_err fs_fault_file_size(sisy_file *file, uint64_t *size);
sisy_err fs_fault_file_preallocate(sisy_file *file, uint64_t size);
sisy_err fs_fault_file_map(sisy_file *file, const uint8_t **data, size_t *len);
sisy_err fs_fault_file_unmap(sisy_file *file);

/* --- fs_fault.c --------------------------------------------------------- */

sisy_err fs_fault_crashed_err(const char *what, const char *path);
sisy_err fs_fault_gate(sisy_fs_fault *ff, int kind, const char *what,
		       const char *p1, const char *p2);
sisy_err fs_fault_file_gate(ff_file *f, int kind, const char *what);

#endif
