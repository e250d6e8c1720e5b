/*
 * wire.c - the volume protocol's frame codec (see wire.h for the format).
 *
 * Each frame type has a row in `types` naming its payload's kind; each
 * kind has a row in `kinds` with the lengths its header may announce and
 * three functions: put (the fixed part's bytes), get (parse them) and
 * check (the rules on the decoded values, the same for what is decoded
 * and for what a caller asks to encode).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/crc32c.h"
#include "common/err.h"
#include "common/util.h"
#include "volume/bitmap.h"
#include "volume/meta.h"
#include "volume/wire.h"

#define GENS_LEN (4 * HF_VOL_GEN_LEN)
#define OFF_CRC 36

HF_PRINTF(3, 4)
static int fail(char *err, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, HF_VOL_ERR_MAX, fmt, ap);
	va_end(ap);
	return code;
}

/* ---- writing and reading fields ---------------------------------------- */

struct wr {
	uint8_t *p;
	size_t at;
};

static void put8(struct wr *w, uint8_t v)
{
	w->p[w->at++] = v;
}

static void put32(struct wr *w, uint32_t v)
{
	hf_vol_put32(w->p + w->at, v);
	w->at += 4;
}

static void put64(struct wr *w, uint64_t v)
{
	hf_vol_put64(w->p + w->at, v);
	w->at += 8;
}

static void put_bytes(struct wr *w, const void *s, size_t n)
{
	memcpy(w->p + w->at, s, n);
	w->at += n;
}

static void put_id(struct wr *w, const char *s)
{
	size_t n = strlen(s);

	put8(w, (uint8_t)n);
	put_bytes(w, s, n);
}

static void put_gens(struct wr *w, const struct hf_vol_gens *g)
{
	put_bytes(w, g->current.b, HF_VOL_GEN_LEN);
	put_bytes(w, g->bitmap.b, HF_VOL_GEN_LEN);
	for (int i = 0; i < HF_VOL_GEN_HISTORY; i++)
		put_bytes(w, g->history[i].b, HF_VOL_GEN_LEN);
}

/*
 * A payload being read; the first problem sticks (later reads do
 * nothing), so a get function reads everything and looks once at the end.
 */
struct rd {
	const uint8_t *p;
	size_t n, at;
	const char *type;
	char *err;
	int rc;
};

static const uint8_t *take(struct rd *r, size_t k, const char *what)
{
	const uint8_t *q;

	if (r->rc)
		return NULL;
	if (r->n - r->at < k) {
		r->rc = fail(r->err, HF_EPARSE,
			     "frame byte %zu: the %s payload ends inside %s",
			     HF_VOLW_HDR + r->at, r->type, what);
		return NULL;
	}
	q = r->p + r->at;
	r->at += k;
	return q;
}

static uint8_t get8(struct rd *r, const char *what)
{
	const uint8_t *q = take(r, 1, what);

	return q ? q[0] : 0;
}

static uint16_t get16(struct rd *r, const char *what)
{
	const uint8_t *q = take(r, 2, what);

	return q ? hf_vol_get16(q) : 0;
}

static uint32_t get32(struct rd *r, const char *what)
{
	const uint8_t *q = take(r, 4, what);

	return q ? hf_vol_get32(q) : 0;
}

static uint64_t get64(struct rd *r, const char *what)
{
	const uint8_t *q = take(r, 8, what);

	return q ? hf_vol_get64(q) : 0;
}

static void get_bytes(struct rd *r, void *out, size_t n, const char *what)
{
	const uint8_t *q = take(r, n, what);

	if (q)
		memcpy(out, q, n);
}

/* An id: a u8 length up to max, then that many bytes of volume.h's set. */
static void get_id(struct rd *r, char *out, size_t max, const char *what)
{
	size_t at = r->at, n = get8(r, what);
	const uint8_t *q;

	if (r->rc)
		return;
	if (!(q = take(r, n, what)))
		return;
	if (!hf_vol_id_ok((const char *)q, n, max)) {
		r->rc = fail(r->err, HF_EPARSE,
			     "frame byte %zu: the %s's %s must be 1 to %zu "
			     "printable characters without spaces",
			     HF_VOLW_HDR + at, r->type, what, max);
		return;
	}
	memcpy(out, q, n);
	out[n] = 0;
}

static void get_gens(struct rd *r, struct hf_vol_gens *g)
{
	get_bytes(r, g->current.b, HF_VOL_GEN_LEN, "gen.current");
	get_bytes(r, g->bitmap.b, HF_VOL_GEN_LEN, "gen.bitmap");
	for (int i = 0; i < HF_VOL_GEN_HISTORY; i++)
		get_bytes(r, g->history[i].b, HF_VOL_GEN_LEN, "gen.history");
}

/* The rest of the payload is the bulk. */
static void get_bulk(struct rd *r, struct hf_volw_frame *f)
{
	if (r->rc)
		return;
	f->data = r->p + r->at;
	f->data_len = (uint32_t)(r->n - r->at);
	r->at = r->n;
}

/* ---- checks shared by the payload kinds -------------------------------- */

