/* Tests libcommon/fs_fault.c: the in-memory crash and fault-injection file
 * system. Each durability rule of fs.h is shown both ways: what a crash
 * loses without the sync and what it keeps with it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs.h"
#include "fs_fault.h"

typedef struct fx {
	sisy_fs_fault *ff;
	sisy_fs *fs;
} fx;

static int setup(void **state)
{
	fx *x = calloc(1, sizeof *x);
	x->ff = sisy_fs_fault_new(42);
	x->fs = sisy_fs_fault_fs(x->ff);
	*state = x;
	return x->ff == NULL ? -1 : 0;
}

static int teardown(void **state)
{
	fx *x = *state;
	sisy_fs_fault_free(x->ff);
	free(x);
	return 0;
}

/* Writes `s` to a new file, optionally syncing it and its directory. */
static void put_file(sisy_fs *fs, const char *path, const char *s,
		     bool sync_file, const char *sync_dir)
{
	sisy_file *f;
	assert_int_equal(
	    sisy_fs_open(fs, path, SISY_O_WRITE | SISY_O_CREATE | SISY_O_TRUNC,
			 &f),
	    SISY_OK);
	assert_int_equal(sisy_file_append(f, s, strlen(s)), SISY_OK);
	if (sync_file)
		assert_int_equal(sisy_file_sync(f), SISY_OK);
	assert_int_equal(sisy_file_close(f), SISY_OK);
	if (sync_dir != NULL)
		assert_int_equal(sisy_fs_sync_dir(fs, sync_dir), SISY_OK);
}

/* The file's contents as a NUL-terminated string, or NULL if missing. */
static char *get_file(sisy_fs *fs, const char *path)
{
	uint8_t *data;
	size_t len;
	sisy_err rc = sisy_fs_read_all(fs, path, 1 << 20, &data, &len);
	if (rc == SISY_E_NOTFOUND)
		return NULL;
	assert_int_equal(rc, SISY_OK);
	char *s = malloc(len + 1);
	memcpy(s, data, len);
	s[len] = '\0';
	free(data);
	return s;
}

static void assert_file(sisy_fs *fs, const char *path, const char *want)
{
	char *got = get_file(fs, path);
	if (want == NULL) {
		assert_null(got);
		return;
	}
	assert_non_null(got);
	assert_string_equal(got, want);
	free(got);
}

static void crash_restart(fx *x)
{
	sisy_fs_fault_crash(x->ff);
	assert_true(sisy_fs_fault_crashed(x->ff));
	sisy_fs_fault_restart(x->ff);
	assert_false(sisy_fs_fault_crashed(x->ff));
}

static void test_basic_io(void **state)
{
	fx *x = *state;
	sisy_file *f;
	assert_int_equal(sisy_fs_mkdir(x->fs, "/d"), SISY_OK);
	assert_int_equal(sisy_fs_mkdir(x->fs, "/d"), SISY_E_EXISTS);
	assert_int_equal(sisy_fs_open(x->fs, "/d/a", SISY_O_READ, &f),
			 SISY_E_NOTFOUND);
	assert_non_null(strstr(sisy_errmsg(), "/d/a"));
	assert_int_equal(
	    sisy_fs_open(x->fs, "/nodir/a", SISY_O_WRITE | SISY_O_CREATE, &f),
	    SISY_E_NOTFOUND);
	assert_int_equal(
	    sisy_fs_open(x->fs, "/d/a", SISY_O_WRITE | SISY_O_CREATE, &f),
	    SISY_OK);
	assert_int_equal(sisy_file_append(f, "hello", 5), SISY_OK);
	assert_int_equal(sisy_file_append(f, " world", 6), SISY_OK);
	assert_int_equal(sisy_file_pwrite(f, "J", 1, 0), SISY_OK);
	assert_int_equal(sisy_file_pwrite(f, "!", 1, 13), SISY_OK);
	uint64_t sz;
	assert_int_equal(sisy_file_size(f, &sz), SISY_OK);
	assert_int_equal(sz, 14);
	char buf[32];
	size_t got;
	assert_int_equal(sisy_file_pread(f, buf, sizeof buf, 0, &got), SISY_OK);
	assert_int_equal(got, 14);
	assert_memory_equal(buf, "Jello world\0\0!", 14);
	assert_int_equal(sisy_file_pread(f, buf, 4, 12, &got), SISY_OK);
	assert_int_equal(got, 2);
	assert_int_equal(sisy_file_pread(f, buf, 4, 100, &got), SISY_OK);
	assert_int_equal(got, 0);
	assert_int_equal(sisy_file_truncate(f, 5), SISY_OK);
	assert_int_equal(sisy_file_append(f, "X", 1), SISY_OK);
	assert_int_equal(sisy_file_close(f), SISY_OK);
	/* Paths are normalised: these all name /d/a. */
	assert_file(x->fs, "d/a", "JelloX");
	assert_file(x->fs, "//d/./a", "JelloX");
	assert_int_equal(sisy_fs_file_size(x->fs, "/d/a", &sz), SISY_OK);
	assert_int_equal(sz, 6);
	assert_int_equal(
	    sisy_fs_open(x->fs, "/d/a",
			 SISY_O_WRITE | SISY_O_CREATE | SISY_O_EXCL, &f),
	    SISY_E_EXISTS);
	/* A read-only handle refuses writes. */
	assert_int_equal(sisy_fs_open(x->fs, "/d/a", SISY_O_READ, &f), SISY_OK);
	assert_int_not_equal(sisy_file_append(f, "Y", 1), SISY_OK);
	assert_int_equal(sisy_file_close(f), SISY_OK);
	assert_file(x->fs, "/d/a", "JelloX");
	assert_int_equal(sisy_fs_open(x->fs, "/d/../d/a", SISY_O_READ, &f),
			 SISY_E_INVAL);
}

