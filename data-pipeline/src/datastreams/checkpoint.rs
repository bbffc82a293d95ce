//! One checkpoint: from the incoming context (if any), the edge tags and the time, compute the
//! stats point to aggregate and the context to carry on.
//!
//! ```text
//! no ctx:  parent = 0, pathway_start = edge_start = now
//! ctx:     parent = ctx.hash, pathway_start = ctx.pathway_start, edge_start = ctx.edge_start
//! loop protection may change parent / edge_start (below)
//! hash = pathway_hash(node_hash(service, env, edge_tags), parent)
//! point = {edge_tags, hash, parent, ts = now, pathway_latency = max(0, now - pathway_start),
//!          edge_latency = max(0, now - edge_start), payload_size}
//! ctx'  = {hash, pathway_start, edge_start = now}
//! ```
//!
//! **Loop protection** (only for a checkpoint with a `direction:` tag): a context remembers the
//! direction of its last checkpoint, and the parent hash and edge start used by the last
//! checkpoint that changed direction. A checkpoint in the same direction as the previous one
//! becomes a sibling of that one (same parent, same edge start), so `out, out, out` does not grow
//! a chain; when that saved parent is 0 (no opposite direction was ever seen) the pathway
//! restarts (parent 0, pathway start = edge start = now). This is also what makes **fan-out**
//! right when one context is reused: every produce after a consume has the consume's checkpoint
//! as parent and its time as edge start.
//!
//! **Fan-in** ([`merge`]): of several incoming contexts the one with the oldest pathway start is
//! kept (ties: oldest edge start, then lowest hash). dd-trace-go picks uniformly at random; the
//! oldest start is deterministic and reports the longest end-to-end latency, the one a latency
//! objective is about.

use super::context::{Direction, LoopState, PathwayContext};
use super::hash::{GroupKey, HashCache};
use std::sync::Arc;

/// What one checkpoint contributes to the aggregation.
#[derive(Debug, Clone)]
pub struct StatsPoint {
    /// Service, pathway hash, parent hash and sorted edge tags.
    pub key: Arc<GroupKey>,
    /// The checkpoint time, ns since the epoch.
    pub timestamp_ns: i64,
    /// `max(0, now - pathway_start)` in ns.
    pub pathway_latency_ns: i64,
    /// `max(0, now - edge_start)` in ns.
    pub edge_latency_ns: i64,
    /// Bytes of the message (negative values count as 0).
    pub payload_size: i64,
}

/// The parts of a checkpoint that do not need the hash: parent, times, loop state.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Plan {
    pub(crate) parent: u64,
    pub(crate) pathway_start: i64,
    pub(crate) edge_start: i64,
    pub(crate) now: i64,
    pub(crate) state: LoopState,
}

impl Plan {
    /// Applies the incoming context and loop protection.
    #[inline]
    pub(crate) fn new(ctx: Option<&PathwayContext>, edge_tags: &[&str], now_ns: i64) -> Plan {
        let (mut parent, mut pathway_start, mut edge_start, mut state) = match ctx {
            None => (
                0,
                now_ns,
                now_ns,
                LoopState {
                    saved_edge_start_ns: now_ns,
                    ..LoopState::default()
                },
            ),
            Some(c) => (
                c.hash(),
                c.pathway_start_ns(),
                c.edge_start_ns(),
                c.loop_state,
            ),
        };
        let direction = Direction::of_tags(edge_tags);
        if direction != Direction::Unset && direction == state.previous_direction {
            parent = state.saved_parent;
            if parent == 0 {
                pathway_start = now_ns;
                edge_start = now_ns;
            } else {
                edge_start = state.saved_edge_start_ns;
            }
        } else {
            state = LoopState {
                previous_direction: direction,
                saved_parent: parent,
                saved_edge_start_ns: edge_start,
            };
        }
        Plan {
            parent,
            pathway_start,
            edge_start,
            now: now_ns,
            state,
        }
    }

    /// `max(0, now - pathway_start)`.
    pub(crate) fn pathway_latency(&self) -> i64 {
        self.now.saturating_sub(self.pathway_start).max(0)
    }

    /// `max(0, now - edge_start)`.
    pub(crate) fn edge_latency(&self) -> i64 {
        self.now.saturating_sub(self.edge_start).max(0)
    }

    /// The context to carry on once the pathway `hash` is known.
    pub(crate) fn next(&self, hash: u64) -> PathwayContext {
        PathwayContext::new(hash, self.pathway_start, self.now).with_loop_state(self.state)
    }
}