static int check_id(const char *type, const char *what, const char *s,
		    size_t max, char *err)
{
	if (!hf_vol_id_ok(s, strnlen(s, max + 1), max))
		return fail(err, HF_EINVAL,
			    "%s: the %s must be 1 to %zu printable characters "
			    "without spaces",
			    type, what, max);
	return 0;
}

static int check_side(const char *type, const struct hf_vol_side *s,
		      char *err)
{
	char why[HF_VOL_ERR_MAX];

	if (s->flags & ~(uint32_t)HF_VOL_F_KNOWN)
		return fail(err, HF_EINVAL, "%s: unknown replica flags 0x%x",
			    type, s->flags & ~(uint32_t)HF_VOL_F_KNOWN);
	if (hf_vol_gens_check(&s->gens, why))
		return fail(err, HF_EINVAL, "%s: %s", type, why);
	return 0;
}

/* [off, off + len) must be a non-empty aligned range inside the cap. */
static int check_range(const char *type, uint64_t off, uint64_t len,
		       uint64_t most, char *err)
{
	if (len == 0 || len % HF_VOL_REGION_SIZE || len > most)
		return fail(err, HF_EINVAL,
			    "%s: length %llu is not a positive multiple of %u "
			    "up to %llu",
			    type, (unsigned long long)len, HF_VOL_REGION_SIZE,
			    (unsigned long long)most);
	if (off > HF_VOL_SIZE_MAX || len > HF_VOL_SIZE_MAX - off)
		return fail(err, HF_EINVAL,
			    "%s: [%llu, +%llu) ends past the largest volume",
			    type, (unsigned long long)off,
			    (unsigned long long)len);
	return 0;
}

/* ---- the payload kinds ------------------------------------------------- */

enum kind {
	K_EMPTY,
	K_DATA,
	K_DIRTY,
	K_TRIM,
	K_READ,
	K_HELLO,
	K_HELLO_OK,
	K_GEN,
	K_PEER,
	K_BITMAP,
	K_AL,
	K_FENCED,
	K_ERROR,
	K_SNAP,
	K_MARK,
	K_SUMSQ,
	K_SUMS,
};

static void put_none(const struct hf_volw_frame *f, struct wr *w)
{
}

static void get_none(struct hf_volw_frame *f, struct rd *r)
{
}

static int check_none(const struct hf_volw_frame *f, const char *t, char *err)
{
	return 0;
}

/* A timed WRITE's or TRIM's time, before the rest (wire.h). */
static void put_time(const struct hf_volw_frame *f, struct wr *w)
{
	if (f->flags & HF_VOLW_F_TIMED)
		put64(w, f->time_ns);
}

static void get_time(struct hf_volw_frame *f, struct rd *r)
{
	if (f->flags & HF_VOLW_F_TIMED)
		f->time_ns = get64(r, "the time");
}

static void put_data(const struct hf_volw_frame *f, struct wr *w)
{
	put_time(f, w);
}

static void get_data(struct hf_volw_frame *f, struct rd *r)
{
	get_time(f, r);
	get_bulk(r, f);
}

static int check_data(const struct hf_volw_frame *f, const char *t, char *err)
{
	if (f->data_len && !f->data)
		return fail(err, HF_EINVAL, "%s: no data given", t);
	return check_range(t, f->off, f->data_len, HF_VOL_DATA_MAX, err);
}

static void put_range(const struct hf_volw_frame *f, struct wr *w)
{
	put_time(f, w);
	put64(w, f->u.range.len);
	if (f->type == HF_VOLW_DIRTY)
		put_id(w, f->u.range.peer);
}

static void get_range(struct hf_volw_frame *f, struct rd *r)
{
	get_time(f, r);
	f->u.range.len = get64(r, "the length");
	if (f->type == HF_VOLW_DIRTY)
		get_id(r, f->u.range.peer, HF_VOL_ID_MAX, "peer id");
}

static int check_range_kind(const struct hf_volw_frame *f, const char *t,
			    char *err)
{
	uint64_t most = f->type == HF_VOLW_READ ? HF_VOL_DATA_MAX
						: HF_VOL_SIZE_MAX;
	int rc = check_range(t, f->off, f->u.range.len, most, err);

	if (!rc && f->type == HF_VOLW_DIRTY)
		rc = check_id(t, "peer id", f->u.range.peer, HF_VOL_ID_MAX,
			      err);
	return rc;
}

static void put_hello(const struct hf_volw_frame *f, struct wr *w)
{
	const struct hf_volw_hello *h = &f->u.hello;

	put8(w, h->role);
	put32(w, h->me.flags);
	put_gens(w, &h->me.gens);
	put_bytes(w, h->proof, HF_VOLW_PROOF_LEN);
	put_id(w, h->volume_id);
	put_id(w, h->replica_id);
	put_id(w, h->node_id);
}

static void get_hello(struct hf_volw_frame *f, struct rd *r)
{
	struct hf_volw_hello *h = &f->u.hello;

	h->role = get8(r, "the role");
	h->me.flags = get32(r, "the flags");
	get_gens(r, &h->me.gens);
	get_bytes(r, h->proof, HF_VOLW_PROOF_LEN, "the proof");
	get_id(r, h->volume_id, HF_VOL_ID_MAX, "volume id");
	get_id(r, h->replica_id, HF_VOL_ID_MAX, "replica id");
	get_id(r, h->node_id, HF_VOL_NODE_MAX, "node id");
}

