/* Tests sisyd/raftlog/recover.c (and read.c's checks): a torn tail is cut
 * off; damage anywhere a torn write cannot reach is refused with the file
 * and offset; missing segments, foreign versions and interrupted segment
 * creations are recognised; reads verify checksums. Files are damaged by
 * hand on the in-memory file system between a close and the next open. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "coding.h"
#include "format.h"
#include "fs_fault.h"
#include "hash.h"
#include "rand.h"
#include "rl_test_util.h"

#define DIR "/rl"

typedef struct fx {
	sisy_fs_fault *ff;
	sisy_fs *fs;
	sisy_raftlog_opts o;
	sisy_raftlog *lg;
	sisy_logger logger;
	int torn_warnings;
} fx;

static void capture(void *ctx, sisy_log_level level, const char *component,
		    const char *msg)
{
	fx *x = ctx;
	(void)component;
	if (level == SISY_LOG_WARN && strstr(msg, "torn write") != NULL)
		x->torn_warnings++;
}

static int setup(void **state)
{
	fx *x = calloc(1, sizeof *x);
	x->ff = sisy_fs_fault_new(3);
	x->fs = sisy_fs_fault_fs(x->ff);
	x->logger = (sisy_logger){capture, x, SISY_LOG_DEBUG};
	rl_opts_small(&x->o, x->fs, DIR);
	x->o.logger = &x->logger;
	*state = x;
	return 0;
}

static int teardown(void **state)
{
	fx *x = *state;
	if (x->lg != NULL)
		sisy_raftlog_close(x->lg);
	sisy_fs_fault_free(x->ff);
	free(x);
	return 0;
}

static sisy_err try_open(fx *x)
{
	x->lg = NULL;
	return sisy_raftlog_open(&x->o, &x->lg);
}

static void open_ok(fx *x)
{
	if (try_open(x) != SISY_OK)
		fail_msg("open: %s", sisy_errmsg());
}

static void close_ok(fx *x)
{
	assert_int_equal(sisy_raftlog_close(x->lg), SISY_OK);
	x->lg = NULL;
}

static void seg_path(char *out, uint64_t seq)
{
	assert_int_equal(raftlog_seg_path(out, 256, DIR, seq), SISY_OK);
}

/* Offset just past the last non-zero byte of a file. */
static uint64_t data_end(fx *x, const char *path)
{
	uint8_t *data;
	size_t len;
	assert_int_equal(sisy_fs_read_all(x->fs, path, 1 << 24, &data, &len),
			 SISY_OK);
	while (len > 0 && data[len - 1] == 0)
		len--;
	free(data);
	return len;
}

static void write_at(fx *x, const char *path, uint64_t off, const void *b,
		     size_t n)
{
	sisy_file *f;
	assert_int_equal(sisy_fs_open(x->fs, path, SISY_O_WRITE, &f), SISY_OK);
	assert_int_equal(sisy_file_pwrite(f, b, n, off), SISY_OK);
	assert_int_equal(sisy_file_sync(f), SISY_OK);
	assert_int_equal(sisy_file_close(f), SISY_OK);
}

static void fill_log(fx *x, uint64_t n)
{
	open_ok(x);
	assert_int_equal(rl_append(x->lg, 1, 1, n, 1), SISY_OK);
	close_ok(x);
}

static void test_torn_tail_is_cut(void **state)
{
	fx *x = *state;
	fill_log(x, 20); /* one segment: 0001 (the open makes 0002 next) */
	char p[256];
	seg_path(p, 1);
	uint64_t end = data_end(x, p);
	/* Half a record: a valid-looking header, then part of the body. */
	uint8_t junk[40];
	memset(junk, 0x5a, sizeof junk);
	sisy_put_u32(junk + 4, 300);
	junk[8] = RAFTLOG_REC_ENTRY;
	write_at(x, p, end, junk, sizeof junk);
	open_ok(x);
	assert_int_equal(x->torn_warnings, 1);
	sisy_raftlog_state st;
	assert_int_equal(sisy_raftlog_state_of(x->lg, 1, &st), SISY_OK);
	assert_int_equal(st.last_index, 20);
	assert_int_equal(rl_read_check(x->lg, 1, 1, 21, NULL), SISY_OK);
	/* The cut is durable: appends go on and a reopen is clean. */
	assert_int_equal(rl_append(x->lg, 1, 21, 30, 1), SISY_OK);
	close_ok(x);
	open_ok(x);
	assert_int_equal(x->torn_warnings, 1);
	assert_int_equal(rl_read_check(x->lg, 1, 1, 31, NULL), SISY_OK);
}

