//! "Envoy RLS path": `rateguard rls` per store, called over gRPC by the
//! lab's open-model client, with its capacity (decisions/s meeting the
//! SLO), latency there and CPU µs per decision by role, beside the same
//! store's HTTP gateway capacity.

use std::fmt::Write as _;

use rateguard_lab_model::{Frontend, Role, ScenarioId};

use super::table::{num, opt, with_spread};
use super::{esc, swatch, StoreStyle};
use crate::model::{Record, Subject, Summary};
use crate::render::charts::subject_color;

/// The section, when the run measured the `rls` frontend.
pub(super) fn section(out: &mut String, s: &Summary) {
    let recs: Vec<&Record> = s
        .records
        .iter()
        .filter(|r| r.frontend == Frontend::Rls && r.scenario == ScenarioId::Capacity)
        .collect();
    if recs.is_empty() {
        return;
    }
    let _ = write!(
        out,
        "<h2>Envoy RLS path: decisions/s and CPU µs per decision per store</h2>\n<p>\
         {} <code>rateguard rls</code> replicas per store (the gateways' <code>[store]</code>, \
         a limits file with the capacity scenario's limit, one bucket per key), called directly \
         with <code>ShouldRateLimit</code> by the lab's open-model gRPC client (one descriptor \
         per call whose value is the request's key; HTTP/2 channels spread over the replicas), \
         as Envoy's ratelimit filter would: the decision path alone, without a proxy or a \
         backend. <i>Decisions/s</i> is the capacity search's result (the same SLO as the \
         gateways'; median, min – max over repetitions); latency and CPU at that rate; CPU µs \
         per decision by role, where <i>rls</i> is the rls replicas. The last column is the \
         same store's HTTP gateway capacity at the same workload, which also pays for NGINX, \
         the proxying and the backends.</p>\n<div class=\"scroll\"><table>\n<tr>\
         <th class=\"l\">store</th><th class=\"l\">workload</th><th>decisions/s</th>\
         <th>p50 µs</th><th>p99 µs</th><th>CPU µs / decision: rls</th><th>store</th>\
         <th>loadgen</th><th>all roles</th><th>gateway capacity, req/s</th></tr>\n",
        s.settings.replicas
    );
    for r in recs {
        let Some(store) = r.store else { continue };
        let st = StoreStyle {
            subject: r.subject(),
            name: r.subject().name(),
            color: subject_color(r.subject()),
        };
        let gateway = s
            .records_of(Subject::gateway(store), ScenarioId::Capacity)
            .find(|g| g.keys == r.keys && g.store_rtt_ms == r.store_rtt_ms)
            .and_then(|g| g.capacity_rps);
        let workload = match (r.keys, r.store_rtt_ms) {
            (Some(k), Some(rtt)) => format!("{k} · {rtt} ms"),
            (Some(k), None) => k.to_string(),
            _ => String::new(),
        };
        let cpu = r.cpu_us_per_request.as_ref();
        let role = |role: Role| opt(cpu, |c| num(c.get(role), 1));
        let bound = if r.loadgen_bound == Some(true) {
            " <span class=\"spread\">(loadgen-bound)</span>"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "<tr><td class=\"l\">{}</td><td class=\"l\">{}</td><td>{}{bound}</td><td>{}</td>\
             <td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            swatch(&st),
            esc(&workload),
            opt(r.capacity_rps, |c| with_spread(
                c,
                r.spread.and_then(|x| x.capacity_rps),
                0
            )),
            num(r.latency_us.p50 as f64, 0),
            num(r.latency_us.p99 as f64, 0),
            role(Role::Gateway),
            role(Role::Store),
            role(Role::Loadgen),
            opt(cpu, |c| num(c.total(), 1)),
            opt(gateway, |g| num(g, 0)),
        );
    }
    out.push_str("</table></div>\n");
}