static int check_hello(const struct hf_volw_frame *f, const char *t, char *err)
{
	const struct hf_volw_hello *h = &f->u.hello;
	int rc;

	if (h->role != HF_VOLW_ROLE_PRIMARY && h->role != HF_VOLW_ROLE_RESYNC)
		return fail(err, HF_EINVAL, "%s: unknown role %u", t, h->role);
	if ((rc = check_side(t, &h->me, err)) ||
	    (rc = check_id(t, "volume id", h->volume_id, HF_VOL_ID_MAX,
			   err)) ||
	    (rc = check_id(t, "replica id", h->replica_id, HF_VOL_ID_MAX,
			   err)) ||
	    (rc = check_id(t, "node id", h->node_id, HF_VOL_NODE_MAX, err)))
		return rc;
	return 0;
}

static void put_hello_ok(const struct hf_volw_frame *f, struct wr *w)
{
	const struct hf_volw_hello_ok *h = &f->u.hello_ok;

	put64(w, h->size);
	put64(w, h->epoch);
	put32(w, h->replica.flags);
	put_gens(w, &h->replica.gens);
	put8(w, (uint8_t)h->npeers);
	for (unsigned i = 0; i < h->npeers; i++) {
		put_id(w, h->peers[i].id);
		put64(w, h->peers[i].regions);
	}
}

static void get_hello_ok(struct hf_volw_frame *f, struct rd *r)
{
	struct hf_volw_hello_ok *h = &f->u.hello_ok;
	size_t at;

	h->size = get64(r, "the size");
	h->epoch = get64(r, "the epoch");
	h->replica.flags = get32(r, "the flags");
	get_gens(r, &h->replica.gens);
	at = r->at;
	h->npeers = get8(r, "the peer count");
	if (!r->rc && h->npeers > HF_VOL_MAX_PEERS) {
		r->rc = fail(r->err, HF_EPARSE,
			     "frame byte %zu: %u peers, over the limit of %d",
			     HF_VOLW_HDR + at, h->npeers, HF_VOL_MAX_PEERS);
		return;
	}
	for (unsigned i = 0; i < h->npeers && !r->rc; i++) {
		get_id(r, h->peers[i].id, HF_VOL_ID_MAX, "peer id");
		h->peers[i].regions = get64(r, "a peer's dirty regions");
	}
}

static int check_hello_ok(const struct hf_volw_frame *f, const char *t,
			  char *err)
{
	const struct hf_volw_hello_ok *h = &f->u.hello_ok;
	int rc;

	if (h->size == 0 || h->size % HF_VOL_REGION_SIZE ||
	    h->size > HF_VOL_SIZE_MAX)
		return fail(err, HF_EINVAL,
			    "%s: size %llu is not a positive multiple of %u up "
			    "to 2^50",
			    t, (unsigned long long)h->size, HF_VOL_REGION_SIZE);
	if ((rc = check_side(t, &h->replica, err)))
		return rc;
	if (h->npeers > HF_VOL_MAX_PEERS)
		return fail(err, HF_EINVAL, "%s: %u peers, over the limit of %d",
			    t, h->npeers, HF_VOL_MAX_PEERS);
	for (unsigned i = 0; i < h->npeers; i++) {
		if ((rc = check_id(t, "peer id", h->peers[i].id, HF_VOL_ID_MAX,
				   err)))
			return rc;
		if (h->peers[i].regions > h->size / HF_VOL_REGION_SIZE)
			return fail(err, HF_EINVAL,
				    "%s: peer %s has %llu dirty regions, more "
				    "than the volume's",
				    t, h->peers[i].id,
				    (unsigned long long)h->peers[i].regions);
		for (unsigned j = 0; j < i; j++)
			if (!strcmp(h->peers[i].id, h->peers[j].id))
				return fail(err, HF_EINVAL,
					    "%s: peer %s is listed twice", t,
					    h->peers[i].id);
	}
	return 0;
}

static void put_gen(const struct hf_volw_frame *f, struct wr *w)
{
	put_gens(w, &f->u.gen);
}

static void get_gen(struct hf_volw_frame *f, struct rd *r)
{
	get_gens(r, &f->u.gen);
}

static int check_gen(const struct hf_volw_frame *f, const char *t, char *err)
{
	char why[HF_VOL_ERR_MAX];

	if (hf_vol_gens_check(&f->u.gen, why))
		return fail(err, HF_EINVAL, "%s: %s", t, why);
	return 0;
}

static void put_peer(const struct hf_volw_frame *f, struct wr *w)
{
	put_id(w, f->u.bitmap.peer);
}

static void get_peer(struct hf_volw_frame *f, struct rd *r)
{
	get_id(r, f->u.bitmap.peer, HF_VOL_ID_MAX, "peer id");
}

static int check_peer(const struct hf_volw_frame *f, const char *t, char *err)
{
	return check_id(t, "peer id", f->u.bitmap.peer, HF_VOL_ID_MAX, err);
}

static void put_bitmap(const struct hf_volw_frame *f, struct wr *w)
{
	put_id(w, f->u.bitmap.peer);
	put64(w, f->u.bitmap.nbits);
	put64(w, f->u.bitmap.first);
	put64(w, f->u.bitmap.count);
}

