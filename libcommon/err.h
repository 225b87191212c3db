/* err.h — the one error type of SisyphusDB.
 *
 * Every fallible function returns a sisy_err. SISY_OK is zero, so
 * `if ((rc = f()) != SISY_OK) goto fail;` reads naturally.
 *
 * Context: a function that fails may attach a human message with sisy_errf();
 * it lives in a thread-local buffer (like errno) and is read with
 * sisy_errmsg(). Copy it before the next fallible call on the same thread.
 * Messages say what happened and, where a user can act, what to do:
 *   "wal.c: bad checksum in 000012.log at offset 4096; the log is corrupt"
 * The code, not the message, is what callers branch on.
 */
#ifndef SISY_ERR_H
#define SISY_ERR_H

/* X-macro: code, name, default text. Append only; values are stable. */
#define SISY_ERR_TABLE(X)                                          \
	X(SISY_OK, 0, "ok")                                        \
	X(SISY_E_INVAL, 1, "invalid argument")                     \
	X(SISY_E_NOMEM, 2, "out of memory")                        \
	X(SISY_E_IO, 3, "I/O error")                               \
	X(SISY_E_NOSPC, 4, "no space left on device")              \
	X(SISY_E_CORRUPT, 5, "data is corrupt")                    \
	X(SISY_E_NOTFOUND, 6, "not found")                         \
	X(SISY_E_EXISTS, 7, "already exists")                      \
	X(SISY_E_LOCKED, 8, "in use by another process or handle") \
	X(SISY_E_TOOBIG, 9, "too large")                           \
	X(SISY_E_FAILED, 10, "engine is in a failed state")        \
	X(SISY_E_CLOSED, 11, "closed")                             \
	X(SISY_E_BUSY, 12, "busy, try again")                      \
	X(SISY_E_VERSION, 13, "unsupported format version")        \
	X(SISY_E_NOTSUP, 14, "not supported")                      \
	X(SISY_E_CRASHED, 15, "simulated crash")                   \
	X(SISY_E_AGAIN, 16, "would block")                         \
	X(SISY_E_TIMEOUT, 17, "timed out")                         \
	X(SISY_E_PROTO, 18, "protocol error")                      \
	X(SISY_E_AUTH, 19, "authentication failed")                \
	X(SISY_E_PERM, 20, "permission denied")                    \
	X(SISY_E_KEYCHANGED, 21, "server key changed")             \
	X(SISY_E_UNTRUSTED, 22, "server key not trusted")          \
	X(SISY_E_CONN, 23, "connection failed")                    \
	X(SISY_E_NOLEADER, 24, "no leader")                        \
	X(SISY_E_NOTLEADER, 25, "not the leader")                  \
	X(SISY_E_UNKNOWN_OUTCOME, 26, "outcome unknown")           \
	X(SISY_E_CONFLICT, 27, "condition failed")                 \
	X(SISY_E_STALE, 28, "stale")                               \
	X(SISY_E_RANGE, 29, "out of range")                        \
	X(SISY_E_INTERNAL, 30, "internal error")

typedef enum sisy_err {
#define SISY_ERR_ENUM(code, val, text) code = val,
	SISY_ERR_TABLE(SISY_ERR_ENUM)
#undef SISY_ERR_ENUM
	    SISY_ERR__COUNT
} sisy_err;

/* The code's default text ("I/O error"); never NULL. */
const char *sisy_strerror(sisy_err e);

/* The code's symbolic name ("SISY_E_IO"); never NULL. */
const char *sisy_errname(sisy_err e);

/* Attach a printf-style message to this thread and return `code`. The
 * arguments may include sisy_errmsg() itself (wrapping a message). */
sisy_err sisy_errf(sisy_err code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The last message attached on this thread, or "" if none. */
const char *sisy_errmsg(void);

/* Forget this thread's message (so a later sisy_errmsg() is not stale). */
void sisy_errclear(void);

/* Map an errno value to the closest sisy_err (ENOSPC -> SISY_E_NOSPC, ...). */
sisy_err sisy_err_from_errno(int errnum);

#endif
