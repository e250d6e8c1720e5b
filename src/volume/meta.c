/*
 * meta.c - the replica metadata block and the generation-id rules (see
 * meta.h for the layout and the table).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/crc32c.h"
#include "common/err.h"
#include "common/util.h"
#include "volume/meta.h"

#define META_MAGIC "HFVOLMD1"

/* Byte offsets of meta.h's layout. */
enum {
	OFF_MAGIC = 0,
	OFF_VERSION = 8,
	OFF_FLAGS = 12,
	OFF_SIZE = 16,
	OFF_REGION = 24,
	OFF_NPEERS = 28,
	OFF_EPOCH = 32,
	OFF_CURSOR = 40,
	OFF_GEN_CURRENT = 48,
	OFF_GEN_BITMAP = 64,
	OFF_GEN_HISTORY = 80,
	OFF_VOLUME_ID = 112,
	OFF_REPLICA_ID = 184,
	OFF_NAME = 256,
	OFF_SOURCE = 392,
	OFF_PEERS = 464,
	ID_SLOT = 72,   /* u8 length, HF_VOL_ID_MAX bytes, zero padding */
	NAME_SLOT = 136,
	PEER_SLOT = 80, /* id slot, u32 bitmap slot, u32 zero */
	OFF_END = OFF_PEERS + HF_VOL_MAX_PEERS * PEER_SLOT,
	OFF_CRC = HF_VOL_META_SIZE - 4,
};

_Static_assert(1 + HF_VOL_ID_MAX <= ID_SLOT, "id slot too small");
_Static_assert(1 + HF_VOL_NAME_MAX <= NAME_SLOT, "name slot too small");
_Static_assert(OFF_END <= OFF_CRC, "metadata overflows its block");

HF_PRINTF(3, 4)
static int fail(char *err, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, HF_VOL_ERR_MAX, fmt, ap);
	va_end(ap);
	return code;
}

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

/* ---- checks ------------------------------------------------------------ */

int hf_vol_gens_check(const struct hf_vol_gens *g, char err[HF_VOL_ERR_MAX])
{
	const struct hf_vol_gen *all[2 + HF_VOL_GEN_HISTORY] = {
	    &g->current, &g->bitmap, &g->history[0], &g->history[1]};
	static const char *const names[] = {"gen.current", "gen.bitmap",
					    "gen.history[0]", "gen.history[1]"};

	_Static_assert(HF_VOL_GEN_HISTORY == 2, "names[] lists two");
	if (!hf_vol_gen_is_zero(&g->bitmap) && hf_vol_gen_is_zero(&g->current))
		return fail(err, HF_EINVAL,
			    "gen.bitmap is set but gen.current is zero");
	if (!hf_vol_gen_is_zero(&g->history[1]) &&
	    hf_vol_gen_is_zero(&g->history[0]))
		return fail(err, HF_EINVAL,
			    "gen.history[1] is set but gen.history[0] is zero");
	for (size_t i = 0; i < HF_ARRAY_LEN(all); i++)
		for (size_t j = i + 1; j < HF_ARRAY_LEN(all); j++)
			if (!hf_vol_gen_is_zero(all[i]) &&
			    hf_vol_gen_equal(all[i], all[j]))
				return fail(err, HF_EINVAL,
					    "%s and %s are the same generation",
					    names[i], names[j]);
	return 0;
}

static int check_id(const char *what, const char *s, size_t max, bool empty_ok,
		    char *err)
{
	size_t n = strnlen(s, max + 1);

	if (n == 0 && empty_ok)
		return 0;
	if (!hf_vol_id_ok(s, n, max))
		return fail(err, HF_EINVAL,
			    "%s must be 1 to %zu printable characters without "
			    "spaces",
			    what, max);
	return 0;
}

