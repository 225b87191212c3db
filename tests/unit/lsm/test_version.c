/* Tests sisyd/lsm/version_edit.c, version_set.c and version.c: the edit
 * encoding (round trip, damaged input), the MANIFEST + CURRENT cycle
 * (apply, recover, rotate), damaged CURRENT/MANIFEST, failures while
 * logging an edit, and the overlap queries compaction relies on. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs_fault.h"
#include "lsm.h"
#include "rand.h"
#include "version.h"

#define DIR "/db"

static sisy_buf ik(const char *user, uint64_t seq)
{
	sisy_buf b = {0};
	lsm_ikey(&b, sisy_slice_str(user), seq, LSM_TYPE_VALUE);
	return b;
}

static void add_file(lsm_version_edit *e, int level, uint64_t num,
		     const char *lo, const char *hi)
{
	sisy_buf a = ik(lo, 100), b = ik(hi, 1);
	assert_int_equal(lsm_edit_add_file(e, level, num, 1000 + num,
					   sisy_buf_slice(&a),
					   sisy_buf_slice(&b)),
			 SISY_OK);
	sisy_buf_free(&a);
	sisy_buf_free(&b);
}

static void test_edit_round_trip(void **state)
{
	(void)state;
	lsm_version_edit e, d;
	lsm_edit_init(&e);
	lsm_edit_set_log_number(&e, 12);
	lsm_edit_set_next_file(&e, 40);
	lsm_edit_set_last_seq(&e, 123456789);
	lsm_edit_set_meta(&e, sisy_slice_str("applied=77"));
	add_file(&e, 0, 20, "a", "m");
	add_file(&e, 3, 21, "n", "z");
	lsm_edit_delete_file(&e, 2, 9);
	sisy_buf p = ik("k", 5);
	lsm_edit_set_pointer(&e, 1, sisy_buf_slice(&p));
	sisy_buf enc = {0};
	assert_int_equal(lsm_edit_encode(&e, &enc), SISY_OK);
	lsm_edit_init(&d);
	assert_int_equal(lsm_edit_decode(&d, sisy_buf_slice(&enc)), SISY_OK);
	assert_true(d.has_log_number && d.log_number == 12);
	assert_true(d.has_next_file && d.next_file == 40);
	assert_true(d.has_last_seq && d.last_seq == 123456789);
	assert_true(d.has_meta);
	assert_memory_equal(d.meta.data, "applied=77", 10);
	assert_int_equal(d.nadded, 2);
	assert_int_equal(d.added[1].level, 3);
	assert_int_equal(d.added[1].f->number, 21);
	assert_int_equal(d.added[1].f->size, 1021);
	assert_true(sisy_slice_eq(sisy_buf_slice(&d.added[0].f->smallest),
				  sisy_buf_slice(&e.added[0].f->smallest)));
	assert_int_equal(d.ndeleted, 1);
	assert_int_equal(d.deleted[0].level, 2);
	assert_int_equal(d.deleted[0].number, 9);
	assert_int_equal(d.npointers, 1);
	assert_true(sisy_slice_eq(sisy_buf_slice(&d.pointers[0].key),
				  sisy_buf_slice(&p)));
	lsm_edit_free(&d);
	/* every truncation and every flipped byte: OK or CORRUPT, no crash */
	int bad = 0;
	for (size_t n = 0; n < enc.len; n++) {
		lsm_edit_init(&d);
		sisy_err rc = lsm_edit_decode(&d, sisy_slice_make(enc.data, n));
		assert_true(rc == SISY_OK || rc == SISY_E_CORRUPT);
		bad += rc != SISY_OK;
		lsm_edit_free(&d);
		for (int bit = 0; bit < 8; bit++) {
			enc.data[n] ^= (uint8_t)(1 << bit);
			lsm_edit_init(&d);
			rc = lsm_edit_decode(&d, sisy_buf_slice(&enc));
			assert_true(rc == SISY_OK || rc == SISY_E_CORRUPT);
			lsm_edit_free(&d);
			enc.data[n] ^= (uint8_t)(1 << bit);
		}
	}
	assert_true(bad > 0);
	sisy_buf_free(&enc);
	sisy_buf_free(&p);
	lsm_edit_free(&e);
}

