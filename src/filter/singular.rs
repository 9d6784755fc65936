//! Recognises the singular queries of RFC 9535 (`$`, `.name`, `['name']`, `["name"]`, `[0]`) so that
//! they can be answered in one pass over the raw bytes.
//!
//! This is a recogniser for a subset, not a second parser: a path is compiled by serde_json_path
//! first, and only then offered here. Anything this module does not recognise (whitespace inside
//! brackets, negative indices, ...) still works, in the `Value` lane. The differential tests check
//! that both lanes agree on every path this module accepts.

/// One step of a singular path.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Step {
    /// An object member.
    Name(Box<str>),
    /// An array element, counted from the start.
    Index(usize),
}

/// The steps of `path` if it is a singular query in the recognised subset.
pub(crate) fn parse(path: &str) -> Option<Vec<Step>> {
    let mut rest = path.strip_prefix('$')?;
    let mut steps = Vec::new();
    while !rest.is_empty() {
        let (step, after) = if let Some(after) = rest.strip_prefix('.') {
            shorthand(after)?
        } else if let Some(after) = rest.strip_prefix('[') {
            let (step, after) = bracketed(after)?;
            (step, after.strip_prefix(']')?)
        } else {
            return None;
        };
        steps.push(step);
        rest = after;
    }
    Some(steps)
}

/// `member-name-shorthand`: ALPHA / "_" / non-ASCII first, then also DIGIT.
fn shorthand(s: &str) -> Option<(Step, &str)> {
    let first = s.chars().next()?;
    if !(first.is_ascii_alphabetic() || first == '_' || !first.is_ascii()) {
        return None;
    }
    let end = s
        .char_indices()
        .find(|&(_, c)| !(c.is_ascii_alphanumeric() || c == '_' || !c.is_ascii()))
        .map_or(s.len(), |(i, _)| i);
    Some((Step::Name(s[..end].into()), &s[end..]))
}

fn bracketed(s: &str) -> Option<(Step, &str)> {
    match s.as_bytes().first()? {
        q @ (b'\'' | b'"') => string(&s[1..], *q as char).map(|(name, rest)| (Step::Name(name.into()), rest)),
        b'0'..=b'9' => {
            let end = s.bytes().position(|b| !b.is_ascii_digit()).unwrap_or(s.len());
            let digits = &s[..end];
            if digits.len() > 1 && digits.starts_with('0') {
                return None;
            }
            let index: u64 = digits.parse().ok()?;
            // RFC 9535 indices are I-JSON integers: at most 2^53 - 1.
            if index > (1 << 53) - 1 {
                return None;
            }
            Some((Step::Index(usize::try_from(index).ok()?), &s[end..]))
        }
        _ => None,
    }
}

/// A string literal after its opening quote, up to and including the closing quote.
pub(crate) fn string(s: &str, quote: char) -> Option<(String, &str)> {
    let mut out = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            _ if c == quote => return Some((out, &s[i + 1..])),
            '\\' => {
                let (_, e) = chars.next()?;
                out.push(match e {
                    'b' => '\u{8}',
                    'f' => '\u{c}',
                    'n' => '\n',
                    'r' => '\r',
                    't' => '\t',
                    '/' | '\\' => e,
                    _ if e == quote => e,
                    'u' => {
                        let high = hex4(&mut chars)?;
                        match high {
                            0xD800..=0xDBFF => {
                                if chars.next()?.1 != '\\' || chars.next()?.1 != 'u' {
                                    return None;
                                }
                                let low = hex4(&mut chars)?;
                                if !(0xDC00..=0xDFFF).contains(&low) {
                                    return None;
                                }
                                char::from_u32(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00))?
                            }
                            _ => char::from_u32(high)?,
                        }
                    }
                    _ => return None,
                });
            }
            '\u{0}'..='\u{1f}' => return None,
            _ => out.push(c),
        }
    }
    None
}

fn hex4(chars: &mut std::str::CharIndices<'_>) -> Option<u32> {
    let mut v = 0;
    for _ in 0..4 {
        v = v * 16 + chars.next()?.1.to_digit(16)?;
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> Step {
        Step::Name(s.into())
    }

    #[test]
    fn recognises_the_singular_forms() {
        assert_eq!(parse("$"), Some(vec![]));
        assert_eq!(parse("$.ref"), Some(vec![name("ref")]));
        assert_eq!(parse("$.repository.full_name"), Some(vec![name("repository"), name("full_name")]));
        assert_eq!(parse("$['a'][0].b"), Some(vec![name("a"), Step::Index(0), name("b")]));
        assert_eq!(parse(r#"$["a b"]['it\'s']"#), Some(vec![name("a b"), name("it's")]));
        assert_eq!(parse(r#"$['\u00e9\ud83d\ude00']"#), Some(vec![name("é😀")]));
        assert_eq!(parse("$.été"), Some(vec![name("été")]));
        assert_eq!(parse("$[10]"), Some(vec![Step::Index(10)]));
    }

    #[test]
    fn leaves_everything_else_to_the_general_lane() {
        for path in [
            "$.*",
            "$..a",
            "$[-1]",
            "$[0:2]",
            "$['a','b']",
            "$[?@.a]",
            "$[ 0 ]",
            "$ .a",
            "$.1a",
            "$[01]",
            "$['\\ud800']",
            "$['a\\x']",
            "ref",
            "$.",
            "$['a'",
            "$[9007199254740992]",
        ] {
            assert_eq!(parse(path), None, "{path}");
        }
    }
}