static void get_bitmap(struct hf_volw_frame *f, struct rd *r)
{
	get_id(r, f->u.bitmap.peer, HF_VOL_ID_MAX, "peer id");
	f->u.bitmap.nbits = get64(r, "nbits");
	f->u.bitmap.first = get64(r, "first");
	f->u.bitmap.count = get64(r, "count");
	get_bulk(r, f);
}

static int check_bitmap(const struct hf_volw_frame *f, const char *t,
			char *err)
{
	char why[HF_VOL_ERR_MAX];
	int rc = check_peer(f, t, err);

	if (rc)
		return rc;
	if (f->u.bitmap.nbits == 0 ||
	    f->u.bitmap.nbits > HF_VOL_SIZE_MAX / HF_VOL_REGION_SIZE)
		return fail(err, HF_EINVAL,
			    "%s: a volume of %llu regions is out of range", t,
			    (unsigned long long)f->u.bitmap.nbits);
	if (f->data_len && !f->data)
		return fail(err, HF_EINVAL, "%s: no runs given", t);
	if (hf_vol_bitmap_rle_check(f->u.bitmap.nbits, f->u.bitmap.first,
				    f->u.bitmap.count, f->data, f->data_len,
				    why))
		return fail(err, HF_EINVAL, "%s: %s", t, why);
	return 0;
}

static void put_al(const struct hf_volw_frame *f, struct wr *w)
{
	put8(w, (uint8_t)f->u.al.nmembers);
	for (unsigned i = 0; i < f->u.al.nmembers; i++) {
		put_id(w, f->u.al.members[i].id);
		put_bytes(w, f->u.al.members[i].gen.b, HF_VOL_GEN_LEN);
	}
	put32(w, f->u.al.count);
}

static void get_al(struct hf_volw_frame *f, struct rd *r)
{
	f->u.al.nmembers = get8(r, "the member count");
	for (unsigned i = 0; i < f->u.al.nmembers && i < HF_VOL_AL_MEMBERS;
	     i++) {
		get_id(r, f->u.al.members[i].id, HF_VOL_ID_MAX, "member id");
		get_bytes(r, f->u.al.members[i].gen.b, HF_VOL_GEN_LEN,
			  "a member's generation");
	}
	if (f->u.al.nmembers <= HF_VOL_AL_MEMBERS)
		f->u.al.count = get32(r, "the extent count");
	get_bulk(r, f);
}

uint64_t hf_volw_al_extent(const struct hf_volw_frame *f, uint32_t i)
{
	return hf_vol_get64(f->data + (size_t)i * 8);
}

static int check_al(const struct hf_volw_frame *f, const char *t, char *err)
{
	uint64_t n = f->u.al.count;

	if (f->u.al.nmembers < 1 || f->u.al.nmembers > HF_VOL_AL_MEMBERS)
		return fail(err, HF_EINVAL, "%s: %u members, not 1 to %d", t,
			    f->u.al.nmembers, HF_VOL_AL_MEMBERS);
	for (unsigned i = 0; i < f->u.al.nmembers; i++) {
		int rc = check_id(t, "member id", f->u.al.members[i].id,
				  HF_VOL_ID_MAX, err);

		if (rc)
			return rc;
	}
	if (n > HF_VOL_AL_MAX)
		return fail(err, HF_EINVAL, "%s: %llu extents, over %d", t,
			    (unsigned long long)n, HF_VOL_AL_MAX);
	if (n * 8 != f->data_len || (f->data_len && !f->data))
		return fail(err, HF_EINVAL,
			    "%s: %llu extents take %llu bytes, not %u", t,
			    (unsigned long long)n, (unsigned long long)n * 8,
			    f->data_len);
	for (uint32_t i = 0; i < n; i++) {
		uint64_t e = hf_volw_al_extent(f, i);

		if (e >= HF_VOL_SIZE_MAX / HF_VOL_EXTENT_SIZE)
			return fail(err, HF_EINVAL,
				    "%s: extent %llu is past the largest volume",
				    t, (unsigned long long)e);
		if (i && e <= hf_volw_al_extent(f, i - 1))
			return fail(err, HF_EINVAL,
				    "%s: the extents are not strictly "
				    "increasing at %llu",
				    t, (unsigned long long)e);
	}
	return 0;
}

static void put_fenced(const struct hf_volw_frame *f, struct wr *w)
{
	put64(w, f->u.fenced_epoch);
}

static void get_fenced(struct hf_volw_frame *f, struct rd *r)
{
	f->u.fenced_epoch = get64(r, "the epoch");
}

static void put_mark(const struct hf_volw_frame *f, struct wr *w)
{
	put64(w, f->u.mark.seq);
	put64(w, f->u.mark.time_ns);
}

static void get_mark(struct hf_volw_frame *f, struct rd *r)
{
	f->u.mark.seq = get64(r, "the seq");
	f->u.mark.time_ns = get64(r, "the time");
}

/* SUMS: the range and the unit; SUMS_DATA: then a digest per unit. */
static void put_sums(const struct hf_volw_frame *f, struct wr *w)
{
	put64(w, f->u.sums.len);
	put32(w, f->u.sums.unit);
}