/* --- the version set over the fault file system --------------------------- */

typedef struct fixture {
	sisy_fs_fault *ff;
	sisy_fs *fs;
	pthread_mutex_t mu;
} fixture;

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof *f);
	f->ff = sisy_fs_fault_new(11);
	f->fs = sisy_fs_fault_fs(f->ff);
	pthread_mutex_init(&f->mu, NULL);
	assert_int_equal(sisy_fs_mkdir(f->fs, DIR), SISY_OK);
	assert_int_equal(sisy_fs_sync_dir(f->fs, "/"), SISY_OK);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;
	sisy_fs_fault_free(f->ff);
	pthread_mutex_destroy(&f->mu);
	free(f);
	return 0;
}

static lsm_version_set *vset_open(fixture *f, uint64_t max_manifest)
{
	lsm_vset_options o = {.fs = f->fs,
			      .dir = DIR,
			      .manifest_max_bytes = max_manifest,
			      .l1_max_bytes = 10 << 20,
			      .l0_compaction_trigger = 4};
	lsm_version_set *vs;
	assert_int_equal(lsm_vset_new(&o, &vs), SISY_OK);
	return vs;
}

static sisy_err apply(fixture *f, lsm_version_set *vs, lsm_version_edit *e)
{
	pthread_mutex_lock(&f->mu);
	sisy_err rc = lsm_vset_log_and_apply(vs, e, &f->mu);
	pthread_mutex_unlock(&f->mu);
	lsm_edit_free(e);
	return rc;
}

static void expect_files(lsm_version_set *vs, int level, const uint64_t *nums,
			 int n)
{
	lsm_version *v = vs->current;
	assert_int_equal(v->nfiles[level], n);
	for (int i = 0; i < n; i++)
		assert_int_equal(v->files[level][i]->number, nums[i]);
}

static void make_db(fixture *f, uint64_t max_manifest, int edits)
{
	lsm_version_set *vs = vset_open(f, max_manifest);
	assert_int_equal(lsm_vset_recover(vs), SISY_E_NOTFOUND);
	lsm_version_edit e;
	lsm_edit_init(&e);
	lsm_edit_set_log_number(&e, 3);
	assert_int_equal(lsm_vset_new_manifest(vs, &e, NULL), SISY_OK);
	lsm_edit_free(&e);
	for (int i = 0; i < edits; i++) {
		char lo[16], hi[16];
		snprintf(lo, sizeof lo, "k%04d", i * 2);
		snprintf(hi, sizeof hi, "k%04d", i * 2 + 1);
		lsm_edit_init(&e);
		uint64_t num = lsm_vset_new_file_number(vs);
		add_file(&e, i % 2 == 0 ? 0 : 2, num, lo, hi);
		lsm_edit_set_last_seq(&e, 1000 + (uint64_t)i);
		char meta[32];
		snprintf(meta, sizeof meta, "applied=%d", i);
		lsm_edit_set_meta(&e, sisy_slice_str(meta));
		assert_int_equal(apply(f, vs, &e), SISY_OK);
	}
	lsm_vset_free(vs);
}

