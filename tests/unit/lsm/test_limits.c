/* Tests the limits of lsm.h on the engine's entry points: empty and
 * oversized keys, values, metadata and batches get clear errors; the
 * largest allowed ones round-trip through the WAL, a flush and a reopen. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "lsm.h"
#include "lsm_test_util.h"

static char dir[256];

static int setup(void **state)
{
	(void)state;
	tu_mkdtemp(dir, sizeof dir, "limits");
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	tu_rmdir(dir);
	return 0;
}

static sisy_lsm *open_db(void)
{
	sisy_lsm_options o;
	sisy_lsm_options_init(&o);
	o.dir = dir;
	sisy_lsm *db;
	assert_int_equal(sisy_lsm_open(&o, &db), SISY_OK);
	return db;
}

static void test_key_and_value_limits(void **state)
{
	(void)state;
	sisy_lsm *db = open_db();
	size_t kmax = SISY_LSM_MAX_KEY, vmax = SISY_LSM_MAX_VALUE;
	char *k = malloc(kmax + 1);
	char *v = malloc(vmax + 1);
	for (size_t i = 0; i <= kmax; i++)
		k[i] = (char)('a' + i % 26);
	for (size_t i = 0; i <= vmax; i++)
		v[i] = (char)(i * 7);
	sisy_buf b = {0};
	/* empty keys */
	assert_int_equal(sisy_lsm_put(db, "", 0, "v", 1, 0), SISY_E_INVAL);
	assert_int_equal(sisy_lsm_delete(db, "", 0, 0), SISY_E_INVAL);
	assert_int_equal(sisy_lsm_get(db, NULL, "", 0, &b), SISY_E_INVAL);
	/* one byte too many */
	assert_int_equal(sisy_lsm_put(db, k, kmax + 1, "v", 1, 0),
			 SISY_E_TOOBIG);
	assert_non_null(strstr(sisy_errmsg(), "SISY_LSM_MAX_KEY"));
	assert_int_equal(sisy_lsm_delete(db, k, kmax + 1, 0), SISY_E_TOOBIG);
	assert_int_equal(sisy_lsm_get(db, NULL, k, kmax + 1, &b),
			 SISY_E_TOOBIG);
	assert_int_equal(sisy_lsm_put(db, "k", 1, v, vmax + 1, 0),
			 SISY_E_TOOBIG);
	assert_non_null(strstr(sisy_errmsg(), "SISY_LSM_MAX_VALUE"));
	/* nothing of that reached the engine */
	assert_int_equal(sisy_lsm_last_seq(db), 0);
	/* exactly at the limits: accepted and read back, from the WAL, a
	 * table and after a reopen */
	assert_int_equal(sisy_lsm_put(db, k, kmax, v, vmax, 0), SISY_OK);
	for (int round = 0; round < 3; round++) {
		assert_int_equal(sisy_lsm_get(db, NULL, k, kmax, &b), SISY_OK);
		assert_int_equal(b.len, vmax);
		assert_memory_equal(b.data, v, vmax);
		if (round == 0)
			assert_int_equal(sisy_lsm_flush(db), SISY_OK);
		if (round == 1) {
			assert_int_equal(sisy_lsm_close(db), SISY_OK);
			db = open_db();
		}
	}
	/* a batch over the byte limit is refused while being built */
	sisy_lsm_batch *bt = sisy_lsm_batch_new();
	sisy_err rc = SISY_OK;
	while (rc == SISY_OK)
		rc = sisy_lsm_batch_put(bt, "k", 1, v, vmax);
	assert_int_equal(rc, SISY_E_TOOBIG);
	assert_true(sisy_lsm_batch_bytes(bt) <= SISY_LSM_MAX_BATCH_BYTES);
	/* what was accepted is a writable batch */
	uint32_t n = sisy_lsm_batch_count(bt);
	uint64_t before = sisy_lsm_last_seq(db);
	assert_int_equal(sisy_lsm_write(db, bt, 0), SISY_OK);
	assert_int_equal(sisy_lsm_last_seq(db), before + n);
	sisy_lsm_batch_free(bt);
	sisy_buf_free(&b);
	free(k);
	free(v);
	assert_int_equal(sisy_lsm_close(db), SISY_OK);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_key_and_value_limits, setup,
					    teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
