/* term.c — password and trust prompts on the controlling terminal (see
 * term.h). Echo is restored on every path out, including errors. */
#include "term.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <termios.h>
#include <unistd.h>

/* Reads a line from the terminal fd (no stdio: nothing stays buffered
 * with a password in it). */
static sisy_err read_tty_line(int fd, char *buf, size_t cap)
{
	size_t n = 0;
	bool too_long = false;
	for (;;) {
		char c;
		ssize_t r = read(fd, &c, 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return n > 0 ? SISY_OK : SISY_E_IO;
		if (c == '\n' || c == '\r')
			break;
		if (n + 1 < cap)
			buf[n++] = c;
		else
			too_long = true;
	}
	buf[n] = '\0';
	if (too_long) {
		explicit_bzero(buf, cap);
		return sisy_errf(SISY_E_TOOBIG,
				 "the input is longer than %zu "
				 "bytes",
				 cap - 1);
	}
	return SISY_OK;
}

sisy_err cli_term_password(void *ctx, const char *prompt, char *buf, size_t cap)
{
	(void)ctx;
	int fd = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return sisy_errf(SISY_E_NOTSUP, "no terminal to ask for a "
						"password on");
	struct termios old, quiet;
	bool restore = tcgetattr(fd, &old) == 0;
	if (restore) {
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
		quiet.c_lflag |= ICANON;
		tcsetattr(fd, TCSAFLUSH, &quiet);
	}
	ssize_t w = write(fd, prompt, strlen(prompt));
	(void)w;
	sisy_err rc = read_tty_line(fd, buf, cap);
	if (restore)
		tcsetattr(fd, TCSAFLUSH, &old);
	w = write(fd, "\n", 1);
	close(fd);
	if (rc == SISY_E_IO)
		rc = sisy_errf(rc, "no password given");
	return rc;
}

bool cli_term_confirm(void *ctx, const char *host, const char *fingerprint)
{
	(void)ctx;
	int fd = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return false;
	char msg[1024];
	int n = snprintf(msg, sizeof msg,
			 "The authenticity of the cluster at %s can't be "
			 "established.\n"
			 "Its cluster key fingerprint is %s.\n"
			 "Check it with the cluster's operator "
			 "(sisyd prints it at init).\n",
			 host, fingerprint);
	ssize_t w = write(fd, msg, n > 0 ? (size_t)n : 0);
	bool yes = false;
	for (int tries = 0; tries < 3; tries++) {
		const char *q = "Trust this cluster and connect (yes/no)? ";
		w = write(fd, q, strlen(q));
		char answer[16];
		if (read_tty_line(fd, answer, sizeof answer) != SISY_OK)
			break;
		if (strcasecmp(answer, "yes") == 0) {
			yes = true;
			break;
		}
		if (strcasecmp(answer, "no") == 0)
			break;
		const char *again = "Please type 'yes' or 'no'.\n";
		w = write(fd, again, strlen(again));
	}
	(void)w;
	close(fd);
	return yes;
}
