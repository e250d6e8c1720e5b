/* log.c - the one logger (see log.h). */
#include "common/log.h"

#include <stdarg.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"

static const char *log_name = "holdfast";
static bool log_with_pid;

void hf_log_init(const char *name, bool with_pid)
{
	log_name = name;
	log_with_pid = with_pid;
}

void hf_log(const char *fmt, ...)
{
	struct hf_buf b = HF_BUF_INIT;
	int64_t now = hf_now_ms();
	time_t secs = (time_t)(now / 1000);
	struct tm tm;
	char when[32];
	va_list ap;

	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", gmtime_r(&secs, &tm));
	hf_buf_addf(&b, "%s.%03dZ %s", when, (int)(now % 1000), log_name);
	if (log_with_pid)
		hf_buf_addf(&b, "[%d]", (int)getpid());
	hf_buf_adds(&b, ": ");
	va_start(ap, fmt);
	hf_buf_vaddf(&b, fmt, ap);
	va_end(ap);
	hf_buf_addc(&b, '\n');
	/* One write per line, so lines of several threads never mix. */
	if (write(STDERR_FILENO, b.data, b.len) < 0) {
		/* Nowhere left to complain. */
	}
	hf_buf_release(&b);
}
