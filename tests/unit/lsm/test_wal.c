/* Tests sisyd/lsm/wal_writer.c and wal_reader.c: round trips, a torn tail
 * cut at every byte, zero-filled tails, corruption in the middle reported
 * with its offset, header checks, failed appends that leave no partial
 * record behind, and crashes of a disk that reorders unsynced writes (a
 * lost sector before surviving records is a torn tail unless a later
 * record vouches that it was synced). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs_fault.h"
#include "lsm_test_util.h"
#include "rand.h"
#include "wal.h"
#include "wal_format.h"

static char dir[256];

static int setup(void **state)
{
	(void)state;
	tu_mkdtemp(dir, sizeof dir, "wal");
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	tu_rmdir(dir);
	return 0;
}

static void path_of(char *out, size_t cap, uint64_t num)
{
	snprintf(out, cap, "%s/%06llu.log", dir, (unsigned long long)num);
}

/* Writes n records whose payload i is (i, filler...) of length len(i). */
static size_t payload_len(int i)
{
	return 1 + (size_t)((i * 7919) % 700);
}

static void fill_payload(uint8_t *p, int i)
{
	size_t n = payload_len(i);
	for (size_t j = 0; j < n; j++)
		p[j] = (uint8_t)(i + j * 31);
}

static uint64_t write_log(uint64_t num, int n, uint64_t *offsets)
{
	char p[512];
	path_of(p, sizeof p, num);
	lsm_wal_writer *w;
	assert_int_equal(
	    lsm_wal_create(sisy_fs_posix(), p, LSM_WAL_LOG, num, &w), SISY_OK);
	uint8_t buf[1024];
	for (int i = 0; i < n; i++) {
		if (offsets != NULL)
			offsets[i] = lsm_wal_size(w);
		fill_payload(buf, i);
		assert_int_equal(
		    lsm_wal_add(w, sisy_slice_make(buf, payload_len(i))),
		    SISY_OK);
	}
	assert_int_equal(lsm_wal_sync(w), SISY_OK);
	uint64_t size = lsm_wal_size(w);
	assert_int_equal(lsm_wal_close(w), SISY_OK);
	return size;
}

static uint8_t *read_file(const char *p, size_t *len)
{
	FILE *f = fopen(p, "rb");
	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	*len = (size_t)ftell(f);
	fseek(f, 0, SEEK_SET);
	uint8_t *d = malloc(*len + 1);
	assert_int_equal(fread(d, 1, *len, f), *len);
	fclose(f);
	return d;
}

static void write_file(const char *p, const uint8_t *d, size_t len)
{
	FILE *f = fopen(p, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(d, 1, len, f), len);
	fclose(f);
}

/* Reads log num; returns how many records verified in order; *end_rc is
 * the code that ended the read. */
static int read_log(uint64_t num, lsm_wal_kind kind, sisy_err *end_rc,
		    bool *torn, uint64_t *valid_end)
{
	char p[512];
	path_of(p, sizeof p, num);
	lsm_wal_reader *r;
	assert_int_equal(lsm_wal_reader_open(sisy_fs_posix(), p, kind, num, &r),
			 SISY_OK);
	int n = 0;
	sisy_slice pl;
	sisy_err rc;
	uint8_t buf[1024];
	while ((rc = lsm_wal_next(r, &pl)) == SISY_OK) {
		assert_int_equal(pl.len, payload_len(n));
		fill_payload(buf, n);
		assert_memory_equal(pl.data, buf, pl.len);
		n++;
	}
	*end_rc = rc;
	if (rc == SISY_E_NOTFOUND) {
		*torn = lsm_wal_reader_torn(r);
		*valid_end = lsm_wal_reader_valid_end(r);
	}
	lsm_wal_reader_close(r);
	return n;
}

static void test_round_trip(void **state)
{
	(void)state;
	uint64_t size = write_log(7, 500, NULL);
	sisy_err rc;
	bool torn;
	uint64_t end;
	assert_int_equal(read_log(7, LSM_WAL_LOG, &rc, &torn, &end), 500);
	assert_int_equal(rc, SISY_E_NOTFOUND);
	assert_false(torn);
	assert_int_equal(end, size);
	/* an empty log: just the header */
	size = write_log(8, 0, NULL);
	assert_int_equal(size, LSM_WAL_HEADER);
	assert_int_equal(read_log(8, LSM_WAL_LOG, &rc, &torn, &end), 0);
	assert_int_equal(rc, SISY_E_NOTFOUND);
	assert_false(torn);
}

