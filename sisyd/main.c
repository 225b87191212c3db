/* main.c — the sisyd command line: `sisyd init -D DIR` (a new cluster),
 * `sisyd init --join TOKEN -D DIR` (a node joining one), `sisyd -D DIR`,
 * settings (DIR/sisyd.conf or -c FILE, every key also a flag; a flag beats
 * the file, the file beats the default), signals and shutdown (SIGTERM on
 * a leader hands leadership over first).
 *
 * Exit status: 0 after a clean shutdown, 1 on a start-up or runtime error,
 * 2 on a usage error.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "config.h"
#include "log.h"
#include "server.h"
#include "trust.h"

#define SISYD_VERSION "0.1.0"

static sisy_server *g_server; /* for the signal handler only */

static int die(const char *what);

static void on_signal(int sig)
{
	(void)sig;
	if (g_server)
		sisy_server_stop(g_server);
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: sisyd init -D DIR [--admin-user NAME] "
		"[--admin-password-file FILE]\n"
		"                  [--listen HOST:PORT] [--advertise "
		"HOST:PORT]\n"
		"       sisyd init --join TOKEN -D DIR [--listen HOST:PORT] "
		"[--advertise HOST:PORT]\n"
		"       sisyd -D DIR [-c FILE] [--key=value ...]\n"
		"\n"
		"init creates DIR holding a new cluster: its signing key, this "
		"node's identity\n"
		"(node 1) and the first admin user. The admin password comes "
		"from\n"
		"--admin-password-file, else $SISY_ADMIN_PASSWORD, else one "
		"is generated\n"
		"and printed once. init --join makes DIR a node of an existing "
		"cluster, with\n"
		"the token `CLUSTER ADD NODE host:port` printed on one of its "
		"members. Other\n"
		"nodes reach this one at --advertise (default: --listen, "
		"default 127.0.0.1:7420;\n"
		"for a joining node: the address given to CLUSTER ADD NODE); "
		"both go to\n"
		"DIR/sisyd.conf.\n"
		"\n"
		"Settings (DIR/sisyd.conf or -c FILE as `key = value`, or as "
		"flags):\n");
	sisy_config_usage(f);
}

/* DIR/sisyd.conf with the addresses given to init (not when one exists:
 * it is the operator's file then). */
static int write_conf(const char *dir, const char *listen,
		      const char *advertise)
{
	char path[1200], text[700];
	int n = 0;
	snprintf(path, sizeof path, "%s/sisyd.conf", dir);
	if (access(path, F_OK) == 0 || (!listen && !advertise))
		return 0;
	n += snprintf(text + n, sizeof text - (size_t)n,
		      "# written by sisyd init; every key of `sisyd --help` "
		      "may go here\n");
	if (listen)
		n += snprintf(text + n, sizeof text - (size_t)n,
			      "listen = %s\n", listen);
	if (advertise)
		n += snprintf(text + n, sizeof text - (size_t)n,
			      "advertise = %s\n", advertise);
	if (sisy_trust_write_file(path, text, (size_t)n, 0644) != SISY_OK) {
		fprintf(stderr, "sisyd init: cannot write %s: %s\n", path,
			sisy_errmsg());
		return 1;
	}
	return 0;
}

static int cmd_join(const char *dir, const char *token, const char *listen,
		    const char *advertise)
{
	uint64_t id = 0;
	char addr[300];
	if (sisy_server_join(dir, token, advertise ? advertise : listen, &id,
			     addr, sizeof addr) != SISY_OK)
		return die("init --join failed");
	/* The node serves where the cluster will look for it. */
	if (write_conf(dir, listen ? listen : addr,
		       advertise ? advertise : (listen ? addr : NULL)) != 0)
		return 1;
	printf("initialised %s as node %" PRIu64 " at %s; start it with "
	       "`sisyd -D %s`:\nit catches up from the cluster and becomes a "
	       "voter\n",
	       dir, id, addr, dir);
	return 0;
}

static int die(const char *what)
{
	fprintf(stderr, "sisyd: %s%s%s\n", what, sisy_errmsg()[0] ? ": " : "",
		sisy_errmsg());
	return 1;
}

