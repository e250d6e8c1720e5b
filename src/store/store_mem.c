/*
 * store_mem.c - the in-memory store backend ("mem:"), for tests and as the
 * reference for what the other backends must do.
 *
 * Keys live in one array of entry pointers sorted by key: lookups and
 * prefix scans are binary searches, inserts shift pointers. That is plenty
 * for test-sized stores and keeps the code obviously right. A transaction
 * evaluates every compare before touching anything, and nothing after
 * that can fail (allocation failure aborts), so a transaction either
 * applies whole or not at all.
 */
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/util.h"
#include "store/store.h"

struct mem_entry {
	char *key;
	char *value; /* len bytes and a NUL */
	size_t len;
	int64_t create_rev;
	int64_t mod_rev;
	int64_t version;
};

struct store_mem {
	HF_VEC(struct mem_entry *) entries; /* sorted by key */
	int64_t rev;
};

static void entry_free(struct mem_entry *e)
{
	free(e->key);
	free(e->value);
	free(e);
}

/* Index of the first entry whose key is >= key. */
static size_t mem_lower_bound(const struct store_mem *m, const char *key)
{
	size_t lo = 0, hi = m->entries.len;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (strcmp(m->entries.items[mid]->key, key) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* The entry for key, or NULL; *idx gets where it is or would go. */
static struct mem_entry *mem_find(const struct store_mem *m, const char *key,
				  size_t *idx)
{
	size_t i = mem_lower_bound(m, key);

	*idx = i;
	if (i < m->entries.len && strcmp(m->entries.items[i]->key, key) == 0)
		return m->entries.items[i];
	return NULL;
}

static void copy_entry(const struct mem_entry *e, struct hf_store_kv *kv)
{
	kv->key = hf_xstrdup(e->key);
	kv->value = hf_xstrndup(e->value, e->len);
	kv->len = e->len;
	kv->create_rev = e->create_rev;
	kv->mod_rev = e->mod_rev;
	kv->version = e->version;
}

static int mem_open(const char *path, void **be, struct hf_buf *err)
{
	if (*path) {
		hf_buf_addf(err, "the mem: store takes no path (got 'mem:%s')",
			    path);
		return HF_EINVAL;
	}
	*be = hf_xcalloc(1, sizeof(struct store_mem));
	return 0;
}

static void mem_close(void *be)
{
	struct store_mem *m = be;

	for (size_t i = 0; i < m->entries.len; i++)
		entry_free(m->entries.items[i]);
	HF_VEC_FREE(&m->entries);
	free(m);
}

static int mem_get(void *be, const char *key, struct hf_store_kv *out,
		   struct hf_buf *err)
{
	struct store_mem *m = be;
	struct mem_entry *e;
	size_t i;

	e = mem_find(m, key, &i);
	if (!e)
		return HF_ENOTFOUND;
	copy_entry(e, out);
	return 0;
}

static int mem_list(void *be, const char *prefix, size_t limit,
		    struct hf_store_kvs *out, struct hf_buf *err)
{
	struct store_mem *m = be;

	out->rev = m->rev;
	for (size_t i = mem_lower_bound(m, prefix); i < m->entries.len; i++) {
		const struct mem_entry *e = m->entries.items[i];

		if (!hf_str_has_prefix(e->key, prefix))
			break;
		if (limit && out->len == limit) {
			out->more = true;
			break;
		}
		copy_entry(e, HF_VEC_PUSH(out));
	}
	return 0;
}

static void mem_put(struct store_mem *m, const struct hf_store_op *op,
		    int64_t rev)
{
	struct mem_entry *e;
	size_t i;

	e = mem_find(m, op->key, &i);
	if (e) {
		free(e->value);
		e->version++;
	} else {
		e = hf_xcalloc(1, sizeof(*e));
		e->key = hf_xstrdup(op->key);
		e->create_rev = rev;
		e->version = 1;
		HF_VEC_GROW(&m->entries);
		memmove(&m->entries.items[i + 1], &m->entries.items[i],
			(m->entries.len - i) * sizeof(*m->entries.items));
		m->entries.items[i] = e;
		m->entries.len++;
	}
	e->value = hf_xstrndup(op->value, op->len);
	e->len = op->len;
	e->mod_rev = rev;
}

/* Removes the entries [from, to); returns whether there were any. */
static bool mem_remove(struct store_mem *m, size_t from, size_t to)
{
	if (from == to)
		return false;
	for (size_t i = from; i < to; i++)
		entry_free(m->entries.items[i]);
	memmove(&m->entries.items[from], &m->entries.items[to],
		(m->entries.len - to) * sizeof(*m->entries.items));
	m->entries.len -= to - from;
	return true;
}

static bool mem_delete(struct store_mem *m, const struct hf_store_op *op)
{
	size_t i, j;

	if (op->kind == HF_STORE_OP_DELETE)
		return mem_find(m, op->key, &i) ? mem_remove(m, i, i + 1) :
						  false;
	i = j = mem_lower_bound(m, op->key);
	while (j < m->entries.len &&
	       hf_str_has_prefix(m->entries.items[j]->key, op->key))
		j++;
	return mem_remove(m, i, j);
}

static int mem_txn(void *be, const struct hf_store_txn *txn, int64_t *rev_out,
		   struct hf_buf *err)
{
	struct store_mem *m = be;
	int64_t rev = m->rev + 1;
	bool changed = false;
	int rc;

	for (size_t i = 0; i < txn->cmps.len; i++) {
		const struct hf_store_cmp *c = &txn->cmps.items[i];
		struct mem_entry *e;
		size_t at;

		e = mem_find(m, c->key, &at);
		rc = hf_store_cmp_eval(c, e ? e->mod_rev : 0, err);
		if (rc)
			return rc;
	}
	for (size_t i = 0; i < txn->ops.len; i++) {
		const struct hf_store_op *op = &txn->ops.items[i];

		if (op->kind == HF_STORE_OP_PUT) {
			mem_put(m, op, rev);
			changed = true;
		} else if (mem_delete(m, op)) {
			changed = true;
		}
	}
	if (changed)
		m->rev = rev;
	*rev_out = m->rev;
	return 0;
}

static int mem_revision(void *be, int64_t *rev, struct hf_buf *err)
{
	const struct store_mem *m = be;

	*rev = m->rev;
	return 0;
}

const struct hf_store_backend hf_store_backend_mem = {
	.name = "mem",
	.open = mem_open,
	.close = mem_close,
	.get = mem_get,
	.list = mem_list,
	.txn = mem_txn,
	.revision = mem_revision,
};