static void test_unsynced_data_lost_synced_kept(void **state)
{
	fx *x = *state;
	sisy_fs_fault_set_torn_writes(x->ff, false);
	put_file(x->fs, "/a", "durable", true, "/");
	sisy_file *f;
	assert_int_equal(sisy_fs_open(x->fs, "/a", SISY_O_WRITE, &f), SISY_OK);
	assert_int_equal(sisy_file_append(f, "+lost", 5), SISY_OK);
	assert_int_equal(sisy_file_pwrite(f, "D", 1, 0), SISY_OK);
	assert_int_equal(sisy_file_close(f), SISY_OK);
	assert_file(x->fs, "/a", "Durable+lost");
	crash_restart(x);
	assert_file(x->fs, "/a", "durable");
	/* Now with the sync: kept. */
	assert_int_equal(sisy_fs_open(x->fs, "/a", SISY_O_WRITE, &f), SISY_OK);
	assert_int_equal(sisy_file_append(f, "+kept", 5), SISY_OK);
	assert_int_equal(sisy_file_sync(f), SISY_OK);
	assert_int_equal(sisy_file_append(f, "+lost", 5), SISY_OK);
	assert_int_equal(sisy_file_close(f), SISY_OK);
	crash_restart(x);
	assert_file(x->fs, "/a", "durable+kept");
	/* An unsynced truncate is lost too. */
	assert_int_equal(sisy_fs_open(x->fs, "/a", SISY_O_WRITE, &f), SISY_OK);
	assert_int_equal(sisy_file_truncate(f, 3), SISY_OK);
	assert_int_equal(sisy_file_close(f), SISY_OK);
	assert_file(x->fs, "/a", "dur");
	crash_restart(x);
	assert_file(x->fs, "/a", "durable+kept");
}

static void test_new_file_needs_dir_sync(void **state)
{
	fx *x = *state;
	assert_int_equal(sisy_fs_mkdir(x->fs, "/d"), SISY_OK);
	assert_int_equal(sisy_fs_sync_dir(x->fs, "/"), SISY_OK);
	put_file(x->fs, "/d/nodirsync", "x", true, NULL);
	put_file(x->fs, "/d/nofilesync", "y", false, NULL);
	assert_int_equal(sisy_fs_sync_dir(x->fs, "/d"), SISY_OK);
	put_file(x->fs, "/d/late", "z", true, NULL); /* after the dir sync */
	crash_restart(x);
	assert_file(x->fs, "/d/nodirsync", "x");
	assert_file(x->fs, "/d/nofilesync", ""); /* name kept, bytes not */
	assert_file(x->fs, "/d/late", NULL);
	/* A directory whose own entry was never synced vanishes with its
	 * contents, even synced ones. */
	assert_int_equal(sisy_fs_mkdir(x->fs, "/e"), SISY_OK);
	put_file(x->fs, "/e/f", "data", true, "/e");
	crash_restart(x);
	bool ex = true;
	assert_int_equal(sisy_fs_exists(x->fs, "/e", &ex), SISY_OK);
	assert_false(ex);
	assert_int_equal(sisy_fs_exists(x->fs, "/e/f", &ex), SISY_OK);
	assert_false(ex);
}