static void test_damage_in_sealed_segment(void **state)
{
	fx *x = *state;
	fill_log(x, 200); /* many segments, all but the last sealed */
	char p[256];
	seg_path(p, 2);
	assert_int_equal(sisy_fs_fault_corrupt(x->ff, p, 200, 0x01), SISY_OK);
	assert_int_equal(try_open(x), SISY_E_CORRUPT);
	assert_non_null(strstr(sisy_errmsg(), "0000000000000002.rlog"));
	assert_non_null(strstr(sisy_errmsg(), "offset"));
}

static void test_damage_behind_window_of_last_segment(void **state)
{
	fx *x = *state;
	x->o.segment_bytes = 1 << 20; /* everything in one segment */
	fill_log(x, 300);
	char p[256];
	seg_path(p, 1);
	uint64_t end = data_end(x, p);
	assert_true(end > 20000); /* far more than the torn window */
	assert_int_equal(sisy_fs_fault_corrupt(x->ff, p, 1000, 0x80), SISY_OK);
	assert_int_equal(try_open(x), SISY_E_CORRUPT);
	assert_non_null(strstr(sisy_errmsg(), "0000000000000001.rlog"));
	assert_non_null(strstr(sisy_errmsg(), "behind it"));
}

/* Damage to the very last record cannot be told from a torn write: the
 * record is dropped (this is the documented limit of the rule). */
static void test_damage_in_last_record_is_torn(void **state)
{
	fx *x = *state;
	fill_log(x, 20);
	char p[256];
	seg_path(p, 1);
	uint64_t end = data_end(x, p);
	assert_int_equal(sisy_fs_fault_corrupt(x->ff, p, end - 1, 0x10),
			 SISY_OK);
	open_ok(x);
	assert_int_equal(x->torn_warnings, 1);
	sisy_raftlog_state st;
	assert_int_equal(sisy_raftlog_state_of(x->lg, 1, &st), SISY_OK);
	assert_int_equal(st.last_index, 19);
}

static void test_missing_segments(void **state)
{
	fx *x = *state;
	fill_log(x, 200);
	char p[256];
	/* A hole in the run of segment numbers. */
	seg_path(p, 3);
	assert_int_equal(sisy_fs_unlink(x->fs, p), SISY_OK);
	assert_int_equal(try_open(x), SISY_E_CORRUPT);
	assert_non_null(strstr(sisy_errmsg(), "0000000000000003.rlog"));
	assert_non_null(strstr(sisy_errmsg(), "missing"));
}

static void test_missing_oldest_segment(void **state)
{
	fx *x = *state;
	fill_log(x, 200);
	char p[256];
	seg_path(p, 1);
	assert_int_equal(sisy_fs_unlink(x->fs, p), SISY_OK);
	assert_int_equal(try_open(x), SISY_E_CORRUPT);
	assert_non_null(strstr(sisy_errmsg(), "group 1"));
	assert_non_null(strstr(sisy_errmsg(), "missing"));
}

static void test_version_and_magic(void **state)
{
	fx *x = *state;
	fill_log(x, 5);
	char p[256];
	seg_path(p, 1);
	uint8_t h[RAFTLOG_HDR_SIZE];
	raftlog_seghdr_encode(h, 1, 4096);
	sisy_put_u32(h + 8, 2);
	sisy_put_u32(h + 40, sisy_checksum32(h, 40));
	write_at(x, p, 0, h, sizeof h);
	assert_int_equal(try_open(x), SISY_E_VERSION);
	assert_non_null(strstr(sisy_errmsg(), "version 2"));
	/* Not a segment at all, with data behind the header: corrupt. */
	write_at(x, p, 0, "NOTALOG!", 8);
	assert_int_equal(try_open(x), SISY_E_CORRUPT);
	assert_non_null(strstr(sisy_errmsg(), "magic"));
}