static void get_sums(struct hf_volw_frame *f, struct rd *r)
{
	f->u.sums.len = get64(r, "the length");
	f->u.sums.unit = get32(r, "the unit");
	if (f->type == HF_VOLW_SUMS_DATA)
		get_bulk(r, f);
}

static int check_sums(const struct hf_volw_frame *f, const char *t, char *err)
{
	uint32_t u = f->u.sums.unit;
	uint64_t units;
	int rc;

	if (u < HF_VOL_REGION_SIZE || u > HF_VOL_DATA_MAX || (u & (u - 1)) ||
	    f->off % u)
		return fail(err, HF_EINVAL,
			    "%s: unit %u is not a power of two from %u to %u "
			    "that off %llu is a multiple of",
			    t, u, HF_VOL_REGION_SIZE, HF_VOL_DATA_MAX,
			    (unsigned long long)f->off);
	if ((rc = check_range(t, f->off, f->u.sums.len,
			      (uint64_t)HF_VOLW_SUMS_MAX * u, err)))
		return rc;
	units = (f->u.sums.len + u - 1) / u;
	if (f->type == HF_VOLW_SUMS_DATA &&
	    (f->data_len != units * HF_VOLW_SUM_LEN || !f->data))
		return fail(err, HF_EINVAL,
			    "%s: %u bytes of digests for %llu units (want %llu)",
			    t, f->data_len, (unsigned long long)units,
			    (unsigned long long)(units * HF_VOLW_SUM_LEN));
	return 0;
}

static void put_snap(const struct hf_volw_frame *f, struct wr *w)
{
	put8(w, f->u.snap.op);
	put64(w, f->u.snap.size);
	put_id(w, f->u.snap.id);
}

static void get_snap(struct hf_volw_frame *f, struct rd *r)
{
	f->u.snap.op = get8(r, "the snapshot op");
	f->u.snap.size = get64(r, "the snapshot's size");
	get_id(r, f->u.snap.id, HF_VOL_ID_MAX, "snapshot id");
}

static int check_snap(const struct hf_volw_frame *f, const char *t, char *err)
{
	if (f->u.snap.op == HF_VOLW_SNAP_TAKE
		    ? f->u.snap.size == 0 || f->u.snap.size % HF_VOL_REGION_SIZE ||
			      f->u.snap.size > HF_VOL_SIZE_MAX
		    : (f->u.snap.op != HF_VOLW_SNAP_DELETE &&
		       f->u.snap.op != HF_VOLW_SNAP_RESTORE) ||
			      f->u.snap.size)
		return fail(err, HF_EINVAL,
			    "%s: op %u with size %llu is not a snapshot "
			    "request", t, f->u.snap.op,
			    (unsigned long long)f->u.snap.size);
	return check_id(t, "snapshot id", f->u.snap.id, HF_VOL_ID_MAX, err);
}

static void put_error(const struct hf_volw_frame *f, struct wr *w)
{
	size_t n = strlen(f->u.error.text);

	put32(w, f->u.error.errnum);
	hf_vol_put16(w->p + w->at, (uint16_t)n);
	w->at += 2;
	put_bytes(w, f->u.error.text, n);
}

static void get_error(struct hf_volw_frame *f, struct rd *r)
{
	size_t at, n;

	f->u.error.errnum = get32(r, "the errno");
	at = r->at;
	n = get16(r, "the text's length");
	if (!r->rc && n > HF_VOLW_TEXT_MAX) {
		r->rc = fail(r->err, HF_EPARSE,
			     "frame byte %zu: an error text of %zu bytes, over "
			     "%d",
			     HF_VOLW_HDR + at, n, HF_VOLW_TEXT_MAX);
		return;
	}
	get_bytes(r, f->u.error.text, n, "the text");
	if (!r->rc && memchr(f->u.error.text, 0, n))
		r->rc = fail(r->err, HF_EPARSE,
			     "frame byte %zu: the error text holds a NUL byte",
			     HF_VOLW_HDR + at + 2);
	f->u.error.text[r->rc ? 0 : n] = 0;
}

static int check_error(const struct hf_volw_frame *f, const char *t, char *err)
{
	const char *s = f->u.error.text;
	size_t n = strnlen(s, HF_VOLW_TEXT_MAX + 1);

	if (f->u.error.errnum == 0 || f->u.error.errnum > 4095)
		return fail(err, HF_EINVAL, "%s: errno %u is out of range", t,
			    f->u.error.errnum);
	if (n == 0 || n > HF_VOLW_TEXT_MAX)
		return fail(err, HF_EINVAL,
			    "%s: the text must be 1 to %d bytes", t,
			    HF_VOLW_TEXT_MAX);
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
			return fail(err, HF_EINVAL,
				    "%s: the text's byte %zu is not printable "
				    "ASCII",
				    t, i);
	return 0;
}

