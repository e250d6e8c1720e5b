/*
 * ship.c - a volume's disaster-recovery stream (ship.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/crc32c.h"
#include "common/log.h"
#include "common/util.h"
#include "volume/remote.h"
#include "volume/ship.h"
#include "volume/ticket.h"
#include "volume/tls.h"
#include "volume/volume.h"
#include "volume/wire.h"

#define HDR 4096
#define REC 48
#define CHUNK ((uint64_t)HF_VOL_DATA_MAX)
#define WINDOW 64
#define WINDOW_BYTES (4u << 20) /* well within a 3 s answer at 2 MB/s */
/*
 * While a backlog drains, a mark every MARK_BACKLOG_MS, or after
 * MARK_BYTES once the journal is half full: each makes the standby's
 * data durable (an fdatasync that also holds its applying up), so a
 * short backlog, which the sender soon drains, has none in its middle;
 * a long one frees journal space and moves the standby's mark on.
 */
#define MARK_BYTES (64u << 20)
#define MARK_BACKLOG_MS 5000
/*
 * Once the journal is drained a mark goes out sooner, but not after every
 * write: each costs the standby an fdatasync.
 */
#define MARK_DRAINED_MS 100
/*
 * An idle stream marks this often too: the standby's mark then says it
 * was current a moment ago, so a failover's loss window is not the time
 * since the last write.
 */
#define HEARTBEAT_MS 1000
/*
 * What a copy compares by digest (SUMS): of a chunk, only the runs of
 * units that differ on the standby are sent. 32 KiB costs the standby
 * 1 KiB of digests per MiB of volume.
 */
#define SUM_UNIT (32u << 10)
#define SUM_UNITS(len) (((len) + SUM_UNIT - 1) / SUM_UNIT)
/*
 * A SUMS request covers SUMS_SPAN (the standby reads that much to answer:
 * well within the 3 s an answer is due in, on a slow disk too), and
 * SUMS_DEPTH of them are in flight at once.
 */
#define SUMS_SPAN ((uint64_t)64 << 20)
#define SUMS_DEPTH 2
#define HDR_EVERY_MS 1000
#define MAGIC "HFDRJNL1"
#define REC_MAGIC 0x524a4648u /* "HFJR" */

enum { R_WRITE = 1, R_TRIM = 2 };
enum { F_FULL = 1 };
/*
 * The header's second part (bytes 128..160): the boot it was written
 * in (16 bytes of /proc/sys/kernel/random/boot_id), u64 flags (F_CLEAN:
 * closed with every record synced), CRC-32C of the 24 bytes before it.
 */
enum { F_CLEAN = 1 };
#define HDR2 128
/* S_PART: a run of a chunk that has more to send (S_CHUNK: its last). */
enum { S_RECORD, S_CHUNK, S_PART, S_MARK, S_INVAL };

struct slot {
	struct hf_remote_req q;
	int kind;
	uint64_t end;     /* S_RECORD: the position after it */
	uint64_t seq;     /* S_RECORD, S_MARK */
	int64_t time_ns;  /* S_MARK: what it says; S_RECORD: its time */
	bool final;       /* S_MARK: the drain's last (HF_VOLW_F_FINAL) */
	uint64_t chunk;   /* S_CHUNK, S_PART */
	uint8_t *buf;
	size_t len;
};

struct hf_ship {
	struct hf_ship_config c;
	char *volume_id;
	uint64_t epoch, size;
	hf_ship_read_fn rd;
	void *rd_arg;
	SSL_CTX *tls;
	int jfd;
	uint64_t ring;
	pthread_mutex_t mu;
	pthread_cond_t cv;      /* something to send, or stop */
	pthread_cond_t room_cv; /* room freed, or stop */
	/* Under mu: */
	uint64_t head, head_seq;  /* the next record's position and seq */
	uint64_t tail, tail_seq;  /* the first one no acked mark covers */
	int64_t tail_time;        /* its time (head > tail) */
	uint8_t *dirty;           /* chunks to copy */
	uint64_t nchunks, ndirty, inflight_chunks;
	/*
	 * The standby's digest of each SUM_UNIT of the volume (wire.h's
	 * SUMS), asked for when a copy begins on a connection: while
	 * sums_ok, the units whose data here has the same digest are not
	 * sent. Chunks marked dirty by
	 * writes the journal did not take (an overflow) end that: their
	 * writes reach the standby by no record, so its digests may be of
	 * data the records after them changed.
	 */
	uint8_t *sums;
	bool sums_ok;
	uint64_t dirty_gen;       /* bumped by dirty_all and mark_dirty */
	uint8_t *resume;          /* per chunk: the unit its next run is at */
	int64_t copy_same;        /* bytes of the copy the standby had */
	/*
	 * Per chunk: its bytes in copy_same, taken back out when the chunk
	 * is to be compared again, so a unit compared twice counts once.
	 */
	uint32_t *same;
	bool full;                /* F_FULL: a copy owed since... */
	int64_t copy_since;       /* ...then (ns), for the lag */
	uint64_t sync_total, sync_done;
	uint64_t applied_seq;
	int64_t applied_time;
	int64_t shipped, blocked, overflows;
	bool link_up, fenced, stopping;
	/*
	 * A drain (hf_ship_drain) ends the stream with a FINAL mark when
	 * the standby spools (a consistency group's: it then applies this
	 * volume's every write whatever the others' marks say).
	 */
	bool final_want, final_done, spools;
	int64_t last_time;        /* the newest record's time */
	bool clean;               /* closing: every record synced */
	uint8_t boot[16];         /* this boot's id */
	char state[16];
	char msg[256];
	pthread_t thread;
	bool started;
};


/* ---- the journal's file ----------------------------------------------- */

static int ring_io(struct hf_ship *s, bool wr, void *buf, size_t len,
		   uint64_t pos)
{
	uint8_t *p = buf;

	while (len) {
		uint64_t at = pos % s->ring;
		size_t part = len < s->ring - at ? len : (size_t)(s->ring - at);
		ssize_t k = wr ? pwrite(s->jfd, p, part, (off_t)(HDR + at))
			       : pread(s->jfd, p, part, (off_t)(HDR + at));

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return k < 0 ? errno : EIO;
		p += k;
		len -= (size_t)k;
		pos += (uint64_t)k;
	}
	return 0;
}