static void test_big_record(void **state)
{
	(void)state;
	char p[512];
	path_of(p, sizeof p, 9);
	lsm_wal_writer *w;
	assert_int_equal(
	    lsm_wal_create(sisy_fs_posix(), p, LSM_WAL_MANIFEST, 9, &w),
	    SISY_OK);
	size_t n = 3u << 20; /* above the copy threshold: two appends */
	uint8_t *big = malloc(n);
	for (size_t i = 0; i < n; i++)
		big[i] = (uint8_t)(i * 13);
	assert_int_equal(lsm_wal_add(w, sisy_slice_make(big, n)), SISY_OK);
	assert_int_equal(lsm_wal_add(w, sisy_slice_make("x", 1)), SISY_OK);
	assert_int_equal(lsm_wal_add(w, sisy_slice_make("x", 0)),
			 SISY_E_TOOBIG);
	assert_int_equal(lsm_wal_close(w), SISY_OK);
	lsm_wal_reader *r;
	assert_int_equal(
	    lsm_wal_reader_open(sisy_fs_posix(), p, LSM_WAL_MANIFEST, 9, &r),
	    SISY_OK);
	sisy_slice pl;
	assert_int_equal(lsm_wal_next(r, &pl), SISY_OK);
	assert_int_equal(pl.len, n);
	assert_memory_equal(pl.data, big, n);
	assert_int_equal(lsm_wal_next(r, &pl), SISY_OK);
	assert_int_equal(pl.len, 1);
	assert_int_equal(lsm_wal_next(r, &pl), SISY_E_NOTFOUND);
	lsm_wal_reader_close(r);
	free(big);
}

static void test_torn_tail_at_every_byte(void **state)
{
	(void)state;
	enum { N = 6 };
	uint64_t off[N + 1];
	uint64_t size = write_log(10, N, off);
	off[N] = size;
	char p[512], q[512];
	path_of(p, sizeof p, 10);
	size_t len;
	uint8_t *d = read_file(p, &len);
	assert_int_equal(len, size);
	path_of(q, sizeof q, 11);
	for (size_t cut = 0; cut < len; cut++) {
		/* same file number, so rename the copy's number in place */
		write_file(q, d, cut);
		char p10[512];
		path_of(p10, sizeof p10, 10);
		rename(q, p10);
		sisy_err rc;
		bool torn;
		uint64_t end;
		int n = read_log(10, LSM_WAL_LOG, &rc, &torn, &end);
		assert_int_equal(rc, SISY_E_NOTFOUND);
		int whole = 0;
		while (whole < N && off[whole + 1] <= cut)
			whole++;
		assert_int_equal(n, whole);
		uint64_t expect_end = cut < LSM_WAL_HEADER ? 0 : off[whole];
		assert_int_equal(end, expect_end);
		assert_int_equal(torn, cut != expect_end);
	}
	write_file(p, d, len);
	free(d);
}

static void test_zero_filled_tail_is_torn(void **state)
{
	(void)state;
	uint64_t size = write_log(12, 20, NULL);
	char p[512];
	path_of(p, sizeof p, 12);
	size_t len;
	uint8_t *d = read_file(p, &len);
	d = realloc(d, len + 8192);
	memset(d + len, 0, 8192); /* size grew, data never landed */
	write_file(p, d, len + 8192);
	sisy_err rc;
	bool torn;
	uint64_t end;
	assert_int_equal(read_log(12, LSM_WAL_LOG, &rc, &torn, &end), 20);
	assert_int_equal(rc, SISY_E_NOTFOUND);
	assert_true(torn);
	assert_int_equal(end, size);
	/* a header of zeros with nothing after it: a torn create */
	memset(d, 0, LSM_WAL_HEADER + 100);
	write_file(p, d, LSM_WAL_HEADER + 100);
	assert_int_equal(read_log(12, LSM_WAL_LOG, &rc, &torn, &end), 0);
	assert_int_equal(rc, SISY_E_NOTFOUND);
	assert_true(torn);
	assert_int_equal(end, 0);
	free(d);
}