static void test_rename_durability_and_atomicity(void **state)
{
	fx *x = *state;
	put_file(x->fs, "/CURRENT", "old", true, "/");
	/* Not synced: the rename reverts, the old file is intact. */
	put_file(x->fs, "/CURRENT.tmp", "new", true, NULL);
	assert_int_equal(sisy_fs_rename(x->fs, "/CURRENT.tmp", "/CURRENT"),
			 SISY_OK);
	assert_file(x->fs, "/CURRENT", "new");
	assert_file(x->fs, "/CURRENT.tmp", NULL);
	crash_restart(x);
	assert_file(x->fs, "/CURRENT", "old");
	assert_file(x->fs, "/CURRENT.tmp",
		    NULL); /* its create was not synced */
	/* Synced: it sticks. */
	put_file(x->fs, "/CURRENT.tmp", "new", true, NULL);
	assert_int_equal(sisy_fs_rename(x->fs, "/CURRENT.tmp", "/CURRENT"),
			 SISY_OK);
	assert_int_equal(sisy_fs_sync_dir(x->fs, "/"), SISY_OK);
	crash_restart(x);
	assert_file(x->fs, "/CURRENT", "new");
	assert_file(x->fs, "/CURRENT.tmp", NULL);
	/* Crash at every point of the atomic-write recipe: the name always
	 * holds either the whole old or the whole new contents. */
	for (uint64_t n = 1; n <= 8; n++) {
		sisy_fs_fault_crash_after(x->ff, n);
		sisy_err rc =
		    sisy_fs_write_atomic(x->fs, "/", "/CURRENT", "newer", 5);
		char *got;
		if (rc == SISY_OK) {
			crash_restart(x);
			assert_file(x->fs, "/CURRENT", "newer");
			break;
		}
		assert_int_equal(rc, SISY_E_CRASHED);
		sisy_fs_fault_restart(x->ff);
		got = get_file(x->fs, "/CURRENT");
		assert_non_null(got);
		assert_true(strcmp(got, "new") == 0);
		free(got);
	}
	assert_file(x->fs, "/CURRENT", "newer");
}

static void test_link_unlink(void **state)
{
	fx *x = *state;
	put_file(x->fs, "/a", "shared", true, "/");
	assert_int_equal(sisy_fs_link(x->fs, "/a", "/b"), SISY_OK);
	assert_int_equal(sisy_fs_link(x->fs, "/a", "/b"), SISY_E_EXISTS);
	/* A hard link shares the inode: a write through one is seen by both. */
	sisy_file *f;
	assert_int_equal(sisy_fs_open(x->fs, "/b", SISY_O_WRITE, &f), SISY_OK);
	assert_int_equal(sisy_file_pwrite(f, "S", 1, 0), SISY_OK);
	assert_int_equal(sisy_file_sync(f), SISY_OK);
	assert_int_equal(sisy_file_close(f), SISY_OK);
	assert_file(x->fs, "/a", "Shared");
	crash_restart(x);
	assert_file(x->fs, "/a", "Shared"); /* content synced via the link */
	assert_file(x->fs, "/b", NULL);	    /* link itself not synced */
	assert_int_equal(sisy_fs_link(x->fs, "/a", "/b"), SISY_OK);
	assert_int_equal(sisy_fs_sync_dir(x->fs, "/"), SISY_OK);
	assert_int_equal(sisy_fs_unlink(x->fs, "/a"), SISY_OK);
	assert_file(x->fs, "/a", NULL);
	assert_file(x->fs, "/b", "Shared");
	crash_restart(x);
	assert_file(x->fs, "/a", "Shared"); /* unlink not synced: back */
	assert_int_equal(sisy_fs_unlink(x->fs, "/a"), SISY_OK);
	assert_int_equal(sisy_fs_sync_dir(x->fs, "/"), SISY_OK);
	crash_restart(x);
	assert_file(x->fs, "/a", NULL);
	assert_file(x->fs, "/b", "Shared");
	assert_int_equal(sisy_fs_unlink(x->fs, "/a"), SISY_E_NOTFOUND);
}

static void test_unlinked_open_file(void **state)
{
	fx *x = *state;
	put_file(x->fs, "/a", "abc", true, "/");
	sisy_file *f;
	assert_int_equal(sisy_fs_open(x->fs, "/a", SISY_O_WRITE, &f), SISY_OK);
	assert_int_equal(sisy_fs_unlink(x->fs, "/a"), SISY_OK);
	/* POSIX: the open handle still reads and writes the orphan. */
	assert_int_equal(sisy_file_append(f, "d", 1), SISY_OK);
	char buf[8];
	size_t got;
	assert_int_equal(sisy_file_pread(f, buf, sizeof buf, 0, &got), SISY_OK);
	assert_int_equal(got, 4);
	assert_memory_equal(buf, "abcd", 4);
	assert_int_equal(sisy_fs_fault_used(x->ff), 4);
	assert_int_equal(sisy_file_close(f), SISY_OK);
	assert_int_equal(sisy_fs_fault_used(x->ff), 0);
}