int hf_vol_meta_check(const struct hf_vol_meta *m, char err[HF_VOL_ERR_MAX])
{
	bool target = m->flags & HF_VOL_F_RESYNC_TARGET;
	int rc;

	if (m->size == 0 || m->size % HF_VOL_REGION_SIZE ||
	    m->size > HF_VOL_SIZE_MAX)
		return fail(err, HF_EINVAL,
			    "size %llu is not a positive multiple of %u up to "
			    "2^50",
			    (unsigned long long)m->size, HF_VOL_REGION_SIZE);
	if (m->flags & ~(uint32_t)HF_VOL_F_KNOWN)
		return fail(err, HF_EINVAL, "unknown flags 0x%x",
			    m->flags & ~(uint32_t)HF_VOL_F_KNOWN);
	if (target && (m->flags & HF_VOL_F_CONSISTENT))
		return fail(err, HF_EINVAL,
			    "a resync target cannot be consistent");
	if ((rc = check_id("the volume id", m->volume_id, HF_VOL_ID_MAX, false,
			   err)) ||
	    (rc = check_id("the replica id", m->replica_id, HF_VOL_ID_MAX,
			   false, err)) ||
	    (rc = check_id("the volume name", m->name, HF_VOL_NAME_MAX, false,
			   err)) ||
	    (rc = check_id("the resync source", m->resync_source,
			   HF_VOL_ID_MAX, true, err)))
		return rc;
	if (target != (m->resync_source[0] != 0))
		return fail(err, HF_EINVAL,
			    target ? "a resync target needs a resync source"
				   : "a resync source without RESYNC_TARGET");
	if (target && !strcmp(m->resync_source, m->replica_id))
		return fail(err, HF_EINVAL,
			    "a replica cannot resync from itself");
	if (!target && m->resync_cursor)
		return fail(err, HF_EINVAL,
			    "a resync cursor without RESYNC_TARGET");
	if (m->resync_cursor > m->size ||
	    m->resync_cursor % HF_VOL_REGION_SIZE)
		return fail(err, HF_EINVAL,
			    "resync cursor %llu is not a multiple of %u within "
			    "the size",
			    (unsigned long long)m->resync_cursor,
			    HF_VOL_REGION_SIZE);
	if ((rc = hf_vol_gens_check(&m->gens, err)))
		return rc;
	if (m->npeers > HF_VOL_MAX_PEERS)
		return fail(err, HF_EINVAL, "%u peers, over the limit of %d",
			    m->npeers, HF_VOL_MAX_PEERS);
	for (unsigned i = 0; i < m->npeers; i++) {
		const struct hf_vol_meta_peer *p = &m->peers[i];

		if ((rc = check_id("a peer's id", p->id, HF_VOL_ID_MAX, false,
				   err)))
			return rc;
		if (!strcmp(p->id, m->replica_id))
			return fail(err, HF_EINVAL,
				    "peer %u is the replica itself", i);
		if (p->slot >= HF_VOL_MAX_PEERS)
			return fail(err, HF_EINVAL,
				    "peer %s: bitmap slot %u is over %d", p->id,
				    p->slot, HF_VOL_MAX_PEERS - 1);
		for (unsigned j = 0; j < i; j++) {
			if (!strcmp(m->peers[j].id, p->id))
				return fail(err, HF_EINVAL,
					    "peer %s is listed twice", p->id);
			if (m->peers[j].slot == p->slot)
				return fail(err, HF_EINVAL,
					    "peers %s and %s share bitmap "
					    "slot %u",
					    m->peers[j].id, p->id, p->slot);
		}
	}
	return 0;
}

/* ---- the block --------------------------------------------------------- */

static void put_str(uint8_t *slot, const char *s)
{
	size_t n = strlen(s);

	slot[0] = (uint8_t)n;
	memcpy(slot + 1, s, n);
}

