//! The limits on a path's shape ([`MAX_PATH_NESTING`], [`MAX_DESCENDANT_SEGMENTS`]), checked on
//! the text in one pass before any parser sees it: serde_json_path's parser, the reference that
//! validates every path, takes time exponential in filter nesting.

use crate::limits::{MAX_DESCENDANT_SEGMENTS, MAX_PATH_NESTING};

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
}
