/*
 * apply.h - the one writer of the server's records: it carries out the
 * actions the scheduler's rules (plan/decide.h) and the operations
 * (server/ops.h) decided on srv->model.
 *
 * Each action is applied in order: the record it names is looked up (an
 * action whose record is gone by then does nothing), changed, and queued
 * for the store in the open batch (state.h: a record changed twice is
 * written once); its events and log lines are held until that batch is
 * written, and dropped with it when the write fails (events.h). What follows from a
 * change for the rest of the server - the scheduler's next tick, the
 * agents' desired sets, the placement scratch - is noted here too.
 *
 * Called with srv->mu held, inside a batch (hf_state_batch_begin) or not
 * (then each record is written at once).
 */
#ifndef HF_SERVER_APPLY_H
#define HF_SERVER_APPLY_H

#include "plan/decide.h"
#include "server/state.h"

/*
 * Applies a's actions in order. The loaded configs of its ADD_SERVICE and
 * ADD_CONFIG actions become the model's (the actions' pointers NULL); the
 * list stays the caller's to release.
 */
void hf_apply(struct hf_srv *s, struct hf_actions *a);

/*
 * What the rules may read besides the model, for a decision made now
 * (the server's clock, its random source and settings).
 */
void hf_apply_ctx(struct hf_srv *s, struct hf_decide_ctx *ctx);

#endif