int hf_vol_meta_encode(const struct hf_vol_meta *m,
		       uint8_t out[HF_VOL_META_SIZE], char err[HF_VOL_ERR_MAX])
{
	int rc = hf_vol_meta_check(m, err);

	if (rc)
		return rc;
	memset(out, 0, HF_VOL_META_SIZE);
	memcpy(out + OFF_MAGIC, META_MAGIC, 8);
	hf_vol_put32(out + OFF_VERSION, HF_VOL_META_VERSION);
	hf_vol_put32(out + OFF_FLAGS, m->flags);
	hf_vol_put64(out + OFF_SIZE, m->size);
	hf_vol_put32(out + OFF_REGION, HF_VOL_REGION_SIZE);
	hf_vol_put32(out + OFF_NPEERS, m->npeers);
	hf_vol_put64(out + OFF_EPOCH, m->epoch);
	hf_vol_put64(out + OFF_CURSOR, m->resync_cursor);
	memcpy(out + OFF_GEN_CURRENT, m->gens.current.b, HF_VOL_GEN_LEN);
	memcpy(out + OFF_GEN_BITMAP, m->gens.bitmap.b, HF_VOL_GEN_LEN);
	for (int i = 0; i < HF_VOL_GEN_HISTORY; i++)
		memcpy(out + OFF_GEN_HISTORY + i * HF_VOL_GEN_LEN,
		       m->gens.history[i].b, HF_VOL_GEN_LEN);
	put_str(out + OFF_VOLUME_ID, m->volume_id);
	put_str(out + OFF_REPLICA_ID, m->replica_id);
	put_str(out + OFF_NAME, m->name);
	put_str(out + OFF_SOURCE, m->resync_source);
	for (unsigned i = 0; i < m->npeers; i++) {
		uint8_t *p = out + OFF_PEERS + i * PEER_SLOT;

		put_str(p, m->peers[i].id);
		hf_vol_put32(p + ID_SLOT, m->peers[i].slot);
	}
	hf_vol_put32(out + OFF_CRC, hf_crc32c(0, out, OFF_CRC));
	return 0;
}

/*
 * Reads a string slot of size bytes at off into s (max + 1 bytes): a
 * length up to max, the bytes, zeroes after them. The characters are
 * hf_vol_meta_check's to judge (a NUL inside shortens the string, which
 * the check then sees as a too short or empty id).
 */
static int get_str(const uint8_t *buf, size_t off, size_t size, size_t max,
		   const char *what, char *s, char *err)
{
	size_t n = buf[off];

	if (n > max)
		return fail(err, HF_EPARSE,
			    "metadata byte %zu: %s is %zu bytes long, over %zu",
			    off, what, n, max);
	if (!all_zero(buf + off + 1 + n, size - 1 - n))
		return fail(err, HF_EPARSE,
			    "metadata byte %zu: %s's slot has bytes after its "
			    "%zu",
			    off, what, n);
	if (memchr(buf + off + 1, 0, n))
		return fail(err, HF_EPARSE,
			    "metadata byte %zu: %s holds a NUL byte", off,
			    what);
	memcpy(s, buf + off + 1, n);
	s[n] = 0;
	return 0;
}

