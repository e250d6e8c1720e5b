/*
 * fuzz_records.c - what a server does with the records of a damaged store:
 * arbitrary keys and values are put into an in-memory store and loaded
 * as a server would (hf_state_load). Every record is checked; a load must
 * either succeed or fail with a message, never crash, leak or read a
 * damaged record as something else. Input: records separated by 0x1e,
 * each "key 0x1f value". An input that starts with "!" is instead a rule
 * list for the store's injected faults (HOLDFAST_STORE_FAULT), another
 * parser of operator input.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/state.h"
#include "store/store.h"

static void load(struct hf_store *store)
{
	struct hf_srv srv = {0};
	char *err = NULL;
	int rc;

	srv.store = store;
	pthread_mutex_init(&srv.mu, NULL);
	rc = hf_state_load(&srv, &err);
	/* A failed load explains itself and leaves nothing loaded. */
	if (rc && (!err || !*err || srv.model.services.len ||
		   srv.model.nodes.len || srv.model.xvols.len))
		abort();
	if (!rc && err)
		abort();
	free(err);
	hf_state_release(&srv);
	pthread_mutex_destroy(&srv.mu);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hf_store *store = NULL;
	struct hf_store_txn txn = HF_STORE_TXN_INIT;
	const char *p = (const char *)data, *end = p + size;

	if (size > 1 << 20)
		return 0;
	if (hf_store_open("mem:", &store))
		abort();
	if (size && p[0] == '!') {
		char *spec = hf_xstrndup(p + 1, size - 1);

		if (strlen(spec) == size - 1)
			hf_store_set_fault(store, spec);
		free(spec);
		hf_store_close(store);
		return 0;
	}
	while (p < end) {
		const char *rec_end = memchr(p, 0x1e, (size_t)(end - p));
		const char *sep;

		if (!rec_end)
			rec_end = end;
		sep = memchr(p, 0x1f, (size_t)(rec_end - p));
		if (sep && sep > p && !memchr(p, '\0', (size_t)(sep - p))) {
			char *key = hf_xstrndup(p, (size_t)(sep - p));

			hf_store_txn_put(&txn, key, sep + 1,
					 (size_t)(rec_end - sep - 1));
			free(key);
		}
		p = rec_end + 1;
	}
	/* Duplicate keys make the transaction invalid: then nothing loads. */
	if (hf_store_txn(store, &txn, NULL) == 0)
		load(store);
	hf_store_txn_release(&txn);
	hf_store_close(store);
	return 0;
}
