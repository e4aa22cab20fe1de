//! The whole replicated state of ChanServ: registered channels with their access lists
//! and retained topics. Everything here is in the snapshot.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use unsplit_services::casefold;

use crate::flags::Flags;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct State {
    /// Registered channels by folded name.
    pub channels: BTreeMap<String, Channel>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Channel {
    /// The name as the IRC logic showed it at registration.
    pub name: String,
    pub registered_ms: u64,
    /// Access entries by folded account.
    pub access: BTreeMap<String, Access>,
    /// The last topic seen (none: never seen, or cleared).
    pub topic: Option<Topic>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Access {
    /// The account name as it was given.
    pub account: String,
    pub flags: Flags,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Topic {
    pub text: String,
    pub setter: String,
}

impl Channel {
    /// The flags of an account (any case), none for strangers and anonymous users.
    pub(crate) fn flags(&self, account: Option<&str>) -> Flags {
        account
            .and_then(|a| self.access.get(&casefold(a)))
            .map_or(Flags::NONE, |entry| entry.flags)
    }

    /// The founders' account names, in folded order.
    pub(crate) fn founders(&self) -> Vec<&str> {
        self.access
            .values()
            .filter(|entry| entry.flags.is_founder())
            .map(|entry| entry.account.as_str())
            .collect()
    }
}