int hf_vol_meta_decode(const uint8_t *buf, size_t len, struct hf_vol_meta *m,
		       char err[HF_VOL_ERR_MAX])
{
	uint32_t crc, want, v;
	int rc;

	memset(m, 0, sizeof(*m));
	if (len != HF_VOL_META_SIZE)
		return fail(err, HF_EPARSE,
			    "metadata is %zu bytes, not %d", len,
			    HF_VOL_META_SIZE);
	if (memcmp(buf + OFF_MAGIC, META_MAGIC, 8))
		return fail(err, HF_EPARSE,
			    "metadata byte 0: no \"" META_MAGIC "\" magic");
	if ((v = hf_vol_get32(buf + OFF_VERSION)) != HF_VOL_META_VERSION)
		return fail(err, HF_EPARSE,
			    "metadata byte %d: format version %u, this "
			    "program reads %d",
			    OFF_VERSION, v, HF_VOL_META_VERSION);
	crc = hf_vol_get32(buf + OFF_CRC);
	want = hf_crc32c(0, buf, OFF_CRC);
	if (crc != want)
		return fail(err, HF_EPARSE,
			    "metadata byte %d: CRC-32C 0x%08x, but the block's "
			    "is 0x%08x (torn or damaged)",
			    OFF_CRC, crc, want);
	if ((v = hf_vol_get32(buf + OFF_REGION)) != HF_VOL_REGION_SIZE)
		return fail(err, HF_EPARSE,
			    "metadata byte %d: region size %u, not %u",
			    OFF_REGION, v, HF_VOL_REGION_SIZE);
	m->flags = hf_vol_get32(buf + OFF_FLAGS);
	m->size = hf_vol_get64(buf + OFF_SIZE);
	m->npeers = hf_vol_get32(buf + OFF_NPEERS);
	m->epoch = hf_vol_get64(buf + OFF_EPOCH);
	m->resync_cursor = hf_vol_get64(buf + OFF_CURSOR);
	memcpy(m->gens.current.b, buf + OFF_GEN_CURRENT, HF_VOL_GEN_LEN);
	memcpy(m->gens.bitmap.b, buf + OFF_GEN_BITMAP, HF_VOL_GEN_LEN);
	for (int i = 0; i < HF_VOL_GEN_HISTORY; i++)
		memcpy(m->gens.history[i].b,
		       buf + OFF_GEN_HISTORY + i * HF_VOL_GEN_LEN,
		       HF_VOL_GEN_LEN);
	if (m->npeers > HF_VOL_MAX_PEERS)
		return fail(err, HF_EPARSE,
			    "metadata byte %d: %u peers, over the limit of %d",
			    OFF_NPEERS, m->npeers, HF_VOL_MAX_PEERS);
	if ((rc = get_str(buf, OFF_VOLUME_ID, ID_SLOT, HF_VOL_ID_MAX,
			  "the volume id", m->volume_id, err)) ||
	    (rc = get_str(buf, OFF_REPLICA_ID, ID_SLOT, HF_VOL_ID_MAX,
			  "the replica id", m->replica_id, err)) ||
	    (rc = get_str(buf, OFF_NAME, NAME_SLOT, HF_VOL_NAME_MAX,
			  "the volume name", m->name, err)) ||
	    (rc = get_str(buf, OFF_SOURCE, ID_SLOT, HF_VOL_ID_MAX,
			  "the resync source", m->resync_source, err)))
		return rc;
	for (unsigned i = 0; i < HF_VOL_MAX_PEERS; i++) {
		size_t off = OFF_PEERS + i * PEER_SLOT;

		if (i >= m->npeers) {
			if (!all_zero(buf + off, PEER_SLOT))
				return fail(err, HF_EPARSE,
					    "metadata byte %zu: peer slot %u "
					    "is not zero, but there are %u "
					    "peers",
					    off, i, m->npeers);
			continue;
		}
		if ((rc = get_str(buf, off, ID_SLOT, HF_VOL_ID_MAX,
				  "a peer's id", m->peers[i].id, err)))
			return rc;
		m->peers[i].slot = hf_vol_get32(buf + off + ID_SLOT);
		if (hf_vol_get32(buf + off + ID_SLOT + 4))
			return fail(err, HF_EPARSE,
				    "metadata byte %zu: peer %u's padding is "
				    "not zero",
				    off + ID_SLOT + 4, i);
	}
	if (!all_zero(buf + OFF_END, OFF_CRC - OFF_END))
		return fail(err, HF_EPARSE,
			    "metadata bytes %d-%d must be zero", OFF_END,
			    OFF_CRC - 1);
	if ((rc = hf_vol_meta_check(m, err))) {
		char why[HF_VOL_ERR_MAX];

		memcpy(why, err, HF_VOL_ERR_MAX);
		return fail(err, HF_EPARSE, "metadata: %s", why);
	}
	return 0;
}

/* ---- generation ids ---------------------------------------------------- */

void hf_vol_gens_rotate(struct hf_vol_gens *g, const struct hf_vol_gen *fresh)
{
	if (hf_vol_gen_is_zero(&g->bitmap)) {
		g->bitmap = g->current;
	} else if (!hf_vol_gen_is_zero(&g->current)) {
		memmove(&g->history[1], &g->history[0],
			(HF_VOL_GEN_HISTORY - 1) * sizeof(g->history[0]));
		g->history[0] = g->current;
	}
	g->current = *fresh;
}

void hf_vol_gens_bitmap_done(struct hf_vol_gens *g)
{
	if (hf_vol_gen_is_zero(&g->bitmap))
		return;
	memmove(&g->history[1], &g->history[0],
		(HF_VOL_GEN_HISTORY - 1) * sizeof(g->history[0]));
	g->history[0] = g->bitmap;
	memset(&g->bitmap, 0, sizeof(g->bitmap));
}

