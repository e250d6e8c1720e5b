/*
 * nodeauth.c - nodes' own credentials (see nodeauth.h).
 *
 * s->cred_mu guards the two indexes (by digest, by node); handlers take
 * s->mu first when they need both (registering checks and changes the
 * store under s->mu, as every write of the leader does).
 */
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "http/cred.h"
#include "common/err.h"
#include "server/events.h"
#include "server/nodeauth.h"
#include "server/state.h"

#define CRED_PREFIX "/node-credentials/"
#define NODE_ID_MAX 128
#define TOKEN_MIN 32
#define TOKEN_MAX 256

/* One node's credential: the digest of its token. */
struct node_cred {
	char digest[65];
	char *node;
};

/*
 * The indexes live in one map: digests (64 hex digits) and "node:" keys
 * cannot collide.
 */
static char *node_key(const char *node)
{
	return hf_xasprintf("node:%s", node);
}

static struct node_cred *by_node_in(struct hf_map *m, const char *node)
{
	char *k = node_key(node);
	struct node_cred *c = hf_map_get(m, k);

	free(k);
	return c;
}

static struct node_cred *by_node(struct hf_srv *s, const char *node)
{
	return by_node_in(&s->node_creds, node);
}

/* Adds a credential to m. */
static void cred_add_in(struct hf_map *m, const char *node, const char *digest)
{
	struct node_cred *c = hf_xcalloc(1, sizeof(*c));
	char *k = node_key(node);

	memcpy(c->digest, digest, sizeof(c->digest));
	c->node = k; /* "node:<id>": the key of the node index */
	hf_map_put(m, c->digest, c);
	hf_map_put(m, c->node, c);
}

/* Adds a credential. cred_mu held. */
static void cred_add(struct hf_srv *s, const char *node, const char *digest)
{
	cred_add_in(&s->node_creds, node, digest);
}

/* Removes and frees a credential. cred_mu held. */
static void cred_del(struct hf_srv *s, struct node_cred *c)
{
	hf_map_del(&s->node_creds, c->digest);
	hf_map_del(&s->node_creds, c->node);
	free(c->node);
	free(c);
}

void hf_nodeauth_init(struct hf_srv *s)
{
	pthread_mutex_init(&s->cred_mu, NULL);
	memset(&s->node_creds, 0, sizeof(s->node_creds));
}

/* Frees every credential of m, and m. */
static void creds_free(struct hf_map *m)
{
	struct {
		struct node_cred **items;
		size_t len, cap;
	} all = {0};

	/* Each credential is in the map twice: collect it once, then free. */
	for (size_t i = 0; i < m->cap; i++) {
		struct hf_map_slot *sl = &m->slots[i];

		if (sl->key && sl->key == ((struct node_cred *)sl->value)->node)
			*HF_VEC_PUSH(&all) = sl->value;
	}
	hf_map_release(m);
	for (size_t i = 0; i < all.len; i++) {
		free(all.items[i]->node);
		free(all.items[i]);
	}
	HF_VEC_FREE(&all);
}

void hf_nodeauth_release(struct hf_srv *s)
{
	creds_free(&s->node_creds);
	pthread_mutex_destroy(&s->cred_mu);
}

static bool node_id_ok(const char *id)
{
	size_t n = id ? strlen(id) : 0;

	return n > 0 && n <= NODE_ID_MAX &&
	       strspn(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
			  "0123456789._:-") == n;
}

static bool token_ok(const char *t)
{
	size_t n = t ? strlen(t) : 0;

	return n >= TOKEN_MIN && n <= TOKEN_MAX &&
	       strspn(t, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
			 "0123456789._~-") == n;
}

static bool digest_ok(const char *d)
{
	return d && strlen(d) == 64 &&
	       strspn(d, "0123456789abcdef") == 64;
}

int hf_nodeauth_load(struct hf_srv *s, char **err)
{
	struct hf_store_kvs kvs = {0};
	struct hf_map fresh = {0};
	int rc;

	*err = NULL;
	rc = hf_store_list(s->store, CRED_PREFIX, 0, &kvs);
	if (rc) {
		*err = hf_xasprintf("cannot read the nodes' credentials: %s (%s)",
				    hf_err_msg(rc),
				    hf_store_last_error(s->store));
		return rc;
	}
	for (size_t i = 0; i < kvs.len; i++) {
		json_error_t jerr;
		json_t *o = json_loadb(kvs.items[i].value, kvs.items[i].len, 0,
				       &jerr);
		const char *node = json_string_value(json_object_get(o, "node"));
		const char *digest =
		    json_string_value(json_object_get(o, "digest"));

		if (!node_id_ok(node) || !digest_ok(digest) ||
		    by_node_in(&fresh, node)) {
			*err = hf_xasprintf("store record %s is damaged (not a "
					    "node credential): refusing to "
					    "lead",
					    kvs.items[i].key);
			json_decref(o);
			rc = HF_EPARSE;
			break;
		}
		cred_add_in(&fresh, node, digest);
		json_decref(o);
	}
	hf_store_kvs_release(&kvs);
	if (rc) {
		creds_free(&fresh);
		return rc;
	}
	/* What the store holds now replaces what was known. */
	pthread_mutex_lock(&s->cred_mu);
	{
		struct hf_map old = s->node_creds;

		s->node_creds = fresh;
		fresh = old;
		s->creds_loaded = true;
	}
	pthread_mutex_unlock(&s->cred_mu);
	creds_free(&fresh);
	return 0;
}