static void test_corruption_in_the_middle(void **state)
{
	(void)state;
	enum { N = 8 };
	uint64_t off[N];
	uint64_t size = write_log(13, N, off);
	char p[512];
	path_of(p, sizeof p, 13);
	size_t len;
	uint8_t *orig = read_file(p, &len);
	uint8_t *d = malloc(len);
	/* a flipped bit anywhere in records 0..N-2 (or their headers) is
	 * corruption at that record's offset */
	for (int rec = 0; rec < N - 1; rec++) {
		for (uint64_t at = off[rec]; at < off[rec + 1];
		     at += 1 + (off[rec + 1] - off[rec]) / 7) {
			memcpy(d, orig, len);
			d[at] ^= 0x10;
			write_file(p, d, len);
			sisy_err rc;
			bool torn;
			uint64_t end;
			int n = read_log(13, LSM_WAL_LOG, &rc, &torn, &end);
			assert_int_equal(rc, SISY_E_CORRUPT);
			assert_int_equal(n, rec);
			char want[64];
			snprintf(want, sizeof want, "offset %llu,",
				 (unsigned long long)off[rec]);
			assert_non_null(strstr(sisy_errmsg(), want));
			assert_non_null(strstr(sisy_errmsg(), "000013.log"));
		}
	}
	/* in the last record it cannot be told from a torn write */
	memcpy(d, orig, len);
	d[off[N - 1] + 9] ^= 1;
	write_file(p, d, len);
	sisy_err rc;
	bool torn;
	uint64_t end;
	assert_int_equal(read_log(13, LSM_WAL_LOG, &rc, &torn, &end), N - 1);
	assert_int_equal(rc, SISY_E_NOTFOUND);
	assert_true(torn);
	assert_int_equal(end, off[N - 1]);
	/* a damaged header followed by valid records is corruption */
	memcpy(d, orig, len);
	d[3] ^= 1;
	write_file(p, d, len);
	assert_int_equal(read_log(13, LSM_WAL_LOG, &rc, &torn, &end), 0);
	assert_int_equal(rc, SISY_E_CORRUPT);
	(void)size;
	write_file(p, orig, len);
	free(d);
	free(orig);
}

static void test_header_checks(void **state)
{
	(void)state;
	write_log(14, 3, NULL);
	sisy_err rc;
	bool torn;
	uint64_t end;
	/* a MANIFEST reader refuses a WAL */
	assert_int_equal(read_log(14, LSM_WAL_MANIFEST, &rc, &torn, &end), 0);
	assert_int_equal(rc, SISY_E_CORRUPT);
	assert_non_null(strstr(sisy_errmsg(), "magic"));
	/* a file renamed to another number */
	char p[512], q[512];
	path_of(p, sizeof p, 14);
	path_of(q, sizeof q, 15);
	assert_int_equal(rename(p, q), 0);
	assert_int_equal(read_log(15, LSM_WAL_LOG, &rc, &torn, &end), 0);
	assert_int_equal(rc, SISY_E_CORRUPT);
	/* a future format version */
	size_t len;
	uint8_t *d = read_file(q, &len);
	sisy_put_u64(d + 16, 15);
	sisy_put_u32(d + 8, LSM_WAL_VERSION + 1);
	sisy_put_u32(d + 28, sisy_checksum32(d, 28));
	write_file(q, d, len);
	assert_int_equal(read_log(15, LSM_WAL_LOG, &rc, &torn, &end), 0);
	assert_int_equal(rc, SISY_E_VERSION);
	free(d);
}

