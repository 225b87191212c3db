/* passfile.c — reading the password file (format and rules in passfile.h).
 */
#include "passfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static sisy_err check_fd(int fd, const char *path)
{
	struct stat st;
	if (fstat(fd, &st) != 0) {
		int e = errno;
		return sisy_errf(SISY_E_IO, "cannot stat %s: %s", path,
				 strerror(e));
	}
	if (!S_ISREG(st.st_mode))
		return sisy_errf(SISY_E_PERM,
				 "password file %s is not a regular file; "
				 "ignoring it",
				 path);
	if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0)
		return sisy_errf(SISY_E_PERM,
				 "password file %s has group or world access "
				 "(mode %04o); ignoring it: chmod 0600 %s",
				 path, (unsigned)(st.st_mode & 07777), path);
	return SISY_OK;
}

sisy_err cli_passfile_check(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0) {
		int e = errno;
		if (e == ENOENT)
			return SISY_E_NOTFOUND;
		if (e == ELOOP)
			return sisy_errf(SISY_E_PERM,
					 "password file %s is a symbolic "
					 "link; ignoring it",
					 path);
		return sisy_errf(SISY_E_IO, "cannot open %s: %s", path,
				 strerror(e));
	}
	sisy_err rc = check_fd(fd, path);
	close(fd);
	return rc;
}

/* Splits the next field off *p (up to an unescaped ':' or the end when
 * `last`), unescaping into out. False when the line has too few fields. */
static bool next_field(char **p, bool last, char *out)
{
	char *s = *p;
	size_t n = 0;
	while (*s != '\0') {
		if (*s == '\\' && s[1] != '\0') {
			out[n++] = s[1];
			s += 2;
			continue;
		}
		if (*s == ':' && !last)
			break;
		out[n++] = *s++;
	}
	out[n] = '\0';
	if (!last && *s != ':')
		return false;
	*p = *s ? s + 1 : s;
	return true;
}

static bool field_matches(const char *field, const char *want)
{
	return strcmp(field, "*") == 0 || strcmp(field, want) == 0;
}

static bool port_matches(const char *field, unsigned port)
{
	uint16_t p;
	return strcmp(field, "*") == 0 ||
	       (cli_port_parse(field, &p) && p == port);
}

sisy_err cli_passfile_lookup(const char *path, const cli_host *hosts,
			     size_t nhosts, const char *user, char *pw,
			     size_t cap, bool *found)
{
	char *line = NULL, *fields = NULL;
	FILE *f = NULL;
	sisy_err rc = SISY_OK;
	*found = false;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0) {
		int e = errno;
		if (e == ENOENT)
			return SISY_OK;
		if (e == ELOOP)
			return sisy_errf(SISY_E_PERM,
					 "password file %s is a symbolic "
					 "link; ignoring it",
					 path);
		return sisy_errf(SISY_E_IO, "cannot open %s: %s", path,
				 strerror(e));
	}
	if ((rc = check_fd(fd, path)) != SISY_OK) {
		close(fd);
		return rc;
	}
	f = fdopen(fd, "r");
	line = malloc(CLI_PASSFILE_LINE_MAX + 2);
	/* Four fields, each no longer than the line. */
	fields = malloc(4 * (CLI_PASSFILE_LINE_MAX + 2));
	if (f == NULL || line == NULL || fields == NULL) {
		if (f == NULL)
			close(fd);
		rc = sisy_errf(SISY_E_NOMEM, "passfile.c: out of memory");
		goto out;
	}
	char *host = fields, *port = host + CLI_PASSFILE_LINE_MAX + 2;
	char *usr = port + CLI_PASSFILE_LINE_MAX + 2;
	char *pass = usr + CLI_PASSFILE_LINE_MAX + 2;
	unsigned lineno = 0;
	while (fgets(line, CLI_PASSFILE_LINE_MAX + 2, f) != NULL) {
		lineno++;
		size_t len = strlen(line);
		if (len > 0 && line[len - 1] == '\n')
			line[--len] = '\0';
		else if (!feof(f)) {
			rc = sisy_errf(SISY_E_INVAL,
				       "%s:%u: line longer than %u bytes", path,
				       lineno, CLI_PASSFILE_LINE_MAX);
			goto out;
		}
		if (len > 0 && line[len - 1] == '\r')
			line[--len] = '\0';
		if (line[0] == '#' || line[0] == '\0')
			continue;
		char *p = line;
		if (!next_field(&p, false, host) ||
		    !next_field(&p, false, port) ||
		    !next_field(&p, false, usr) || !next_field(&p, true, pass))
			continue; /* malformed lines are skipped, as libpq */
		if (!field_matches(usr, user))
			continue;
		for (size_t h = 0; h < nhosts; h++) {
			if (!field_matches(host, hosts[h].name) ||
			    !port_matches(port, hosts[h].port))
				continue;
			if (strlen(pass) >= cap) {
				rc = sisy_errf(SISY_E_INVAL,
					       "%s:%u: password longer than "
					       "%zu bytes",
					       path, lineno, cap - 1);
				goto out;
			}
			memcpy(pw, pass, strlen(pass) + 1);
			*found = true;
			goto out;
		}
	}
	if (ferror(f))
		rc = sisy_errf(SISY_E_IO, "cannot read %s", path);
out:
	if (line != NULL)
		memset(line, 0, CLI_PASSFILE_LINE_MAX + 2);
	if (fields != NULL)
		memset(fields, 0, 4 * (CLI_PASSFILE_LINE_MAX + 2));
	free(line);
	free(fields);
	if (f != NULL)
		fclose(f);
	return rc;
}
