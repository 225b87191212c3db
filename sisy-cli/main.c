/* main.c — sisy-cli: options, password, connection, then -c/-f, --pipe,
 * a script on stdin, or the terminal loop (man sisy-cli(1)).
 *
 * Order of start-up: options and environment (opts.c); the output settings
 * and -v variables; the password (SISY_PASSWORD, else the password file,
 * else a cached login key, else a prompt when there is a terminal); the
 * connection (failure: exit status 2); ~/.sisyrc unless -X; the work.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conn.h"
#include "opts.h"
#include "passfile.h"
#include "pipe.h"
#include "repl.h"
#include "shell.h"
#include "term.h"

#ifndef SISY_VERSION
#define SISY_VERSION "unknown"
#endif

/* Set by SIGINT; the shell polls it (only the terminal loop installs the
 * handler: scripts keep the default, which ends them). */
static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
	(void)sig;
	interrupted = 1;
}

static const char *env_lookup(void *ctx, const char *name)
{
	(void)ctx;
	return getenv(name);
}

/* $NAME, else $HOME/rel, into buf; NULL when neither is known. */
static const char *home_path(const char *name, const char *rel, char *buf,
			     size_t cap)
{
	const char *v = getenv(name);
	if (v != NULL && *v != '\0')
		return v;
	const char *home = getenv("HOME");
	if (home == NULL || *home == '\0')
		return NULL;
	snprintf(buf, cap, "%s/%s", home, rel);
	return buf;
}

typedef struct startup {
	cli_opts o;
	bool interactive;
	bool tty_in; /* a person may answer prompts */
	char password[CLI_PASSWORD_MAX + 1];
	bool have_password;
	const char *passfile; /* checked (points at passfile_buf), or NULL */
	char passfile_buf[4096];
	bool passfile_refused;
} startup;

static void resolve_password(startup *s)
{
	char buf[4096];
	const char *path =
	    home_path("SISY_PASSFILE", ".sisy/passfile", buf, sizeof buf);
	s->passfile = NULL;
	if (path != NULL) {
		sisy_err rc = cli_passfile_check(path);
		if (rc == SISY_E_PERM || rc == SISY_E_IO) {
			fprintf(stderr, "sisy-cli: warning: %s\n",
				sisy_errmsg());
			s->passfile_refused = true;
		} else {
			snprintf(s->passfile_buf, sizeof s->passfile_buf, "%s",
				 path);
			s->passfile = s->passfile_buf;
		}
	}
	if (s->o.password != NULL) {
		snprintf(s->password, sizeof s->password, "%s", s->o.password);
		s->have_password = true;
		return;
	}
	if (s->passfile != NULL) {
		bool found = false;
		sisy_err rc = cli_passfile_lookup(
		    s->passfile, s->o.hosts, s->o.nhosts, s->o.user,
		    s->password, sizeof s->password, &found);
		if (rc != SISY_OK)
			fprintf(stderr, "sisy-cli: warning: %s\n",
				sisy_errmsg());
		s->have_password = rc == SISY_OK && found;
	}
}

static bool ask_password(startup *s)
{
	char prompt[CLI_USER_MAX + 32];
	snprintf(prompt, sizeof prompt, "Password for user %s: ", s->o.user);
	if (cli_term_password(NULL, prompt, s->password, sizeof s->password) !=
	    SISY_OK)
		return false;
	s->have_password = true;
	return true;
}

static sisy_err open_session(startup *s, cli_backend **be)
{
	if (s->o.prompt_password && s->tty_in && !s->have_password)
		ask_password(s);
	cli_conn_params p = {
	    .hosts = s->o.hosts,
	    .nhosts = s->o.nhosts,
	    .user = s->o.user,
	    .password = s->have_password ? s->password : NULL,
	    .server_key = s->o.server_key,
	    .passfile = s->passfile,
	    .passfile_set = s->passfile != NULL || s->passfile_refused,
	    .confirm = s->tty_in ? cli_term_confirm : NULL,
	};
	sisy_err rc = cli_conn_open(&p, be);
	/* No password anywhere and no cached key that works: ask, as psql
	 * does when the server wants one. */
	if (rc == SISY_E_AUTH && !s->have_password && !s->o.never_prompt &&
	    s->tty_in && ask_password(s)) {
		p.password = s->password;
		rc = cli_conn_open(&p, be);
	}
	return rc;
}

static void run_rc(cli_shell *sh)
{
	char buf[4096];
	const char *rc = home_path("SISYRC", ".sisyrc", buf, sizeof buf);
	if (rc == NULL || access(rc, F_OK) != 0)
		return;
	sh->depth++;
	cli_shell_run_file(sh, rc);
	sh->depth--;
}