static bool consistent(const struct hf_vol_side *s)
{
	return (s->flags & HF_VOL_F_CONSISTENT) &&
	       !(s->flags & HF_VOL_F_RESYNC_TARGET);
}

static bool crashed(const struct hf_vol_side *s)
{
	return s->flags & HF_VOL_F_PRIMARY_CRASHED;
}

/* g is a non-zero id found in h's history. */
static bool in_history(const struct hf_vol_gen *g, const struct hf_vol_gens *h)
{
	if (hf_vol_gen_is_zero(g))
		return false;
	for (int i = 0; i < HF_VOL_GEN_HISTORY; i++)
		if (hf_vol_gen_equal(g, &h->history[i]))
			return true;
	return false;
}

static bool me_inconsistent(const struct hf_vol_side *me,
			    const struct hf_vol_side *peer)
{
	return !consistent(me);
}

static bool peer_inconsistent(const struct hf_vol_side *me,
			      const struct hf_vol_side *peer)
{
	return !consistent(peer);
}

static bool same_crashed(const struct hf_vol_side *me,
			 const struct hf_vol_side *peer)
{
	return hf_vol_gen_equal(&me->gens.current, &peer->gens.current) &&
	       (crashed(me) || crashed(peer));
}

static bool same(const struct hf_vol_side *me, const struct hf_vol_side *peer)
{
	return hf_vol_gen_equal(&me->gens.current, &peer->gens.current);
}

static bool peer_empty(const struct hf_vol_side *me,
		       const struct hf_vol_side *peer)
{
	return hf_vol_gen_is_zero(&peer->gens.current);
}

static bool me_empty(const struct hf_vol_side *me,
		     const struct hf_vol_side *peer)
{
	return hf_vol_gen_is_zero(&me->gens.current);
}

static bool peer_at_my_bitmap(const struct hf_vol_side *me,
			      const struct hf_vol_side *peer)
{
	return !hf_vol_gen_is_zero(&me->gens.bitmap) &&
	       hf_vol_gen_equal(&peer->gens.current, &me->gens.bitmap);
}

static bool peer_in_my_history(const struct hf_vol_side *me,
			       const struct hf_vol_side *peer)
{
	return in_history(&peer->gens.current, &me->gens);
}

static bool me_behind(const struct hf_vol_side *me,
		      const struct hf_vol_side *peer)
{
	return (!hf_vol_gen_is_zero(&peer->gens.bitmap) &&
		hf_vol_gen_equal(&me->gens.current, &peer->gens.bitmap)) ||
	       in_history(&me->gens.current, &peer->gens);
}

static bool always(const struct hf_vol_side *me,
		   const struct hf_vol_side *peer)
{
	return true;
}

/* §5.2's table, in the order meta.h gives it: the first match decides. */
static const struct gen_rule {
	bool (*match)(const struct hf_vol_side *me,
		      const struct hf_vol_side *peer);
	enum hf_vol_sync action;
	bool with_al; /* the crashed side's activity extents join the copy */
	const char *why;
} gen_rules[] = {
    {me_inconsistent, HF_VOL_SYNC_REFUSE, false,
     "this replica holds no consistent copy (never completed or in the "
     "middle of a full resync): it cannot be the source"},
    {peer_inconsistent, HF_VOL_SYNC_FULL, false,
     "the peer holds no consistent copy: full resync (resuming at its "
     "cursor)"},
    {same_crashed, HF_VOL_SYNC_AL, true,
     "same generation, but a primary did not detach cleanly: unflushed "
     "writes may differ in its activity-log extents"},
    {same, HF_VOL_SYNC_NONE, false, "same generation: identical"},
    {peer_empty, HF_VOL_SYNC_FULL, false,
     "the peer was created empty and never written: full resync"},
    {me_empty, HF_VOL_SYNC_REFUSE, false,
     "this replica was never written but the peer was: it is behind and "
     "must not be the primary (a bug or a split brain)"},
    {peer_at_my_bitmap, HF_VOL_SYNC_BITMAP, true,
     "the peer missed the writes this replica's bitmap for it holds: "
     "bitmap resync"},
    {peer_in_my_history, HF_VOL_SYNC_FULL, false,
     "the peer missed more than one generation and its bitmap is gone: "
     "full resync"},
    {me_behind, HF_VOL_SYNC_REFUSE, false,
     "the peer holds a newer generation than this replica: it must not be "
     "the primary (a bug or a split brain)"},
    {always, HF_VOL_SYNC_STALE, false,
     "unrelated generations (a split brain or foreign data): the peer is "
     "stale and gets a full resync"},
};

