#include <stddef.h>

#include "common/err.h"

struct hf_err_info {
	const char *name;
	const char *msg;
	int http;
};

static const struct hf_err_info err_table[] = {
#define HF_ERR_ROW(code, name, msg, http) {name, msg, http},
	HF_ERR_MAP(HF_ERR_ROW)
#undef HF_ERR_ROW
};

static const struct hf_err_info *err_lookup(int err)
{
	int idx = err - HF_ERR_FIRST_ - 1;

	if (err >= 0 || idx < 0 ||
	    idx >= (int)(sizeof(err_table) / sizeof(err_table[0])))
		return NULL;
	return &err_table[idx];
}

const char *hf_err_name(int err)
{
	const struct hf_err_info *e = err_lookup(err);

	if (err == 0)
		return "ok";
	return e ? e->name : "unknown";
}

const char *hf_err_msg(int err)
{
	const struct hf_err_info *e = err_lookup(err);

	if (err == 0)
		return "success";
	return e ? e->msg : "unknown error";
}

int hf_err_http(int err)
{
	const struct hf_err_info *e = err_lookup(err);

	if (err == 0)
		return 200;
	return e ? e->http : 500;
}