/// Runs a checkpoint of `service`/`env` at `now_ns` (hashes through `cache`): returns the new
/// context and the stats point.
pub fn checkpoint(
    cache: &HashCache,
    service: &str,
    env: &str,
    ctx: Option<&PathwayContext>,
    edge_tags: &[&str],
    now_ns: i64,
    payload_size: i64,
) -> (PathwayContext, StatsPoint) {
    let plan = Plan::new(ctx, edge_tags, now_ns);
    let cached = cache.get(service, env, edge_tags, plan.parent);
    let next = plan.next(cached.hash);
    let point = StatsPoint {
        key: cached.key,
        timestamp_ns: now_ns,
        pathway_latency_ns: plan.pathway_latency(),
        edge_latency_ns: plan.edge_latency(),
        payload_size: payload_size.max(0),
    };
    (next, point)
}

/// Fan-in: the context to carry on from several incoming ones: the oldest pathway start (ties:
/// oldest edge start, then lowest hash). `None` for no input.
pub fn merge(contexts: &[PathwayContext]) -> Option<PathwayContext> {
    contexts
        .iter()
        .min_by_key(|c| (c.pathway_start_ns(), c.edge_start_ns(), c.hash()))
        .copied()
}

#[cfg(test)]
mod tests {
    use super::super::hash::{node_hash, pathway_hash};
    use super::*;

    const S: i64 = 1_000_000_000;
    const T0: i64 = 1_700_000_000 * S;
    const NONE: [&str; 0] = [];

    fn h(service: &str, tags: &[&str], parent: u64) -> u64 {
        pathway_hash(node_hash(service, "prod", tags, &NONE), parent)
    }

    #[test]
    fn new_pathway_then_consume() {
        let cache = HashCache::new(64, vec![]);
        let out = ["direction:out", "topic:orders", "type:kafka"];
        let (c1, p1) = checkpoint(&cache, "svc-a", "prod", None, &out, T0, 100);
        assert_eq!(c1.hash(), 12637414960767859789);
        assert_eq!(p1.key.parent, 0);
        assert_eq!(p1.pathway_latency_ns, 0);
        assert_eq!(p1.edge_latency_ns, 0);
        assert_eq!(p1.payload_size, 100);
        assert_eq!((c1.pathway_start_ns(), c1.edge_start_ns()), (T0, T0));

        // Over the wire: only the propagated fields survive.
        let wire = PathwayContext::decode(&c1.encode()).unwrap();
        let inn = [
            "direction:in",
            "group:billing",
            "topic:orders",
            "type:kafka",
        ];
        let (c2, p2) = checkpoint(&cache, "svc-b", "prod", Some(&wire), &inn, T0 + 2 * S, 0);
        assert_eq!(c2.hash(), 4959881512605734190);
        assert_eq!(p2.key.parent, c1.hash());
        assert_eq!(p2.edge_latency_ns, 2 * S);
        assert_eq!(p2.pathway_latency_ns, 2 * S);
        assert_eq!(c2.pathway_start_ns(), T0);
        assert_eq!(c2.edge_start_ns(), T0 + 2 * S);

        let out2 = ["direction:out", "topic:invoices", "type:kafka"];
        let (c3, p3) = checkpoint(&cache, "svc-b", "prod", Some(&c2), &out2, T0 + 3 * S, 0);
        assert_eq!(c3.hash(), 4586166705438433406);
        assert_eq!(p3.edge_latency_ns, S);
        assert_eq!(p3.pathway_latency_ns, 3 * S);
    }

    #[test]
    fn fan_out_from_a_reused_context_is_siblings() {
        let cache = HashCache::new(64, vec![]);
        let upstream = PathwayContext::from_millis(77, T0 / 1_000_000, T0 / 1_000_000);
        let inn = ["direction:in", "topic:a", "type:kafka"];
        let (consumed, _) = checkpoint(&cache, "s", "prod", Some(&upstream), &inn, T0 + S, 0);
        // Reusing the consume context for every output.
        let (o1, p1) = checkpoint(
            &cache,
            "s",
            "prod",
            Some(&consumed),
            &["direction:out", "topic:b"],
            T0 + 2 * S,
            0,
        );
        let (o2, p2) = checkpoint(
            &cache,
            "s",
            "prod",
            Some(&consumed),
            &["direction:out", "topic:c"],
            T0 + 3 * S,
            0,
        );
        assert_eq!(p1.key.parent, consumed.hash());
        assert_eq!(p2.key.parent, consumed.hash());
        assert_eq!(p2.edge_latency_ns, 2 * S);
        // Chaining the produce contexts instead (out after out) gives the same parents/edges.
        let (o2b, p2b) = checkpoint(
            &cache,
            "s",
            "prod",
            Some(&o1),
            &["direction:out", "topic:c"],
            T0 + 3 * S,
            0,
        );
        assert_eq!(o2b.hash(), o2.hash());
        assert_eq!(p2b.key.parent, consumed.hash());
        assert_eq!(p2b.edge_latency_ns, 2 * S, "edge starts at the consume");
        let (o3, p3) = checkpoint(
            &cache,
            "s",
            "prod",
            Some(&o2b),
            &["direction:out", "topic:b"],
            T0 + 4 * S,
            0,
        );
        assert_eq!(o3.hash(), o1.hash(), "no chain growth");
        assert_eq!(p3.key.parent, consumed.hash());
        assert_eq!(o3.pathway_start_ns(), T0);
    }

