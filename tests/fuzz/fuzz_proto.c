/*
 * fuzz_proto.c - libFuzzer target for the server <-> agent protocol's
 * decoders (proto/proto.h): what a server does with an arbitrary sync
 * request, and an agent with an arbitrary answer, launch order or report.
 *
 * The first byte picks the message (sync request, sync response, launch
 * order, report, node info, register); the rest is its JSON. Every decode
 * must succeed, or fail with a sentence; a decoded message, encoded and
 * decoded again, must decode and encode to the same JSON (the encoder
 * writes what the decoder reads, so a message survives a round through
 * order.json or the wire unchanged).
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/proto.h"

enum kind { SYNC_REQ, SYNC_RESP, LAUNCH, REPORT, NODE_INFO, REGISTER, KINDS };

/* Decodes j as kind k; on success returns its encoding, else NULL. */
static json_t *round_once(enum kind k, const json_t *j)
{
	char *err = NULL;
	json_t *out = NULL;
	int rc = 0;

	switch (k) {
	case SYNC_REQ: {
		struct hf_proto_sync_req m;

		hf_proto_sync_req_init(&m);
		rc = hf_proto_sync_req_decode(j, &m, &err);
		if (!rc)
			out = hf_proto_sync_req_encode(&m);
		hf_proto_sync_req_release(&m);
		break;
	}
	case SYNC_RESP: {
		struct hf_proto_sync_resp m;

		hf_proto_sync_resp_init(&m);
		rc = hf_proto_sync_resp_decode(j, &m, &err);
		/* An order that did not decode has no encoding: drop it. */
		for (size_t i = 0; !rc && i < m.tasks.len; i++)
			if (m.tasks.items[i].invalid &&
			    !*m.tasks.items[i].invalid)
				abort();
		if (!rc) {
			size_t keep = 0;

			for (size_t i = 0; i < m.tasks.len; i++) {
				if (m.tasks.items[i].invalid) {
					hf_proto_launch_release(
					    &m.tasks.items[i]);
					continue;
				}
				m.tasks.items[keep++] = m.tasks.items[i];
			}
			m.tasks.len = keep;
			out = hf_proto_sync_resp_encode(&m);
		}
		hf_proto_sync_resp_release(&m);
		break;
	}
	case LAUNCH: {
		struct hf_proto_launch m;

		hf_proto_launch_init(&m);
		rc = hf_proto_launch_decode(j, &m, &err);
		if (!rc)
			out = hf_proto_launch_encode(&m);
		hf_proto_launch_release(&m);
		break;
	}
	case REPORT: {
		struct hf_proto_report m = {0};

		rc = hf_proto_report_decode(j, &m, &err);
		if (!rc)
			out = hf_proto_report_encode(&m);
		hf_proto_report_release(&m);
		break;
	}
	case NODE_INFO: {
		struct hf_proto_node_info m;

		hf_proto_node_info_init(&m);
		rc = hf_proto_node_info_decode(j, &m, &err);
		if (!rc)
			out = hf_proto_node_info_encode(&m);
		hf_proto_node_info_release(&m);
		break;
	}
	default: {
		struct hf_proto_register m = {0};

		rc = hf_proto_register_decode(j, &m, &err);
		if (!rc)
			out = hf_proto_register_encode(&m);
		hf_proto_register_release(&m);
		break;
	}
	}
	/* A failure says why; a success says nothing. */
	if (rc ? !err || !*err : err != NULL)
		abort();
	free(err);
	return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	enum kind k;
	json_t *j, *once, *twice;
	char *a, *b;

	if (size < 1 || size > 1 << 20)
		return 0;
	k = (enum kind)(data[0] % KINDS);
	j = json_loadb((const char *)data + 1, size - 1, JSON_DECODE_ANY, NULL);
	if (!j)
		return 0;
	once = round_once(k, j);
	json_decref(j);
	if (!once)
		return 0;
	twice = round_once(k, once);
	/* What the encoder writes, the decoder takes back unchanged. */
	if (!twice)
		abort();
	a = json_dumps(once, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
	b = json_dumps(twice, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
	if (!a || !b || strcmp(a, b) != 0)
		abort();
	free(a);
	free(b);
	json_decref(once);
	json_decref(twice);
	return 0;
}