static const struct kind_ops {
	bool at_off; /* off is a region-aligned volume offset, else 0 */
	uint32_t min_len, max_len; /* what a header may announce */
	void (*put)(const struct hf_volw_frame *f, struct wr *w);
	void (*get)(struct hf_volw_frame *f, struct rd *r);
	int (*check)(const struct hf_volw_frame *f, const char *t, char *err);
} kinds[] = {
    [K_EMPTY] = {false, 0, 0, put_none, get_none, check_none},
    [K_DATA] = {true, HF_VOL_REGION_SIZE, HF_VOL_DATA_MAX, put_data,
		get_data, check_data},
    [K_DIRTY] = {true, 8 + 2, 8 + 1 + HF_VOL_ID_MAX, put_range, get_range,
		 check_range_kind},
    [K_TRIM] = {true, 8, 8, put_range, get_range, check_range_kind},
    [K_READ] = {true, 8, 8, put_range, get_range, check_range_kind},
    [K_HELLO] = {false, 1 + 4 + GENS_LEN + HF_VOLW_PROOF_LEN + 3 * 2,
		 1 + 4 + GENS_LEN + HF_VOLW_PROOF_LEN +
		     2 * (1 + HF_VOL_ID_MAX) + 1 + HF_VOL_NODE_MAX,
		 put_hello, get_hello, check_hello},
    [K_HELLO_OK] = {false, 8 + 8 + 4 + GENS_LEN + 1,
		    8 + 8 + 4 + GENS_LEN + 1 +
			HF_VOL_MAX_PEERS * (1 + HF_VOL_ID_MAX + 8),
		    put_hello_ok, get_hello_ok, check_hello_ok},
    [K_GEN] = {false, GENS_LEN, GENS_LEN, put_gen, get_gen, check_gen},
    [K_PEER] = {false, 2, 1 + HF_VOL_ID_MAX, put_peer, get_peer,
		check_peer},
    [K_BITMAP] = {false, 2 + 24, HF_VOLW_PAYLOAD_MAX, put_bitmap, get_bitmap,
		  check_bitmap},
    [K_AL] = {false, 1 + 2 + HF_VOL_GEN_LEN + 4, HF_VOLW_PAYLOAD_MAX, put_al,
	      get_al, check_al},
    [K_FENCED] = {false, 8, 8, put_fenced, get_fenced, check_none},
    [K_ERROR] = {false, 4 + 2 + 1, 4 + 2 + HF_VOLW_TEXT_MAX, put_error,
		 get_error, check_error},
    [K_SNAP] = {false, 1 + 8 + 2, 1 + 8 + 1 + HF_VOL_ID_MAX, put_snap,
		get_snap, check_snap},
    [K_MARK] = {false, 16, 16, put_mark, get_mark, check_none},
    [K_SUMSQ] = {true, 12, 12, put_sums, get_sums, check_sums},
    [K_SUMS] = {true, 12 + HF_VOLW_SUM_LEN, 12 + HF_VOL_DATA_MAX, put_sums,
		get_sums, check_sums},
};

_Static_assert(HF_VOLW_HDR + 8 + 8 + 4 + GENS_LEN + 1 +
			   HF_VOL_MAX_PEERS * (1 + HF_VOL_ID_MAX + 8) <=
		       HF_VOLW_HEAD_MAX,
	       "HELLO_OK's fixed part fits HF_VOLW_HEAD_MAX");
_Static_assert(HF_VOLW_HDR + 1 + 4 + GENS_LEN + HF_VOLW_PROOF_LEN +
			   2 * (1 + HF_VOL_ID_MAX) + 1 + HF_VOL_NODE_MAX <=
		       HF_VOLW_HEAD_MAX,
	       "HELLO's fixed part fits HF_VOLW_HEAD_MAX");

static const struct type_info {
	const char *name;
	enum kind kind;
	enum hf_volw_type answer;
} types[HF_VOLW_TYPE_END_] = {
    [HF_VOLW_HELLO] = {"HELLO", K_HELLO, HF_VOLW_HELLO_OK},
    [HF_VOLW_HELLO_OK] = {"HELLO_OK", K_HELLO_OK, 0},
    [HF_VOLW_WRITE] = {"WRITE", K_DATA, HF_VOLW_WRITE_OK},
    [HF_VOLW_WRITE_OK] = {"WRITE_OK", K_EMPTY, 0},
    [HF_VOLW_DIRTY] = {"DIRTY", K_DIRTY, 0},
    [HF_VOLW_TRIM] = {"TRIM", K_TRIM, HF_VOLW_TRIM_OK},
    [HF_VOLW_TRIM_OK] = {"TRIM_OK", K_EMPTY, 0},
    [HF_VOLW_FLUSH] = {"FLUSH", K_EMPTY, HF_VOLW_FLUSH_OK},
    [HF_VOLW_FLUSH_OK] = {"FLUSH_OK", K_EMPTY, 0},
    [HF_VOLW_READ] = {"READ", K_READ, HF_VOLW_READ_DATA},
    [HF_VOLW_READ_DATA] = {"READ_DATA", K_DATA, 0},
    [HF_VOLW_GEN] = {"GEN", K_GEN, HF_VOLW_GEN_OK},
    [HF_VOLW_GEN_OK] = {"GEN_OK", K_EMPTY, 0},
    [HF_VOLW_RESYNC_DATA] = {"RESYNC_DATA", K_DATA, HF_VOLW_RESYNC_OK},
    [HF_VOLW_RESYNC_OK] = {"RESYNC_OK", K_EMPTY, 0},
    [HF_VOLW_BITMAP_GET] = {"BITMAP_GET", K_PEER, HF_VOLW_BITMAP},
    [HF_VOLW_BITMAP] = {"BITMAP", K_BITMAP, 0},
    [HF_VOLW_AL] = {"AL", K_AL, HF_VOLW_AL_OK},
    [HF_VOLW_AL_OK] = {"AL_OK", K_EMPTY, 0},
    [HF_VOLW_PING] = {"PING", K_EMPTY, HF_VOLW_PONG},
    [HF_VOLW_PONG] = {"PONG", K_EMPTY, 0},
    [HF_VOLW_BYE] = {"BYE", K_EMPTY, 0},
    [HF_VOLW_FENCED] = {"FENCED", K_FENCED, 0},
    [HF_VOLW_ERROR] = {"ERROR", K_ERROR, 0},
    [HF_VOLW_SNAP] = {"SNAP", K_SNAP, HF_VOLW_SNAP_OK},
    [HF_VOLW_SNAP_OK] = {"SNAP_OK", K_EMPTY, 0},
    [HF_VOLW_MARK] = {"MARK", K_MARK, HF_VOLW_MARK_OK},
    [HF_VOLW_MARK_OK] = {"MARK_OK", K_MARK, 0},
    [HF_VOLW_SUMS] = {"SUMS", K_SUMSQ, HF_VOLW_SUMS_DATA},
    [HF_VOLW_SUMS_DATA] = {"SUMS_DATA", K_SUMS, 0},
};