static void test_apply_and_recover(void **state)
{
	fixture *f = *state;
	make_db(f, 1 << 20, 6);
	/* what a machine crash leaves is what recovery sees */
	sisy_fs_fault_crash(f->ff);
	sisy_fs_fault_restart(f->ff);
	lsm_version_set *vs = vset_open(f, 1 << 20);
	assert_int_equal(lsm_vset_recover(vs), SISY_OK);
	/* L0 in number order; L2 sorted by key */
	uint64_t l0[] = {3, 5, 7}, l2[] = {4, 6, 8};
	expect_files(vs, 0, l0, 3);
	expect_files(vs, 2, l2, 3);
	assert_int_equal(vs->last_seq, 1005);
	assert_int_equal(vs->log_number, 3);
	assert_true(vs->next_file > 8);
	assert_true(vs->has_meta);
	assert_int_equal(vs->meta.len, 9);
	assert_memory_equal(vs->meta.data, "applied=5", 9);
	/* delete a file, reopen */
	lsm_version_edit e;
	lsm_edit_init(&e);
	assert_int_equal(lsm_vset_new_manifest(vs, NULL, NULL), SISY_OK);
	lsm_edit_delete_file(&e, 2, 6);
	assert_int_equal(apply(f, vs, &e), SISY_OK);
	lsm_vset_free(vs);
	vs = vset_open(f, 1 << 20);
	assert_int_equal(lsm_vset_recover(vs), SISY_OK);
	uint64_t l2b[] = {4, 8};
	expect_files(vs, 2, l2b, 2);
	/* an edit deleting a file that is not there is refused, and the
	 * engine must stop: it is a bug, not a disk problem */
	lsm_edit_init(&e);
	lsm_edit_delete_file(&e, 1, 4);
	assert_int_equal(lsm_vset_new_manifest(vs, NULL, NULL), SISY_OK);
	assert_int_equal(apply(f, vs, &e), SISY_E_CORRUPT);
	assert_true(vs->fatal);
	expect_files(vs, 2, l2b, 2);
	lsm_vset_free(vs);
}

static void test_manifest_rotation(void **state)
{
	fixture *f = *state;
	/* a tiny limit: nearly every edit starts a new MANIFEST */
	make_db(f, 200, 12);
	lsm_version_set *vs = vset_open(f, 200);
	assert_int_equal(lsm_vset_recover(vs), SISY_OK);
	assert_int_equal(vs->current->nfiles[0], 6);
	assert_int_equal(vs->current->nfiles[2], 6);
	assert_memory_equal(vs->meta.data, "applied=11", 10);
	uint64_t first = vs->manifest_number;
	assert_true(first > 1);
	lsm_vset_free(vs);
}

static void test_overlapping_levels_are_corruption(void **state)
{
	fixture *f = *state;
	lsm_version_set *vs = vset_open(f, 1 << 20);
	assert_int_equal(lsm_vset_recover(vs), SISY_E_NOTFOUND);
	lsm_version_edit e;
	lsm_edit_init(&e);
	add_file(&e, 1, 10, "a", "m");
	add_file(&e, 1, 11, "k", "z");
	assert_int_equal(lsm_vset_new_manifest(vs, &e, NULL), SISY_E_CORRUPT);
	assert_non_null(strstr(sisy_errmsg(), "overlap"));
	lsm_edit_free(&e);
	lsm_vset_free(vs);
}