static void test_interrupted_segment_creation(void **state)
{
	fx *x = *state;
	fill_log(x, 20);
	/* A crash while creating segment 2 (after segment 1 was sealed): its
	 * name made it to the disk, its header did not. The fault layer never
	 * keeps a name before its directory sync, but ext4 may. */
	char p[256];
	seg_path(p, 1);
	uint8_t tmp[RAFTLOG_SEAL_MAX];
	sisy_buf b = {tmp, 0, sizeof tmp};
	assert_int_equal(raftlog_put_seal(&b, 1), SISY_OK);
	write_at(x, p, data_end(x, p), b.data, b.len);
	seg_path(p, 2);
	sisy_file *f;
	assert_int_equal(
	    sisy_fs_open(x->fs, p, SISY_O_WRITE | SISY_O_CREATE, &f), SISY_OK);
	assert_int_equal(sisy_file_append(f, "SISYR", 5), SISY_OK);
	assert_int_equal(sisy_file_close(f), SISY_OK);
	open_ok(x);
	assert_int_equal(rl_read_check(x->lg, 1, 1, 21, NULL), SISY_OK);
	close_ok(x);
	open_ok(x);
	assert_int_equal(rl_read_check(x->lg, 1, 1, 21, NULL), SISY_OK);
	close_ok(x);
	/* The same bad header on the only segment left, after older ones
	 * were deleted, is damage: its creation had completed. */
	open_ok(x);
	assert_int_equal(sisy_raftlog_compact(x->lg, 1, 20), SISY_OK);
	assert_int_equal(rl_append(x->lg, 1, 21, 200, 2), SISY_OK);
	assert_int_equal(sisy_raftlog_compact(x->lg, 1, 200), SISY_OK);
	close_ok(x);
	open_ok(x); /* deletes what the compaction freed */
	close_ok(x);
	assert_int_equal(rl_count_segments(x->fs, DIR), 2);
	uint64_t newest = 0;
	for (uint64_t q = 1; q < 100; q++) {
		bool ex;
		seg_path(p, q);
		assert_int_equal(sisy_fs_exists(x->fs, p, &ex), SISY_OK);
		if (ex)
			newest = q;
	}
	seg_path(p, newest - 1);
	assert_int_equal(sisy_fs_unlink(x->fs, p), SISY_OK);
	seg_path(p, newest);
	write_at(x, p, 0, "XXXXX", 5);
	assert_int_equal(try_open(x), SISY_E_CORRUPT);
	assert_non_null(strstr(sisy_errmsg(), "magic"));
}

static void test_read_verifies_checksum(void **state)
{
	fx *x = *state;
	open_ok(x);
	assert_int_equal(rl_append(x->lg, 1, 1, 100, 1), SISY_OK);
	assert_int_equal(sisy_raftlog_flush(x->lg), SISY_OK);
	/* Entry 1 sits right after segment 1's header and checkpoint (the
	 * group is new: the checkpoint is empty); flip a payload byte. */
	char p[256];
	seg_path(p, 1);
	assert_int_equal(
	    sisy_fs_fault_corrupt(x->ff, p, RAFTLOG_HDR_SIZE + 9, 0x04),
	    SISY_OK);
	sisy_raftlog_entries es;
	assert_int_equal(sisy_raftlog_read(x->lg, 1, 1, 2, 1000, &es),
			 SISY_E_CORRUPT);
	assert_non_null(strstr(sisy_errmsg(), "0000000000000001.rlog"));
	assert_non_null(strstr(sisy_errmsg(), "entry 1 "));
	assert_int_equal(rl_read_check(x->lg, 1, 2, 101, NULL), SISY_OK);
}

static void test_many_reopens(void **state)
{
	fx *x = *state;
	for (uint64_t k = 0; k < 20; k++) {
		open_ok(x);
		assert_int_equal(
		    rl_append(x->lg, 1, k * 10 + 1, k * 10 + 10, k + 1),
		    SISY_OK);
		assert_int_equal(sisy_raftlog_compact(x->lg, 1, k * 10 + 5),
				 SISY_OK);
		close_ok(x);
	}
	open_ok(x);
	sisy_raftlog_state st;
	assert_int_equal(sisy_raftlog_state_of(x->lg, 1, &st), SISY_OK);
	assert_int_equal(st.base_index, 195);
	assert_int_equal(st.base_term, 20);
	assert_int_equal(st.last_index, 200);
	assert_int_equal(rl_read_check(x->lg, 1, 196, 201, NULL), SISY_OK);
	/* Old segments went as the group was compacted past them. */
	assert_true(rl_count_segments(x->fs, DIR) <= 3);
}

/* Replay that starts mid-history: the oldest segment left holds entries
 * 31..33 that a later append at 9 replaced, while 1..30 sat in segments
 * deleted after compaction. Recovery must not resurrect 31..33. */
static void test_replay_after_deleted_segments(void **state)
{
	fx *x = *state;
	open_ok(x);
	assert_int_equal(rl_append(x->lg, 1, 1, 30, 1), SISY_OK);
	assert_int_equal(rl_append(x->lg, 2, 1, 80, 1), SISY_OK); /* filler */
	assert_int_equal(rl_append(x->lg, 1, 31, 33, 1), SISY_OK);
	assert_int_equal(rl_append(x->lg, 1, 9, 30, 2), SISY_OK);
	assert_int_equal(rl_append(x->lg, 2, 81, 160, 1), SISY_OK);
	assert_int_equal(sisy_raftlog_compact(x->lg, 1, 30), SISY_OK);
	assert_int_equal(sisy_raftlog_compact(x->lg, 2, 160), SISY_OK);
	assert_int_equal(sisy_raftlog_flush(x->lg), SISY_OK);
	sisy_raftlog_stats st;
	sisy_raftlog_stats_get(x->lg, &st);
	assert_true(st.segments_deleted > 0);
	/* The oldest segment left still holds 31..33 of term 1. */
	char p[256];
	seg_path(p, st.segments_deleted + 1);
	bool ex;
	assert_int_equal(sisy_fs_exists(x->fs, p, &ex), SISY_OK);
	assert_true(ex);
	close_ok(x);
	open_ok(x);
	sisy_raftlog_state s1;
	assert_int_equal(sisy_raftlog_state_of(x->lg, 1, &s1), SISY_OK);
	assert_int_equal(s1.base_index, 30);
	assert_int_equal(s1.base_term, 2);
	assert_int_equal(s1.last_index, 30);
	assert_int_equal(rl_append(x->lg, 1, 31, 31, 3), SISY_OK);
}

