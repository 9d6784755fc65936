//! The steps of a singular path (names and non-negative indices), which the DOM-free lane answers
//! in one pass over the raw bytes, and the string literals of paths.
//!
//! The steps come from the one parse ([`super::query::Query::singular_steps`]); a singular path
//! outside the subset (a negative index) is answered over the tape. The differential tests check
//! that both lanes agree on every path the DOM-free lane takes.

/// One step of a singular path.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum PathStep {
    /// An object member.
    Name(Box<str>),
    /// An array element, counted from the start.
    Index(usize),
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
    use super::super::path::FilterPath;
    use super::*;

    fn parse(path: &str) -> Option<Vec<PathStep>> {
        FilterPath::parse(path).ok()?.singular.map(|s| s.to_vec())
    }

    fn name(s: &str) -> PathStep {
        PathStep::Name(s.into())
    }

    #[test]
    fn takes_the_singular_forms() {
        assert_eq!(parse("$"), Some(vec![]));
        assert_eq!(parse("$.ref"), Some(vec![name("ref")]));
        assert_eq!(parse("$.repository.full_name"), Some(vec![name("repository"), name("full_name")]));
        assert_eq!(parse("$['a'][0].b"), Some(vec![name("a"), PathStep::Index(0), name("b")]));
        assert_eq!(parse(r#"$["a b"]['it\'s']"#), Some(vec![name("a b"), name("it's")]));
        assert_eq!(parse(r#"$['\u00e9\uD83D\uDE00']"#), Some(vec![name("é😀")]));
        assert_eq!(parse("$.été"), Some(vec![name("été")]));
        assert_eq!(parse("$[10]"), Some(vec![PathStep::Index(10)]));
        assert_eq!(parse("$[ 0 ]"), Some(vec![PathStep::Index(0)]));
    }

    #[test]
    fn leaves_everything_else_to_the_tape() {
        for path in ["$.*", "$..a", "$[-1]", "$[0:2]", "$['a','b']", "$[?@.a]"] {
            assert_eq!(parse(path), None, "{path}");
        }
    }

    #[test]
    fn decodes_string_literals() {
        assert_eq!(string(r"a\'b'", '\''), Some(("a'b".to_owned(), "")));
        assert_eq!(string(r"\ud800'", '\''), None);
        assert_eq!(string("a", '\''), None);
    }
}