static void test_torn_prefix(void **state)
{
	fx *x = *state;
	const char *base = "0123456789";
	const char *more = "abcdefghijklmnopqrstuvwxyz";
	bool saw_partial = false, saw_none = false, saw_all = false;
	for (int i = 0; i < 64; i++) {
		put_file(x->fs, "/t", base, true, "/");
		sisy_file *f;
		assert_int_equal(sisy_fs_open(x->fs, "/t", SISY_O_WRITE, &f),
				 SISY_OK);
		assert_int_equal(sisy_file_append(f, more, 13), SISY_OK);
		assert_int_equal(sisy_file_append(f, more + 13, 13), SISY_OK);
		assert_int_equal(sisy_file_close(f), SISY_OK);
		crash_restart(x);
		char *got = get_file(x->fs, "/t");
		size_t n = strlen(got);
		assert_true(n >= 10 && n <= 36);
		assert_memory_equal(got, base, 10);
		assert_memory_equal(got + 10, more, n - 10);
		saw_none |= n == 10;
		saw_all |= n == 36;
		saw_partial |= n > 10 && n < 36;
		free(got);
	}
	assert_true(saw_partial && saw_none && saw_all);
}

/* A pwrite in the middle of a file: the crash keeps the synced bytes plus a
 * prefix of the overwrite, never bytes of the overwrite after a gap. */
static void test_torn_pwrite_middle(void **state)
{
	fx *x = *state;
	bool saw_partial = false;
	for (int i = 0; i < 64; i++) {
		put_file(x->fs, "/p", "................", true, "/");
		sisy_file *f;
		assert_int_equal(sisy_fs_open(x->fs, "/p", SISY_O_WRITE, &f),
				 SISY_OK);
		assert_int_equal(sisy_file_pwrite(f, "ABCDEFGH", 8, 4),
				 SISY_OK);
		assert_int_equal(sisy_file_close(f), SISY_OK);
		crash_restart(x);
		char *got = get_file(x->fs, "/p");
		assert_int_equal(strlen(got), 16);
		size_t k = 0;
		while (k < 8 && got[4 + k] == "ABCDEFGH"[k])
			k++;
		assert_memory_equal(got, "....", 4);
		assert_memory_equal(got + 4 + k, "................", 12 - k);
		saw_partial |= k > 0 && k < 8;
		free(got);
	}
	assert_true(saw_partial);
}

/* A disk that reorders writes: each sector old or new, any size of the
 * two, and a later sector can survive an earlier one that is lost. */
static void test_torn_sectors(void **state)
{
	fx *x = *state;
	sisy_fs_fault_set_torn_sectors(x->ff, true);
	char old[8 * 512], nw[10 * 512];
	memset(old, '.', sizeof old);
	for (int k = 0; k < 10; k++)
		memset(nw + k * 512, 'A' + k, 512);
	bool reordered = false, sizes[2] = {false, false};
	for (int i = 0; i < 64; i++) {
		sisy_file *f;
		assert_int_equal(
		    sisy_fs_open(x->fs, "/s",
				 SISY_O_WRITE | SISY_O_CREATE | SISY_O_TRUNC,
				 &f),
		    SISY_OK);
		assert_int_equal(sisy_file_append(f, old, sizeof old), SISY_OK);
		assert_int_equal(sisy_file_sync(f), SISY_OK);
		assert_int_equal(sisy_fs_sync_dir(x->fs, "/"), SISY_OK);
		assert_int_equal(sisy_file_pwrite(f, nw, 8 * 512, 0), SISY_OK);
		assert_int_equal(sisy_file_append(f, nw + 8 * 512, 2 * 512),
				 SISY_OK);
		assert_int_equal(sisy_file_close(f), SISY_OK);
		crash_restart(x);
		uint8_t *data;
		size_t len;
		assert_int_equal(
		    sisy_fs_read_all(x->fs, "/s", 1 << 20, &data, &len),
		    SISY_OK);
		assert_true(len == sizeof old || len == sizeof nw);
		sizes[len == sizeof nw] = true;
		bool lost = false;
		for (size_t k = 0; k < len / 512; k++) {
			const uint8_t *sec = data + k * 512;
			bool is_new = memcmp(sec, nw + k * 512, 512) == 0;
			bool is_old =
			    k < 8
				? memcmp(sec, old + k * 512, 512) == 0
				: sec[0] == 0 && memcmp(sec, sec + 1, 511) == 0;
			assert_true(is_new || is_old);
			reordered |= lost && is_new;
			lost |= !is_new;
		}
		free(data);
	}
	assert_true(reordered && sizes[0] && sizes[1]);
}