/* The header, as the fields under mu say; durable when sync. */
static int write_header(struct hf_ship *s, bool sync)
{
	uint8_t h[HDR2 + 32];
	uint64_t flags = s->full ? F_FULL : 0, flags2 = s->clean ? F_CLEAN : 0;
	uint32_t crc;

	memset(h, 0, sizeof(h));
	memcpy(h, MAGIC, 8);
	memcpy(h + 8, &s->tail, 8);
	memcpy(h + 16, &s->tail_seq, 8);
	memcpy(h + 24, &flags, 8);
	snprintf((char *)h + 32, 72, "%s", s->volume_id);
	crc = hf_crc32c(0, h, 104);
	memcpy(h + 104, &crc, 4);
	memcpy(h + HDR2, s->boot, 16);
	memcpy(h + HDR2 + 16, &flags2, 8);
	crc = hf_crc32c(0, h + HDR2, 24);
	memcpy(h + HDR2 + 24, &crc, 4);
	if (pwrite(s->jfd, h, sizeof(h), 0) != (ssize_t)sizeof(h))
		return errno ? errno : EIO;
	return sync && fdatasync(s->jfd) < 0 ? errno : 0;
}

/* This boot's id (the kernel's boot_id, 16 bytes), or zeros. */
static void boot_id(uint8_t out[16])
{
	char text[64] = {0}, hex[33];
	size_t k = 0;
	int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);

	memset(out, 0, 16);
	if (fd < 0)
		return;
	if (read(fd, text, sizeof(text) - 1) > 0)
		for (size_t i = 0; text[i] && k < 32; i++)
			if (text[i] != '-' && text[i] != '\n')
				hex[k++] = text[i];
	close(fd);
	hex[k] = 0;
	if (k != 32 || hf_vol_hex_decode(hex, out, 16))
		memset(out, 0, 16);
}

struct rec {
	uint32_t type;
	uint64_t seq, off, len;
	int64_t time;
};

static void rec_encode(uint8_t *b, const struct rec *r, const uint8_t *data,
		       size_t dlen)
{
	uint32_t magic = REC_MAGIC, crc, zero = 0;

	memset(b, 0, REC);
	memcpy(b, &magic, 4);
	memcpy(b + 4, &r->type, 4);
	memcpy(b + 8, &r->seq, 8);
	memcpy(b + 16, &r->off, 8);
	memcpy(b + 24, &r->len, 8);
	memcpy(b + 32, &r->time, 8);
	crc = hf_crc32c(0, b, 40);
	if (dlen)
		crc = hf_crc32c(crc, data, dlen);
	memcpy(b + 40, &crc, 4);
	memcpy(b + 44, &zero, 4);
}

/* A record's header at pos, checked but for the data's CRC. */
static bool rec_head(struct hf_ship *s, uint64_t pos, struct rec *r,
		     uint32_t *crc)
{
	uint8_t b[REC];
	uint32_t magic;

	if (ring_io(s, false, b, REC, pos))
		return false;
	memcpy(&magic, b, 4);
	memcpy(&r->type, b + 4, 4);
	memcpy(&r->seq, b + 8, 8);
	memcpy(&r->off, b + 16, 8);
	memcpy(&r->len, b + 24, 8);
	memcpy(&r->time, b + 32, 8);
	memcpy(crc, b + 40, 4);
	if (magic != REC_MAGIC || (r->type != R_WRITE && r->type != R_TRIM) ||
	    r->len == 0 || r->len > s->size ||
	    (r->type == R_WRITE && r->len > HF_VOL_DATA_MAX))
		return false;
	*crc ^= hf_crc32c(0, b, 40); /* 0 when the data's part matches */
	return true;
}

static uint64_t rec_size(const struct rec *r)
{
	return REC + (r->type == R_WRITE ? r->len : 0);
}

static void dirty_all(struct hf_ship *s)
{
	s->dirty_gen++;
	s->sums_ok = false;
	memset(s->dirty, 1, s->nchunks);
	memset(s->resume, 0, s->nchunks);
	memset(s->same, 0, s->nchunks * sizeof(*s->same));
	s->copy_same = 0;
	s->ndirty = s->nchunks;
	s->sync_total = s->nchunks * CHUNK;
	s->sync_done = 0;
}

static void mark_dirty(struct hf_ship *s, uint64_t off, uint64_t len)
{
	s->dirty_gen++;
	s->sums_ok = false;
	for (uint64_t c = off / CHUNK; c < s->nchunks && c * CHUNK < off + len;
	     c++) {
		s->resume[c] = 0; /* written past any digest: all of it */
		s->copy_same -= s->same[c];
		s->same[c] = 0;
		if (!s->dirty[c]) {
			s->dirty[c] = 1;
			s->ndirty++;
			s->sync_total += CHUNK;
		}
	}
}

/*
 * The records after the tail, read back: head goes past each whose seq
 * follows and whose CRC matches.
 */
static void recover(struct hf_ship *s)
{
	uint8_t *data = hf_xmalloc(HF_VOL_DATA_MAX);
	uint64_t n = 0;

	s->head = s->tail;
	s->head_seq = s->tail_seq;
	for (;;) {
		struct rec r;
		uint32_t crc;

		if (s->head - s->tail + REC > s->ring ||
		    !rec_head(s, s->head, &r, &crc) || r.seq != s->head_seq ||
		    s->head - s->tail + rec_size(&r) > s->ring)
			break;
		if (r.type == R_WRITE) {
			uint8_t b[REC];
			uint32_t want;

			if (ring_io(s, false, data, r.len, s->head + REC) ||
			    ring_io(s, false, b, REC, s->head))
				break;
			memcpy(&want, b + 40, 4);
			if (hf_crc32c(hf_crc32c(0, b, 40), data, r.len) != want)
				break;
		} else if (crc) {
			break;
		}
		if (s->head == s->tail)
			s->tail_time = r.time;
		if (r.time > s->last_time)
			s->last_time = r.time;
		s->head += rec_size(&r);
		s->head_seq++;
		n++;
	}
	free(data);
	if (n)
		hf_log("volume %s: the DR journal holds %llu records (%llu "
		       "bytes) the standby may lack",
		       s->volume_id, (unsigned long long)n,
		       (unsigned long long)(s->head - s->tail));
}

