/* log.h — levelled logging.
 *
 * Libraries never log through hidden globals: each instance (an engine, a
 * Raft log, a server) holds a `const sisy_logger *` given by its caller, so
 * many instances in one process can log to different places or not at all.
 * sisy_logger_stderr() is the process's default sink: one line per record,
 *   2026-11-28T10:00:00.123Z WARN  lsm: compaction stalled writers for 12 ms
 * A NULL logger is valid and drops everything.
 */
#ifndef SISY_LOG_H
#define SISY_LOG_H

#include <stdarg.h>

typedef enum sisy_log_level {
	SISY_LOG_DEBUG = 0,
	SISY_LOG_INFO = 1,
	SISY_LOG_WARN = 2,
	SISY_LOG_ERROR = 3,
	SISY_LOG_OFF = 4,
} sisy_log_level;

typedef struct sisy_logger {
	/* Receives records at or above `level`; `component` names the module.
	 */
	void (*write)(void *ctx, sisy_log_level level, const char *component,
		      const char *msg);
	void *ctx;
	sisy_log_level level;
} sisy_logger;

/* A logger writing to stderr at `level`. The returned struct is owned by the
 * caller (copy it where it must outlive the call site). */
sisy_logger sisy_logger_stderr(sisy_log_level level);

/* Parse "debug" | "info" | "warn" | "error" | "off"; -1 when unknown. */
int sisy_log_level_parse(const char *name);
const char *sisy_log_level_name(sisy_log_level level);

void sisy_log(const sisy_logger *lg, sisy_log_level level,
	      const char *component, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void sisy_vlog(const sisy_logger *lg, sisy_log_level level,
	       const char *component, const char *fmt, va_list ap);

#define SISY_LOG_ENABLED(lg, lvl) ((lg) != NULL && (lvl) >= (lg)->level)

#endif