static void test_record_shaped_payload_not_mistaken(void **state)
{
	(void)state;
	/* Record 1's payload is a byte-exact copy of record 0 (header and
	 * all). Cutting inside record 1 must read as a torn tail: the copy
	 * sits at another offset, so it does not verify there. */
	char p[512];
	path_of(p, sizeof p, 16);
	lsm_wal_writer *w;
	assert_int_equal(
	    lsm_wal_create(sisy_fs_posix(), p, LSM_WAL_LOG, 16, &w), SISY_OK);
	uint8_t rec0[64];
	memset(rec0, 'a', sizeof rec0);
	assert_int_equal(lsm_wal_add(w, sisy_slice_make(rec0, sizeof rec0)),
			 SISY_OK);
	lsm_wal_close(w);
	size_t len;
	uint8_t *d = read_file(p, &len);
	enum { REC0 = LSM_WAL_RECORD_HEADER + 64 };
	uint8_t payload[2 * REC0 + 10];
	memset(payload, 'b', sizeof payload);
	memcpy(payload + 10, d + LSM_WAL_HEADER, REC0);
	free(d);
	unlink(p);
	assert_int_equal(
	    lsm_wal_create(sisy_fs_posix(), p, LSM_WAL_LOG, 16, &w), SISY_OK);
	assert_int_equal(lsm_wal_add(w, sisy_slice_make(rec0, sizeof rec0)),
			 SISY_OK);
	assert_int_equal(
	    lsm_wal_add(w, sisy_slice_make(payload, sizeof payload)), SISY_OK);
	lsm_wal_close(w);
	d = read_file(p, &len);
	write_file(p, d, len - 5);
	free(d);
	lsm_wal_reader *r;
	assert_int_equal(
	    lsm_wal_reader_open(sisy_fs_posix(), p, LSM_WAL_LOG, 16, &r),
	    SISY_OK);
	sisy_slice pl;
	assert_int_equal(lsm_wal_next(r, &pl), SISY_OK);
	assert_int_equal(lsm_wal_next(r, &pl), SISY_E_NOTFOUND);
	assert_true(lsm_wal_reader_torn(r));
	assert_int_equal(lsm_wal_reader_valid_end(r), LSM_WAL_HEADER + REC0);
	lsm_wal_reader_close(r);
}

static void test_failed_append_leaves_no_partial_record(void **state)
{
	(void)state;
	sisy_fs_fault *ff = sisy_fs_fault_new(1);
	sisy_fs *fs = sisy_fs_fault_fs(ff);
	assert_int_equal(sisy_fs_mkdir(fs, "/d"), SISY_OK);
	lsm_wal_writer *w;
	assert_int_equal(
	    lsm_wal_create(fs, "/d/000003.log", LSM_WAL_LOG, 3, &w), SISY_OK);
	uint8_t buf[1024];
	fill_payload(buf, 0);
	assert_int_equal(lsm_wal_add(w, sisy_slice_make(buf, payload_len(0))),
			 SISY_OK);
	uint64_t before = lsm_wal_size(w);
	sisy_fs_fault_inject(ff, SISY_FAULT_WRITE, ".log", 0, 1, SISY_E_NOSPC);
	fill_payload(buf, 1);
	assert_int_equal(lsm_wal_add(w, sisy_slice_make(buf, payload_len(1))),
			 SISY_E_NOSPC);
	assert_false(lsm_wal_broken(w));
	assert_int_equal(lsm_wal_size(w), before);
	/* the retry lands where the failed one would have */
	assert_int_equal(lsm_wal_add(w, sisy_slice_make(buf, payload_len(1))),
			 SISY_OK);
	assert_int_equal(lsm_wal_sync(w), SISY_OK);
	lsm_wal_close(w);
	lsm_wal_reader *r;
	assert_int_equal(
	    lsm_wal_reader_open(fs, "/d/000003.log", LSM_WAL_LOG, 3, &r),
	    SISY_OK);
	sisy_slice pl;
	for (int i = 0; i < 2; i++) {
		assert_int_equal(lsm_wal_next(r, &pl), SISY_OK);
		fill_payload(buf, i);
		assert_int_equal(pl.len, payload_len(i));
		assert_memory_equal(pl.data, buf, pl.len);
	}
	assert_int_equal(lsm_wal_next(r, &pl), SISY_E_NOTFOUND);
	assert_false(lsm_wal_reader_torn(r));
	lsm_wal_reader_close(r);
	/* when the undo fails as well, the writer says it is broken */
	assert_int_equal(
	    lsm_wal_create(fs, "/d/000004.log", LSM_WAL_LOG, 4, &w), SISY_OK);
	sisy_fs_fault_inject(ff, SISY_FAULT_WRITE, "000004", 0, 1, SISY_E_IO);
	sisy_fs_fault_inject(ff, SISY_FAULT_TRUNCATE, "000004", 0, 1,
			     SISY_E_IO);
	assert_int_equal(lsm_wal_add(w, sisy_slice_make(buf, 10)), SISY_E_IO);
	assert_true(lsm_wal_broken(w));
	lsm_wal_close(w);
	/* a failed sync is final too */
	assert_int_equal(
	    lsm_wal_create(fs, "/d/000005.log", LSM_WAL_LOG, 5, &w), SISY_OK);
	sisy_fs_fault_inject(ff, SISY_FAULT_SYNC, "000005", 0, 1, SISY_E_IO);
	assert_int_equal(lsm_wal_sync(w), SISY_E_IO);
	assert_true(lsm_wal_broken(w));
	lsm_wal_close(w);
	sisy_fs_fault_free(ff);
}

