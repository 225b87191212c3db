/* sisy_probe.c — a minimal client for the cluster tests, independent of
 * the shell: it exercises the client library the way a program would.
 *
 *   sisy-probe CMD [ARGS] [CMD [ARGS]]...   (settings from SISY_* env)
 *     ping | put K V | get K (prints the value, or nothing when missing)
 *     del K | whoami (prints user role) | useradd NAME ROLE PASSWORD
 *     userdel NAME | pipeline N (N pipelined PUT+GET pairs, checks order)
 *
 * Exit status as the shell's: 0 ok, 1 a command failed, 2 the connection,
 * trust or authentication failed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"

static int fail_cmd(const char *what, sisy_err rc)
{
	fprintf(stderr, "sisy-probe: %s: %s: %s\n", what, sisy_errname(rc),
		sisy_errmsg());
	return rc == SISY_E_CONN || rc == SISY_E_PROTO || rc == SISY_E_TIMEOUT
		   ? 2
		   : 1;
}

static int pipeline(sisy_client *c, int n)
{
	char k[32], v[32];
	for (int i = 0; i < n; i++) {
		snprintf(k, sizeof k, "probe:pipe:%d", i % 10);
		snprintf(v, sizeof v, "%d", i);
		sisy_req p = {.op = SISY_OP_PUT,
			      .key = sisy_slice_str(k),
			      .value = sisy_slice_str(v)};
		sisy_req g = {.op = SISY_OP_GET, .key = sisy_slice_str(k)};
		if (sisy_client_send(c, &p, NULL) ||
		    sisy_client_send(c, &g, NULL))
			return fail_cmd("pipeline send", SISY_E_CONN);
	}
	for (int i = 0; i < 2 * n; i++) {
		sisy_reply *r;
		sisy_err rc = sisy_client_recv(c, &r);
		if (rc != SISY_OK)
			return fail_cmd("pipeline recv", rc);
		snprintf(v, sizeof v, "%d", i / 2);
		bool ok =
		    r->err == SISY_OK &&
		    (r->op == SISY_OP_PUT ||
		     (r->found && sisy_slice_eq(r->value, sisy_slice_str(v))));
		sisy_reply_free(r);
		if (!ok) {
			fprintf(stderr, "sisy-probe: reply %d out of order\n",
				i);
			return 1;
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	sisy_client_opts o;
	sisy_client *c;
	sisy_client_opts_init(&o);
	sisy_client_opts_env(&o);
	sisy_err rc = sisy_client_connect(&o, &c);
	if (rc != SISY_OK) {
		fprintf(stderr, "sisy-probe: %s: %s\n", sisy_errname(rc),
			sisy_errmsg());
		return 2;
	}
	int status = 0;
	for (int i = 1; i < argc && status == 0; i++) {
		const char *cmd = argv[i];
		sisy_slice a = i + 1 < argc ? sisy_slice_str(argv[i + 1])
					    : sisy_slice_str("");
		if (!strcmp(cmd, "ping")) {
			if ((rc = sisy_client_ping(c)))
				status = fail_cmd(cmd, rc);
		} else if (!strcmp(cmd, "put") && i + 2 < argc) {
			rc = sisy_client_put(c, a, sisy_slice_str(argv[i + 2]),
					     NULL, NULL);
			if (rc)
				status = fail_cmd(cmd, rc);
			i += 2;
		} else if (!strcmp(cmd, "get") && i + 1 < argc) {
			sisy_buf v = {0};
			bool found;
			rc = sisy_client_get(c, a, &v, &found, NULL);
			if (rc)
				status = fail_cmd(cmd, rc);
			else if (found)
				printf("%.*s\n", (int)v.len, v.data);
			sisy_buf_free(&v);
			i++;
		} else if (!strcmp(cmd, "del") && i + 1 < argc) {
			if ((rc = sisy_client_del(c, a, NULL, NULL)))
				status = fail_cmd(cmd, rc);
			i++;
		} else if (!strcmp(cmd, "whoami")) {
			sisy_client_info inf;
			sisy_client_get_info(c, &inf);
			printf("%s %s\n", inf.user, sisy_role_name(inf.role));
		} else if (!strcmp(cmd, "useradd") && i + 3 < argc) {
			sisy_req q = {.op = SISY_OP_USER_ADD,
				      .user = argv[i + 1],
				      .role = sisy_role_parse(argv[i + 2]),
				      .password = argv[i + 3]};
			sisy_reply *r;
			rc = sisy_client_call(c, &q, &r);
			if (rc == SISY_OK && r->err != SISY_OK)
				rc = sisy_errf(r->err, "%s", r->message);
			sisy_reply_free(r);
			if (rc)
				status = fail_cmd(cmd, rc);
			i += 3;
		} else if (!strcmp(cmd, "userdel") && i + 1 < argc) {
			sisy_req q = {.op = SISY_OP_USER_DEL,
				      .user = argv[i + 1]};
			sisy_reply *r;
			rc = sisy_client_call(c, &q, &r);
			if (rc == SISY_OK && r->err != SISY_OK)
				rc = sisy_errf(r->err, "%s", r->message);
			sisy_reply_free(r);
			if (rc)
				status = fail_cmd(cmd, rc);
			i++;
		} else if (!strcmp(cmd, "pipeline") && i + 1 < argc) {
			status = pipeline(c, atoi(argv[i + 1]));
			i++;
		} else {
			fprintf(stderr, "sisy-probe: bad command '%s'\n", cmd);
			status = 1;
		}
	}
	sisy_client_close(c);
	return status;
}