static int setup_output(cli_shell *sh, const cli_opts *o)
{
	if (o->format >= 0)
		sh->out.fmt = (cli_format)o->format;
	sh->out.tuples_only = o->tuples_only;
	sh->out.quiet = o->quiet;
	if (o->output != NULL) {
		sh->out_file = fopen(o->output, "w");
		if (sh->out_file == NULL) {
			fprintf(stderr, "sisy-cli: error: cannot open %s: %s\n",
				o->output, strerror(errno));
			return CLI_EXIT_FAILED;
		}
		sh->out.fp = sh->out_file;
	}
	for (size_t i = 0; i < o->nsets; i++) {
		const char *eq = strchr(o->sets[i], '=');
		char name[CLI_VARNAME_MAX + 1];
		snprintf(name, sizeof name, "%.*s", (int)(eq - o->sets[i]),
			 o->sets[i]);
		if (cli_shell_set(sh, name, sisy_slice_str(eq + 1)) !=
		    SISY_OK) {
			fprintf(stderr, "sisy-cli: error: -v %s: %s\n", name,
				sisy_errmsg());
			return CLI_EXIT_FAILED;
		}
	}
	if (o->consistency >= 0)
		cli_shell_set(
		    sh, "CONSISTENCY",
		    sisy_slice_str(o->consistency ? "stale" : "linearizable"));
	return CLI_EXIT_OK;
}

static int run(startup *s)
{
	cli_shell sh;
	cli_backend *be = NULL;
	int status;
	cli_shell_init(&sh, NULL, stdin, stdout, stderr);
	sh.interactive = s->interactive;
	sh.interrupted = &interrupted;
	if (s->tty_in) {
		sh.prompt_password = cli_term_password;
		sh.prompt_ctx = NULL;
	}
	if ((status = setup_output(&sh, &s->o)) != CLI_EXIT_OK)
		goto out;
	sisy_err rc = open_session(s, &be);
	explicit_bzero(s->password, sizeof s->password);
	if (rc != SISY_OK) {
		const char *msg = sisy_errmsg();
		fprintf(stderr, "sisy-cli: error: %s\n",
			*msg ? msg : sisy_strerror(rc));
		status = CLI_EXIT_CONNECT;
		goto out;
	}
	sh.be = be;
	sh.popts.cluster = be->ops->has_cluster(be);
	if (s->o.pipe) {
		status = cli_pipe_run(be, stdin, stdout, stderr, "<stdin>");
		goto out;
	}
	if (!s->o.no_rc)
		run_rc(&sh);
	if (s->o.nactions > 0) {
		for (size_t i = 0; i < s->o.nactions && !sh.quit; i++) {
			const cli_action *a = &s->o.actions[i];
			if (a->kind == CLI_ACT_COMMAND)
				cli_shell_run_command(&sh, a->arg);
			else
				cli_shell_run_file(&sh, a->arg);
		}
	} else if (s->interactive) {
		char hb[4096];
		struct sigaction sa;
		memset(&sa, 0, sizeof sa);
		sa.sa_handler = on_sigint;
		sigemptyset(&sa.sa_mask);
		sigaction(SIGINT, &sa, NULL);
		printf("sisy-cli (SisyphusDB %s)\nType \"\\?\" for help, "
		       "\"\\q\" to quit.\n\n",
		       SISY_VERSION);
		cli_repl_run(&sh, home_path("SISY_HISTFILE", ".sisy_history",
					    hb, sizeof hb));
	} else {
		cli_shell_run_file(&sh, "-");
	}
	cli_shell_finish(&sh);
	status = cli_shell_status(&sh);
	/* At the terminal every failure was shown as it happened; the
	 * session itself succeeded unless a write's outcome is unknown. */
	if (s->interactive && status != CLI_EXIT_UNKNOWN)
		status = CLI_EXIT_OK;
out:
	if (fflush(stdout) != 0 && status == CLI_EXIT_OK)
		status = CLI_EXIT_FAILED;
	cli_shell_free(&sh);
	if (be != NULL)
		be->ops->destroy(be);
	return status;
}

int main(int argc, char **argv)
{
	static startup s;
	sisy_err rc = cli_opts_parse(argc, argv, env_lookup, NULL, &s.o);
	if (rc != SISY_OK) {
		fprintf(stderr,
			"sisy-cli: %s\nTry \"sisy-cli --help\" for more "
			"information.\n",
			sisy_errmsg());
		return CLI_EXIT_FAILED;
	}
	if (s.o.help || s.o.version) {
		if (s.o.help)
			fputs(cli_opts_usage(), stdout);
		else
			printf("sisy-cli (SisyphusDB) %s\n", SISY_VERSION);
		cli_opts_free(&s.o);
		return CLI_EXIT_OK;
	}
	s.tty_in = isatty(STDIN_FILENO) == 1;
	s.interactive = s.o.nactions == 0 && !s.o.pipe && s.tty_in &&
			isatty(STDOUT_FILENO) == 1;
	resolve_password(&s);
	int status = run(&s);
	cli_opts_free(&s.o);
	return status;
}
