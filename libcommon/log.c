/* log.c — the stderr sink and the formatting front end. */
#include "log.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static const char *const level_names[] = {"DEBUG", "INFO", "WARN", "ERROR",
					  "OFF"};

const char *sisy_log_level_name(sisy_log_level level)
{
	if (level < SISY_LOG_DEBUG || level > SISY_LOG_OFF)
		return "?";
	return level_names[level];
}

int sisy_log_level_parse(const char *name)
{
	static const char *const lower[] = {"debug", "info", "warn", "error",
					    "off"};
	for (int i = 0; i < 5; i++)
		if (strcmp(name, lower[i]) == 0)
			return i;
	if (strcmp(name, "warning") == 0)
		return SISY_LOG_WARN;
	return -1;
}

static void stderr_write(void *ctx, sisy_log_level level, const char *component,
			 const char *msg)
{
	(void)ctx;
	struct timespec ts;
	struct tm tm;
	char when[32];
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
	/* One fprintf per record keeps lines whole when threads interleave. */
	fprintf(stderr, "%s.%03ldZ %-5s %s: %s\n", when, ts.tv_nsec / 1000000,
		sisy_log_level_name(level), component, msg);
}

sisy_logger sisy_logger_stderr(sisy_log_level level)
{
	sisy_logger lg = {stderr_write, NULL, level};
	return lg;
}

void sisy_vlog(const sisy_logger *lg, sisy_log_level level,
	       const char *component, const char *fmt, va_list ap)
{
	if (!SISY_LOG_ENABLED(lg, level) || lg->write == NULL)
		return;
	char msg[1024];
	vsnprintf(msg, sizeof msg, fmt, ap);
	lg->write(lg->ctx, level, component, msg);
}

void sisy_log(const sisy_logger *lg, sisy_log_level level,
	      const char *component, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	sisy_vlog(lg, level, component, fmt, ap);
	va_end(ap);
}