struct hf_vol_verdict hf_vol_gen_compare(const struct hf_vol_side *me,
					 const struct hf_vol_side *peer)
{
	struct hf_vol_verdict v = {HF_VOL_SYNC_STALE, false, false, NULL};

	for (size_t i = 0; i < HF_ARRAY_LEN(gen_rules); i++) {
		const struct gen_rule *r = &gen_rules[i];

		if (!r->match(me, peer))
			continue;
		v.action = r->action;
		v.why = r->why;
		v.my_al = r->with_al && crashed(me);
		v.peer_al = r->with_al && crashed(peer);
		break;
	}
	return v;
}

const char *hf_vol_sync_name(enum hf_vol_sync a)
{
	static const char *const names[] = {
	    [HF_VOL_SYNC_NONE] = "none",     [HF_VOL_SYNC_AL] = "al",
	    [HF_VOL_SYNC_BITMAP] = "bitmap", [HF_VOL_SYNC_FULL] = "full",
	    [HF_VOL_SYNC_REFUSE] = "refuse", [HF_VOL_SYNC_STALE] = "stale",
	};

	if ((unsigned)a >= HF_ARRAY_LEN(names))
		return "?";
	return names[a];
}

/* ---- the activity log's record ---------------------------------------- */

#define AL_MAGIC "HFVOLAL1"
#define AL_OFF_MEMBERS 29
#define AL_MEMBER (ID_SLOT + HF_VOL_GEN_LEN)
#define AL_OFF_EXTENTS (AL_OFF_MEMBERS + HF_VOL_AL_MEMBERS * AL_MEMBER)
#define AL_OFF_CRC (HF_VOL_AL_SLOT - 4)

_Static_assert(AL_OFF_EXTENTS + 8 * HF_VOL_AL_MAX <= AL_OFF_CRC,
	       "the activity log overflows its slot");

int hf_vol_al_check(const struct hf_vol_al *a, char err[HF_VOL_ERR_MAX])
{
	int rc;

	if (a->nmembers < 1 || a->nmembers > HF_VOL_AL_MEMBERS)
		return fail(err, HF_EINVAL,
			    "activity log: %u members, not 1 to %d",
			    a->nmembers, HF_VOL_AL_MEMBERS);
	if (a->count > HF_VOL_AL_MAX)
		return fail(err, HF_EINVAL,
			    "activity log: %u extents, over %d", a->count,
			    HF_VOL_AL_MAX);
	for (unsigned i = 0; i < a->nmembers; i++) {
		if ((rc = check_id("a member's replica id", a->members[i].id,
				   HF_VOL_ID_MAX, false, err)))
			return rc;
		for (unsigned j = 0; j < i; j++)
			if (strcmp(a->members[i].id, a->members[j].id) == 0)
				return fail(err, HF_EINVAL,
					    "activity log: member %s twice",
					    a->members[i].id);
	}
	for (uint32_t i = 0; i < a->count; i++) {
		if (a->extents[i] >= HF_VOL_SIZE_MAX / HF_VOL_EXTENT_SIZE)
			return fail(err, HF_EINVAL,
				    "activity log: extent %llu is past the "
				    "largest volume",
				    (unsigned long long)a->extents[i]);
		if (i && a->extents[i] <= a->extents[i - 1])
			return fail(err, HF_EINVAL,
				    "activity log: extents not strictly "
				    "increasing at %llu",
				    (unsigned long long)a->extents[i]);
	}
	return 0;
}

