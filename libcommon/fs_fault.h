/* fs_fault.h — an in-memory sisy_fs that models a machine crash and injects
 * errors. For tests and the simulator only; never used by a real server.
 *
 * The model (the one fs.h promises):
 *   - each file has its current bytes and its durable bytes (as of its last
 *     sisy_file_sync); each directory its current entries and its durable
 *     entries (as of its last sisy_fs_sync_dir);
 *   - a crash replaces current with durable everywhere: unsynced data,
 *     creates, renames, links and unlinks not followed by a directory sync
 *     are lost. With torn writes on, a file keeps a random prefix of the bytes
 *     written since its last sync instead of none of them;
 *   - a new file's durable contents are empty until it is synced, and it has
 *     no durable name until its directory is synced.
 *
 * A crash happens either now (sisy_fs_fault_crash) or armed to fire at the
 * n-th mutating operation from now (sisy_fs_fault_crash_after). From the
 * moment it fires, every operation on the file system or on any file opened
 * before returns SISY_E_CRASHED (close still frees the handle), so the code
 * under test can unwind; sisy_fs_fault_restart() then applies the loss and
 * makes the file system usable again, as a rebooted machine's disk.
 *
 * Deterministic: all randomness comes from the seed. Thread-safe (one mutex),
 * so an engine's background threads can run on it.
 */
#ifndef SISY_FS_FAULT_H
#define SISY_FS_FAULT_H

#include <stdbool.h>
#include <stdint.h>

#include "fs.h"

typedef struct sisy_fs_fault sisy_fs_fault;

/* Operation kinds, for counting crash points and targeting injected errors. */
enum {
	SISY_FAULT_OPEN = 1 << 0,     /* open with SISY_O_CREATE or TRUNC */
	SISY_FAULT_WRITE = 1 << 1,    /* pwrite, append */
	SISY_FAULT_SYNC = 1 << 2,     /* file sync */
	SISY_FAULT_TRUNCATE = 1 << 3, /* truncate, preallocate */
	SISY_FAULT_RENAME = 1 << 4,
	SISY_FAULT_UNLINK = 1 << 5, /* unlink, rmdir */
	SISY_FAULT_LINK = 1 << 6,
	SISY_FAULT_MKDIR = 1 << 7,
	SISY_FAULT_SYNC_DIR = 1 << 8,
	SISY_FAULT_READ = 1 << 9,     /* pread, map (not a mutation) */
	SISY_FAULT_MUTATIONS = 0x1ff, /* everything but READ */
};

sisy_fs_fault *sisy_fs_fault_new(uint64_t seed);
/* All files must be closed. */
void sisy_fs_fault_free(sisy_fs_fault *ff);
/* The sisy_fs to hand to the code under test. */
sisy_fs *sisy_fs_fault_fs(sisy_fs_fault *ff);

/* --- crashes ------------------------------------------------------------- */

/* Crash now. */
void sisy_fs_fault_crash(sisy_fs_fault *ff);
/* Crash when the n-th mutating operation from now starts (n >= 1); that
 * operation fails with SISY_E_CRASHED and has no effect. */
void sisy_fs_fault_crash_after(sisy_fs_fault *ff, uint64_t n);
bool sisy_fs_fault_crashed(sisy_fs_fault *ff);
/* Applies the crash's loss and accepts operations again. Handles opened
 * before the crash stay dead (SISY_E_CRASHED) until closed. */
void sisy_fs_fault_restart(sisy_fs_fault *ff);
/* Mutating operations performed so far (to pick crash points). */
uint64_t sisy_fs_fault_mutations(sisy_fs_fault *ff);
/* On a crash, keep a random prefix of unsynced bytes (default on). */
void sisy_fs_fault_set_torn_writes(sisy_fs_fault *ff, bool on);
/* With torn writes on: model a disk that reorders writes instead of a
 * prefix. A crash gives each file with unsynced changes its old or its new
 * size, and each 512-byte sector those changes touched is, at random, all
 * old or all new (zeros past an end), so a later write can survive an
 * earlier one that is lost. Default off. */
void sisy_fs_fault_set_torn_sectors(sisy_fs_fault *ff, bool on);
/* Pretend directory syncs on paths containing `substr` happen but make
 * nothing durable — as if the code under test had left them out. NULL turns
 * it off. Used to show a test notices a missing directory fsync. */
void sisy_fs_fault_ignore_dir_sync(sisy_fs_fault *ff, const char *substr);

/* --- injected errors ----------------------------------------------------- */

/* Fails operations of the kinds in op_mask on paths containing path_substr
 * (NULL: any path) with `err` (SISY_E_IO or SISY_E_NOSPC, ...): skips the
 * first `skip` matching operations, then fails the next `count` of them
 * (UINT64_MAX: until cleared). A failed write writes nothing. Rules stack. */
void sisy_fs_fault_inject(sisy_fs_fault *ff, int op_mask,
			  const char *path_substr, uint64_t skip,
			  uint64_t count, sisy_err err);
void sisy_fs_fault_clear_injections(sisy_fs_fault *ff);
/* A disk of `bytes` capacity (0: unlimited): writes that would exceed the
 * total size of all files fail with SISY_E_NOSPC and write nothing; unlink
 * gives space back. */
void sisy_fs_fault_set_capacity(sisy_fs_fault *ff, uint64_t bytes);
/* Total bytes of all files (current state). */
uint64_t sisy_fs_fault_used(sisy_fs_fault *ff);

/* --- inspection (for corruption tests) ----------------------------------- */

/* Flips bits in a file's current and durable bytes at `off` (xor mask). */
sisy_err sisy_fs_fault_corrupt(sisy_fs_fault *ff, const char *path,
			       uint64_t off, uint8_t xor_mask);

#endif
