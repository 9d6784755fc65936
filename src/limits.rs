//! The limits and tuning constants: what bounds the cost of a webhook and of a delivery, and the
//! defaults of [`WebhookOptions`](crate::WebhookOptions).
//!
//! The path limits come from measurement and from what real definitions use. serde_json_path's
//! parser backtracks: each filter nested inside another doubles its time (20 levels, 81
//! characters: 3.6 s; the 703-case compliance suite never nests brackets more than 2 deep and
//! never uses two descendant segments). GitHub, GitLab and Bitbucket filters in the wild are
//! member chains, one wildcard or descendant, and at most one filter with a comparison or a
//! `match()`.

/// At most this many filter rules per webhook (AWS model: `WebhookFilters` max 5).
pub const MAX_FILTERS: usize = 5;
/// At most this many tags per resource (`TooManyTagsException`).
pub const MAX_TAGS: usize = 50;

/// GitHub's cap on a delivery, the default body limit: 25 MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 25 * 1024 * 1024;
/// The default limit on nested arrays and objects in a body.
pub const DEFAULT_MAX_DEPTH: usize = 128;
/// The largest nesting limit a webhook accepts. Evaluation recurses once per level: measured, about
/// 0.5 KiB of stack per level in release builds and 2 KiB in debug builds, so 512 levels fit in
/// the 2 MiB of a default spawned (or tokio worker) thread even unoptimised; the default 128 needs
/// under 64 KiB optimised.
pub const MAX_DEPTH_LIMIT: usize = 512;

/// The deepest nesting of brackets a path may have: `$.a[?@.b[?@.c == 'x']]` nests 2 deep.
/// Each filter inside another doubles the parse time; at 4 the worst path of 150 characters
/// compiles in well under a millisecond.
pub const MAX_PATH_NESTING: usize = 4;

/// The most descendant segments (`..`) a path may have, filters included. Each one can multiply
/// the nodes a path selects by the size of the body; the work budget bounds what is left.
pub const MAX_DESCENDANT_SEGMENTS: usize = 3;

/// The most `match()`/`search()` patterns a webhook may have, all filters together. Each is
/// determinised when the webhook compiles (tens to hundreds of microseconds for a literal or a
/// class; up to about 15 ms for one that reaches the automaton limits and is refused); real
/// definitions use one at most.
pub const MAX_PATTERNS: usize = 4;

/// Work units a delivery may spend on its filters per node of its JSON (the bounded lane:
/// webhooks with a path that is not singular). A unit is one node visited, selected or compared,
/// or one member passed while looking up a name. Real paths over real payloads spend a few units a
/// node.
pub const WORK_PER_NODE: u64 = 32;

/// Work units every delivery may spend, however small its body.
pub const WORK_MINIMUM: u64 = 16 * 1024;

/// Bytes of string a delivery's filters may scan per byte of its JSON: comparing, counting
/// characters, hashing and matching patterns (a pattern runs as a DFA: one step a byte).
pub const SCAN_PER_BYTE: u64 = 4;

/// Bytes of string every delivery may scan, however small its body.
pub const SCAN_MINIMUM: u64 = 64 * 1024;

/// What a delivery may spend on its filters: work units in proportion to its nodes, and bytes of
/// string scanning in proportion to its size. Both are needed because the cheap thing to skip in
/// JSON is a long string and the expensive thing to walk is many small nodes: a budget in bytes
/// alone would let one long string pay for a walk over a deep, tiny structure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct WorkBudget {
    /// Work units: nodes visited, selected or compared.
    pub nodes: u64,
    /// Bytes of strings scanned.
    pub scan: u64,
}

impl std::fmt::Display for WorkBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} work units and {} bytes of scanning", self.nodes, self.scan)
    }
}

/// The work budget of a delivery whose JSON is `json_bytes` long and has `nodes` values and
/// keys: `WORK_PER_NODE × nodes + WORK_MINIMUM` units and `SCAN_PER_BYTE × json_bytes +
/// SCAN_MINIMUM` bytes.
pub const fn work_budget(json_bytes: usize, nodes: usize) -> WorkBudget {
    WorkBudget {
        nodes: WORK_PER_NODE.saturating_mul(nodes as u64).saturating_add(WORK_MINIMUM),
        scan: SCAN_PER_BYTE.saturating_mul(json_bytes as u64).saturating_add(SCAN_MINIMUM),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_grows_with_the_body() {
        assert_eq!(work_budget(0, 0), WorkBudget { nodes: WORK_MINIMUM, scan: SCAN_MINIMUM });
        assert_eq!(work_budget(1000, 10), WorkBudget { nodes: 320 + WORK_MINIMUM, scan: 4000 + SCAN_MINIMUM });
        assert_eq!(work_budget(usize::MAX, usize::MAX), WorkBudget { nodes: u64::MAX, scan: u64::MAX });
    }
}
