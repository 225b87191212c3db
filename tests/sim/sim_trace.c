/* sim_trace.c — the run's trace and its violation record.
 *
 * Every notable event (faults, role changes, client operations, membership
 * and snapshot steps) becomes one line stamped with the simulated time. The
 * last SIM_TRACE_LINES lines are kept in a ring for the violation report;
 * with --trace every line (and every message) is printed as it happens.
 * Tracing never consumes randomness, so it never changes the run.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "sim.h"

void sim_tracef(sim *s, const char *fmt, ...)
{
	char *line = s->trace[s->ntrace % SIM_TRACE_LINES];
	int n = snprintf(line, SIM_TRACE_WIDTH, "%9.3f ms  ",
			 (double)s->now / 1000.0);
	va_list ap;
	va_start(ap, fmt);
	if (n > 0 && n < SIM_TRACE_WIDTH)
		vsnprintf(line + n, SIM_TRACE_WIDTH - (size_t)n, fmt, ap);
	va_end(ap);
	s->ntrace++;
	if (s->opts.trace)
		printf("  %s\n", line);
}

void sim_fail(sim *s, const char *property, const char *fmt, ...)
{
	if (s->violated)
		return;
	s->violated = true;
	snprintf(s->property, sizeof s->property, "%s", property);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(s->detail, sizeof s->detail, fmt, ap);
	va_end(ap);
	sim_tracef(s, "VIOLATION %s: %s", s->property, s->detail);
}

void sim_trace_dump(const sim *s, int max_lines)
{
	uint64_t have =
	    s->ntrace < SIM_TRACE_LINES ? s->ntrace : SIM_TRACE_LINES;
	if ((uint64_t)max_lines < have)
		have = (uint64_t)max_lines;
	for (uint64_t i = s->ntrace - have; i < s->ntrace; i++)
		printf("  %s\n", s->trace[i % SIM_TRACE_LINES]);
}