static void test_crash_after_counting(void **state)
{
	fx *x = *state;
	sisy_file *f;
	uint64_t m0 = sisy_fs_fault_mutations(x->ff);
	assert_int_equal(
	    sisy_fs_open(x->fs, "/c", SISY_O_WRITE | SISY_O_CREATE, &f),
	    SISY_OK);
	assert_int_equal(sisy_fs_fault_mutations(x->ff), m0 + 1);
	/* Reads are not mutations. */
	char buf[4];
	size_t got;
	assert_int_equal(sisy_file_pread(f, buf, 4, 0, &got), SISY_OK);
	assert_int_equal(sisy_fs_fault_mutations(x->ff), m0 + 1);
	sisy_fs_fault_crash_after(x->ff, 3);
	assert_int_equal(sisy_file_append(f, "a", 1), SISY_OK); /* 1 */
	assert_int_equal(sisy_file_sync(f), SISY_OK);		/* 2 */
	assert_false(sisy_fs_fault_crashed(x->ff));
	assert_int_equal(sisy_fs_sync_dir(x->fs, "/"), SISY_E_CRASHED); /* 3 */
	assert_true(sisy_fs_fault_crashed(x->ff));
	/* From now on everything fails, reads included. */
	assert_int_equal(sisy_file_pread(f, buf, 4, 0, &got), SISY_E_CRASHED);
	assert_int_equal(sisy_file_append(f, "b", 1), SISY_E_CRASHED);
	bool ex;
	assert_int_equal(sisy_fs_exists(x->fs, "/c", &ex), SISY_E_CRASHED);
	sisy_file *g;
	assert_int_equal(sisy_fs_open(x->fs, "/c", SISY_O_READ, &g),
			 SISY_E_CRASHED);
	sisy_fs_fault_restart(x->ff);
	/* The third op (the dir sync) had no effect: /c is gone. */
	assert_int_equal(sisy_fs_exists(x->fs, "/c", &ex), SISY_OK);
	assert_false(ex);
	/* The handle from before the crash stays dead; close frees it. */
	assert_int_equal(sisy_file_pread(f, buf, 4, 0, &got), SISY_E_CRASHED);
	assert_int_equal(sisy_file_sync(f), SISY_E_CRASHED);
	assert_int_equal(sisy_file_close(f), SISY_E_CRASHED);
}

static void test_injection_rules(void **state)
{
	fx *x = *state;
	put_file(x->fs, "/log.1", "", true, "/");
	put_file(x->fs, "/other", "", true, "/");
	/* Fail the 2nd and 3rd writes to paths containing "log". */
	sisy_fs_fault_inject(x->ff, SISY_FAULT_WRITE, "log", 1, 2, SISY_E_IO);
	sisy_file *f, *g;
	assert_int_equal(sisy_fs_open(x->fs, "/log.1", SISY_O_WRITE, &f),
			 SISY_OK);
	assert_int_equal(sisy_fs_open(x->fs, "/other", SISY_O_WRITE, &g),
			 SISY_OK);
	assert_int_equal(sisy_file_append(f, "1", 1), SISY_OK);
	assert_int_equal(sisy_file_append(g, "x", 1), SISY_OK); /* no match */
	assert_int_equal(sisy_file_append(f, "2", 1), SISY_E_IO);
	assert_non_null(strstr(sisy_errmsg(), "log.1"));
	assert_int_equal(sisy_file_append(f, "3", 1), SISY_E_IO);
	assert_int_equal(sisy_file_append(f, "4", 1), SISY_OK);
	assert_int_equal(sisy_file_sync(f), SISY_OK); /* not in the mask */
	/* A failed write wrote nothing. */
	uint64_t sz;
	assert_int_equal(sisy_file_size(f, &sz), SISY_OK);
	assert_int_equal(sz, 2);
	/* An unbounded rule on syncs, any path; a failed sync makes nothing
	 * durable. */
	sisy_fs_fault_inject(x->ff, SISY_FAULT_SYNC, NULL, 0, UINT64_MAX,
			     SISY_E_IO);
	assert_int_equal(sisy_file_append(f, "5", 1), SISY_OK);
	for (int i = 0; i < 5; i++)
		assert_int_equal(sisy_file_sync(f), SISY_E_IO);
	assert_int_equal(sisy_file_sync(g), SISY_E_IO);
	sisy_fs_fault_clear_injections(x->ff);
	assert_int_equal(sisy_file_sync(g), SISY_OK);
	/* Reads can be failed too. */
	sisy_fs_fault_inject(x->ff, SISY_FAULT_READ, "log", 0, 1, SISY_E_IO);
	char buf[8];
	size_t got;
	assert_int_equal(sisy_file_pread(f, buf, 8, 0, &got), SISY_E_IO);
	assert_int_equal(sisy_file_pread(f, buf, 8, 0, &got), SISY_OK);
	assert_int_equal(got, 3);
	assert_int_equal(sisy_file_close(f), SISY_OK);
	assert_int_equal(sisy_file_close(g), SISY_OK);
	sisy_fs_fault_set_torn_writes(x->ff, false);
	crash_restart(x);
	assert_file(x->fs, "/log.1", "14");
	assert_file(x->fs, "/other", "x");
	/* Directory operations: rename matches either path. */
	sisy_fs_fault_inject(x->ff, SISY_FAULT_RENAME, "other", 0, 1,
			     SISY_E_NOSPC);
	assert_int_equal(sisy_fs_rename(x->fs, "/log.1", "/other"),
			 SISY_E_NOSPC);
	assert_file(x->fs, "/log.1", "14");
	assert_int_equal(sisy_fs_rename(x->fs, "/log.1", "/other"), SISY_OK);
	assert_file(x->fs, "/other", "14");
}

