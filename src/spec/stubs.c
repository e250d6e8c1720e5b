/* Temporary weak stand-ins while the spec module is written in parallel. */
#include <jansson.h>
#include "common/err.h"
#include "spec/spec.h"
#define W __attribute__((weak))
W int hf_options_add_arg(struct hf_kvlist *v, const char *a, struct hf_diags *d) { return HF_EINVAL; }
W int hf_options_load_file(struct hf_kvlist *v, const char *p, struct hf_diags *d) { return HF_EINVAL; }
W int hf_spec_load_file(const char *p, const struct hf_spec_load_opts *o, struct hf_spec **out, struct hf_diags *d) { *out = NULL; return HF_EINVAL; }
W void hf_spec_free(struct hf_spec *s) {}
W json_t *hf_diags_to_json(const struct hf_diags *d) { return json_array(); }
W json_t *hf_spec_to_json(const struct hf_spec *s) { return json_object(); }
W json_t *hf_spec_diff_to_json(const struct hf_spec_diff *d) { return json_object(); }
W void hf_spec_build_plans(const struct hf_spec *s, struct hf_plan_defs *o) {}
W void hf_plan_defs_release(struct hf_plan_defs *d) {}
W void hf_spec_diff(const struct hf_spec *a, const struct hf_spec *b, struct hf_spec_diff *o) {}
W void hf_spec_diff_release(struct hf_spec_diff *d) {}
W bool hf_spec_diff_is_empty(const struct hf_spec_diff *d) { return true; }
W const char *hf_goal_name(enum hf_goal g) { return ""; }
W const char *hf_strategy_name(enum hf_strategy s) { return ""; }
#include "shim/shim.h"
W int hf_shim_main(int argc, char **argv) { return 2; }