/* Random damage anywhere (bit flips, zeroed runs, cut files) must give an
 * error or a log whose reads succeed or report damage: never a crash, a
 * hang or a wrong entry (rl_read_check verifies every payload). */
static void test_random_damage(void **state)
{
	fx *x = *state;
	sisy_rand r;
	sisy_rand_seed(&r, 77);
	sisy_fs_fault_free(x->ff); /* each round gets its own */
	for (int round = 0; round < 150; round++) {
		sisy_fs_fault *ff = sisy_fs_fault_new((uint64_t)round);
		x->ff = ff;
		x->fs = sisy_fs_fault_fs(ff);
		x->o.fs = x->fs;
		open_ok(x);
		for (uint64_t g = 1; g <= 2; g++)
			assert_int_equal(rl_append(x->lg, g, 1, 60, 1),
					 SISY_OK);
		assert_int_equal(sisy_raftlog_compact(x->lg, 1, 10), SISY_OK);
		sisy_raftlog_hardstate hs = {1, 1, 60};
		assert_int_equal(sisy_raftlog_set_hardstate(x->lg, 2, &hs),
				 SISY_OK);
		close_ok(x);
		int nseg = rl_count_segments(x->fs, DIR);
		uint64_t seq = 1 + sisy_rand_below(&r, (uint64_t)nseg);
		char p[256];
		seg_path(p, seq);
		uint64_t size;
		assert_int_equal(sisy_fs_file_size(x->fs, p, &size), SISY_OK);
		switch (sisy_rand_below(&r, 3)) {
		case 0: /* a few bit flips */
			for (int k = 0; k < 3; k++)
				sisy_fs_fault_corrupt(
				    ff, p, sisy_rand_below(&r, size),
				    (uint8_t)(1u << sisy_rand_below(&r, 8)));
			break;
		case 1: { /* a run of zeros */
			uint8_t z[300] = {0};
			uint64_t off = sisy_rand_below(&r, size);
			size_t n = 1 + (size_t)sisy_rand_below(&r, sizeof z);
			write_at(x, p, off, z, n);
			break;
		}
		default: { /* cut short */
			sisy_file *f;
			assert_int_equal(
			    sisy_fs_open(x->fs, p, SISY_O_WRITE, &f), SISY_OK);
			assert_int_equal(
			    sisy_file_truncate(f, sisy_rand_below(&r, size)),
			    SISY_OK);
			assert_int_equal(sisy_file_sync(f), SISY_OK);
			assert_int_equal(sisy_file_close(f), SISY_OK);
		}
		}
		sisy_err rc = try_open(x);
		if (rc == SISY_OK) {
			for (uint64_t g = 1; g <= 2; g++) {
				sisy_raftlog_state st;
				if (sisy_raftlog_state_of(x->lg, g, &st) !=
				    SISY_OK)
					continue;
				rc = rl_read_check(x->lg, g, st.base_index + 1,
						   st.last_index + 1, NULL);
				assert_true(rc == SISY_OK ||
					    rc == SISY_E_CORRUPT);
			}
			close_ok(x);
		} else {
			assert_true(rc == SISY_E_CORRUPT ||
				    rc == SISY_E_VERSION);
			assert_non_null(strstr(sisy_errmsg(), "raftlog"));
		}
		sisy_fs_fault_free(ff);
	}
	x->ff = sisy_fs_fault_new(3); /* for teardown */
	x->fs = sisy_fs_fault_fs(x->ff);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
	    T(test_torn_tail_is_cut),
	    T(test_damage_in_sealed_segment),
	    T(test_damage_behind_window_of_last_segment),
	    T(test_damage_in_last_record_is_torn),
	    T(test_missing_segments),
	    T(test_missing_oldest_segment),
	    T(test_version_and_magic),
	    T(test_interrupted_segment_creation),
	    T(test_read_verifies_checksum),
	    T(test_many_reopens),
	    T(test_replay_after_deleted_segments),
	    T(test_random_damage),
	};
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}