static void test_capacity(void **state)
{
	fx *x = *state;
	sisy_fs_fault_set_capacity(x->ff, 100);
	sisy_file *f;
	assert_int_equal(
	    sisy_fs_open(x->fs, "/a", SISY_O_WRITE | SISY_O_CREATE, &f),
	    SISY_OK);
	char data[60];
	memset(data, 'x', sizeof data);
	assert_int_equal(sisy_file_append(f, data, 60), SISY_OK);
	assert_int_equal(sisy_file_append(f, data, 41), SISY_E_NOSPC);
	assert_int_equal(sisy_fs_fault_used(x->ff), 60);
	assert_int_equal(sisy_file_append(f, data, 40), SISY_OK);
	/* Overwriting in place needs no new space. */
	assert_int_equal(sisy_file_pwrite(f, data, 50, 10), SISY_OK);
	assert_int_equal(sisy_file_pwrite(f, data, 1, 100), SISY_E_NOSPC);
	assert_int_equal(sisy_file_truncate(f, 101), SISY_E_NOSPC);
	assert_int_equal(sisy_file_close(f), SISY_OK);
	assert_int_equal(
	    sisy_fs_open(x->fs, "/b", SISY_O_WRITE | SISY_O_CREATE, &f),
	    SISY_OK);
	assert_int_equal(sisy_file_append(f, "y", 1), SISY_E_NOSPC);
	assert_int_equal(sisy_fs_unlink(x->fs, "/a"), SISY_OK);
	assert_int_equal(sisy_fs_fault_used(x->ff), 0);
	assert_int_equal(sisy_file_append(f, "y", 1), SISY_OK);
	/* Preallocation reserves space without changing the size. */
	assert_int_equal(sisy_file_preallocate(f, 90), SISY_OK);
	uint64_t sz;
	assert_int_equal(sisy_file_size(f, &sz), SISY_OK);
	assert_int_equal(sz, 1);
	assert_int_equal(sisy_fs_fault_used(x->ff), 90);
	assert_int_equal(sisy_file_preallocate(f, 101), SISY_E_NOSPC);
	assert_int_equal(sisy_file_append(f, data, 50), SISY_OK); /* reserved */
	assert_int_equal(sisy_file_close(f), SISY_OK);
	sisy_fs_fault_set_capacity(x->ff, 0);
	assert_int_equal(
	    sisy_fs_open(x->fs, "/c", SISY_O_WRITE | SISY_O_CREATE, &f),
	    SISY_OK);
	assert_int_equal(sisy_file_append(f, data, 60), SISY_OK);
	assert_int_equal(sisy_file_close(f), SISY_OK);
}

/* Runs a fixed script with torn writes and returns what the crash kept. */
static size_t torn_script(uint64_t seed, char *out, size_t cap)
{
	sisy_fs_fault *ff = sisy_fs_fault_new(seed);
	sisy_fs *fs = sisy_fs_fault_fs(ff);
	size_t total = 0;
	char names[8][8];
	for (int i = 0; i < 8; i++) {
		snprintf(names[i], sizeof names[i], "/f%d", i);
		put_file(fs, names[i], "synced-", true, NULL);
	}
	assert_int_equal(sisy_fs_sync_dir(fs, "/"), SISY_OK);
	for (int i = 0; i < 8; i++) {
		sisy_file *f;
		assert_int_equal(sisy_fs_open(fs, names[i], SISY_O_WRITE, &f),
				 SISY_OK);
		assert_int_equal(sisy_file_append(f, "0123456789abcdef", 16),
				 SISY_OK);
		assert_int_equal(sisy_file_close(f), SISY_OK);
	}
	sisy_fs_fault_crash(ff);
	sisy_fs_fault_restart(ff);
	for (int i = 0; i < 8; i++) {
		char *s = get_file(fs, names[i]);
		size_t n = strlen(s);
		assert_true(total + n + 1 < cap);
		memcpy(out + total, s, n);
		out[total + n] = '|';
		total += n + 1;
		free(s);
	}
	sisy_fs_fault_free(ff);
	return total;
}