int hf_nodeauth_authenticate(void *ctx, const char *token, char **principal)
{
	struct hf_srv *s = ctx;
	struct node_cred *c;
	char digest[65];
	bool loaded;

	*principal = NULL;
	if (!token_ok(token))
		return HF_ROLE_NONE;
	/*
	 * A map lookup by digest: how long it takes says nothing about the
	 * token (finding a digest's neighbour needs a SHA-256 preimage).
	 */
	hf_cred_digest(token, digest);
	pthread_mutex_lock(&s->cred_mu);
	c = hf_map_get(&s->node_creds, digest);
	if (c)
		*principal = hf_xstrdup(c->node + 5);
	loaded = s->creds_loaded;
	pthread_mutex_unlock(&s->cred_mu);
	if (!c && !loaded)
		return HF_ROLE_UNCHECKED;
	return c ? HF_ROLE_NODE : HF_ROLE_NONE;
}

/* One fenced store write (a put, or a delete when value is NULL). */
static int store_write(struct hf_srv *s, const char *key, const char *value)
{
	struct hf_store_txn txn = HF_STORE_TXN_INIT;
	int rc;

	if (s->fence_rev > 0)
		hf_store_txn_cmp_mod_rev(&txn, HF_LEADER_KEY, s->fence_rev);
	if (value)
		hf_store_txn_puts(&txn, key, value);
	else
		hf_store_txn_delete(&txn, key);
	rc = hf_store_txn(s->store, &txn, NULL);
	hf_store_txn_release(&txn);
	return rc;
}

int hf_nodeauth_register(struct hf_srv *s, const char *node,
			 const char *token, const char *from, bool *registered,
			 char **why)
{
	struct node_cred *have;
	char digest[65], *key = NULL, *text = NULL;
	bool known;
	int rc = 0;

	*registered = false;
	if (!node_id_ok(node)) {
		*why = hf_xasprintf("node_id must be 1 to %d letters, digits, "
				    "'.', '_', ':' or '-'",
				    NODE_ID_MAX);
		return HF_EINVAL;
	}
	if (!token_ok(token)) {
		*why = hf_xasprintf("token must be %d to %d letters, digits, "
				    "'.', '_', '~' or '-'",
				    TOKEN_MIN, TOKEN_MAX);
		return HF_EINVAL;
	}
	hf_cred_digest(token, digest);
	pthread_mutex_lock(&s->mu);
	hf_state_wait_commit(s); /* a mutator: see state.h */
	pthread_mutex_lock(&s->cred_mu);
	have = by_node(s, node);
	if (have) {
		bool same = strcmp(have->digest, digest) == 0;

		pthread_mutex_unlock(&s->cred_mu);
		/* The same agent again (its answer was lost): 0. */
		if (!same) {
			*why = hf_xasprintf("node %s is registered with another "
					    "credential; if its machine was "
					    "rebuilt, an operator runs "
					    "`holdfast node reset-identity %s`",
					    node, node);
			hf_log("node %s: a registration with another "
			       "credential was refused (from %s)",
			       node, from);
			rc = HF_ECONFLICT;
		}
		goto out;
	}
	if (hf_map_get(&s->node_creds, digest)) {
		/* Another node's token: never two nodes with one. */
		pthread_mutex_unlock(&s->cred_mu);
		*why = hf_xstrdup("this credential belongs to another node");
		rc = HF_ECONFLICT;
		goto out;
	}
	pthread_mutex_unlock(&s->cred_mu);
	known = hf_state_node(s, node) != NULL;
	key = hf_state_key(CRED_PREFIX "%s", node, NULL);
	{
		json_t *rec = json_pack("{s:s, s:s, s:I}", "node", node,
					"digest", digest, "since",
					(json_int_t)hf_now_ms());

		text = json_dumps(rec, JSON_COMPACT);
		json_decref(rec);
	}
	/* Recorded before it is used: a lost answer is retried (above). */
	rc = store_write(s, key, text);
	if (rc) {
		*why = hf_xasprintf("cannot record the credential of node %s: %s",
				    node, hf_err_msg(rc));
		rc = HF_EUNAVAIL;
		goto out;
	}
	pthread_mutex_lock(&s->cred_mu);
	cred_add(s, node, digest);
	pthread_mutex_unlock(&s->cred_mu);
	hf_log("node %s registered its credential (from %s)%s", node, from,
	       known ? "" : "; it is new");
	hf_event(s, "agent", NULL, "node", node, NULL, "credential registered",
		 known ? NULL : "a new node");
	*registered = true;
out:
	pthread_mutex_unlock(&s->mu);
	free(key);
	free(text);
	return rc;
}

int hf_nodeauth_reset(struct hf_srv *s, const char *node, char **why)
{
	struct node_cred *have;
	char *key;
	int rc;

	pthread_mutex_lock(&s->cred_mu);
	have = by_node(s, node);
	pthread_mutex_unlock(&s->cred_mu);
	if (!have) {
		*why = hf_state_node(s, node)
			   ? hf_xasprintf("node '%s' has no credential to reset",
					  node)
			   : hf_xasprintf("no node '%s'", node);
		return HF_ENOTFOUND;
	}
	key = hf_state_key(CRED_PREFIX "%s", node, NULL);
	rc = store_write(s, key, NULL);
	free(key);
	if (rc && rc != HF_ENOTFOUND) {
		*why = hf_xasprintf("cannot forget the credential of node %s: %s",
				    node, hf_err_msg(rc));
		return HF_EUNAVAIL;
	}
	pthread_mutex_lock(&s->cred_mu);
	cred_del(s, have);
	pthread_mutex_unlock(&s->cred_mu);
	hf_log("node %s: its identity was reset by the operator; the next "
	       "agent to register as %s gets it",
	       node, node);
	hf_event(s, "operator", NULL, "node", node, NULL, "identity reset",
		 "the next agent to register with a join token becomes this "
		 "node");
	return 0;
}
