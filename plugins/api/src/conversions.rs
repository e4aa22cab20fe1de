//! Conversions between this crate's types and the WIT types that a bindings generator
//! made for `unsplit:services/types@1.0.0` (wit-bindgen in the guests, wasmtime's
//! bindgen in the host): both name the types and fields alike, so one macro writes them.

/// `wit_conversions!(path::to::types)` implements `From` both ways between this crate's
/// types and the generated ones in `path::to::types` (the module of
/// `unsplit:services/types@1.0.0`). Invoke it in the crate that owns the generated types.
#[macro_export]
macro_rules! wit_conversions {
    ($($wit:ident)::+) => {
        impl From<$($wit)::+::Context> for $crate::Context {
            fn from(c: $($wit)::+::Context) -> Self {
                $crate::Context {
                    index: c.index,
                    time_ms: c.time_ms,
                }
            }
        }

        impl From<$crate::Context> for $($wit)::+::Context {
            fn from(c: $crate::Context) -> Self {
                $($wit)::+::Context {
                    index: c.index,
                    time_ms: c.time_ms,
                }
            }
        }

        impl From<$($wit)::+::User> for $crate::User {
            fn from(u: $($wit)::+::User) -> Self {
                $crate::User {
                    session: u.session,
                    nick: u.nick,
                    username: u.username,
                    account: u.account,
                    oper: u.oper,
                }
            }
        }

        impl From<$crate::User> for $($wit)::+::User {
            fn from(u: $crate::User) -> Self {
                $($wit)::+::User {
                    session: u.session,
                    nick: u.nick,
                    username: u.username,
                    account: u.account,
                    oper: u.oper,
                }
            }
        }

        fn statuses_in(list: Vec<$($wit)::+::ChannelStatus>) -> Vec<$crate::ChannelStatus> {
            list.into_iter()
                .map(|c| $crate::ChannelStatus {
                    channel: c.channel,
                    op: c.op,
                    voice: c.voice,
                })
                .collect()
        }

        fn statuses_out(list: Vec<$crate::ChannelStatus>) -> Vec<$($wit)::+::ChannelStatus> {
            list.into_iter()
                .map(|c| $($wit)::+::ChannelStatus {
                    channel: c.channel,
                    op: c.op,
                    voice: c.voice,
                })
                .collect()
        }

        impl From<$($wit)::+::EventKind> for $crate::EventKind {
            fn from(k: $($wit)::+::EventKind) -> Self {
                match k {
                    $($wit)::+::EventKind::Registered => $crate::EventKind::Registered,
                    $($wit)::+::EventKind::NickChange => $crate::EventKind::NickChange,
                    $($wit)::+::EventKind::Join => $crate::EventKind::Join,
                    $($wit)::+::EventKind::Quit => $crate::EventKind::Quit,
                    $($wit)::+::EventKind::Topic => $crate::EventKind::Topic,
                    $($wit)::+::EventKind::AccountChange => $crate::EventKind::AccountChange,
                    $($wit)::+::EventKind::Tick => $crate::EventKind::Tick,
                    $($wit)::+::EventKind::AccountDropped => $crate::EventKind::AccountDropped,
                }
            }
        }

        impl From<$crate::EventKind> for $($wit)::+::EventKind {
            fn from(k: $crate::EventKind) -> Self {
                match k {
                    $crate::EventKind::Registered => $($wit)::+::EventKind::Registered,
                    $crate::EventKind::NickChange => $($wit)::+::EventKind::NickChange,
                    $crate::EventKind::Join => $($wit)::+::EventKind::Join,
                    $crate::EventKind::Quit => $($wit)::+::EventKind::Quit,
                    $crate::EventKind::Topic => $($wit)::+::EventKind::Topic,
                    $crate::EventKind::AccountChange => $($wit)::+::EventKind::AccountChange,
                    $crate::EventKind::Tick => $($wit)::+::EventKind::Tick,
                    $crate::EventKind::AccountDropped => $($wit)::+::EventKind::AccountDropped,
                }
            }
        }

        impl From<$($wit)::+::Event> for $crate::Event {
            fn from(e: $($wit)::+::Event) -> Self {
                use $crate::Event as E;
                match e {
                    $($wit)::+::Event::Message(m) => E::Message {
                        from: m.from.into(),
                        text: m.text,
                        channels: statuses_in(m.channels),
                    },
                    $($wit)::+::Event::Registered(u) => E::Registered(u.into()),
                    $($wit)::+::Event::NickChange(n) => E::NickChange {
                        user: n.user.into(),
                        old_nick: n.old_nick,
                    },
                    $($wit)::+::Event::Join(j) => E::Join {
                        user: j.user.into(),
                        channel: j.channel,
                        created: j.created,
                    },
                    $($wit)::+::Event::Quit(u) => E::Quit(u.into()),
                    $($wit)::+::Event::Topic(t) => E::Topic {
                        channel: t.channel,
                        text: t.text,
                        setter: t.setter,
                    },
                    $($wit)::+::Event::AccountChange(a) => E::AccountChange {
                        user: a.user.into(),
                        channels: statuses_in(a.channels),
                    },
                    $($wit)::+::Event::Sasl(s) => E::Sasl {
                        session: s.session,
                        authzid: s.authzid,
                        authcid: s.authcid,
                        password: s.password,
                    },
                    $($wit)::+::Event::Tick => E::Tick,
                    $($wit)::+::Event::Settings(s) => E::Settings(s),
                    $($wit)::+::Event::PasswordHashed(h) => E::PasswordHashed {
                        id: h.id,
                        result: h.result.map(|h| $crate::Hashed {
                            algorithm: h.algorithm,
                            hash: h.hash,
                        }),
                    },
                    $($wit)::+::Event::Users(users) => {
                        E::Users(users.into_iter().map(Into::into).collect())
                    }
                    $($wit)::+::Event::AccountDropped(a) => E::AccountDropped(a),
                }
            }
        }

        impl From<$crate::Event> for $($wit)::+::Event {
            fn from(e: $crate::Event) -> Self {
                use $crate::Event as E;
                match e {
                    E::Message {
                        from,
                        text,
                        channels,
                    } => $($wit)::+::Event::Message($($wit)::+::Message {
                        from: from.into(),
                        text,
                        channels: statuses_out(channels),
                    }),
                    E::Registered(u) => $($wit)::+::Event::Registered(u.into()),
                    E::NickChange { user, old_nick } => $($wit)::+::Event::NickChange($($wit)::+::NickChange {
                        user: user.into(),
                        old_nick,
                    }),
                    E::Join {
                        user,
                        channel,
                        created,
                    } => $($wit)::+::Event::Join($($wit)::+::Join {
                        user: user.into(),
                        channel,
                        created,
                    }),
                    E::Quit(u) => $($wit)::+::Event::Quit(u.into()),
                    E::Topic {
                        channel,
                        text,
                        setter,
                    } => $($wit)::+::Event::Topic($($wit)::+::TopicChange {
                        channel,
                        text,
                        setter,
                    }),
                    E::AccountChange { user, channels } => {
                        $($wit)::+::Event::AccountChange($($wit)::+::AccountChange {
                            user: user.into(),
                            channels: statuses_out(channels),
                        })
                    }
                    E::Sasl {
                        session,
                        authzid,
                        authcid,
                        password,
                    } => $($wit)::+::Event::Sasl($($wit)::+::SaslRequest {
                        session,
                        authzid,
                        authcid,
                        password,
                    }),
                    E::Tick => $($wit)::+::Event::Tick,
                    E::Settings(s) => $($wit)::+::Event::Settings(s),
                    E::PasswordHashed { id, result } => $($wit)::+::Event::PasswordHashed($($wit)::+::HashResult {
                        id,
                        result: result.map(|h| $($wit)::+::Hashed {
                            algorithm: h.algorithm,
                            hash: h.hash,
                        }),
                    }),
                    E::Users(users) => {
                        $($wit)::+::Event::Users(users.into_iter().map(Into::into).collect())
                    }
                    E::AccountDropped(a) => $($wit)::+::Event::AccountDropped(a),
                }
            }
        }

        impl From<$($wit)::+::Action> for $crate::Action {
            fn from(a: $($wit)::+::Action) -> Self {
                use $crate::Action as A;
                match a {
                    $($wit)::+::Action::Notice(n) => A::Notice {
                        to: n.to,
                        text: n.text,
                    },
                    $($wit)::+::Action::SetAccount(s) => A::SetAccount {
                        session: s.session,
                        account: s.account,
                    },
                    $($wit)::+::Action::ForceNick(f) => A::ForceNick {
                        session: f.session,
                        nick: f.nick,
                    },
                    $($wit)::+::Action::Kill(k) => A::Kill {
                        session: k.session,
                        reason: k.reason,
                    },
                    $($wit)::+::Action::ChannelMode(m) => A::ChannelMode {
                        channel: m.channel,
                        modes: m.modes,
                        args: m.args,
                    },
                    $($wit)::+::Action::SetTopic(t) => A::SetTopic {
                        channel: t.channel,
                        text: t.text,
                    },
                    $($wit)::+::Action::RegisterChannel(r) => A::RegisterChannel {
                        channel: r.channel,
                        registered: r.registered,
                    },
                    $($wit)::+::Action::SaslResult(r) => A::SaslResult {
                        session: r.session,
                        account: r.account,
                    },
                    $($wit)::+::Action::HashPassword(h) => A::HashPassword {
                        id: h.id,
                        password: h.password,
                        salt: h.salt,
                        algorithm: h.algorithm,
                    },
                    $($wit)::+::Action::DropAccount(a) => A::DropAccount(a),
                }
            }
        }

        impl From<$crate::Action> for $($wit)::+::Action {
            fn from(a: $crate::Action) -> Self {
                use $crate::Action as A;
                match a {
                    A::Notice { to, text } => $($wit)::+::Action::Notice($($wit)::+::Notice { to, text }),
                    A::SetAccount { session, account } => {
                        $($wit)::+::Action::SetAccount($($wit)::+::SetAccount { session, account })
                    }
                    A::ForceNick { session, nick } => {
                        $($wit)::+::Action::ForceNick($($wit)::+::ForceNick { session, nick })
                    }
                    A::Kill { session, reason } => $($wit)::+::Action::Kill($($wit)::+::Kill { session, reason }),
                    A::ChannelMode {
                        channel,
                        modes,
                        args,
                    } => $($wit)::+::Action::ChannelMode($($wit)::+::ChannelMode {
                        channel,
                        modes,
                        args,
                    }),
                    A::SetTopic { channel, text } => {
                        $($wit)::+::Action::SetTopic($($wit)::+::SetTopic { channel, text })
                    }
                    A::RegisterChannel {
                        channel,
                        registered,
                    } => $($wit)::+::Action::RegisterChannel($($wit)::+::RegisterChannel {
                        channel,
                        registered,
                    }),
                    A::SaslResult { session, account } => {
                        $($wit)::+::Action::SaslResult($($wit)::+::SaslResult { session, account })
                    }
                    A::HashPassword {
                        id,
                        password,
                        salt,
                        algorithm,
                    } => $($wit)::+::Action::HashPassword($($wit)::+::HashRequest {
                        id,
                        password,
                        salt,
                        algorithm,
                    }),
                    A::DropAccount(a) => $($wit)::+::Action::DropAccount(a),
                }
            }
        }

        impl From<$($wit)::+::PluginInfo> for $crate::PluginInfo {
            fn from(i: $($wit)::+::PluginInfo) -> Self {
                $crate::PluginInfo {
                    name: i.name,
                    version: i.version,
                    snapshot_format: i.snapshot_format,
                    nick: i.nick,
                    description: i.description,
                    commands: i.commands,
                    subscriptions: i.subscriptions.into_iter().map(Into::into).collect(),
                    sasl: i.sasl,
                }
            }
        }

        impl From<$crate::PluginInfo> for $($wit)::+::PluginInfo {
            fn from(i: $crate::PluginInfo) -> Self {
                $($wit)::+::PluginInfo {
                    name: i.name,
                    version: i.version,
                    snapshot_format: i.snapshot_format,
                    nick: i.nick,
                    description: i.description,
                    commands: i.commands,
                    subscriptions: i.subscriptions.into_iter().map(Into::into).collect(),
                    sasl: i.sasl,
                }
            }
        }
    };
}