static void test_deterministic_per_seed(void **state)
{
	(void)state;
	char a[512], b[512], c[512];
	size_t na = torn_script(7, a, sizeof a);
	size_t nb = torn_script(7, b, sizeof b);
	assert_int_equal(na, nb);
	assert_memory_equal(a, b, na);
	/* Some other seed tears differently (8 files x 17 outcomes each). */
	bool differs = false;
	for (uint64_t s = 8; s < 16 && !differs; s++) {
		size_t nc = torn_script(s, c, sizeof c);
		differs = nc != na || memcmp(a, c, na) != 0;
	}
	assert_true(differs);
}

static void test_ignore_dir_sync(void **state)
{
	fx *x = *state;
	assert_int_equal(sisy_fs_mkdir(x->fs, "/db"), SISY_OK);
	assert_int_equal(sisy_fs_mkdir(x->fs, "/wal"), SISY_OK);
	assert_int_equal(sisy_fs_sync_dir(x->fs, "/"), SISY_OK);
	sisy_fs_fault_ignore_dir_sync(x->ff, "db");
	put_file(x->fs, "/db/x", "1", true, "/db");
	put_file(x->fs, "/wal/y", "2", true, "/wal");
	crash_restart(x);
	assert_file(x->fs, "/db/x", NULL);
	assert_file(x->fs, "/wal/y", "2");
	sisy_fs_fault_ignore_dir_sync(x->ff, NULL);
	put_file(x->fs, "/db/x", "1", true, "/db");
	crash_restart(x);
	assert_file(x->fs, "/db/x", "1");
}

static int list_count;
static void list_cb(void *ctx, const char *name)
{
	(void)ctx;
	assert_true(strcmp(name, "a") == 0 || strcmp(name, "sub") == 0);
	list_count++;
}

static void test_map_lock_list_exists(void **state)
{
	fx *x = *state;
	put_file(x->fs, "/a", "mapped bytes", true, "/");
	assert_int_equal(sisy_fs_mkdir(x->fs, "/sub"), SISY_OK);
	assert_int_equal(sisy_fs_sync_dir(x->fs, "/"), SISY_OK);
	sisy_file *f;
	assert_int_equal(sisy_fs_open(x->fs, "/a", SISY_O_READ, &f), SISY_OK);
	const uint8_t *m;
	size_t mlen;
	assert_int_equal(sisy_file_map(f, &m, &mlen), SISY_OK);
	assert_int_equal(mlen, 12);
	assert_memory_equal(m, "mapped bytes", 12);
	/* The mapping outlives a crash until the handle is closed. */
	crash_restart(x);
	assert_memory_equal(m, "mapped bytes", 12);
	assert_int_equal(sisy_file_unmap(f), SISY_OK);
	sisy_file_close(f);
	put_file(x->fs, "/e", "", true, "/");
	assert_int_equal(sisy_fs_open(x->fs, "/e", SISY_O_READ, &f), SISY_OK);
	assert_int_equal(sisy_file_map(f, &m, &mlen), SISY_E_NOTSUP);
	assert_int_equal(sisy_file_close(f), SISY_OK);
	assert_int_equal(sisy_fs_unlink(x->fs, "/e"), SISY_OK);
	assert_int_equal(sisy_fs_sync_dir(x->fs, "/"), SISY_OK);

	sisy_lockfile *l1, *l2;
	assert_int_equal(sisy_fs_lock(x->fs, "/sub/LOCK", &l1), SISY_OK);
	assert_int_equal(sisy_fs_lock(x->fs, "/sub/LOCK", &l2), SISY_E_LOCKED);
	assert_int_equal(sisy_fs_unlock(l1), SISY_OK);
	assert_int_equal(sisy_fs_lock(x->fs, "/sub/LOCK", &l2), SISY_OK);
	/* A crash releases locks (the process died); the old handle's unlock
	 * only frees it. */
	crash_restart(x);
	assert_int_equal(sisy_fs_lock(x->fs, "/sub/LOCK", &l1), SISY_OK);
	assert_int_equal(sisy_fs_unlock(l2), SISY_OK);
	assert_int_equal(sisy_fs_lock(x->fs, "/sub/LOCK", &l2), SISY_E_LOCKED);
	assert_int_equal(sisy_fs_rmdir(x->fs, "/sub"), SISY_E_EXISTS);
	list_count = 0;
	assert_int_equal(sisy_fs_list(x->fs, "/", list_cb, NULL), SISY_OK);
	assert_int_equal(list_count, 2);
	bool ex;
	assert_int_equal(sisy_fs_exists(x->fs, "/sub/LOCK", &ex), SISY_OK);
	assert_true(ex);
	assert_int_equal(sisy_fs_exists(x->fs, "/a/b", &ex), SISY_OK);
	assert_false(ex);
	assert_int_equal(sisy_fs_unlock(l1), SISY_OK);
	assert_int_equal(sisy_fs_unlink(x->fs, "/sub/LOCK"), SISY_OK);
	assert_int_equal(sisy_fs_rmdir(x->fs, "/sub"), SISY_OK);
	assert_int_equal(sisy_fs_exists(x->fs, "/sub", &ex), SISY_OK);
	assert_false(ex);
}

