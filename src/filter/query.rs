//! RFC 9535 queries as this crate evaluates them: the syntax tree and its parser.
//!
//! serde_json_path validates every path first (it is the reference: its acceptance, its error
//! messages and positions), but it keeps its syntax tree private and evaluates over a
//! `serde_json::Value` without a bound on work. So this is the crate's one parse of a path, into
//! the tree that [`super::eval`] walks over the compact [`super::tape::Tape`] under a work budget
//! and from which the DOM-free lane takes its steps ([`Query::singular_steps`]).
//! This parser only ever sees paths serde_json_path accepted and that passed
//! [`super::limits`]; where the two could still differ, the compliance suite and the differential
//! tests hold them together.

use std::sync::Arc;

use serde_json::Number;

use super::regex::Pattern;
use super::singular;
use super::singular::PathStep;
use crate::limits::MAX_PATTERNS;

/// A query: `$` (the root) or `@` (the current node) and its segments.
#[derive(Clone, Debug)]
pub(crate) struct Query {
    pub(crate) absolute: bool,
    pub(crate) segments: Vec<Segment>,
}

/// One segment: `.name`, `[selectors]`, or `..` followed by either.
#[derive(Clone, Debug)]
pub(crate) struct Segment {
    pub(crate) descendant: bool,
    pub(crate) selectors: Vec<Selector>,
}

#[derive(Clone, Debug)]
pub(crate) enum Selector {
    Name(Box<str>),
    Wildcard,
    Index(i64),
    Slice { start: Option<i64>, end: Option<i64>, step: Option<i64> },
    Filter(Box<Expr>),
}

/// A filter's logical expression.
#[derive(Clone, Debug)]
pub(crate) enum Expr {
    Or(Vec<Expr>),
    And(Vec<Expr>),
    Not(Box<Expr>),
    /// A query used as a test: true when it selects at least one node.
    Exists(Query),
    /// `match()` or `search()` used as a test.
    Test(Function),
    Compare(Comparable, Op, Comparable),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// Something with a value (or Nothing): the operands of a comparison and the arguments of
/// `length()`, `match()` and `search()`.
#[derive(Clone, Debug)]
pub(crate) enum Comparable {
    Literal(Literal),
    /// A singular query.
    Query(Query),
    Function(Box<Function>),
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Literal {
    Null,
    Bool(bool),
    Number(Number),
    String(Box<str>),
}

/// The five functions of RFC 9535 §2.4.
#[derive(Clone, Debug)]
pub(crate) enum Function {
    Length(Comparable),
    Count(Query),
    Value(Query),
    /// `match(value, 'pattern')`: the pattern is a string literal, compiled with the webhook.
    Match(Comparable, Arc<Pattern>),
    /// `search(value, 'pattern')`.
    Search(Comparable, Arc<Pattern>),
}

impl Function {
    /// Whether the function gives a value (`length`, `count`, `value`), not a logical result.
    fn is_value_typed(&self) -> bool {
        matches!(self, Function::Length(_) | Function::Count(_) | Function::Value(_))
    }
}

impl Query {
    /// Whether the query selects at most one node: only name and index selectors, one per child
    /// segment.
    pub(crate) fn is_singular(&self) -> bool {
        self.segments
            .iter()
            .all(|s| !s.descendant && matches!(&s.selectors[..], [Selector::Name(_) | Selector::Index(_)]))
    }
}

impl Query {
    /// The steps of a singular query in the subset the DOM-free lane answers: names and
    /// non-negative indices (a negative index needs the array's length).
    pub(crate) fn singular_steps(&self) -> Option<Vec<PathStep>> {
        if !self.absolute || !self.is_singular() {
            return None;
        }
        self.segments
            .iter()
            .map(|s| match &s.selectors[..] {
                [Selector::Name(name)] => Some(PathStep::Name(name.clone())),
                [Selector::Index(i)] => usize::try_from(*i).ok().map(PathStep::Index),
                _ => None,
            })
            .collect()
    }
}

/// Why this parser refused a path serde_json_path accepted (or one it was never shown).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Refusal {
    /// Character position of the fault.
    pub(crate) column: usize,
    pub(crate) message: String,
}

/// Parses a whole path (`$` and its segments, nothing after), compiling at most
/// `patterns_left` `match()`/`search()` patterns; returns the tree and how many it compiled.
pub(crate) fn parse(text: &str, patterns_left: usize) -> Result<(Query, usize), Refusal> {
    let mut p = Parser { s: text, pos: 0, patterns_left, patterns: 0 };
    if !p.eat("$") {
        return Err(p.refuse("a path starts at the root `$`"));
    }
    let query = Query { absolute: true, segments: p.segments()? };
    if p.pos != text.len() {
        return Err(p.refuse("unexpected text after the path"));
    }
    Ok((query, p.patterns))
}

struct Parser<'s> {
    s: &'s str,
    pos: usize,
    /// How many more patterns may be compiled (each takes up to milliseconds).
    patterns_left: usize,
    patterns: usize,
}

