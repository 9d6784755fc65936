//! The checker of the AWS service model's constraints (lengths, patterns, counts), shared by every
//! input that has them: `PutWebhook`, `DeleteWebhook`, the third-party registration calls,
//! `ListWebhooks` and pipelines. It gathers every violation of one input and reports them in one
//! `ValidationException` worded as AWS words it:
//! `2 validation errors detected: Value 'x' at 'webhook.name' failed to satisfy constraint: ...; ...`.
//!
//! A value is quoted with its control characters escaped, so that a definition cannot split the
//! log line its error is written to, and a secret member is never quoted: it shows as `****`.

use std::borrow::Cow;

use crate::error::{Error, REDACTED, escape};

/// Model-constraint violations, gathered so that one error reports them all, as AWS does.
#[derive(Default)]
pub(crate) struct Violations {
    items: Vec<(String, String)>,
}

impl Violations {
    pub(crate) fn push(&mut self, field: String, message: String) {
        self.items.push((field, message));
    }

    pub(crate) fn length(&mut self, field: &str, value: &str, min: usize, max: usize, secret: bool) {
        // AWS counts characters, not bytes.
        let len = value.chars().count();
        let shown = if secret { Cow::Borrowed(REDACTED) } else { escape(value) };
        if len < min {
            self.push(
                field.to_owned(),
                format!("Value '{shown}' at '{field}' failed to satisfy constraint: Member must have length greater than or equal to {min}"),
            );
        } else if len > max {
            self.push(
                field.to_owned(),
                format!("Value '{shown}' at '{field}' failed to satisfy constraint: Member must have length less than or equal to {max}"),
            );
        }
    }

    pub(crate) fn name_pattern(&mut self, field: &str, value: &str) {
        let ok = value.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '@' | '-' | '_'));
        if !ok || value.is_empty() {
            let value = escape(value);
            self.push(
                field.to_owned(),
                format!("Value '{value}' at '{field}' failed to satisfy constraint: Member must satisfy regular expression pattern: [A-Za-z0-9.@\\-_]+"),
            );
        }
    }

    pub(crate) fn into_result(self) -> Result<(), Error> {
        let Some((field, _)) = self.items.first() else { return Ok(()) };
        let n = self.items.len();
        let plural = if n == 1 { "error" } else { "errors" };
        let details: Vec<&str> = self.items.iter().map(|(_, m)| m.as_str()).collect();
        Err(Error::validation(Some(field.clone()), format!("{n} validation {plural} detected: {}", details.join("; "))))
    }
}