static int open_journal(struct hf_ship *s, char *err, size_t n)
{
	uint8_t h[HDR2 + 32];
	struct stat st;
	bool fresh = false;

	boot_id(s->boot);

	s->jfd = open(s->c.journal, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW,
		      0600);
	if (s->jfd < 0 || fstat(s->jfd, &st) < 0) {
		snprintf(err, n, "DR journal %s: %s", s->c.journal,
			 strerror(errno));
		return -1;
	}
	if (st.st_size != s->c.journal_size &&
	    ftruncate(s->jfd, s->c.journal_size) < 0) {
		snprintf(err, n, "DR journal %s: cannot make it %lld bytes: %s",
			 s->c.journal, (long long)s->c.journal_size,
			 strerror(errno));
		return -1;
	}
	/*
	 * Its blocks reserved now: appends then allocate nothing, and a full
	 * disk shows here rather than as a journal that cannot grow.
	 */
	if (fallocate(s->jfd, 0, 0, s->c.journal_size) < 0 &&
	    errno != EOPNOTSUPP) {
		snprintf(err, n, "DR journal %s: cannot reserve %lld bytes: %s",
			 s->c.journal, (long long)s->c.journal_size,
			 strerror(errno));
		return -1;
	}
	if (pread(s->jfd, h, sizeof(h), 0) == (ssize_t)sizeof(h) &&
	    !memcmp(h, MAGIC, 8)) {
		uint32_t crc;
		uint64_t flags;

		memcpy(&crc, h + 104, 4);
		h[32 + 71] = 0;
		if (crc != hf_crc32c(0, h, 104) ||
		    strcmp((char *)h + 32, s->volume_id)) {
			fresh = true;
		} else {
			uint64_t flags2;

			memcpy(&s->tail, h + 8, 8);
			memcpy(&s->tail_seq, h + 16, 8);
			memcpy(&flags, h + 24, 8);
			s->full = flags & F_FULL;
			memcpy(&crc, h + HDR2 + 24, 4);
			memcpy(&flags2, h + HDR2 + 16, 8);
			/*
			 * Records are not synced as they are appended (the
			 * page cache keeps them through a kill): a journal
			 * left by another boot that was not closed cleanly
			 * may lack records the replica has, so the standby
			 * is owed a copy (by digests: what differs).
			 */
			if (crc == hf_crc32c(0, h + HDR2, 24) &&
			    !(flags2 & F_CLEAN) &&
			    memcmp(h + HDR2, s->boot, 16) != 0) {
				hf_log("volume %s: the DR journal was left by "
				       "a boot that ended without closing "
				       "it: the standby is compared whole",
				       s->volume_id);
				s->full = true;
			}
			/* A ring of another size: its records are lost. */
			if (st.st_size != s->c.journal_size)
				s->full = true;
		}
	} else {
		fresh = true;
	}
	if (fresh) {
		/* Seqs from the clock: a standby's mark is never ahead. */
		s->tail = 0;
		s->tail_seq = (uint64_t)hf_now_ns();
		s->full = true;
	}
	if (s->full) {
		s->head = s->tail;
		s->head_seq = s->tail_seq;
		dirty_all(s);
		s->copy_since = hf_now_ns();
	} else {
		recover(s);
	}
	if (write_header(s, true)) {
		snprintf(err, n, "DR journal %s: cannot write its header: %s",
			 s->c.journal, strerror(errno));
		return -1;
	}
	return 0;
}

struct hf_ship *hf_ship_open(const struct hf_ship_config *c,
			     const char *volume_id, uint64_t epoch,
			     uint64_t size, hf_ship_read_fn rd, void *rd_arg,
			     char *err, size_t n)
{
	struct hf_ship *s = hf_xcalloc(1, sizeof(*s));
	char why[256];

	s->c = *c;
	s->c.address = hf_xstrdup(c->address);
	s->c.replica = hf_xstrdup(c->replica);
	s->c.node = hf_xstrdup(c->node);
	s->c.ca = hf_xstrdup(c->ca);
	s->c.cert = hf_xstrdup(c->cert);
	s->c.key = hf_xstrdup(c->key);
	s->c.journal = hf_xstrdup(c->journal);
	s->volume_id = hf_xstrdup(volume_id);
	s->epoch = epoch;
	s->size = size;
	s->rd = rd;
	s->rd_arg = rd_arg;
	s->jfd = -1;
	s->ring = (uint64_t)c->journal_size - HDR;
	s->nchunks = (size + CHUNK - 1) / CHUNK;
	s->dirty = hf_xcalloc(s->nchunks + 1, 1);
	s->resume = hf_xcalloc(s->nchunks + 1, 1);
	s->same = hf_xcalloc(s->nchunks + 1, sizeof(*s->same));
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	pthread_cond_init(&s->room_cv, NULL);
	snprintf(s->state, sizeof(s->state), "connecting");
	if (!(s->tls = hf_vtls_ctx(false, c->ca, c->cert, c->key, why,
				   sizeof(why)))) {
		snprintf(err, n, "dr: %s", why);
		hf_ship_close(s);
		return NULL;
	}
	if (open_journal(s, err, n)) {
		hf_ship_close(s);
		return NULL;
	}
	return s;
}

/* ---- the writers' side ------------------------------------------------ */

/* Called with mu held: no room, so the chunks go to the copy instead. */
static void overflow(struct hf_ship *s, uint64_t off, uint64_t len)
{
	if (!s->full) {
		s->full = true;
		s->copy_since = hf_now_ns();
		/* Before the write is answered: a restart must copy too. */
		if (write_header(s, true))
			hf_log("volume %s: DR journal header: %s",
			       s->volume_id, strerror(errno));
		hf_log("volume %s: the DR journal is full: writes go on, the "
		       "chunks they write will be copied to the standby",
		       s->volume_id);
	}
	s->overflows++;
	mark_dirty(s, off, len);
	pthread_cond_signal(&s->cv);
}