const MAX_INT: i64 = (1 << 53) - 1;

impl<'s> Parser<'s> {
    fn rest(&self) -> &'s str {
        &self.s[self.pos..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn eat(&mut self, token: &str) -> bool {
        if self.rest().starts_with(token) {
            self.pos += token.len();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, token: &str) -> Result<(), Refusal> {
        if self.eat(token) { Ok(()) } else { Err(self.refuse(&format!("expected `{token}`"))) }
    }

    fn blank(&mut self) {
        let skipped = self.rest().len() - self.rest().trim_start_matches([' ', '\t', '\n', '\r']).len();
        self.pos += skipped;
    }

    fn refuse(&self, message: &str) -> Refusal {
        Refusal { column: self.s[..self.pos].chars().count(), message: message.to_owned() }
    }

    /// `*(S segment)`: blank space before a segment belongs to it only if a segment follows.
    fn segments(&mut self) -> Result<Vec<Segment>, Refusal> {
        let mut segments = Vec::new();
        loop {
            let before = self.pos;
            self.blank();
            if self.rest().starts_with('[') || self.rest().starts_with('.') {
                segments.push(self.segment()?);
            } else {
                self.pos = before;
                return Ok(segments);
            }
        }
    }

    fn segment(&mut self) -> Result<Segment, Refusal> {
        let descendant = self.eat("..");
        if (descendant || self.eat(".")) && !(descendant && self.rest().starts_with('[')) {
            let selector = if self.eat("*") { Selector::Wildcard } else { Selector::Name(self.shorthand()?.into()) };
            return Ok(Segment { descendant, selectors: vec![selector] });
        }
        self.expect("[")?;
        let mut selectors = Vec::new();
        loop {
            self.blank();
            selectors.push(self.selector()?);
            self.blank();
            if self.eat("]") {
                return Ok(Segment { descendant, selectors });
            }
            self.expect(",")?;
        }
    }

    fn shorthand(&mut self) -> Result<&'s str, Refusal> {
        let rest = self.rest();
        let first = rest.chars().next().ok_or_else(|| self.refuse("expected a member name"))?;
        if !(first.is_ascii_alphabetic() || first == '_' || !first.is_ascii()) {
            return Err(self.refuse("expected a member name"));
        }
        let end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || !c.is_ascii())).unwrap_or(rest.len());
        self.pos += end;
        Ok(&rest[..end])
    }

    fn string(&mut self) -> Result<String, Refusal> {
        let quote = self.peek().filter(|c| matches!(c, '\'' | '"')).ok_or_else(|| self.refuse("expected a string"))?;
        let (value, after) =
            singular::string(&self.rest()[1..], quote).ok_or_else(|| self.refuse("malformed string literal"))?;
        self.pos = self.s.len() - after.len();
        Ok(value)
    }

    /// `int`: `0` or an optional `-` and digits without a leading zero, within ±(2^53 - 1).
    fn int(&mut self) -> Result<Option<i64>, Refusal> {
        let rest = self.rest();
        let negative = rest.starts_with('-');
        let digits = &rest[usize::from(negative)..];
        let len = digits.bytes().take_while(u8::is_ascii_digit).count();
        if len == 0 {
            return Ok(None);
        }
        let text = &digits[..len];
        if (text.starts_with('0') && len > 1) || (negative && text == "0") {
            return Err(self.refuse("malformed integer"));
        }
        let value: i64 =
            text.parse().ok().filter(|v| *v <= MAX_INT).ok_or_else(|| self.refuse("integer out of range"))?;
        self.pos += usize::from(negative) + len;
        Ok(Some(if negative { -value } else { value }))
    }

    fn selector(&mut self) -> Result<Selector, Refusal> {
        match self.peek() {
            Some('\'' | '"') => Ok(Selector::Name(self.string()?.into())),
            Some('*') => {
                self.pos += 1;
                Ok(Selector::Wildcard)
            }
            Some('?') => {
                self.pos += 1;
                self.blank();
                Ok(Selector::Filter(Box::new(self.or()?)))
            }
            _ => {
                let start = self.int()?;
                let before = self.pos;
                self.blank();
                if !self.eat(":") {
                    self.pos = before;
                    return start.map(Selector::Index).ok_or_else(|| self.refuse("expected a selector"));
                }
                self.blank();
                let end = self.int()?;
                self.blank();
                let mut step = None;
                if self.eat(":") {
                    self.blank();
                    step = self.int()?;
                }
                Ok(Selector::Slice { start, end, step })
            }
        }
    }

    fn or(&mut self) -> Result<Expr, Refusal> {
        let mut terms = vec![self.and()?];
        loop {
            let before = self.pos;
            self.blank();
            if !self.eat("||") {
                self.pos = before;
                break;
            }
            self.blank();
            terms.push(self.and()?);
        }
        Ok(if terms.len() == 1 { terms.pop().expect("one term") } else { Expr::Or(terms) })
    }

    fn and(&mut self) -> Result<Expr, Refusal> {
        let mut terms = vec![self.basic()?];
        loop {
            let before = self.pos;
            self.blank();
            if !self.eat("&&") {
                self.pos = before;
                break;
            }
            self.blank();
            terms.push(self.basic()?);
        }
        Ok(if terms.len() == 1 { terms.pop().expect("one term") } else { Expr::And(terms) })
    }

    fn basic(&mut self) -> Result<Expr, Refusal> {
        if self.eat("!") {
            self.blank();
            let inner = if self.rest().starts_with('(') { self.paren()? } else { self.test()? };
            return Ok(Expr::Not(Box::new(inner)));
        }
        if self.rest().starts_with('(') {
            return self.paren();
        }
        let left = self.operand()?;
        let before = self.pos;
        self.blank();
        if let Some(op) = self.op() {
            self.blank();
            let right = self.operand()?;
            let left = comparable(left).map_err(|m| self.refuse(m))?;
            let right = comparable(right).map_err(|m| self.refuse(m))?;
            return Ok(Expr::Compare(left, op, right));
        }
        self.pos = before;
        match left {
            Operand::Query(q) => Ok(Expr::Exists(q)),
            Operand::Function(f) if !f.is_value_typed() => Ok(Expr::Test(*f)),
            _ => Err(self.refuse("a literal or a value function must be compared")),
        }
    }

    /// A test expression after `!`: a query or a logical function.
    fn test(&mut self) -> Result<Expr, Refusal> {
        match self.operand()? {
            Operand::Query(q) => Ok(Expr::Exists(q)),
            Operand::Function(f) if !f.is_value_typed() => Ok(Expr::Test(*f)),
            _ => Err(self.refuse("only a query or a logical function can be negated")),
        }
    }

    fn paren(&mut self) -> Result<Expr, Refusal> {
        self.expect("(")?;
        self.blank();
        let inner = self.or()?;
        self.blank();
        self.expect(")")?;
        Ok(inner)
    }

    fn op(&mut self) -> Option<Op> {
        for (token, op) in
            [("==", Op::Eq), ("!=", Op::Ne), ("<=", Op::Le), (">=", Op::Ge), ("<", Op::Lt), (">", Op::Gt)]
        {
            if self.eat(token) {
                return Some(op);
            }
        }
        None
    }

    fn operand(&mut self) -> Result<Operand, Refusal> {
        match self.peek() {
            Some('@') => {
                self.pos += 1;
                Ok(Operand::Query(Query { absolute: false, segments: self.segments()? }))
            }
            Some('$') => {
                self.pos += 1;
                Ok(Operand::Query(Query { absolute: true, segments: self.segments()? }))
            }
            Some('\'' | '"') => Ok(Operand::Literal(Literal::String(self.string()?.into()))),
            Some(c) if c == '-' || c.is_ascii_digit() => self.number().map(Operand::Literal),
            Some(c) if c.is_ascii_lowercase() => {
                let rest = self.rest();
                let end = rest
                    .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
                    .unwrap_or(rest.len());
                let name = &rest[..end];
                if rest[end..].starts_with('(') {
                    self.pos += end + 1;
                    return self.function(name).map(|f| Operand::Function(Box::new(f)));
                }
                let literal = match name {
                    "true" => Literal::Bool(true),
                    "false" => Literal::Bool(false),
                    "null" => Literal::Null,
                    _ => return Err(self.refuse("expected a literal, a query or a function")),
                };
                self.pos += end;
                Ok(Operand::Literal(literal))
            }
            _ => Err(self.refuse("expected a literal, a query or a function")),
        }
    }

    /// A JSON number, as serde_json reads it (so it compares as the body's numbers do).
    fn number(&mut self) -> Result<Literal, Refusal> {
        let rest = self.rest();
        let end = rest
            .find(|c: char| !(c.is_ascii_digit() || matches!(c, '-' | '+' | '.' | 'e' | 'E')))
            .unwrap_or(rest.len());
        let number: Number = serde_json::from_str(&rest[..end]).map_err(|_| self.refuse("malformed number"))?;
        self.pos += end;
        Ok(Literal::Number(number))
    }

    /// The arguments of `name(`, by the function's declared parameter types.
    fn function(&mut self, name: &str) -> Result<Function, Refusal> {
        self.blank();
        let function = match name {
            "length" => Function::Length(self.value_argument()?),
            "count" => Function::Count(self.nodes_argument()?),
            "value" => Function::Value(self.nodes_argument()?),
            "match" | "search" => {
                let value = self.value_argument()?;
                self.blank();
                self.expect(",")?;
                self.blank();
                let at = self.pos;
                let pattern = match self.operand()? {
                    Operand::Literal(Literal::String(p)) => p,
                    // Not a string: never a match, as RFC 9535 says.
                    Operand::Literal(_) => {
                        self.blank();
                        self.expect(")")?;
                        let never = Arc::new(Pattern::never());
                        return Ok(if name == "match" {
                            Function::Match(value, never)
                        } else {
                            Function::Search(value, never)
                        });
                    }
                    _ => {
                        self.pos = at;
                        return Err(self.refuse(&format!(
                            "{name}() takes its pattern as a string literal here (as Jayway's =~ does): a pattern read from the payload is refused, since its cost could not be bounded"
                        )));
                    }
                };
                if self.patterns == self.patterns_left {
                    self.pos = at;
                    return Err(self.refuse(&format!(
                        "a webhook may have at most {MAX_PATTERNS} match()/search() patterns (each is compiled to an automaton)"
                    )));
                }
                self.patterns += 1;
                let pattern = Pattern::compile(&pattern, name == "match").map_err(|m| {
                    self.pos = at;
                    self.refuse(&m)
                })?;
                if name == "match" {
                    Function::Match(value, Arc::new(pattern))
                } else {
                    Function::Search(value, Arc::new(pattern))
                }
            }
            _ => return Err(self.refuse(&format!("unknown function {name}()"))),
        };
        self.blank();
        self.expect(")")?;
        Ok(function)
    }

    fn value_argument(&mut self) -> Result<Comparable, Refusal> {
        let operand = self.operand()?;
        comparable(operand).map_err(|m| self.refuse(m))
    }

    fn nodes_argument(&mut self) -> Result<Query, Refusal> {
        match self.operand()? {
            Operand::Query(q) => Ok(q),
            _ => Err(self.refuse("expected a query")),
        }
    }
}

