/*
 * nodeauth.h - each agent's own identity. An agent proves it is node X
 * with a credential only node X has: it makes a random token, keeps it in
 * its data directory, and registers it once with a join token
 * (POST /v1/agent/register); from then on it syncs with it. The server
 * keeps only the token's SHA-256 (store key /node-credentials/<node>) and
 * answers each sync as the node that token belongs to, so one node cannot
 * report for another, nor set another's API address or key.
 *
 * A node that already has a credential cannot register another one with a
 * join token alone (that is what an impostor would do): an operator resets
 * its identity (POST /v1/nodes/{node}/reset-identity, `holdfast node
 * reset-identity NODE`) when the machine was rebuilt, and the next agent
 * to register as that node gets it. A node known from before credentials
 * existed registers its first one like a new node.
 */
#ifndef HF_SERVER_NODEAUTH_H
#define HF_SERVER_NODEAUTH_H

#include <stdbool.h>

struct hf_srv;

void hf_nodeauth_init(struct hf_srv *s);
void hf_nodeauth_release(struct hf_srv *s);

/*
 * Loads every node's credential digest from the store, replacing what was
 * known: a server loads them as it takes the lead, and about every second
 * while it follows (so an agent that syncs with it is told where the
 * leader is, not that it is unknown). A record that cannot be read is an
 * error naming its key; nothing changes then. Returns 0 or an HF_E* code
 * with *err.
 */
int hf_nodeauth_load(struct hf_srv *s, char **err);

/* The HTTP layer's authenticate callback (ctx: the server's hf_srv). */
int hf_nodeauth_authenticate(void *ctx, const char *token, char **principal);

/*
 * Registers token as node's credential (POST /v1/agent/register, after
 * the join token was checked); from names the peer for the log. Takes
 * srv->mu itself. Returns 0 with *registered (false: the same credential
 * again, its earlier answer was lost), or with *why (the caller frees it)
 * HF_EINVAL (a malformed node id or token), HF_ECONFLICT (the node has
 * another credential, or the token is another node's) or HF_EUNAVAIL
 * (the store did not take it).
 */
int hf_nodeauth_register(struct hf_srv *s, const char *node,
			 const char *token, const char *from, bool *registered,
			 char **why);

/*
 * Forgets node's credential (hf_ops_node_reset_identity), srv->mu held.
 * Returns 0, or HF_ENOTFOUND / HF_EUNAVAIL with *why (the caller frees it).
 */
int hf_nodeauth_reset(struct hf_srv *s, const char *node, char **why);

#endif
