//! `{Key}` placeholders in `matchEquals`, replaced once at compile time as AWS documents it: a
//! `{Key}` whose `Key` is in the target action's configuration becomes its value (never re-scanned);
//! any other brace text (`{branch}` when the key is `Branch`, GitHub's URL templates such as
//! `{/owner}` or `{?since,all}`, a lone `{` or `}`) stays literal, as a plain replacement leaves
//! it, and is reported so that compiling can warn about it.

use crate::action_configuration::ActionConfiguration;

/// A `matchEquals` after replacement.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Resolved {
    /// What deliveries are compared with.
    pub(crate) value: String,
    /// What verdicts show: the value, except that a secret key's placeholder stays `{Key}`.
    pub(crate) shown: String,
    /// Brace text left literal, in order.
    pub(crate) literal: Vec<String>,
}

/// Replaces every `{Key}` of `template` whose key the configuration has.
pub(crate) fn resolve(template: &str, config: &ActionConfiguration, is_secret: &dyn Fn(&str) -> bool) -> Resolved {
    let mut out = Resolved { value: String::with_capacity(template.len()), shown: String::new(), literal: Vec::new() };
    let literal = |out: &mut Resolved, text: &str| {
        out.value.push_str(text);
        out.shown.push_str(text);
        out.literal.push(text.to_owned());
    };
    let mut rest = template;
    while let Some(at) = rest.find(['{', '}']) {
        out.value.push_str(&rest[..at]);
        out.shown.push_str(&rest[..at]);
        if rest.as_bytes()[at] == b'}' {
            literal(&mut out, "}");
            rest = &rest[at + 1..];
            continue;
        }
        let after = &rest[at + 1..];
        // The placeholder ends at the first `}`; a `{` before it makes this `{` literal.
        match after.find(['{', '}']) {
            Some(close) if after.as_bytes()[close] == b'}' => {
                let (key, text) = (&after[..close], &rest[at..at + close + 2]);
                match config.get(key) {
                    Some(value) if !key.is_empty() => {
                        out.value.push_str(value);
                        out.shown.push_str(if is_secret(key) { text } else { value });
                    }
                    _ => literal(&mut out, text),
                }
                rest = &after[close + 1..];
            }
            _ => {
                literal(&mut out, "{");
                rest = after;
            }
        }
    }
    out.value.push_str(rest);
    out.shown.push_str(rest);
    out
}

/// The configuration key closest to `text` (the inside of a literal `{...}`): the same letters
/// in another case, or at most two edits away.
pub(crate) fn closest_key<'c>(text: &str, config: &'c ActionConfiguration) -> Option<&'c str> {
    let inner = text.trim_start_matches('{').trim_end_matches('}');
    if inner.is_empty() {
        return None;
    }
    config
        .keys()
        .map(|key| (if key.eq_ignore_ascii_case(inner) { 0 } else { edits(key, inner) }, key))
        .filter(|&(d, _)| d <= 2)
        .min()
        .map(|(_, key)| key)
}

/// Levenshtein distance, case-insensitive (both strings are short: keys and `matchEquals`).
fn edits(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().flat_map(char::to_lowercase).collect();
    let b: Vec<char> = b.chars().flat_map(char::to_lowercase).collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let next = (diagonal + usize::from(ca != cb)).min(row[j] + 1).min(row[j + 1] + 1);
            diagonal = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> ActionConfiguration {
        [("Branch", "main"), ("Owner", "octo"), ("OAuthToken", "t0ken")].into_iter().collect()
    }

    fn resolve_plain(template: &str) -> Resolved {
        resolve(template, &config(), &|key| key == "OAuthToken")
    }

    #[test]
    fn replaces_every_known_key() {
        assert_eq!(resolve_plain("refs/heads/{Branch}").value, "refs/heads/main");
        assert_eq!(resolve_plain("{Owner}/{Branch}").value, "octo/main");
        assert!(resolve_plain("{Owner}/{Branch}").literal.is_empty());
    }

    #[test]
    fn other_brace_text_stays_literal_and_is_reported() {
        let r = resolve_plain("refs/heads/{branch}");
        assert_eq!((r.value.as_str(), r.literal), ("refs/heads/{branch}", vec!["{branch}".to_owned()]));
        let r = resolve_plain("https://api.github.com/users/octo/starred{/owner}{/repo}");
        assert_eq!(r.value, "https://api.github.com/users/octo/starred{/owner}{/repo}");
        assert_eq!(r.literal, ["{/owner}", "{/repo}"]);
        let r = resolve_plain("{{Branch}}");
        assert_eq!((r.value.as_str(), r.literal), ("{main}", vec!["{".to_owned(), "}".to_owned()]));
        assert_eq!(resolve_plain("a}b{").literal, ["}", "{"]);
        assert_eq!(resolve_plain("{}").literal, ["{}"]);
    }

    #[test]
    fn a_value_is_never_scanned_again() {
        let config: ActionConfiguration = [("A", "{B}"), ("B", "x")].into_iter().collect();
        assert_eq!(resolve("{A}", &config, &|_| false).value, "{B}");
    }

    #[test]
    fn secret_keys_are_resolved_but_shown_as_placeholders() {
        let r = resolve_plain("token={OAuthToken} on {Branch}");
        assert_eq!(r.value, "token=t0ken on main");
        assert_eq!(r.shown, "token={OAuthToken} on main");
    }

    #[test]
    fn finds_the_key_meant() {
        assert_eq!(closest_key("{branch}", &config()), Some("Branch"));
        assert_eq!(closest_key("{Brnch}", &config()), Some("Branch"));
        assert_eq!(closest_key("{/owner}", &config()), Some("Owner"));
        assert_eq!(closest_key("{?since,all}", &config()), None);
        assert_eq!(closest_key("{", &config()), None);
    }
}