static void test_damaged_current_and_manifest(void **state)
{
	fixture *f = *state;
	make_db(f, 1 << 20, 4);
	lsm_version_set *vs = vset_open(f, 1 << 20);
	assert_int_equal(lsm_vset_recover(vs), SISY_OK);
	uint64_t mnum = vs->manifest_number;
	lsm_vset_free(vs);
	char mpath[256];
	lsm_file_name(mpath, sizeof mpath, DIR, mnum, LSM_FILE_MANIFEST);
	uint64_t msize;
	assert_int_equal(sisy_fs_file_size(f->fs, mpath, &msize), SISY_OK);

	/* a flipped bit in CURRENT */
	assert_int_equal(sisy_fs_fault_corrupt(f->ff, DIR "/CURRENT", 20, 1),
			 SISY_OK);
	vs = vset_open(f, 1 << 20);
	assert_int_equal(lsm_vset_recover(vs), SISY_E_CORRUPT);
	assert_non_null(strstr(sisy_errmsg(), "CURRENT"));
	lsm_vset_free(vs);
	assert_int_equal(sisy_fs_fault_corrupt(f->ff, DIR "/CURRENT", 20, 1),
			 SISY_OK);

	/* a flipped bit in the MANIFEST's first record (followed by others) */
	assert_int_equal(
	    sisy_fs_fault_corrupt(f->ff, mpath, LSM_WAL_HEADER + 10, 0x40),
	    SISY_OK);
	vs = vset_open(f, 1 << 20);
	assert_int_equal(lsm_vset_recover(vs), SISY_E_CORRUPT);
	assert_non_null(strstr(sisy_errmsg(), "MANIFEST"));
	assert_non_null(strstr(sisy_errmsg(), "offset 32"));
	lsm_vset_free(vs);
	assert_int_equal(
	    sisy_fs_fault_corrupt(f->ff, mpath, LSM_WAL_HEADER + 10, 0x40),
	    SISY_OK);

	/* garbage appended (a torn last edit) is dropped */
	sisy_file *fh;
	assert_int_equal(sisy_fs_open(f->fs, mpath, SISY_O_WRITE, &fh),
			 SISY_OK);
	assert_int_equal(sisy_file_append(fh, "\x13\x37\x00\x00\x99", 5),
			 SISY_OK);
	sisy_file_close(fh);
	vs = vset_open(f, 1 << 20);
	assert_int_equal(lsm_vset_recover(vs), SISY_OK);
	assert_int_equal(vs->current->nfiles[0] + vs->current->nfiles[2], 4);
	lsm_vset_free(vs);

	/* CURRENT naming a missing MANIFEST */
	assert_int_equal(sisy_fs_unlink(f->fs, mpath), SISY_OK);
	vs = vset_open(f, 1 << 20);
	assert_int_equal(lsm_vset_recover(vs), SISY_E_CORRUPT);
	assert_non_null(strstr(sisy_errmsg(), "missing"));
	lsm_vset_free(vs);
}

static void test_failures_while_logging(void **state)
{
	fixture *f = *state;
	make_db(f, 1 << 20, 2);
	lsm_version_set *vs = vset_open(f, 1 << 20);
	assert_int_equal(lsm_vset_recover(vs), SISY_OK);
	assert_int_equal(lsm_vset_new_manifest(vs, NULL, NULL), SISY_OK);
	int before = vs->current->nfiles[0];
	lsm_version_edit e;

	/* ENOSPC writing the edit: refused, not installed, not fatal */
	sisy_fs_fault_inject(f->ff, SISY_FAULT_WRITE, "MANIFEST", 0, 1,
			     SISY_E_NOSPC);
	lsm_edit_init(&e);
	add_file(&e, 0, lsm_vset_new_file_number(vs), "x", "y");
	assert_int_equal(apply(f, vs, &e), SISY_E_NOSPC);
	assert_false(vs->fatal);
	assert_int_equal(vs->current->nfiles[0], before);
	/* the next edit goes through and recovery reads both fine */
	lsm_edit_init(&e);
	add_file(&e, 0, lsm_vset_new_file_number(vs), "x", "y");
	assert_int_equal(apply(f, vs, &e), SISY_OK);
	assert_int_equal(vs->current->nfiles[0], before + 1);

	/* ENOSPC renaming CURRENT during a switch: not installed, not fatal,
	 * and CURRENT still names a complete MANIFEST */
	sisy_fs_fault_inject(f->ff, SISY_FAULT_RENAME, "CURRENT", 0, 1,
			     SISY_E_NOSPC);
	lsm_edit_init(&e);
	add_file(&e, 0, lsm_vset_new_file_number(vs), "x", "y");
	pthread_mutex_lock(&f->mu);
	assert_int_equal(lsm_vset_log_and_apply_ex(vs, &e, &f->mu, true),
			 SISY_E_NOSPC);
	pthread_mutex_unlock(&f->mu);
	lsm_edit_free(&e);
	assert_false(vs->fatal);
	assert_int_equal(vs->current->nfiles[0], before + 1);

	/* EIO syncing the MANIFEST: fatal */
	sisy_fs_fault_inject(f->ff, SISY_FAULT_SYNC, "MANIFEST", 0, 1,
			     SISY_E_IO);
	lsm_edit_init(&e);
	add_file(&e, 0, lsm_vset_new_file_number(vs), "x", "y");
	assert_int_equal(apply(f, vs, &e), SISY_E_IO);
	assert_true(vs->fatal);
	assert_int_equal(vs->current->nfiles[0], before + 1);
	lsm_vset_free(vs);

	/* a failed directory sync after the CURRENT switch: fatal. (The edit
	 * whose sync failed may or may not be read back: its outcome is
	 * unknown, which is why the engine stops.) */
	vs = vset_open(f, 1 << 20);
	assert_int_equal(lsm_vset_recover(vs), SISY_OK);
	assert_in_range(vs->current->nfiles[0], before + 1, before + 2);
	sisy_fs_fault_inject(f->ff, SISY_FAULT_SYNC_DIR, NULL, 0, 1, SISY_E_IO);
	assert_int_equal(lsm_vset_new_manifest(vs, NULL, NULL), SISY_E_IO);
	assert_true(vs->fatal);
	lsm_vset_free(vs);
}