static const struct type_info *type_info(int type)
{
	if (type <= 0 || type >= HF_VOLW_TYPE_END_)
		return NULL;
	return &types[type];
}

const char *hf_volw_type_name(int type)
{
	const struct type_info *ti = type_info(type);

	return ti ? ti->name : NULL;
}

enum hf_volw_type hf_volw_answer(enum hf_volw_type type)
{
	const struct type_info *ti = type_info((int)type);

	return ti ? ti->answer : 0;
}

/* off's rule for the frame's kind (a payload-free check on the header). */
static int check_off(const struct type_info *ti, uint64_t off, char *err)
{
	if (!kinds[ti->kind].at_off) {
		if (off)
			return fail(err, HF_EINVAL,
				    "%s: off must be 0, not %llu", ti->name,
				    (unsigned long long)off);
		return 0;
	}
	if (off % HF_VOL_REGION_SIZE || off > HF_VOL_SIZE_MAX)
		return fail(err, HF_EINVAL,
			    "%s: off %llu is not a multiple of %u inside the "
			    "largest volume",
			    ti->name, (unsigned long long)off,
			    HF_VOL_REGION_SIZE);
	return 0;
}

/* The header flags type may carry (wire.h). */
static uint8_t flags_allowed(enum hf_volw_type type)
{
	switch (type) {
	case HF_VOLW_WRITE:
	case HF_VOLW_TRIM:
		return HF_VOLW_F_TIMED;
	case HF_VOLW_MARK:
		return HF_VOLW_F_FINAL;
	case HF_VOLW_HELLO_OK:
		return HF_VOLW_F_SPOOLS;
	default:
		return 0;
	}
}

/* ---- encoding ---------------------------------------------------------- */

int hf_volw_encode(const struct hf_volw_frame *f, uint8_t *out, size_t cap,
		   size_t *n, char err[HF_VOL_ERR_MAX])
{
	const struct type_info *ti = type_info((int)f->type);
	const struct kind_ops *k;
	uint8_t fixed[HF_VOLW_HEAD_MAX - HF_VOLW_HDR];
	struct wr w = {fixed, 0};
	uint64_t plen;
	uint32_t crc;
	int rc;

	if (!ti)
		return fail(err, HF_EINVAL, "frame type %d is unknown",
			    (int)f->type);
	k = &kinds[ti->kind];
	if (f->flags & ~flags_allowed(f->type))
		return fail(err, HF_EINVAL, "%s: flags 0x%x are unknown",
			    ti->name, f->flags & ~flags_allowed(f->type));
	if (ti->kind != K_DATA && ti->kind != K_BITMAP && ti->kind != K_AL &&
	    ti->kind != K_SUMS &&
	    f->data_len)
		return fail(err, HF_EINVAL, "%s: carries no bulk data",
			    ti->name);
	if ((rc = check_off(ti, f->off, err)) ||
	    (rc = k->check(f, ti->name, err)))
		return rc;
	k->put(f, &w);
	plen = (uint64_t)w.at + f->data_len;
	if (plen > HF_VOLW_PAYLOAD_MAX)
		return fail(err, HF_ETOOBIG,
			    "%s: a payload of %llu bytes, over the cap of %u",
			    ti->name, (unsigned long long)plen,
			    HF_VOLW_PAYLOAD_MAX);
	if (cap < HF_VOLW_HDR + w.at)
		return fail(err, HF_ETOOBIG,
			    "%s: %zu bytes do not hold its header (%zu)",
			    ti->name, cap, HF_VOLW_HDR + w.at);
	memcpy(out, HF_VOLW_MAGIC, 4);
	out[4] = (uint8_t)f->type;
	out[5] = f->flags;
	hf_vol_put16(out + 6, 0);
	hf_vol_put32(out + 8, (uint32_t)plen);
	hf_vol_put64(out + 12, f->id);
	hf_vol_put64(out + 20, f->epoch);
	hf_vol_put64(out + 28, f->off);
	memcpy(out + HF_VOLW_HDR, fixed, w.at);
	crc = hf_crc32c(0, out, OFF_CRC);
	crc = hf_crc32c(crc, fixed, w.at);
	crc = hf_crc32c(crc, f->data, f->data_len);
	hf_vol_put32(out + OFF_CRC, crc);
	*n = HF_VOLW_HDR + w.at;
	return 0;
}