static void test_scan_after_a_huge_torn_record_is_fast(void **state)
{
	(void)state;
	/* a 16 MiB record cut in the middle: the scan for a later valid
	 * record visits every offset, and must not hash megabytes at each
	 * (the header checksum rejects them first). It takes a second; with
	 * the payload hashed at every plausible offset it would take hours
	 * and the test's ctest timeout would fail it. */
	char p[512];
	path_of(p, sizeof p, 17);
	lsm_wal_writer *w;
	assert_int_equal(
	    lsm_wal_create(sisy_fs_posix(), p, LSM_WAL_LOG, 17, &w), SISY_OK);
	size_t n = 16u << 20;
	uint8_t *big = malloc(n);
	/* small little-endian numbers everywhere: every offset looks like a
	 * plausible length */
	for (size_t i = 0; i < n; i += 4)
		sisy_put_u32(big + i, (uint32_t)(i % 4096) + 1);
	assert_int_equal(lsm_wal_add(w, sisy_slice_make(big, n)), SISY_OK);
	lsm_wal_close(w);
	free(big);
	assert_int_equal(truncate(p, (off_t)(LSM_WAL_HEADER + n / 2)), 0);
	sisy_err rc;
	bool torn;
	uint64_t end;
	lsm_wal_reader *r;
	assert_int_equal(
	    lsm_wal_reader_open(sisy_fs_posix(), p, LSM_WAL_LOG, 17, &r),
	    SISY_OK);
	sisy_slice pl;
	rc = lsm_wal_next(r, &pl);
	assert_int_equal(rc, SISY_E_NOTFOUND);
	torn = lsm_wal_reader_torn(r);
	end = lsm_wal_reader_valid_end(r);
	lsm_wal_reader_close(r);
	assert_true(torn);
	assert_int_equal(end, LSM_WAL_HEADER);
}

/* Writes records 0..n-1 to /d/<num>.log on fs, syncing after record
 * sync_after - 1 (none when 0); off[i] = offset of record i, off[n] = the
 * size; *synced = the size at that sync. Not synced at the end. */
static void write_log_sync_at(sisy_fs *fs, const char *p, uint64_t num, int n,
			      int sync_after, uint64_t *off, uint64_t *synced)
{
	lsm_wal_writer *w;
	assert_int_equal(lsm_wal_create(fs, p, LSM_WAL_LOG, num, &w), SISY_OK);
	uint8_t buf[1024];
	*synced = 0;
	for (int i = 0; i < n; i++) {
		if (i == sync_after && sync_after > 0) {
			assert_int_equal(lsm_wal_sync(w), SISY_OK);
			*synced = lsm_wal_size(w);
		}
		off[i] = lsm_wal_size(w);
		fill_payload(buf, i);
		assert_int_equal(
		    lsm_wal_add(w, sisy_slice_make(buf, payload_len(i))),
		    SISY_OK);
	}
	off[n] = lsm_wal_size(w);
	lsm_wal_close(w);
}

/* The record holding byte `at`. */
static int record_at(const uint64_t *off, int n, uint64_t at)
{
	int i = 0;
	while (i + 1 < n && off[i + 1] <= at)
		i++;
	return i;
}

/* Writes orig[0..len) to p with the 512-byte sector at s zeroed: a sector
 * of the write that never reached the disk. */
static void write_lost_sector(const char *p, const uint8_t *orig, size_t len,
			      uint64_t s)
{
	assert_true(s + 512 <= len);
	uint8_t *d = malloc(len);
	assert_non_null(d);
	memcpy(d, orig, len);
	memset(d + s, 0, 512);
	write_file(p, d, len);
	free(d);
}