static void test_overlap_queries(void **state)
{
	fixture *f = *state;
	lsm_version_set *vs = vset_open(f, 1 << 20);
	lsm_version_edit e;
	lsm_edit_init(&e);
	add_file(&e, 1, 10, "b", "d");
	add_file(&e, 1, 11, "f", "h");
	add_file(&e, 1, 12, "j", "l");
	add_file(&e, 0, 13, "a", "z");
	assert_int_equal(lsm_vset_new_manifest(vs, &e, NULL), SISY_OK);
	lsm_edit_free(&e);
	lsm_version *v = vs->current;
	sisy_slice c = sisy_slice_str("c"), e2 = sisy_slice_str("e"),
		   g = sisy_slice_str("g"), k = sisy_slice_str("k"),
		   m = sisy_slice_str("m");
	assert_true(lsm_version_overlaps(v, 1, &c, &c));
	assert_false(lsm_version_overlaps(v, 1, &e2, &e2));
	assert_true(lsm_version_overlaps(v, 1, &e2, &g));
	assert_false(lsm_version_overlaps(v, 1, &m, NULL));
	assert_true(lsm_version_overlaps(v, 1, NULL, &c));
	assert_true(lsm_version_overlaps(v, 0, &m, &m));
	lsm_file_meta **out;
	int n;
	assert_int_equal(lsm_version_overlapping(v, 1, &c, &k, &out, &n),
			 SISY_OK);
	assert_int_equal(n, 3);
	free(out);
	assert_int_equal(lsm_version_overlapping(v, 1, &e2, &g, &out, &n),
			 SISY_OK);
	assert_int_equal(n, 1);
	assert_int_equal(out[0]->number, 11);
	free(out);
	assert_int_equal(lsm_version_overlapping(v, 1, NULL, NULL, &out, &n),
			 SISY_OK);
	assert_int_equal(n, 3);
	free(out);
	sisy_buf t = ik("g", 50);
	assert_int_equal(lsm_version_find_file(v, 1, sisy_buf_slice(&t)), 1);
	sisy_buf_free(&t);
	t = ik("zz", 50);
	assert_int_equal(lsm_version_find_file(v, 1, sisy_buf_slice(&t)), 3);
	sisy_buf_free(&t);
	assert_int_equal(lsm_version_level_bytes(v, 1), 1010 + 1011 + 1012);
	/* score: one L0 file of four, 3 KB of 10 MiB in L1 */
	assert_int_equal(v->compaction_level, 0);
	assert_true(v->compaction_score > 0.24 && v->compaction_score < 0.26);
	lsm_vset_free(vs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_edit_round_trip),
	    cmocka_unit_test_setup_teardown(test_apply_and_recover, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_manifest_rotation, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(
		test_overlapping_levels_are_corruption, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_damaged_current_and_manifest,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_failures_while_logging, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_overlap_queries, setup,
					    teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