enum Operand {
    Literal(Literal),
    Query(Query),
    Function(Box<Function>),
}

/// An operand where a value is needed: a literal, a singular query or a value function.
fn comparable(operand: Operand) -> Result<Comparable, &'static str> {
    match operand {
        Operand::Literal(l) => Ok(Comparable::Literal(l)),
        Operand::Query(q) if q.is_singular() => Ok(Comparable::Query(q)),
        Operand::Query(_) => Err("a query compared or passed as a value must be singular"),
        Operand::Function(f) if f.is_value_typed() => Ok(Comparable::Function(f)),
        Operand::Function(_) => Err("a logical function cannot be compared"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Query, Refusal> {
        super::parse(text, MAX_PATTERNS).map(|(query, _)| query)
    }

    #[test]
    fn patterns_are_counted_against_the_allowance() {
        assert_eq!(super::parse("$[?match(@.a, 'x') && search(@.b, 'y')]", 2).unwrap().1, 2);
        let refusal = super::parse("$[?match(@.a, 'x') && search(@.b, 'y')]", 1).unwrap_err();
        assert!(refusal.message.contains("at most 4"), "{refusal:?}");
    }

    #[test]
    fn parses_every_selector_form() {
        let q = parse("$.a[0]['b',\"c\"][*][1:2:-1][?@.x == 'y'][-3]..d..[0]..*").unwrap();
        assert_eq!(q.segments.len(), 10);
        assert!(matches!(q.segments[3].selectors[..], [Selector::Wildcard]));
        assert!(matches!(
            q.segments[4].selectors[..],
            [Selector::Slice { start: Some(1), end: Some(2), step: Some(-1) }]
        ));
        assert!(matches!(q.segments[6].selectors[..], [Selector::Index(-3)]));
        assert!(q.segments[7].descendant && q.segments[8].descendant && q.segments[9].descendant);
        assert!(parse("$.a[0]['b']").unwrap().is_singular());
        assert!(!parse("$.a[*]").unwrap().is_singular());
    }

    #[test]
    fn blank_space_only_where_the_grammar_allows_it() {
        assert!(parse("$ .a [ 0 , 1 ]").is_ok());
        assert!(parse("$[? @.a == 1 && ( @.b || ! @.c ) ]").is_ok());
        assert!(parse("$.a ").is_err());
        assert!(parse(" $.a").is_err());
    }

    #[test]
    fn patterns_must_be_literals() {
        let refusal = parse("$[?match(@.a, @.b)]").unwrap_err();
        assert!(refusal.message.contains("string literal"), "{refusal:?}");
        assert_eq!(refusal.column, 14);
        assert!(parse("$[?search(@.a, 'x+')]").is_ok());
    }

    #[test]
    fn functions_are_typed() {
        assert!(parse("$[?length(@.a) > 1]").is_ok());
        assert!(parse("$[?count(@.*) == 1]").is_ok());
        assert!(parse("$[?value(@..a) == 1]").is_ok());
        assert!(parse("$[?length(@.*) > 1]").is_err());
        assert!(parse("$[?count(@.*)]").is_err());
        assert!(parse("$[?match(@.a, 'x') == true]").is_err());
        assert!(parse("$[?nope(@.a)]").is_err());
    }
}