static void test_lost_unsynced_sector_is_torn(void **state)
{
	(void)state;
	/* A disk that reorders unsynced writes loses a sector in the middle
	 * of the unsynced tail and keeps later ones: the records from the
	 * hole on are a torn tail (never acknowledged as durable), not
	 * corruption -- else an ordinary power cut makes the log unreadable.
	 * Reading stops at the hole, so what is replayed is a prefix. */
	enum { N = 40, K = 8 };
	uint64_t off[N + 1], synced;
	char p[512];
	path_of(p, sizeof p, 18);
	write_log_sync_at(sisy_fs_posix(), p, 18, N, K, off, &synced);
	size_t len;
	uint8_t *orig = read_file(p, &len);
	int tried = 0;
	for (uint64_t s = (synced + 511) / 512 * 512; s + 512 <= off[N - 1];
	     s += 512 * 3) {
		write_lost_sector(p, orig, len, s);
		sisy_err rc;
		bool torn;
		uint64_t end;
		int n = read_log(18, LSM_WAL_LOG, &rc, &torn, &end);
		int first = record_at(off, N, s);
		if (rc != SISY_E_NOTFOUND)
			fail_msg("sector at %llu: %s", (unsigned long long)s,
				 sisy_errmsg());
		assert_true(torn);
		assert_int_equal(n, first);
		assert_int_equal(end, off[first]);
		assert_true(n >= K); /* the synced records are all there */
		tried++;
	}
	assert_true(tried >= 3);
	write_file(p, orig, len);
	free(orig);
}

static void test_damage_before_a_vouched_sync_is_corruption(void **state)
{
	(void)state;
	/* The same lost-sector shape inside bytes that were synced, with
	 * records written after that sync behind it: those records carry
	 * the synced size, which proves the damage is not a crash's. */
	enum { N = 40, K = 30 };
	uint64_t off[N + 1], synced;
	char p[512];
	path_of(p, sizeof p, 19);
	write_log_sync_at(sisy_fs_posix(), p, 19, N, K, off, &synced);
	size_t len;
	uint8_t *orig = read_file(p, &len);
	int tried = 0;
	for (uint64_t s = 512; s + 512 <= synced; s += 512 * 3) {
		write_lost_sector(p, orig, len, s);
		sisy_err rc;
		bool torn;
		uint64_t end;
		int n = read_log(19, LSM_WAL_LOG, &rc, &torn, &end);
		int first = record_at(off, N, s);
		assert_int_equal(rc, SISY_E_CORRUPT);
		assert_int_equal(n, first);
		char want[64];
		snprintf(want, sizeof want, "offset %llu,",
			 (unsigned long long)off[first]);
		assert_non_null(strstr(sisy_errmsg(), want));
		tried++;
	}
	assert_true(tried >= 3);
	write_file(p, orig, len);
	free(orig);
}

static void test_reordering_crashes_keep_synced_prefix(void **state)
{
	(void)state;
	/* Crashes of a disk that reorders unsynced writes (fs_fault's torn
	 * sectors), at random points of a log with syncs now and then: the
	 * reader always ends cleanly or torn, never "corrupt", and returns
	 * the records in order up to at least the last synced one. */
	uint64_t seed = tu_seed("wal_reordering");
	sisy_rand r;
	sisy_rand_seed(&r, seed);
	int holes = 0;
	for (int trial = 0; trial < 300; trial++) {
		sisy_fs_fault *ff = sisy_fs_fault_new(sisy_rand_next(&r));
		sisy_fs_fault_set_torn_sectors(ff, true);
		sisy_fs *fs = sisy_fs_fault_fs(ff);
		assert_int_equal(sisy_fs_mkdir(fs, "/d"), SISY_OK);
		assert_int_equal(sisy_fs_sync_dir(fs, "/"), SISY_OK);
		lsm_wal_writer *w;
		assert_int_equal(
		    lsm_wal_create(fs, "/d/000007.log", LSM_WAL_LOG, 7, &w),
		    SISY_OK);
		assert_int_equal(sisy_fs_sync_dir(fs, "/d"), SISY_OK);
		int n = 5 + (int)sisy_rand_below(&r, 40), synced = 0;
		uint8_t buf[1024];
		for (int i = 0; i < n; i++) {
			fill_payload(buf, i);
			assert_int_equal(
			    lsm_wal_add(w,
					sisy_slice_make(buf, payload_len(i))),
			    SISY_OK);
			if (sisy_rand_chance(&r, 1, 8)) {
				assert_int_equal(lsm_wal_sync(w), SISY_OK);
				synced = i + 1;
			}
		}
		sisy_fs_fault_crash(ff);
		lsm_wal_close(w);
		sisy_fs_fault_restart(ff);
		lsm_wal_reader *rd;
		assert_int_equal(lsm_wal_reader_open(fs, "/d/000007.log",
						     LSM_WAL_LOG, 7, &rd),
				 SISY_OK);
		sisy_slice pl;
		sisy_err rc;
		int got = 0;
		while ((rc = lsm_wal_next(rd, &pl)) == SISY_OK) {
			fill_payload(buf, got);
			assert_int_equal(pl.len, payload_len(got));
			assert_memory_equal(pl.data, buf, pl.len);
			got++;
		}
		if (rc != SISY_E_NOTFOUND)
			fail_msg("trial %d (seed %llu): %s", trial,
				 (unsigned long long)seed, sisy_errmsg());
		assert_true(got >= synced && got <= n);
		holes += lsm_wal_reader_torn(rd) && got < n - 1;
		lsm_wal_reader_close(rd);
		sisy_fs_fault_free(ff);
	}
	assert_true(holes > 0); /* the hole-then-records shape did happen */
}