    #[test]
    fn produce_loop_without_consume_restarts() {
        let cache = HashCache::new(64, vec![]);
        let out = ["direction:out", "topic:t", "type:kafka"];
        let (c1, _) = checkpoint(&cache, "s", "prod", None, &out, T0, 0);
        let (c2, p2) = checkpoint(&cache, "s", "prod", Some(&c1), &out, T0 + 5 * S, 0);
        assert_eq!(p2.key.parent, 0, "restarted");
        assert_eq!(c2.hash(), c1.hash());
        assert_eq!(p2.pathway_latency_ns, 0);
        assert_eq!(c2.pathway_start_ns(), T0 + 5 * S);
        let (c3, p3) = checkpoint(&cache, "s", "prod", Some(&c2), &out, T0 + 6 * S, 0);
        assert_eq!(c3.hash(), c1.hash());
        assert_eq!(p3.edge_latency_ns, 0);
    }

    #[test]
    fn checkpoints_without_direction_chain_normally() {
        let cache = HashCache::new(64, vec![]);
        let tags = ["type:internal"];
        let (c1, _) = checkpoint(&cache, "service-1", "env", None, &tags, T0, 0);
        assert_eq!(c1.hash(), 8635237394945772389);
        let (c2, p2) = checkpoint(&cache, "service-1", "env", Some(&c1), &tags, T0 + S, 0);
        assert_eq!(p2.key.parent, c1.hash());
        assert_eq!(
            c2.hash(),
            pathway_hash(node_hash("service-1", "env", &tags, &NONE), c1.hash())
        );
        // A direction-less checkpoint counts as a change of direction for the next one.
        let (c3, p3) = checkpoint(
            &cache,
            "service-1",
            "env",
            Some(&c2),
            &["direction:out"],
            T0 + 2 * S,
            0,
        );
        assert_eq!(p3.key.parent, c2.hash());
        let (_, p4) = checkpoint(
            &cache,
            "service-1",
            "env",
            Some(&c3),
            &["direction:out"],
            T0 + 3 * S,
            0,
        );
        assert_eq!(p4.key.parent, c2.hash());
        assert_eq!(
            h("x", &[], 0),
            pathway_hash(node_hash("x", "prod", &NONE, &NONE), 0)
        );
    }

    #[test]
    fn clock_skew_clamps_latencies_and_sizes() {
        let cache = HashCache::new(64, vec![]);
        let future = PathwayContext::new(9, T0 + 10 * S, T0 + 10 * S);
        let (c, p) = checkpoint(&cache, "s", "", Some(&future), &["direction:in"], T0, -5);
        assert_eq!(p.pathway_latency_ns, 0);
        assert_eq!(p.edge_latency_ns, 0);
        assert_eq!(p.payload_size, 0);
        assert_eq!(c.edge_start_ns(), T0);
        let ancient = PathwayContext::new(9, i64::MIN, i64::MIN);
        let (_, p) = checkpoint(
            &cache,
            "s",
            "",
            Some(&ancient),
            &["direction:in"],
            i64::MAX,
            0,
        );
        assert_eq!(p.pathway_latency_ns, i64::MAX, "saturates");
    }

    #[test]
    fn merge_picks_oldest_pathway() {
        let a = PathwayContext::new(1, 50, 90);
        let b = PathwayContext::new(2, 40, 95);
        let c = PathwayContext::new(3, 40, 80);
        assert_eq!(merge(&[a, b, c]), Some(c));
        assert_eq!(merge(&[a]), Some(a));
        assert_eq!(merge(&[]), None);
    }
}