int hf_vol_al_encode(const struct hf_vol_al *a, uint8_t out[HF_VOL_AL_SLOT],
		     char err[HF_VOL_ERR_MAX])
{
	int rc = hf_vol_al_check(a, err);

	if (rc)
		return rc;
	memset(out, 0, HF_VOL_AL_SLOT);
	memcpy(out, AL_MAGIC, 8);
	hf_vol_put64(out + 8, a->epoch);
	hf_vol_put64(out + 16, a->seq);
	out[24] = (uint8_t)a->nmembers;
	hf_vol_put32(out + 25, a->count);
	for (unsigned i = 0; i < a->nmembers; i++) {
		uint8_t *p = out + AL_OFF_MEMBERS + i * AL_MEMBER;

		put_str(p, a->members[i].id);
		memcpy(p + ID_SLOT, a->members[i].gen.b, HF_VOL_GEN_LEN);
	}
	for (uint32_t i = 0; i < a->count; i++)
		hf_vol_put64(out + AL_OFF_EXTENTS + 8 * i, a->extents[i]);
	hf_vol_put32(out + AL_OFF_CRC, hf_crc32c(0, out, AL_OFF_CRC));
	return 0;
}

int hf_vol_al_decode(const uint8_t *buf, size_t len, struct hf_vol_al *a,
		     char err[HF_VOL_ERR_MAX])
{
	char why[HF_VOL_ERR_MAX];
	int rc;

	if (len < HF_VOL_AL_SLOT)
		return fail(err, HF_EPARSE,
			    "activity log: %zu bytes, not a slot of %d", len,
			    HF_VOL_AL_SLOT);
	if (memcmp(buf, AL_MAGIC, 8) != 0)
		return fail(err, HF_EPARSE, "activity log byte 0: no magic");
	if (hf_vol_get32(buf + AL_OFF_CRC) != hf_crc32c(0, buf, AL_OFF_CRC))
		return fail(err, HF_EPARSE,
			    "activity log byte %d: CRC mismatch", AL_OFF_CRC);
	memset(a, 0, sizeof(*a));
	a->epoch = hf_vol_get64(buf + 8);
	a->seq = hf_vol_get64(buf + 16);
	a->nmembers = buf[24];
	a->count = hf_vol_get32(buf + 25);
	if (a->nmembers < 1 || a->nmembers > HF_VOL_AL_MEMBERS ||
	    a->count > HF_VOL_AL_MAX)
		return fail(err, HF_EPARSE,
			    "activity log byte 24: %u members and %u extents "
			    "are out of range",
			    a->nmembers, a->count);
	for (unsigned i = 0; i < a->nmembers; i++) {
		size_t off = AL_OFF_MEMBERS + i * AL_MEMBER;

		if ((rc = get_str(buf, off, ID_SLOT, HF_VOL_ID_MAX,
				  "a member's replica id", a->members[i].id,
				  err)))
			return rc;
		memcpy(a->members[i].gen.b, buf + off + ID_SLOT,
		       HF_VOL_GEN_LEN);
	}
	for (uint32_t i = 0; i < a->count; i++)
		a->extents[i] = hf_vol_get64(buf + AL_OFF_EXTENTS + 8 * i);
	/* One encoding: what no field holds is zero. */
	if (!all_zero(buf + AL_OFF_MEMBERS + a->nmembers * AL_MEMBER,
		      (HF_VOL_AL_MEMBERS - a->nmembers) * AL_MEMBER) ||
	    !all_zero(buf + AL_OFF_EXTENTS + 8 * a->count,
		      AL_OFF_CRC - AL_OFF_EXTENTS - 8 * a->count))
		return fail(err, HF_EPARSE,
			    "activity log: bytes after its %u members or "
			    "%u extents are not zero",
			    a->nmembers, a->count);
	if (hf_vol_al_check(a, why))
		return fail(err, HF_EPARSE, "%s", why);
	return 0;
}

const struct hf_vol_al_member *hf_vol_al_member(const struct hf_vol_al *a,
						const char *id)
{
	for (unsigned i = 0; i < a->nmembers; i++)
		if (strcmp(a->members[i].id, id) == 0)
			return &a->members[i];
	return NULL;
}
