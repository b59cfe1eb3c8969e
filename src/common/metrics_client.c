/* The public metric calls: check a point against the rules the sidecar
 * applies (so a bad point fails at the caller, with nothing sent), then
 * enqueue it as one Metric action. */
#include "client.h"
#include "metrics.h"
#include "process.h"
#include "sidecar.h"

#include <string.h>
#include <uv.h>

/* The wire point of `m`; false when it breaks a rule. */
static bool to_wire(const sc_metric_t *m, sidecar_v1_Metric *w)
{
    memset(w, 0, sizeof *w);
    w->type = (sidecar_v1_Metric_Type)m->type;
    w->name = sc_view_str(m->name);
    w->value = m->value;
    w->tags =
        sc_view_str(m->tags != NULL && m->tags[0] != '\0' ? m->tags : NULL);
    w->has_sample_rate = m->sample_rate != 0.0 && m->sample_rate != 1.0;
    w->sample_rate = m->sample_rate;
    w->set_member = sc_view_str(m->set_member);
    sc_metric_point_t p = {
        .type = (int)m->type,
        .name = w->name,
        .value = w->value,
        .tags = w->tags,
        .has_rate = w->has_sample_rate,
        .rate = w->sample_rate,
        .member = w->set_member,
    };
    return sc_metric_check(&p) == NULL;
}

int sc_client_send_metric(sc_client_t *c, const sc_metric_t *m)
{
    sidecar_v1_Envelope env;
    if (c == NULL || m == NULL) {
        return UV_EINVAL;
    }
    memset(&env, 0, sizeof env);
    if (!to_wire(m, &env.action.metric)) {
        return UV_EINVAL;
    }
    env.which_action = sidecar_v1_Envelope_metric_tag;
    return sc_client_enqueue(c, SC_ACTION_METRIC, &env);
}

int sc_send_metric(const sc_metric_t *m)
{
    sc_client_t *client = sc_process_client();
    if (client == NULL) {
        return m == NULL ? UV_EINVAL : SC_EDROPPED;
    }
    int rc = sc_client_send_metric(client, m);
    if (rc != UV_EINVAL) {
        sc_process_after_send(client);
    }
    return rc;
}
