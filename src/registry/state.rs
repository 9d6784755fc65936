//! Export and import of a registry's whole state, for hosts that persist it or run several
//! instances.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::UNIX_EPOCH;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::{
    Entry, PipelineDeclaration, Previous, Registry, RegistryState, State, WebhookState, check_pipeline, is_url_token,
    pipeline_not_found,
};
use crate::definition::PutWebhookInput;
use crate::error::{Error, ErrorCode};

impl Registry {
    /// The whole state, secrets, URL tokens and the `NextToken` key included, for a host to
    /// persist.
    pub fn export_state(&self) -> RegistryState {
        let state = self.read();
        RegistryState {
            pipelines: state.pipelines.values().map(|p| PipelineDeclaration::clone(p)).collect(),
            webhooks: state.webhooks.values().map(super::host::export_entry).collect(),
            pipeline_tags: state.pipeline_tags.clone(),
            next_token_key: Some(URL_SAFE_NO_PAD.encode(state.next_token_key)),
        }
    }

    /// Replaces the whole state with an exported one, all or nothing: the state must be one that
    /// this API could have produced. Refused, and nothing changes:
    /// - a pipeline that `put_pipeline` refuses, or one named twice (`ValidationException`);
    /// - more webhooks than the quota (`LimitExceededException`);
    /// - a webhook that `PutWebhook` refuses (its own error), a name or URL token given twice, a
    ///   token that is empty or not URL-safe, a negative `lastTriggered` (`ValidationException`);
    /// - a webhook that does not compile against its pipeline, unless the state records that
    ///   error's code in `errorCode` (it then loads with that error, as after `put_pipeline`);
    /// - a `nextTokenKey` that is not 32 bytes of base64url (`ValidationException`);
    /// - `pipelineTags` for a pipeline the state does not hold, or tags the tag checker refuses.
    ///
    /// Everything is checked and compiled before the write lock is taken.
    pub fn import_state(&self, imported: RegistryState) -> Result<(), Error> {
        let key = match &imported.next_token_key {
            None => self.read().next_token_key,
            Some(text) => {
                URL_SAFE_NO_PAD.decode(text).ok().and_then(|bytes| <[u8; 32]>::try_from(bytes).ok()).ok_or_else(
                    || Error::validation("nextTokenKey".to_owned(), "nextTokenKey is not 32 bytes of base64url"),
                )?
            }
        };
        let mut next = State::new(key);
        for pipeline in imported.pipelines {
            check_pipeline(&pipeline)?;
            if next.pipelines.insert(pipeline.name.clone(), Arc::new(pipeline)).is_some() {
                return Err(Error::validation("pipelines".to_owned(), "the state names a pipeline twice"));
            }
        }
        for (name, tags) in imported.pipeline_tags {
            if !next.pipelines.contains_key(&name) {
                return Err(Error::validation(
                    "pipelineTags".to_owned(),
                    format!("the state tags pipeline '{}', which it does not hold", crate::error::escape(&name)),
                ));
            }
            super::tags::check_tags("pipelineTags", &tags)?;
            if !tags.is_empty() {
                next.pipeline_tags.insert(name, tags);
            }
        }
        if imported.webhooks.len() > self.quota {
            return Err(Error::new(
                ErrorCode::LimitExceededException,
                None,
                format!(
                    "the state holds {} webhooks; the number of webhooks is limited to {}",
                    imported.webhooks.len(),
                    self.quota
                ),
            ));
        }
        for w in imported.webhooks {
            let (name, entry) = self.load_entry(w, &next.pipelines, false)?;
            let shown = crate::error::escape(&name).into_owned();
            if next.tokens.insert(entry.token.clone(), name.clone()).is_some() {
                return Err(Error::validation(
                    "webhooks".to_owned(),
                    format!("webhook '{shown}' reuses another's URL token"),
                ));
            }
            if next.webhooks.insert(name, entry).is_some() {
                return Err(Error::validation(
                    "webhooks".to_owned(),
                    format!("the state names webhook '{shown}' twice"),
                ));
            }
        }
        *self.write() = next;
        Ok(())
    }

    /// One exported webhook as an entry, checked as `import_state` checks it, compiled against
    /// `pipelines`. `lenient`: a webhook that does not compile loads in error with the error its
    /// pipeline gives it now, whatever the state recorded (the pipeline decides).
    pub(super) fn load_entry(
        &self,
        w: WebhookState,
        pipelines: &std::collections::BTreeMap<String, Arc<PipelineDeclaration>>,
        lenient: bool,
    ) -> Result<(String, Entry), Error> {
        let input = PutWebhookInput { webhook: w.definition, tags: w.tags };
        input.validate()?;
        let name = input.webhook.name.clone();
        let shown = crate::error::escape(&name).into_owned();
        let previous = match (w.previous_secret_token, w.previous_secret_valid_until) {
            (None, None) => None,
            (Some(secret), Some(until)) => Some(Previous {
                secret,
                until: time_of(until).ok_or_else(|| {
                    Error::validation(
                        "webhooks".to_owned(),
                        format!(
                            "webhook '{shown}' has previousSecretValidUntil {until}, which is not a time after 1970"
                        ),
                    )
                })?,
            }),
            _ => {
                return Err(Error::validation(
                    "webhooks".to_owned(),
                    format!(
                        "webhook '{shown}' needs both previousSecretToken and previousSecretValidUntil, or neither"
                    ),
                ));
            }
        };
        let compiled = match pipelines.get(&input.webhook.target_pipeline) {
            Some(pipeline) => self.compile(&input.webhook, pipeline, previous.as_ref()).map(Arc::new),
            None => Err(pipeline_not_found(&input.webhook.target_pipeline)),
        };
        // A missing pipeline is a state `delete_pipeline` produces: the webhook loads in
        // error. Any other error must be the one the state recorded, unless lenient.
        if let Err(e) = &compiled
            && !lenient
            && e.kind() != ErrorCode::PipelineNotFoundException
            && w.error_code.as_deref() != Some(e.code())
        {
            return Err(Error::new(
                e.kind(),
                e.field().map(str::to_owned),
                format!("webhook '{shown}' in the state does not compile and records no such error: {}", e.message()),
            ));
        }
        if !is_url_token(&w.token) {
            return Err(Error::validation(
                "webhooks".to_owned(),
                format!("webhook '{shown}' has a URL token that is empty or not URL-safe ([A-Za-z0-9_-])"),
            ));
        }
        let last = match w.last_triggered {
            None => None,
            Some(secs) => Some(time_of(secs).ok_or_else(|| {
                Error::validation(
                    "webhooks".to_owned(),
                    format!("webhook '{shown}' has lastTriggered {secs}, which is not a time after 1970"),
                )
            })?),
        };
        let entry = Entry {
            revision: self.revisions.fetch_add(1, Ordering::Relaxed),
            definition: input.webhook,
            tags: input.tags,
            token: w.token,
            registered: w.registered_with_third_party,
            compiled,
            last_triggered: Arc::new(Mutex::new(last)),
            previous,
        };
        Ok((name, entry))
    }
}

/// A time from seconds since the Unix epoch, as the wire gives `lastTriggered`.
fn time_of(secs: f64) -> Option<std::time::SystemTime> {
    std::time::Duration::try_from_secs_f64(secs).ok().and_then(|d| UNIX_EPOCH.checked_add(d))
}