static int cmd_init(int argc, char **argv)
{
	const char *dir = NULL, *user = "admin", *pwfile = NULL;
	const char *listen = NULL, *advertise = NULL, *join = NULL;
	char pw[1100];
	bool generated = false;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if ((!strcmp(a, "-D") || !strcmp(a, "--data_dir")) && v) {
			dir = v;
			i++;
		} else if (!strncmp(a, "--data_dir=", 11)) {
			dir = a + 11;
		} else if (!strcmp(a, "--admin-user") && v) {
			user = v;
			i++;
		} else if (!strcmp(a, "--admin-password-file") && v) {
			pwfile = v;
			i++;
		} else if (!strcmp(a, "--listen") && v) {
			listen = v;
			i++;
		} else if (!strncmp(a, "--listen=", 9)) {
			listen = a + 9;
		} else if (!strcmp(a, "--advertise") && v) {
			advertise = v;
			i++;
		} else if (!strncmp(a, "--advertise=", 12)) {
			advertise = a + 12;
		} else if (!strcmp(a, "--join") && v) {
			join = v;
			i++;
		} else {
			fprintf(stderr, "sisyd init: unknown argument '%s'\n",
				a);
			usage(stderr);
			return 2;
		}
	}
	if (dir == NULL) {
		fprintf(stderr, "sisyd init: -D DIR is required\n");
		return 2;
	}
	if (join)
		return cmd_join(dir, join, listen, advertise);
	const char *env = getenv("SISY_ADMIN_PASSWORD");
	if (pwfile) {
		char *data = NULL;
		if (sisy_trust_read_file(pwfile, 1024, &data, NULL) != SISY_OK)
			return die("cannot read the password file");
		data[strcspn(data, "\r\n")] = '\0';
		snprintf(pw, sizeof pw, "%s", data);
		sodium_memzero(data, strlen(data));
		free(data);
	} else if (env && *env) {
		snprintf(pw, sizeof pw, "%s", env);
	} else {
		uint8_t rnd[15];
		if (sodium_init() < 0)
			return die("libsodium init failed");
		randombytes_buf(rnd, sizeof rnd);
		sodium_bin2base64(pw, sizeof pw, rnd, sizeof rnd,
				  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
		generated = true;
	}
	if (pw[0] == '\0') {
		fprintf(stderr, "sisyd init: the admin password is empty\n");
		return 2;
	}
	const char *address = advertise ? advertise
			      : listen	? listen
					: "127.0.0.1:7420";
	if (sisy_server_init_dir(dir, user, pw, address) != SISY_OK)
		return die("init failed");
	if (write_conf(dir, listen, advertise) != 0)
		return 1;
	char pub[1200];
	snprintf(pub, sizeof pub, "%s/cluster.pub", dir);
	printf("initialised %s (node 1 of a new cluster, at %s); clients "
	       "trust the cluster key in %s\n",
	       dir, address, pub);
	if (generated)
		printf("admin user: %s\nadmin password (shown only once): "
		       "%s\n",
		       user, pw);
	sodium_memzero(pw, sizeof pw);
	return 0;
}

/* Applies --key=value / --key value flags; -D and -c are handled by the
 * caller. Returns 0, or 2 on a usage error. */
static int apply_flags(sisy_server_config *cfg, int argc, char **argv)
{
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "-D") || !strcmp(a, "-c")) {
			i++;
			continue;
		}
		if (strncmp(a, "--", 2) != 0) {
			fprintf(stderr, "sisyd: unexpected argument '%s'\n", a);
			return 2;
		}
		char key[128];
		const char *val = NULL;
		const char *eq = strchr(a + 2, '=');
		size_t kl = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
		if (kl >= sizeof key) {
			fprintf(stderr, "sisyd: bad flag '%s'\n", a);
			return 2;
		}
		memcpy(key, a + 2, kl);
		key[kl] = '\0';
		for (char *p = key; *p; p++)
			if (*p == '-')
				*p = '_';
		bool is_bool = false;
		if (!sisy_config_known(key, &is_bool)) {
			fprintf(stderr,
				"sisyd: unknown flag '%s' (sisyd --help)\n", a);
			return 2;
		}
		if (eq)
			val = eq + 1;
		else if (is_bool)
			val = "true";
		else if (i + 1 < argc)
			val = argv[++i];
		else {
			fprintf(stderr, "sisyd: %s needs a value\n", a);
			return 2;
		}
		if (sisy_config_set(cfg, key, val) != SISY_OK) {
			fprintf(stderr, "sisyd: %s\n", sisy_errmsg());
			return 2;
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	sisy_server_config cfg;
	const char *dir = NULL, *conf = NULL;
	if (argc > 1 && !strcmp(argv[1], "init"))
		return cmd_init(argc - 2, argv + 2);
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			usage(stdout);
			return 0;
		}
		if (!strcmp(argv[i], "--version")) {
			printf("sisyd %s\n", SISYD_VERSION);
			return 0;
		}
		if (!strcmp(argv[i], "-D") && i + 1 < argc)
			dir = argv[++i];
		else if (!strncmp(argv[i], "--data_dir=", 11))
			dir = argv[i] + 11;
		else if (!strcmp(argv[i], "-c") && i + 1 < argc)
			conf = argv[++i];
	}
	sisy_config_defaults(&cfg);
	if (dir)
		snprintf(cfg.data_dir, sizeof cfg.data_dir, "%s", dir);
	if (conf) {
		if (sisy_config_load(&cfg, conf, true) != SISY_OK)
			return die("bad config file");
	} else if (dir) {
		char path[1200];
		snprintf(path, sizeof path, "%s/sisyd.conf", dir);
		if (sisy_config_load(&cfg, path, false) != SISY_OK)
			return die("bad config file");
	}
	int rc = apply_flags(&cfg, argc - 1, argv + 1);
	if (rc != 0)
		return rc;
	if (cfg.data_dir[0] == '\0') {
		fprintf(stderr, "sisyd: -D DIR is required (sisyd --help)\n");
		return 2;
	}
	sisy_logger lg = sisy_logger_stderr(
	    (sisy_log_level)sisy_log_level_parse(cfg.log_level));
	sisy_server *s = NULL;
	if (sisy_server_open(&cfg, &lg, &s) != SISY_OK)
		return die("cannot start");
	g_server = s;
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	sisy_err err = sisy_server_run(s);
	g_server = NULL;
	sisy_server_free(s);
	if (err != SISY_OK)
		return die("stopped on an error");
	sisy_log(&lg, SISY_LOG_INFO, "server", "stopped cleanly");
	return 0;
}
