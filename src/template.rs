//! `{Key}` placeholders in `matchEquals`, resolved once at compile time.
//!
//! A placeholder is `{` + a non-empty key without braces + `}`. Anything else (a lone `{` or `}`,
//! `{}`) is literal text, so `{{Branch}}` with `Branch = main` gives `{main}`.

use crate::action_configuration::ActionConfiguration;

/// Why a template did not resolve: the key that the configuration lacks.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct UnknownKey<'t>(pub(crate) &'t str);

/// Replaces every `{Key}` in `template` with the configuration's value of `Key`.
pub(crate) fn resolve<'t>(template: &'t str, config: &ActionConfiguration) -> Result<String, UnknownKey<'t>> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        // The placeholder ends at the first `}`; a `{` before it makes this `{` literal.
        match after.find(['{', '}']) {
            Some(close) if after.as_bytes()[close] == b'}' && close > 0 => {
                let key = &after[..close];
                out.push_str(config.get(key).ok_or(UnknownKey(key))?);
                rest = &after[close + 1..];
            }
            _ => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> ActionConfiguration {
        [("Branch", "main"), ("Owner", "octo"), ("branch", "lower")].into_iter().collect()
    }

    #[test]
    fn resolves_every_placeholder() {
        assert_eq!(resolve("refs/heads/{Branch}", &config()).unwrap(), "refs/heads/main");
        assert_eq!(resolve("{Owner}/{Branch}", &config()).unwrap(), "octo/main");
        assert_eq!(resolve("{branch}", &config()).unwrap(), "lower");
    }

    #[test]
    fn lone_and_empty_braces_are_literal() {
        assert_eq!(resolve("a{b", &config()).unwrap(), "a{b");
        assert_eq!(resolve("a}b", &config()).unwrap(), "a}b");
        assert_eq!(resolve("{}", &config()).unwrap(), "{}");
        assert_eq!(resolve("{{Branch}}", &config()).unwrap(), "{main}");
        assert_eq!(resolve("{", &config()).unwrap(), "{");
        assert_eq!(resolve("x{Branch", &config()).unwrap(), "x{Branch");
    }

    #[test]
    fn unknown_keys_are_named_and_case_sensitive() {
        assert_eq!(resolve("refs/heads/{BRANCH}", &config()), Err(UnknownKey("BRANCH")));
        assert_eq!(resolve("{Branch}{Repo}", &config()), Err(UnknownKey("Repo")));
    }
}
