/* err.c — code-to-text table and the thread-local error message. */
#include "err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char errmsg_buf[512];

const char *sisy_strerror(sisy_err e)
{
	switch (e) {
#define SISY_ERR_TEXT(code, val, text) \
	case code:                     \
		return text;
		SISY_ERR_TABLE(SISY_ERR_TEXT)
#undef SISY_ERR_TEXT
	default:
		return "unknown error";
	}
}

const char *sisy_errname(sisy_err e)
{
	switch (e) {
#define SISY_ERR_NAME(code, val, text) \
	case code:                     \
		return #code;
		SISY_ERR_TABLE(SISY_ERR_NAME)
#undef SISY_ERR_NAME
	default:
		return "SISY_E_?";
	}
}

sisy_err sisy_errf(sisy_err code, const char *fmt, ...)
{
	/* Format into a temporary first: callers often wrap the previous
	 * message ("open: %s", sisy_errmsg()), which lives in errmsg_buf. */
	char tmp[sizeof errmsg_buf];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(tmp, sizeof tmp, fmt, ap);
	va_end(ap);
	memcpy(errmsg_buf, tmp, sizeof tmp);
	return code;
}

const char *sisy_errmsg(void)
{
	return errmsg_buf;
}

void sisy_errclear(void)
{
	errmsg_buf[0] = '\0';
}

sisy_err sisy_err_from_errno(int errnum)
{
	switch (errnum) {
	case 0:
		return SISY_OK;
	case ENOSPC:
	case EDQUOT:
		return SISY_E_NOSPC;
	case ENOENT:
		return SISY_E_NOTFOUND;
	case EEXIST:
		return SISY_E_EXISTS;
	case ENOMEM:
		return SISY_E_NOMEM;
	case EINVAL:
		return SISY_E_INVAL;
	case EAGAIN:
		return SISY_E_AGAIN;
	case EACCES:
	case EPERM:
		return SISY_E_PERM;
	case EFBIG:
	case ENAMETOOLONG:
		return SISY_E_TOOBIG;
	case ETIMEDOUT:
		return SISY_E_TIMEOUT;
	default:
		return SISY_E_IO;
	}
}