static int append(struct hf_ship *s, uint32_t type, uint64_t off,
		  uint64_t len, const uint8_t *data)
{
	size_t dlen = type == R_WRITE ? (size_t)len : 0;
	uint64_t need = REC + dlen;
	uint8_t b[REC];
	struct rec r;
	bool waited = false;
	int e;

	pthread_mutex_lock(&s->mu);
	while (s->head - s->tail + need > s->ring) {
		if (!s->c.block || s->fenced || s->stopping) {
			overflow(s, off, len);
			pthread_mutex_unlock(&s->mu);
			return 0;
		}
		if (!waited) {
			s->blocked++;
			waited = true;
		}
		pthread_cond_wait(&s->room_cv, &s->mu);
	}
	/*
	 * Times never go back within a journal (a clock stepped back): a
	 * standby's cut (spool.h) takes the records before a time as a
	 * prefix of the stream.
	 */
	r = (struct rec){type, s->head_seq, off, len, hf_now_ns()};
	if (r.time < s->last_time)
		r.time = s->last_time;
	s->last_time = r.time;
	s->final_done = false;
	rec_encode(b, &r, data, dlen);
	e = ring_io(s, true, b, REC, s->head);
	if (!e && dlen)
		e = ring_io(s, true, (void *)data, dlen, s->head + REC);
	if (e) {
		hf_log("volume %s: DR journal write: %s", s->volume_id,
		       strerror(e));
		overflow(s, off, len);
		pthread_mutex_unlock(&s->mu);
		return e;
	}
	if (s->head == s->tail)
		s->tail_time = r.time;
	s->head += need;
	s->head_seq++;
	pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mu);
	return 0;
}

int hf_ship_write(struct hf_ship *s, uint64_t off, const uint8_t *data,
		  size_t len)
{
	return append(s, R_WRITE, off, len, data);
}

int hf_ship_trim(struct hf_ship *s, uint64_t off, uint64_t len)
{
	return append(s, R_TRIM, off, len, NULL);
}