/* A version 1 file (12-byte record headers, no synced sizes), as written
 * before version 2. */
static size_t v1_file(uint8_t *d, uint64_t num, int n, uint64_t *off)
{
	wal_encode_header(d, LSM_WAL_LOG, num);
	sisy_put_u32(d + 8, 1);
	sisy_put_u32(d + 28, sisy_checksum32(d, 28));
	size_t pos = LSM_WAL_HEADER;
	for (int i = 0; i < n; i++) {
		uint32_t len = (uint32_t)payload_len(i);
		off[i] = pos;
		fill_payload(d + pos + LSM_WAL_RECORD_HEADER_V1, i);
		sisy_put_u32(d + pos,
			     wal_record_crc(1, num, pos, 0,
					    d + pos + LSM_WAL_RECORD_HEADER_V1,
					    len));
		sisy_put_u32(d + pos + 4, len);
		sisy_put_u32(d + pos + 8, wal_header_crc(1, num, pos, len, 0));
		pos += LSM_WAL_RECORD_HEADER_V1 + len;
	}
	return pos;
}

static void test_reads_version_1(void **state)
{
	(void)state;
	enum { N = 12 };
	uint64_t off[N];
	uint8_t *d = calloc(1, LSM_WAL_HEADER + N * 800);
	size_t len = v1_file(d, 20, N, off);
	char p[512];
	path_of(p, sizeof p, 20);
	write_file(p, d, len);
	sisy_err rc;
	bool torn;
	uint64_t end;
	assert_int_equal(read_log(20, LSM_WAL_LOG, &rc, &torn, &end), N);
	assert_int_equal(rc, SISY_E_NOTFOUND);
	assert_false(torn);
	assert_int_equal(end, len);
	/* a cut tail is torn */
	write_file(p, d, off[N - 1] + 5);
	assert_int_equal(read_log(20, LSM_WAL_LOG, &rc, &torn, &end), N - 1);
	assert_int_equal(rc, SISY_E_NOTFOUND);
	assert_true(torn);
	assert_int_equal(end, off[N - 1]);
	/* without synced sizes, any damage before a valid record is
	 * corruption, as version 1 always said */
	memset(d + off[4], 0, 16);
	write_file(p, d, len);
	assert_int_equal(read_log(20, LSM_WAL_LOG, &rc, &torn, &end), 4);
	assert_int_equal(rc, SISY_E_CORRUPT);
	free(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_round_trip),
	    cmocka_unit_test(test_big_record),
	    cmocka_unit_test(test_torn_tail_at_every_byte),
	    cmocka_unit_test(test_zero_filled_tail_is_torn),
	    cmocka_unit_test(test_corruption_in_the_middle),
	    cmocka_unit_test(test_lost_unsynced_sector_is_torn),
	    cmocka_unit_test(test_damage_before_a_vouched_sync_is_corruption),
	    cmocka_unit_test(test_reordering_crashes_keep_synced_prefix),
	    cmocka_unit_test(test_reads_version_1),
	    cmocka_unit_test(test_header_checks),
	    cmocka_unit_test(test_record_shaped_payload_not_mistaken),
	    cmocka_unit_test(test_failed_append_leaves_no_partial_record),
	    cmocka_unit_test(test_scan_after_a_huge_torn_record_is_fast),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
