//! A request's credentials: which hop carries them, the one send again after a `401`, and what
//! of them a record must not show. The machine's part of [`auth`](crate::auth); the provider's
//! I/O is the driver's.

use std::borrow::Cow;
use std::time::{Duration, Instant};

use super::{Hop, Request, Step, ms};
use crate::auth::Credentials;
use crate::record::{Attempt, Record};

/// Where a request is with its credentials.
#[derive(Debug, Default)]
pub(super) struct AuthState {
    /// The last credentials had (kept after they stop being sent, to mask what a server echoes).
    pub credentials: Option<Credentials>,
    /// Whether the current hop carries them.
    pub sending: bool,
    /// A `401` refused them: the next authorization refreshes them.
    pub refused: bool,
    /// The one send again with refreshed credentials has been made.
    pub replayed: bool,
    /// A redirect left the origin: no credentials for the rest of the chain.
    pub dropped: bool,
}

impl AuthState {
    /// Masks in `record`'s URLs the query parameters of the credentials, which a server may
    /// have put into a URL it sent back (a redirect's Location, a next page).
    pub fn mask(&self, record: &mut Record) {
        let Some(credentials) = &self.credentials else { return };
        for url in [&mut record.url, &mut record.final_url, &mut record.next].into_iter().flatten() {
            if let Some(masked) = credentials.mask(url) {
                *url = masked;
            }
        }
    }
}

impl Request<'_> {
    /// The hop as it goes on the wire: [`Request::hop`] with the credentials it carries, if any
    /// (the record and the `-v` lines show the hop without them).
    pub fn outgoing(&self) -> Cow<'_, Hop> {
        match &self.auth.credentials {
            Some(credentials) if self.auth.sending && !credentials.is_empty() => {
                Cow::Owned(credentials.apply(&self.hop))
            }
            _ => Cow::Borrowed(&self.hop),
        }
    }

    /// The credentials had last: with [`Step::Authorize`]`{ refresh: true }`, those refused.
    pub fn credentials(&self) -> Option<&Credentials> {
        self.auth.credentials.as_ref()
    }

    /// The hop as the `-v` lines show it: with the headers it went out with (credentials are
    /// marked sensitive, so masked), and without any query parameter they add.
    pub(super) fn traced_hop(&self) -> Hop {
        match self.outgoing() {
            Cow::Owned(sent) => Hop { url: self.hop.url.clone(), ..sent },
            Cow::Borrowed(hop) => hop.clone(),
        }
    }

    /// Whether a response with `status` refused the credentials it was sent with in a way new
    /// ones may cure, and they have not been replaced once already: then the request is sent
    /// again with new ones.
    pub(super) fn replays(&self, status: http::StatusCode) -> bool {
        status == http::StatusCode::UNAUTHORIZED
            && self.auth.sending
            && !self.auth.replayed
            && self.config.auth.as_ref().is_some_and(|auth| auth.refreshes())
    }

    /// Sends the request again once with new credentials, after a `401` refused those it
    /// carried: a send counted in `attempts` and `history`, but not a retry.
    pub(super) fn replay(&mut self, now: Instant) -> Step {
        let elapsed =
            self.attempt_start.take().map_or(Duration::ZERO, |start| now.saturating_duration_since(start));
        self.record.push_history(Attempt {
            status: Some(401),
            elapsed_ms: ms(elapsed),
            ..Attempt::default()
        });
        (self.auth.refused, self.auth.replayed) = (true, true);
        self.resends += 1;
        self.queue()
    }
}