/* ---- decoding ---------------------------------------------------------- */

/*
 * Checks the header fields among buf's first len bytes (len may be short
 * of a whole header); sets *plen once the length is there.
 */
static int check_header(const uint8_t *buf, size_t len, uint32_t *plen,
			char *err)
{
	const struct type_info *ti;
	const struct kind_ops *k;
	char why[HF_VOL_ERR_MAX];
	size_t m = len < 4 ? len : 4;
	uint32_t tlen;

	if (memcmp(buf, HF_VOLW_MAGIC, m))
		return fail(err, HF_EPARSE,
			    "frame byte 0: bad magic (want \"" HF_VOLW_MAGIC
			    "\"): not a holdfast volume stream, or out of "
			    "step");
	if (len < 5)
		return 0;
	if (!(ti = type_info(buf[4])))
		return fail(err, HF_EPARSE, "frame byte 4: unknown type %u",
			    buf[4]);
	k = &kinds[ti->kind];
	if (len < 6)
		return 0;
	if (buf[5] & ~flags_allowed((enum hf_volw_type)buf[4]))
		return fail(err, HF_EPARSE,
			    "frame byte 5: %s with unknown flags 0x%02x",
			    ti->name,
			    buf[5] & ~flags_allowed((enum hf_volw_type)buf[4]));
	if (len < 8)
		return 0;
	if (buf[6] || buf[7])
		return fail(err, HF_EPARSE,
			    "frame byte 6: %s with non-zero reserved bytes",
			    ti->name);
	if (len < 12)
		return 0;
	*plen = hf_vol_get32(buf + 8);
	if (*plen > HF_VOLW_PAYLOAD_MAX)
		return fail(err, HF_ETOOBIG,
			    "frame byte 8: %s announces %u payload bytes, over "
			    "the cap of %u",
			    ti->name, *plen, HF_VOLW_PAYLOAD_MAX);
	/* A timed frame's time comes first: 8 bytes more. */
	tlen = buf[5] & HF_VOLW_F_TIMED ? 8 : 0;
	if (*plen < k->min_len + tlen || *plen > k->max_len + tlen ||
	    (ti->kind == K_DATA && (*plen - tlen) % HF_VOL_REGION_SIZE))
		return fail(err, HF_EPARSE,
			    "frame byte 8: %s cannot have %u payload bytes",
			    ti->name, *plen);
	if (len < 36)
		return 0;
	if (check_off(ti, hf_vol_get64(buf + 28), why))
		return fail(err, HF_EPARSE, "frame byte 28: %s", why);
	return 0;
}

int hf_volw_decode(const uint8_t *buf, size_t len, struct hf_volw_frame *f,
		   size_t *need, char err[HF_VOL_ERR_MAX])
{
	const struct type_info *ti;
	const struct kind_ops *k;
	struct rd r;
	uint32_t plen = 0, crc, want;
	char why[HF_VOL_ERR_MAX];
	int rc;

	*need = 0;
	if ((rc = check_header(buf, len, &plen, err)))
		return rc;
	if (len < HF_VOLW_HDR) {
		*need = HF_VOLW_HDR;
		return 0;
	}
	if (len - HF_VOLW_HDR < plen) {
		*need = HF_VOLW_HDR + (size_t)plen;
		return 0;
	}
	ti = type_info(buf[4]);
	k = &kinds[ti->kind];
	crc = hf_vol_get32(buf + OFF_CRC);
	want = hf_crc32c(hf_crc32c(0, buf, OFF_CRC), buf + HF_VOLW_HDR, plen);
	if (crc != want)
		return fail(err, HF_EPARSE,
			    "frame byte 36: %s's CRC-32C is 0x%08x, but its "
			    "bytes' is 0x%08x (damaged in transit)",
			    ti->name, crc, want);
	memset(f, 0, sizeof(*f));
	f->type = (enum hf_volw_type)buf[4];
	f->flags = buf[5];
	f->id = hf_vol_get64(buf + 12);
	f->epoch = hf_vol_get64(buf + 20);
	f->off = hf_vol_get64(buf + 28);
	f->size = HF_VOLW_HDR + plen;
	r = (struct rd){buf + HF_VOLW_HDR, plen, 0, ti->name, err, 0};
	k->get(f, &r);
	if (r.rc)
		return r.rc;
	if (r.at != r.n)
		return fail(err, HF_EPARSE,
			    "frame byte %zu: %s has %zu bytes after its payload",
			    HF_VOLW_HDR + r.at, ti->name, r.n - r.at);
	if (k->check(f, ti->name, why))
		return fail(err, HF_EPARSE, "frame: %s", why);
	return 0;
}