void hf_ship_grow(struct hf_ship *s, uint64_t size)
{
	uint64_t n = (size + CHUNK - 1) / CHUNK;

	pthread_mutex_lock(&s->mu);
	/* The digests are of the old size's units: no more comparing. */
	if (size != s->size) {
		s->dirty_gen++;
		s->sums_ok = false;
	}
	if (n > s->nchunks) {
		uint8_t *d = hf_xcalloc(n + 1, 1), *rs = hf_xcalloc(n + 1, 1);
		uint32_t *sm = hf_xcalloc(n + 1, sizeof(*sm));

		memcpy(d, s->dirty, s->nchunks);
		memcpy(rs, s->resume, s->nchunks);
		memcpy(sm, s->same, s->nchunks * sizeof(*sm));
		free(s->dirty);
		free(s->resume);
		free(s->same);
		s->dirty = d;
		s->resume = rs;
		s->same = sm;
		/* The new part is copied too: the standby's may hold old bytes. */
		for (uint64_t c = s->nchunks; c < n; c++) {
			d[c] = 1;
			s->ndirty++;
			s->sync_total += CHUNK;
		}
		s->nchunks = n;
	}
	s->size = size;
	pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

/* ---- the sending thread ----------------------------------------------- */

struct sender {
	struct hf_ship *s;
	struct hf_remote r;
	bool connected;
	struct slot slots[WINDOW];
	unsigned first, nin;
	size_t inflight;
	uint64_t send, send_seq;  /* the next record to send */
	uint64_t sent_seq;        /* the last record sent (or seq - 1) */
	uint64_t marked_seq;      /* the last record a mark covers */
	uint64_t since_mark;      /* bytes sent since the last mark */
	int64_t heard_ms;         /* the standby's last answer */
	int64_t mark_ms;          /* when the last mark went */
	bool mark_inflight;       /* one mark at a time */
	bool invalidated;         /* the standby knows a copy is owed */
	bool no_sums;             /* the standby does not answer SUMS */
	int64_t header_ms;
};

static void set_state(struct hf_ship *s, const char *state, const char *msg)
{
	snprintf(s->state, sizeof(s->state), "%s", state);
	snprintf(s->msg, sizeof(s->msg), "%s", msg ? msg : "");
}

static void drop_window(struct sender *w)
{
	struct hf_ship *s = w->s;

	pthread_mutex_lock(&s->mu);
	for (unsigned i = 0; i < w->nin; i++) {
		struct slot *t = &w->slots[(w->first + i) % WINDOW];

		if (t->kind == S_CHUNK || t->kind == S_PART) {
			s->inflight_chunks--;
			if (t->chunk < s->nchunks && !s->dirty[t->chunk]) {
				s->dirty[t->chunk] = 1;
				s->ndirty++;
			}
			/* Whole again: the next connection compares anew. */
			if (t->chunk < s->nchunks)
				s->resume[t->chunk] = 0;
		}
		free(t->buf);
		t->buf = NULL;
	}
	pthread_mutex_unlock(&s->mu);
	w->first = w->nin = 0;
	w->inflight = 0;
	w->mark_inflight = w->invalidated = false;
}

static void disconnect(struct sender *w, const char *why)
{
	struct hf_ship *s = w->s;
	bool fenced = w->r.fenced;

	drop_window(w);
	hf_remote_close(&w->r, !w->r.dead);
	w->connected = false;
	pthread_mutex_lock(&s->mu);
	s->link_up = false;
	if (fenced) {
		s->fenced = true;
		set_state(s, "fenced",
			  "the standby's replica took a newer attachment: it "
			  "is a primary now, and this stream ended");
		pthread_cond_broadcast(&s->room_cv);
	} else {
		set_state(s, "connecting", why);
	}
	pthread_mutex_unlock(&s->mu);
	if (why)
		hf_log("volume %s: DR stream to %s port %d: %s", s->volume_id,
		       s->c.address, s->c.port, why);
}

/* Seq of the record at pos, walking from the tail (under mu). */
static bool skip_to(struct hf_ship *s, uint64_t seq_b, uint64_t *pos)
{
	uint64_t p = s->tail, q = s->tail_seq;

	while (q <= seq_b && p < s->head) {
		struct rec r;
		uint32_t crc;

		if (!rec_head(s, p, &r, &crc) || r.seq != q)
			return false;
		p += rec_size(&r);
		q++;
	}
	*pos = p;
	return q == seq_b + 1;
}

static void advance_tail(struct hf_ship *s, uint64_t pos, uint64_t seq)
{
	s->tail = pos;
	s->tail_seq = seq;
	if (s->tail < s->head) {
		struct rec r;
		uint32_t crc;

		s->tail_time = rec_head(s, s->tail, &r, &crc) ? r.time
							       : hf_now_ns();
	}
	pthread_cond_broadcast(&s->room_cv);
}

/*
 * Before a copy's first chunk: the standby's digest of every SUM_UNIT
 * (a standby that held the volume before, such as an old primary after
 * a failback, then receives only the units that differ). Records sent
 * later on this connection are applied there after these digests were
 * made, so a unit read here later whose digest matches holds what the
 * standby holds once those records are in (docs/design/dr.md §2).
 * False when the connection failed; a standby that does not know SUMS
 * (an older version) is copied to whole from then on.
 */
static bool fetch_sums(struct sender *w, uint64_t gen)
{
	struct hf_ship *s = w->s;
	uint64_t nreq = (s->size + SUMS_SPAN - 1) / SUMS_SPAN, sent = 0, got = 0;
	uint8_t *buf = hf_xmalloc(SUM_UNITS(s->size) * HF_VOLW_SUM_LEN + 1);
	char why[HF_VOL_ERR_MAX];

	/* SUMS_DEPTH requests in flight: slot i % SUMS_DEPTH is request i's. */
	while (got < nreq) {
		bool fail;

		if (sent < nreq && sent - got < SUMS_DEPTH) {
			struct slot *t = &w->slots[sent % SUMS_DEPTH];
			struct hf_volw_frame f;
			uint64_t off = sent * SUMS_SPAN;
			uint64_t len = s->size - off < SUMS_SPAN ? s->size - off
								 : SUMS_SPAN;

			memset(&f, 0, sizeof(f));
			f.type = HF_VOLW_SUMS;
			f.off = off;
			f.u.sums.len = len;
			f.u.sums.unit = SUM_UNIT;
			memset(&t->q, 0, sizeof(t->q));
			t->q.dst = buf + off / SUM_UNIT * HF_VOLW_SUM_LEN;
			t->q.dst_len =
			    (size_t)(SUM_UNITS(len) * HF_VOLW_SUM_LEN);
			fail = hf_remote_submit(&w->r, &f, &t->q) != 0;
			sent++;
		} else {
			fail = hf_remote_wait(&w->r,
					      &w->slots[got % SUMS_DEPTH].q) != 0;
			got++;
		}
		if (fail) {
			hf_remote_dead(&w->r, why, sizeof(why));
			if (strstr(why, "not served") ||
			    strstr(why, "unknown type"))
				w->no_sums = true;
			disconnect(w, why); /* no answer lands in buf after */
			free(buf);
			return false;
		}
	}
	pthread_mutex_lock(&s->mu);
	if (s->dirty_gen == gen) {
		free(s->sums);
		s->sums = buf;
		buf = NULL;
		s->sums_ok = true;
	}
	pthread_mutex_unlock(&s->mu);
	free(buf);
	return true;
}

static bool connect_standby(struct sender *w)
{
	struct hf_ship *s = w->s;
	struct hf_volw_frame f;
	struct slot *t = &w->slots[0];
	char err[HF_VOL_ERR_MAX];
	uint64_t seq_b, pos, gen;
	bool want_sums;

	hf_remote_init(&w->r);
	w->r.address = hf_xstrdup(s->c.address);
	w->r.replica = hf_xstrdup(s->c.replica);
	w->r.node = hf_xstrdup("standby");
	w->r.port = s->c.port;
	w->r.tls = s->tls;
	if (hf_remote_connect(&w->r, s->volume_id, s->epoch, s->c.node,
			      s->c.ticket, s->size, err, sizeof(err))) {
		bool fenced = !strncmp(err, "fenced", 6);

		hf_remote_close(&w->r, false);
		pthread_mutex_lock(&s->mu);
		if (fenced) {
			s->fenced = true;
			set_state(s, "fenced", err);
			pthread_cond_broadcast(&s->room_cv);
		} else {
			set_state(s, "connecting", err);
		}
		pthread_mutex_unlock(&s->mu);
		return false;
	}
	memset(&f, 0, sizeof(f));
	f.type = HF_VOLW_MARK;
	if (hf_remote_submit(&w->r, &f, &t->q) ||
	    hf_remote_wait(&w->r, &t->q)) {
		hf_remote_dead(&w->r, err, sizeof(err));
		disconnect(w, err);
		return false;
	}
	seq_b = t->q.mark[0];
	pthread_mutex_lock(&s->mu);
	s->applied_seq = seq_b;
	s->applied_time = (int64_t)t->q.mark[1];
	if (!s->full && seq_b >= s->tail_seq && seq_b < s->head_seq &&
	    skip_to(s, seq_b, &pos)) {
		/* Applied there already: the stream goes on after them. */
		advance_tail(s, pos, seq_b + 1);
	} else if (!s->full && seq_b + 1 != s->tail_seq) {
		/* The standby is not where this journal left it: copy all. */
		hf_log("volume %s: the standby's mark (%llu) is not in the DR "
		       "journal (%llu to %llu): the whole volume is copied",
		       s->volume_id, (unsigned long long)seq_b,
		       (unsigned long long)s->tail_seq,
		       (unsigned long long)s->head_seq);
		s->full = true;
		s->copy_since = hf_now_ns();
		write_header(s, true);
		dirty_all(s);
	}
	s->spools = w->r.hello_flags & HF_VOLW_F_SPOOLS;
	s->final_done = false;
	w->send = s->tail;
	w->send_seq = s->tail_seq;
	w->sent_seq = w->marked_seq = s->tail_seq - 1;
	want_sums = s->full && s->ndirty && !w->no_sums;
	gen = s->dirty_gen;
	s->sums_ok = false;
	pthread_mutex_unlock(&s->mu);
	if (want_sums && !fetch_sums(w, gen))
		return false;
	pthread_mutex_lock(&s->mu);
	s->link_up = true;
	set_state(s, s->full ? "syncing" : "streaming", NULL);
	pthread_mutex_unlock(&s->mu);
	w->connected = true;
	w->since_mark = 0;
	w->mark_ms = w->heard_ms = hf_mono_ms();
	hf_log("volume %s: DR stream to %s port %d (replica %s) is up; the "
	       "standby's mark is %llu",
	       s->volume_id, s->c.address, s->c.port, s->c.replica,
	       (unsigned long long)seq_b);
	return true;
}

static bool all_zero(const uint8_t *p, size_t n)
{
	static const uint8_t z[4096];

	for (size_t i = 0; i < n; i += sizeof(z))
		if (memcmp(p + i, z, n - i < sizeof(z) ? n - i : sizeof(z)))
			return false;
	return true;
}

/* Whether unit u of the chunk in buf (len bytes) has the digest in want. */
static bool unit_same(const uint8_t *buf, uint64_t len, uint64_t u,
		      const uint8_t *want)
{
	uint8_t got[HF_VOLW_SUM_LEN];
	uint64_t at = u * SUM_UNIT;

	hf_vol_sum(buf + at, len - at < SUM_UNIT ? len - at : SUM_UNIT, got);
	return !memcmp(want + u * HF_VOLW_SUM_LEN, got, sizeof(got));
}

/* Sends slot t's frame. */
static bool submit(struct sender *w, struct slot *t, uint64_t off,
		   uint32_t type, uint64_t len)
{
	struct hf_volw_frame f;
	char why[HF_VOL_ERR_MAX];

	memset(&f, 0, sizeof(f));
	f.type = type;
	f.off = off;
	if (type == HF_VOLW_WRITE) {
		f.data = t->buf;
		f.data_len = (uint32_t)len;
	} else if (type == HF_VOLW_TRIM) {
		f.u.range.len = len;
	} else {
		f.off = 0;
		f.u.mark.seq = t->seq;
		f.u.mark.time_ns = (uint64_t)t->time_ns;
		if (t->final)
			f.flags = HF_VOLW_F_FINAL;
	}
	/* A record's time, for a standby that spools (not a copy's). */
	if (t->kind == S_RECORD && (w->r.hello_flags & HF_VOLW_F_SPOOLS)) {
		f.flags = HF_VOLW_F_TIMED;
		f.time_ns = (uint64_t)t->time_ns;
	}
	w->nin++;
	w->inflight += t->len;
	if (hf_remote_submit(&w->r, &f, &t->q)) {
		hf_remote_dead(&w->r, why, sizeof(why));
		disconnect(w, why);
		return false;
	}
	return true;
}

/*
 * Whether a mark is due (mu held): once no copy is owed and none is in
 * flight, when writes went out since the last one (or a copy ended):
 * MARK_DRAINED_MS after the last once the journal is drained, and in the
 * middle of a backlog as MARK_BACKLOG_MS and MARK_BYTES say; and every
 * HEARTBEAT_MS while idle.
 */
static bool mark_due(const struct sender *w, const struct hf_ship *s,
		     int64_t now)
{
	bool drained = w->send == s->head;

	if (s->ndirty || s->inflight_chunks || w->mark_inflight)
		return false;
	if (s->final_want && !s->final_done && s->spools && drained)
		return true;
	if (w->sent_seq > w->marked_seq || s->full) {
		if (drained)
			return now - w->mark_ms >= MARK_DRAINED_MS;
		return now - w->mark_ms >= MARK_BACKLOG_MS ||
		       (w->since_mark >= MARK_BYTES &&
			(s->head - s->tail) * 2 >= s->ring);
	}
	return drained && now - w->mark_ms >= HEARTBEAT_MS;
}

/* Sends a mark into slot t; called with mu held, returns with it free. */
static bool send_mark(struct sender *w, struct slot *t)
{
	struct hf_ship *s = w->s;
	struct rec r;
	uint32_t crc;

	t->kind = S_MARK;
	t->seq = w->sent_seq;
	t->end = w->send;
	t->final = s->final_want && s->spools && w->send == s->head &&
		   !s->full;
	/* The standby then holds every write made before this. */
	if (w->send == s->head) {
		t->time_ns = hf_now_ns();
		/* Records after it are not older (a clock stepped back). */
		if (t->time_ns < s->last_time)
			t->time_ns = s->last_time;
		s->last_time = t->time_ns;
	}
	else if (rec_head(s, w->send, &r, &crc))
		t->time_ns = r.time - 1;
	else
		t->time_ns = s->tail_time;
	pthread_mutex_unlock(&s->mu);
	w->marked_seq = t->seq;
	w->since_mark = 0;
	w->mark_ms = hf_mono_ms();
	w->mark_inflight = true;
	return submit(w, t, 0, HF_VOLW_MARK, 0);
}

/*
 * The next piece of the copy into slot t (mu held; returns with it free):
 * the lowest dirty chunk, from the unit where its last piece left off.
 * With the standby's digests, only the next run of units that differ
 * goes, and the chunk stays dirty while another one is left in it;
 * without, the rest of the chunk. True when the window took a frame or
 * the chunk needed nothing (the caller fills on), false when the link
 * failed.
 */
static bool fill_chunk(struct sender *w, struct slot *t)
{
	struct hf_ship *s = w->s;
	uint8_t want[CHUNK / SUM_UNIT * HF_VOLW_SUM_LEN];
	uint64_t c = 0, len, n, start, from, to, u;
	bool cmp = s->sums_ok, more = false;

	while (!s->dirty[c])
		c++;
	s->dirty[c] = 0;
	s->ndirty--;
	s->inflight_chunks++;
	start = s->resume[c];
	s->resume[c] = 0;
	len = (c + 1) * CHUNK > s->size ? s->size - c * CHUNK : CHUNK;
	n = SUM_UNITS(len);
	if (cmp)
		memcpy(want, s->sums + c * (CHUNK / SUM_UNIT) * HF_VOLW_SUM_LEN,
		       n * HF_VOLW_SUM_LEN);
	pthread_mutex_unlock(&s->mu);
	t->kind = S_CHUNK;
	t->chunk = c;
	t->buf = hf_xmalloc(len);
	t->len = len;
	if (s->rd(s->rd_arg, t->buf, c * CHUNK, len)) {
		w->nin++; /* drop_window puts the chunk back */
		disconnect(w, "the volume cannot be read for the copy");
		return false;
	}
	from = start * SUM_UNIT;
	to = len;
	if (cmp) {
		uint64_t first, end;

		/* The first unit that differs, the run after it, the next. */
		for (u = start; u < n && unit_same(t->buf, len, u, want); u++)
			;
		for (first = u; u < n && !unit_same(t->buf, len, u, want); u++)
			;
		for (end = u; u < n && unit_same(t->buf, len, u, want); u++)
			;
		more = u < n;
		pthread_mutex_lock(&s->mu);
		if (s->sums_ok) {
			from = first * SUM_UNIT;
			to = end * SUM_UNIT < len ? end * SUM_UNIT : len;
			uint64_t same = (from - start * SUM_UNIT) +
					((more ? u * SUM_UNIT : len) - to);

			/* A chunk started over counts from nothing again. */
			if (start == 0) {
				s->copy_same -= s->same[c];
				s->same[c] = 0;
			}
			s->copy_same += (int64_t)same;
			s->same[c] += (uint32_t)same;
			if (more) {
				/* The chunk's next run after this one. */
				s->resume[c] = u;
				if (!s->dirty[c]) {
					s->dirty[c] = 1;
					s->ndirty++;
				}
				t->kind = S_PART;
			}
		} else {
			more = false; /* an overflow since: the rest of it */
		}
		if (from == to) {
			/* The standby holds the rest already. */
			s->inflight_chunks--;
			s->sync_done += CHUNK;
		}
		pthread_mutex_unlock(&s->mu);
		if (from == to) {
			free(t->buf);
			t->buf = NULL;
			return true;
		}
	}
	if (from)
		memmove(t->buf, t->buf + from, to - from);
	t->len = to - from;
	if (all_zero(t->buf, to - from)) {
		t->len = 0;
		return submit(w, t, c * CHUNK + from, HF_VOLW_TRIM, to - from);
	}
	return submit(w, t, c * CHUNK + from, HF_VOLW_WRITE, to - from);
}

/* The next record, or chunk, or mark into the window: false when none. */
static bool fill_one(struct sender *w)
{
	struct hf_ship *s = w->s;
	struct slot *t = &w->slots[(w->first + w->nin) % WINDOW];
	struct rec r;
	uint32_t crc;

	memset(t, 0, sizeof(*t));
	pthread_mutex_lock(&s->mu);
	if (s->full && !w->invalidated) {
		/* Before any write the copy makes: the standby's data is not
		 * what its last mark says any more. */
		pthread_mutex_unlock(&s->mu);
		w->invalidated = true;
		t->kind = S_INVAL;
		t->seq = UINT64_MAX;
		return submit(w, t, 0, HF_VOLW_MARK, 0);
	}
	if (mark_due(w, s, hf_mono_ms()))
		return send_mark(w, t); /* unlocks mu */
	if (w->send < s->head) {
		bool ok = rec_head(s, w->send, &r, &crc) &&
			  r.seq == w->send_seq;

		pthread_mutex_unlock(&s->mu);
		if (!ok) {
			disconnect(w, "a record of the DR journal does not "
				      "read back");
			pthread_mutex_lock(&s->mu);
			s->full = true;
			s->copy_since = hf_now_ns();
			write_header(s, true);
			dirty_all(s);
			pthread_mutex_unlock(&s->mu);
			return false;
		}
		t->kind = S_RECORD;
		t->seq = r.seq;
		t->time_ns = r.time;
		t->end = w->send + rec_size(&r);
		if (r.type == R_WRITE) {
			t->buf = hf_xmalloc(r.len);
			t->len = r.len;
			if (ring_io(s, false, t->buf, r.len, w->send + REC)) {
				free(t->buf);
				t->buf = NULL;
				disconnect(w, "the DR journal cannot be read");
				return false;
			}
		}
		w->send = t->end;
		w->send_seq++;
		w->sent_seq = t->seq;
		w->since_mark += t->len + REC;
		return submit(w, t, r.off,
			      r.type == R_WRITE ? HF_VOLW_WRITE : HF_VOLW_TRIM,
			      r.len);
	}
	if (s->ndirty)
		return fill_chunk(w, t); /* unlocks mu */
	pthread_mutex_unlock(&s->mu);
	return false;
}

/* The oldest slot's answer. */
static void reap(struct sender *w)
{
	struct hf_ship *s = w->s;
	struct slot *t = &w->slots[w->first];
	char why[HF_VOL_ERR_MAX];

	if (hf_remote_wait(&w->r, &t->q)) {
		hf_remote_dead(&w->r, why, sizeof(why));
		disconnect(w, why);
		return;
	}
	pthread_mutex_lock(&s->mu);
	s->shipped += (int64_t)t->len;
	if (t->kind == S_CHUNK || t->kind == S_PART) {
		s->inflight_chunks--;
		if (t->kind == S_CHUNK)
			s->sync_done += CHUNK;
	} else if (t->kind == S_MARK) {
		w->mark_inflight = false;
		advance_tail(s, t->end, t->seq + 1);
		if (t->final && s->head == t->end)
			s->final_done = true;
		s->applied_seq = t->q.mark[0];
		s->applied_time = (int64_t)t->q.mark[1];
		if (s->full && !s->ndirty && !s->inflight_chunks) {
			s->full = false;
			w->invalidated = false;
			s->sync_total = s->sync_done = 0;
			write_header(s, true);
			w->header_ms = hf_mono_ms();
			set_state(s, "streaming", NULL);
			hf_log("volume %s: the standby holds a whole, "
			       "consistent copy", s->volume_id);
		}
	}
	if (s->full && strcmp(s->state, "syncing"))
		set_state(s, "syncing", NULL);
	if (hf_mono_ms() - w->header_ms >= HDR_EVERY_MS) {
		write_header(s, false);
		w->header_ms = hf_mono_ms();
	}
	pthread_mutex_unlock(&s->mu);
	w->inflight -= t->len;
	free(t->buf);
	t->buf = NULL;
	w->first = (w->first + 1) % WINDOW;
	w->nin--;
}

static void *sender_main(void *arg)
{
	struct sender *w = hf_xcalloc(1, sizeof(*w));
	struct hf_ship *s = arg;
	int backoff = 200;

	w->s = s;
	for (;;) {
		pthread_mutex_lock(&s->mu);
		if (s->stopping || s->fenced) {
			pthread_mutex_unlock(&s->mu);
			break;
		}
		pthread_mutex_unlock(&s->mu);
		if (!w->connected) {
			struct timespec dl;

			if (connect_standby(w)) {
				backoff = 200;
				continue;
			}
			pthread_mutex_lock(&s->mu);
			hf_deadline_after_ms(&dl, backoff);
			if (!s->stopping && !s->fenced)
				pthread_cond_timedwait(&s->cv, &s->mu, &dl);
			pthread_mutex_unlock(&s->mu);
			backoff = backoff * 2 > 5000 ? 5000 : backoff * 2;
			continue;
		}
		while (w->connected && w->nin < WINDOW &&
		       w->inflight < WINDOW_BYTES && fill_one(w))
			;
		if (!w->connected)
			continue;
		if (w->nin) {
			reap(w);
			w->heard_ms = hf_mono_ms();
			continue;
		}
		/* Quiet for a while: is the standby still there? */
		if (hf_mono_ms() - w->heard_ms >= HEARTBEAT_MS) {
			if (hf_remote_ping(&w->r, 2000)) {
				char why[HF_VOL_ERR_MAX];

				hf_remote_dead(&w->r, why, sizeof(why));
				disconnect(w, why);
				continue;
			}
			w->heard_ms = hf_mono_ms();
		}
		pthread_mutex_lock(&s->mu);
		if (!s->stopping && w->send == s->head && !s->ndirty) {
			/* Until something to send, or the next mark is due. */
			int64_t wait = HEARTBEAT_MS;
			struct timespec dl;

			if (w->sent_seq > w->marked_seq || s->full) {
				wait = MARK_DRAINED_MS -
				       (hf_mono_ms() - w->mark_ms);
				if (wait < 1)
					wait = 1;
			}
			hf_deadline_after_ms(&dl, (int)wait);
			pthread_cond_timedwait(&s->cv, &s->mu, &dl);
		}
		pthread_mutex_unlock(&s->mu);
	}
	if (w->connected) {
		while (w->nin)
			reap(w);
		if (w->connected) {
			drop_window(w);
			hf_remote_close(&w->r, true);
		}
	}
	free(w);
	return NULL;
}

void hf_ship_start(struct hf_ship *s)
{
	if (!pthread_create(&s->thread, NULL, sender_main, s))
		s->started = true;
	else
		set_state(s, "connecting", "cannot start the sending thread");
}

/* ---- status and the end ----------------------------------------------- */

json_t *hf_ship_status(struct hf_ship *s)
{
	json_t *o;
	int64_t now = hf_now_ns(), lag = 0;

	pthread_mutex_lock(&s->mu);
	if (s->full || s->ndirty)
		lag = now - s->copy_since;
	else if (s->head > s->tail)
		lag = now - s->tail_time;
	if (lag < 0)
		lag = 0;
	o = json_pack("{s:s, s:s?, s:b, s:s, s:I, s:I, s:I, s:f, s:I, s:I, "
		      "s:I, s:I, s:I, s:b}",
		      "state", s->state, "message", s->msg[0] ? s->msg : NULL,
		      "link_up", s->link_up, "policy",
		      s->c.block ? "block" : "resync", "journal_bytes",
		      (json_int_t)(s->head - s->tail), "journal_size",
		      (json_int_t)s->c.journal_size, "lag_bytes",
		      (json_int_t)(s->head - s->tail + s->ndirty * CHUNK),
		      "lag_seconds", (double)lag / 1e9, "applied_seq",
		      (json_int_t)s->applied_seq, "applied_time",
		      (json_int_t)s->applied_time, "shipped",
		      (json_int_t)s->shipped, "blocked",
		      (json_int_t)s->blocked, "overflows",
		      (json_int_t)s->overflows, "consistent", !s->full);
	json_object_set_new(o, "copy_same", json_integer(s->copy_same));
	if (s->full)
		json_object_set_new(
		    o, "sync",
		    json_pack("{s:I, s:I}", "done", (json_int_t)s->sync_done,
			      "total", (json_int_t)s->sync_total));
	pthread_mutex_unlock(&s->mu);
	return o;
}

static bool drained(struct hf_ship *s)
{
	return s->head == s->tail && !s->full && !s->ndirty &&
	       (!s->final_want || !s->spools || s->final_done);
}

bool hf_ship_drain(struct hf_ship *s, int drain_ms)
{
	bool ok;

	pthread_mutex_lock(&s->mu);
	s->final_want = true;
	pthread_cond_signal(&s->cv);
	for (int64_t end = hf_mono_ms() + drain_ms;
	     s->started && !drained(s) && !s->fenced &&
	     hf_mono_ms() < end;) {
		struct timespec dl;

		hf_deadline_after_ms(&dl, 50);
		pthread_cond_timedwait(&s->room_cv, &s->mu, &dl);
	}
	ok = drained(s);
	pthread_mutex_unlock(&s->mu);
	return ok;
}

void hf_ship_close(struct hf_ship *s)
{
	if (!s)
		return;
	pthread_mutex_lock(&s->mu);
	s->stopping = true;
	pthread_cond_broadcast(&s->cv);
	pthread_cond_broadcast(&s->room_cv);
	pthread_mutex_unlock(&s->mu);
	if (s->started)
		pthread_join(s->thread, NULL);
	if (s->jfd >= 0) {
		/* Every record synced: the next boot may trust them. */
		s->clean = fdatasync(s->jfd) == 0;
		write_header(s, true);
		close(s->jfd);
	}
	if (s->tls)
		SSL_CTX_free(s->tls);
	free(s->c.address);
	free(s->c.replica);
	free(s->c.node);
	free(s->c.ca);
	free(s->c.cert);
	free(s->c.key);
	free(s->c.journal);
	free(s->volume_id);
	free(s->dirty);
	free(s->resume);
	free(s->same);
	free(s->sums);
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->cv);
	pthread_cond_destroy(&s->room_cv);
	free(s);
}
