//! What bounds the cost of a filter: limits on a path's shape, checked before anything parses
//! it, and the work budget of a delivery.
//!
//! The limits come from measurement and from what real definitions use. serde_json_path's parser
//! backtracks: each filter nested inside another doubles its time (20 levels, 81 characters:
//! 3.6 s; the 703-case compliance suite never nests brackets more than 2 deep and never uses two
//! descendant segments). GitHub, GitLab and Bitbucket filters in the wild are member chains, one
//! wildcard or descendant, and at most one filter with a comparison or a `match()`.

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

/// Checks the limits on `text` in one pass, outside string literals. On a violation: the
/// character position and what is wrong.
pub(crate) fn check(text: &str) -> Result<(), (usize, String)> {
    let mut depth = 0usize;
    let mut descendants = 0usize;
    let mut quote = None;
    let mut escaped = false;
    let mut previous_dot = false;
    for (column, c) in text.chars().enumerate() {
        if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '\'' | '"' => quote = Some(c),
            '[' => {
                depth += 1;
                if depth > MAX_PATH_NESTING {
                    return Err((
                        column,
                        format!(
                            "brackets nest {depth} deep here; at most {MAX_PATH_NESTING} are allowed (each filter inside another doubles the cost of compiling the path)"
                        ),
                    ));
                }
            }
            ']' => depth = depth.saturating_sub(1),
            '.' if previous_dot => {
                descendants += 1;
                if descendants > MAX_DESCENDANT_SEGMENTS {
                    return Err((
                        column - 1,
                        format!(
                            "this is descendant segment {descendants}; a path may have at most {MAX_DESCENDANT_SEGMENTS} (each can multiply the nodes selected by the size of the payload)"
                        ),
                    ));
                }
                // `...` is one `..` and a stray `.`, not two descendant segments.
                previous_dot = false;
                continue;
            }
            _ => {}
        }
        previous_dot = c == '.';
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_brackets_outside_strings() {
        assert!(check("$[?@[?@[?@[?@]]]]").is_ok());
        let (column, message) = check("$[?@[?@[?@[?@[?@]]]]]").unwrap_err();
        assert_eq!(column, 13);
        assert!(message.contains("at most 4"), "{message}");
        assert!(check("$['[[[[[[[[']").is_ok());
        assert!(check(r#"$["\"[[[[[[[["]"#).is_ok());
    }

    #[test]
    fn counts_descendant_segments() {
        assert!(check("$..a..b..c").is_ok());
        let (column, message) = check("$..a..b..c..d").unwrap_err();
        assert_eq!(column, 10);
        assert!(message.contains("at most 3"), "{message}");
        assert!(check("$['..'].a['..']..b").is_ok());
    }

    #[test]
    fn budget_grows_with_the_body() {
        assert_eq!(work_budget(0, 0), WorkBudget { nodes: WORK_MINIMUM, scan: SCAN_MINIMUM });
        assert_eq!(work_budget(1000, 10), WorkBudget { nodes: 320 + WORK_MINIMUM, scan: 4000 + SCAN_MINIMUM });
        assert_eq!(work_budget(usize::MAX, usize::MAX), WorkBudget { nodes: u64::MAX, scan: u64::MAX });
    }
}
