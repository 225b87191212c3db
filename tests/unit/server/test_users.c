/* Tests sisyd/server/users.c: add, lookup, roles, verifiers, the last
 * admin rule, and that every change survives a reopen. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "users.h"

static sisy_user mk(const char *name, sisy_role role, uint8_t tag)
{
	sisy_user u;
	memset(&u, 0, sizeof u);
	snprintf(u.name, sizeof u.name, "%s", name);
	u.role = role;
	u.v.opslimit = SISY_AUTH_OPS_MIN;
	u.v.memlimit = SISY_AUTH_MEM_MIN;
	memset(u.v.salt, tag, sizeof u.v.salt);
	memset(u.v.pk, tag + 1, sizeof u.v.pk);
	return u;
}

static void test_users(void **state)
{
	(void)state;
	char dir[] = "/tmp/sisy-test-users.XXXXXX";
	assert_non_null(mkdtemp(dir));
	sisy_users *u;
	assert_int_equal(sisy_users_open(dir, &u), SISY_OK);
	assert_int_equal(sisy_users_count(u), 0);
	sisy_user a = mk("root", SISY_ROLE_ADMIN, 1);
	sisy_user b = mk("bob", SISY_ROLE_READONLY, 2);
	assert_int_equal(sisy_users_add(u, &a), SISY_OK);
	assert_int_equal(sisy_users_add(u, &b), SISY_OK);
	assert_int_equal(sisy_users_add(u, &b), SISY_E_EXISTS);
	sisy_user bad = mk("bad name", SISY_ROLE_ADMIN, 3);
	assert_int_equal(sisy_users_add(u, &bad), SISY_E_INVAL);
	sisy_user weak = mk("weak", SISY_ROLE_ADMIN, 3);
	weak.v.opslimit = 1; /* below the interactive cost */
	assert_int_equal(sisy_users_add(u, &weak), SISY_E_INVAL);
	assert_int_equal(sisy_users_set_role(u, "bob", SISY_ROLE_READWRITE),
			 SISY_OK);
	sisy_auth_verifier v = b.v;
	v.pk[0] = 0x77;
	assert_int_equal(sisy_users_set_verifier(u, "bob", &v), SISY_OK);
	assert_int_equal(sisy_users_set_role(u, "zed", SISY_ROLE_ADMIN),
			 SISY_E_NOTFOUND);
	/* The last admin stays. */
	assert_int_equal(sisy_users_del(u, "root"), SISY_E_PERM);
	assert_int_equal(sisy_users_set_role(u, "root", SISY_ROLE_READONLY),
			 SISY_E_PERM);
	sisy_users_close(u);

	assert_int_equal(sisy_users_open(dir, &u), SISY_OK);
	assert_int_equal(sisy_users_count(u), 2);
	sisy_user got;
	assert_true(sisy_users_lookup(u, "bob", &got));
	assert_int_equal(got.role, SISY_ROLE_READWRITE);
	assert_int_equal(got.v.pk[0], 0x77);
	assert_memory_equal(got.v.salt, b.v.salt, sizeof got.v.salt);
	assert_false(sisy_users_lookup(u, "nobody", &got));
	assert_int_equal(sisy_users_del(u, "bob"), SISY_OK);
	assert_int_equal(sisy_users_del(u, "bob"), SISY_E_NOTFOUND);
	sisy_users_close(u);
	assert_int_equal(sisy_users_open(dir, &u), SISY_OK);
	assert_int_equal(sisy_users_count(u), 1);
	sisy_users_close(u);
	char cmd[100];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_users),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