static void test_corrupt(void **state)
{
	fx *x = *state;
	put_file(x->fs, "/c", "abc", true, "/");
	assert_int_equal(sisy_fs_fault_corrupt(x->ff, "/c", 1, 0x20), SISY_OK);
	assert_file(x->fs, "/c", "aBc");
	crash_restart(x);
	assert_file(x->fs, "/c", "aBc"); /* the durable bytes too */
	assert_int_equal(sisy_fs_fault_corrupt(x->ff, "/c", 3, 1),
			 SISY_E_RANGE);
	assert_int_equal(sisy_fs_fault_corrupt(x->ff, "/none", 0, 1),
			 SISY_E_NOTFOUND);
}

static void test_rename_dirs_and_cross_dir(void **state)
{
	fx *x = *state;
	assert_int_equal(sisy_fs_mkdir(x->fs, "/a"), SISY_OK);
	assert_int_equal(sisy_fs_mkdir(x->fs, "/b"), SISY_OK);
	assert_int_equal(sisy_fs_sync_dir(x->fs, "/"), SISY_OK);
	put_file(x->fs, "/a/f", "F", true, "/a");
	assert_int_equal(sisy_fs_rename(x->fs, "/a/f", "/b/f"), SISY_OK);
	assert_int_equal(sisy_fs_sync_dir(x->fs, "/b"), SISY_OK);
	/* Only the target directory was synced: the file keeps both names. */
	crash_restart(x);
	assert_file(x->fs, "/a/f", "F");
	assert_file(x->fs, "/b/f", "F");
	/* Renaming a directory moves its contents. */
	assert_int_equal(sisy_fs_mkdir(x->fs, "/tmpdir"), SISY_OK);
	put_file(x->fs, "/tmpdir/g", "G", true, "/tmpdir");
	assert_int_equal(sisy_fs_rename(x->fs, "/tmpdir", "/final"), SISY_OK);
	assert_file(x->fs, "/final/g", "G");
	assert_int_equal(sisy_fs_rename(x->fs, "/final", "/final/x"),
			 SISY_E_INVAL);
	assert_int_equal(sisy_fs_sync_dir(x->fs, "/"), SISY_OK);
	crash_restart(x);
	assert_file(x->fs, "/final/g", "G");
	assert_int_equal(sisy_fs_rename(x->fs, "/final", "/a"), SISY_E_EXISTS);
	assert_int_equal(sisy_fs_rename(x->fs, "/nope", "/z"), SISY_E_NOTFOUND);
}

typedef struct worker {
	sisy_fs *fs;
	int id;
} worker;

static void *worker_main(void *arg)
{
	worker *w = arg;
	char path[32];
	snprintf(path, sizeof path, "/w%d", w->id);
	sisy_file *f;
	if (sisy_fs_open(w->fs, path, SISY_O_WRITE | SISY_O_CREATE, &f) !=
	    SISY_OK)
		return (void *)1;
	for (int i = 0; i < 500; i++) {
		if (sisy_file_append(f, "0123456789", 10) != SISY_OK ||
		    (i % 50 == 0 && sisy_file_sync(f) != SISY_OK))
			return (void *)1;
	}
	sisy_file_sync(f);
	sisy_file_close(f);
	return NULL;
}

static void test_threads(void **state)
{
	fx *x = *state;
	pthread_t t[4];
	worker w[4];
	for (int i = 0; i < 4; i++) {
		w[i] = (worker){x->fs, i};
		assert_int_equal(
		    pthread_create(&t[i], NULL, worker_main, &w[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		void *ret;
		pthread_join(t[i], &ret);
		assert_null(ret);
	}
	assert_int_equal(sisy_fs_fault_used(x->ff), 4 * 5000);
	uint64_t sz;
	assert_int_equal(sisy_fs_file_size(x->fs, "/w3", &sz), SISY_OK);
	assert_int_equal(sz, 5000);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
	    T(test_basic_io),
	    T(test_unsynced_data_lost_synced_kept),
	    T(test_new_file_needs_dir_sync),
	    T(test_rename_durability_and_atomicity),
	    T(test_link_unlink),
	    T(test_unlinked_open_file),
	    T(test_torn_prefix),
	    T(test_torn_pwrite_middle),
	    T(test_torn_sectors),
	    T(test_crash_after_counting),
	    T(test_injection_rules),
	    T(test_capacity),
	    T(test_deterministic_per_seed),
	    T(test_ignore_dir_sync),
	    T(test_map_lock_list_exists),
	    T(test_corrupt),
	    T(test_rename_dirs_and_cross_dir),
	    T(test_threads),
	};
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}
