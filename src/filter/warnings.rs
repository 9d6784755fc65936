//! Compile warnings about a filter: what compiles but is likely a mistake, or behaves
//! differently on AWS.

use super::query::{self, Query};
use super::rule::{EqualityRule, Filter};
use crate::error::{ErrorCode, escape};
use crate::warning::Warning;

impl Filter {
    /// Traps this rule falls into, as warnings about field `webhook.filters[index]`.
    pub(crate) fn warnings(&self, index: usize) -> Vec<Warning> {
        let mut warnings = Vec::new();
        let field = |member: &str| format!("webhook.filters[{index}].{member}");
        if let Some(member) = root_filter_member(&self.path.query) {
            let text = &self.path.text;
            warnings.push(Warning::new(
                ErrorCode::InvalidWebhookFilterPatternException,
                field("jsonPath"),
                format!(
                    "'{text}' tests each top-level value of the payload, not the payload itself: `@.{member}` is read from each of them; to test the payload's own {member}, use the path `$.{member}` (with matchEquals)"
                ),
            ));
        }
        if let (Some(shown), false) = (&self.shown, self.path.query.is_singular()) {
            let this_crate = match self.rule {
                EqualityRule::AnyElement => {
                    "here it passes when any selected value equals it (this crate's extension; `aws_exact` turns it off)"
                }
                EqualityRule::WholeList => "with `aws_exact` it never passes here either",
            };
            warnings.push(Warning::new(
                ErrorCode::InvalidWebhookFilterPatternException,
                field("matchEquals"),
                format!(
                    "'{}' is an indefinite path: on AWS (Jayway JsonPath) it selects a list, and a list never equals matchEquals '{}', so on AWS this filter never passes; {this_crate}",
                    escape(&self.path.text),
                    shown.escape_debug()
                ),
            ));
        }
        if let (Some(shown), None) = (&self.shown, &self.path.singular)
            && shown.contains(['*', '?'])
        {
            warnings.push(Warning::new(
                    ErrorCode::InvalidWebhookFilterPatternException,
                    field("matchEquals"),
                    format!(
                        "matchEquals '{}' is compared exactly: `*` and `?` are not wildcards; to match a pattern, select with search() or match() and leave matchEquals out, e.g. `$.commits[*].modified[?search(@, '^services/api/')]`",
                        shown.escape_debug()
                    ),
                ));
        }
        warnings
    }
}

/// For `$[?…@.member…]` (a filter directly on the root whose predicate reads a member of `@`):
/// that member's name.
fn root_filter_member(query: &Query) -> Option<&str> {
    let first = query.segments.first().filter(|s| !s.descendant)?;
    first.selectors.iter().find_map(|selector| match selector {
        query::Selector::Filter(expr) => relative_member(expr),
        _ => None,
    })
}

fn relative_member(expr: &query::Expr) -> Option<&str> {
    use query::{Comparable, Expr, Function};
    fn of_query(q: &Query) -> Option<&str> {
        match q.segments.first()?.selectors.first()? {
            query::Selector::Name(name) if !q.absolute => Some(name),
            _ => None,
        }
    }
    fn of_comparable(c: &Comparable) -> Option<&str> {
        match c {
            Comparable::Query(q) => of_query(q),
            _ => None,
        }
    }
    match expr {
        Expr::Or(terms) | Expr::And(terms) => terms.iter().find_map(relative_member),
        Expr::Not(inner) => relative_member(inner),
        Expr::Exists(q) => of_query(q),
        Expr::Compare(l, _, r) => of_comparable(l).or_else(|| of_comparable(r)),
        Expr::Test(Function::Match(arg, _) | Function::Search(arg, _)) => of_comparable(arg),
        Expr::Test(_) => None,
    }
}
