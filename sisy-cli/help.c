/* help.c — help texts (\? and \h) and completion word lists.
 * The same words and usage lines are in man/sisy-cli.1; keep them in step.
 */
#include "help.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

static const char *const descriptions[CLI_CMD__COUNT] = {
    [CLI_CMD_GET] = "Print the value of a key (no row when the key does "
		    "not exist); WITH VERSION adds its version.",
    [CLI_CMD_PUT] = "Set a key. IF VERSION n writes only when the key's "
		    "version is n, IF ABSENT only when it does not exist.",
    [CLI_CMD_DEL] = "Delete a key (DEL 0 when there was none). IF "
		    "VERSION n deletes only at that version.",
    [CLI_CMD_EXISTS] = "Print true or false.",
    [CLI_CMD_MGET] = "Print key and value of each given key that exists.",
    [CLI_CMD_SCAN] = "Print keys and values in key order: all, those "
		     "starting with p, or from a up to (not including) b. "
		     "LIMIT bounds the total; pages are fetched as "
		     "needed.",
    [CLI_CMD_BEGIN] = "Start a batch: PUT and DEL are queued until COMMIT.",
    [CLI_CMD_COMMIT] = "Apply the queued writes atomically: all or none.",
    [CLI_CMD_ROLLBACK] = "Discard the queued writes.",
    [CLI_CMD_PING] = "Check the connection (prints PONG).",
    [CLI_CMD_INFO] = "Print the server's status figures.",
    [CLI_CMD_WHOAMI] = "Print your user, role and the node you are on.",
    [CLI_CMD_USER_ADD] = "Create a user (admin). Without PASSWORD the "
			 "shell asks for it.",
    [CLI_CMD_USER_DEL] = "Delete a user (admin); ends its sessions.",
    [CLI_CMD_USER_LIST] = "List users and roles (admin).",
    [CLI_CMD_USER_PASSWORD] = "Change a password: your own, or (admin) "
			      "another user's. Without the password the "
			      "shell asks for it.",
    [CLI_CMD_USER_ROLE] = "Change a user's role (admin); ends its "
			  "sessions.",
    [CLI_CMD_CLUSTER_INFO] = "Print the cluster's state.",
    [CLI_CMD_CLUSTER_NODES] = "List the nodes: id, address, role, term, "
			      "commit and applied index, lag.",
    [CLI_CMD_CLUSTER_ADD_NODE] = "Add a node; prints its one-time join "
				 "token.",
    [CLI_CMD_CLUSTER_REMOVE_NODE] = "Remove a node from the cluster.",
    [CLI_CMD_CLUSTER_FAILOVER] = "Hand leadership to another node.",
};

const char *const cli_help_command_words[] = {
    "GET",	"PUT",	"DEL",	"EXISTS", "MGET", "SCAN",    "BEGIN", "COMMIT",
    "ROLLBACK", "PING", "INFO", "WHOAMI", "USER", "CLUSTER", NULL,
};

const char *const cli_help_keywords[] = {
    "WITH", "VERSION",	"IF",	     "ABSENT", "PREFIX", "FROM",
    "TO",   "LIMIT",	"ADD",	     "DEL",    "LIST",	 "PASSWORD",
    "ROLE", "readonly", "readwrite", "admin",  "INFO",	 "NODES",
    "NODE", "REMOVE",	"FAILOVER",  NULL,
};

const char *const cli_help_meta_words[] = {
    "\\?",   "\\h",	"\\q",	   "\\timing",	 "\\format",
    "\\a",   "\\t",	"\\o",	   "\\i",	 "\\echo",
    "\\set", "\\unset", "\\watch", "\\conninfo", NULL,
};

static bool shown(cli_cmd_kind k, const cli_parse_opts *opts)
{
	return k < CLI_CMD_CLUSTER_INFO || (opts != NULL && opts->cluster);
}

void cli_help_meta(FILE *fp)
{
	fputs("General\n"
	      "  \\?                      this help\n"
	      "  \\h [COMMAND]            help on commands (\\h alone lists "
	      "them)\n"
	      "  \\q                      quit\n"
	      "  \\conninfo               show the connection\n"
	      "\n"
	      "Input/Output\n"
	      "  \\i FILE                 run the commands in FILE\n"
	      "  \\o [FILE]               send results to FILE (or back to "
	      "stdout)\n"
	      "  \\echo [TEXT ...]        print the text\n"
	      "  \\watch [SEC [COUNT]]    run the last command every SEC "
	      "seconds (default 2)\n"
	      "\n"
	      "Formatting\n"
	      "  \\format [aligned|unaligned|csv|json]  set the output "
	      "format\n"
	      "  \\a                      toggle aligned / unaligned\n"
	      "  \\t [on|off]             rows only (no header, no footer)\n"
	      "  \\timing [on|off]        show how long each command takes\n"
	      "\n"
	      "Variables\n"
	      "  \\set [NAME [VALUE ...]] set a variable, or list them all\n"
	      "  \\unset NAME             remove a variable\n"
	      "  :NAME  :'NAME'         the value of a variable, as one "
	      "word\n"
	      "  ON_ERROR_STOP=on        stop a script at its first error\n"
	      "  CONSISTENCY=stale       reads from any replica "
	      "(linearizable: the default)\n"
	      "\n"
	      "Values\n"
	      "  'text' \"text\"           quoted; \\n \\t \\\\ \\' \\\" "
	      "\\xHH escapes\n"
	      "  x'00ff'                bytes in hex\n"
	      "  @FILE  @-              the contents of FILE, or of "
	      "standard input\n",
	      fp);
}

void cli_help_commands(FILE *fp, const cli_parse_opts *opts)
{
	fputs("Commands (\\h COMMAND for details):\n", fp);
	for (int k = 0; k < CLI_CMD__COUNT; k++)
		if (shown((cli_cmd_kind)k, opts))
			fprintf(fp, "  %s\n", cli_cmd_usage((cli_cmd_kind)k));
}

/* Compares the topic with a command name, case-insensitive, any run of
 * blanks in the topic matching one space. True when the topic is a prefix
 * of the name at a word boundary, or the name a prefix of the topic. */
static bool topic_matches(const char *topic, const char *name)
{
	while (*topic && *name) {
		if (isspace((unsigned char)*topic)) {
			if (*name != ' ')
				return false;
			while (isspace((unsigned char)*topic))
				topic++;
			name++;
			continue;
		}
		if (toupper((unsigned char)*topic) != *name)
			return false;
		topic++;
		name++;
	}
	while (isspace((unsigned char)*topic))
		topic++;
	return *topic == '\0' && (*name == '\0' || *name == ' ');
}

bool cli_help_topic(FILE *fp, const char *topic, const cli_parse_opts *opts)
{
	bool any = false;
	for (int k = 0; k < CLI_CMD__COUNT; k++) {
		cli_cmd_kind kind = (cli_cmd_kind)k;
		if (!shown(kind, opts) ||
		    !topic_matches(topic, cli_cmd_name(kind)))
			continue;
		fprintf(fp, "%s%s\n  %s\n", any ? "\n" : "",
			cli_cmd_usage(kind), descriptions[kind]);
		any = true;
	}
	return any;
}
