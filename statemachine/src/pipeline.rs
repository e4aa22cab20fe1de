//! One committed entry through the IRC logic and the services plugins.
//!
//! The IRC logic applies the entry and lists events for services; each service handles
//! its events in one call and answers actions; the logic applies them, which may make
//! more events (a forced nick change is a nick change), for at most [`MAX_ROUNDS`]
//! rounds. The same function drives the native library in tests and the wasm components
//! on a node (`unsplit-host`), so both run the same orchestration, step for step:
//! - events go to services in the order the logic listed them, grouped per service in
//!   order of each service's first event;
//! - a service that fails (a trap, on a node) must have been rolled back to before the
//!   call by the [`Services`] implementation; the logic is told with `service_failed`
//!   and the entry goes on;
//! - a failure of the logic itself ends the run with its error: the caller rejects the
//!   whole entry (and rolls back the services it touched);
//! - `hash-password` actions never reach the logic: they are returned as [`HashJob`]s
//!   for the host, which answers them in a later entry ([`Start::Event`]). Beyond the
//!   room the host has for them (`hash_room`, from replicated state), or outside the
//!   bounds of `unsplit_services::check_hash_request`, a request is answered at once, in
//!   the next round, with an error ([`HASH_BUSY`] for the first).

use std::convert::Infallible;

use unsplit_services::{Action, Context, Event, PluginInfo};

use crate::{Entry, Outcome, Server, ServiceEvent, Step};

/// Rounds of service calls one entry may cause; events left after them are dropped
/// (and counted), so two services cannot ping-pong forever.
pub const MAX_ROUNDS: usize = 8;

/// The answer to a password hash request the host has no room for.
pub const HASH_BUSY: &str = "too many password checks are in progress; try again in a moment";

/// The IRC logic as the pipeline drives it.
pub trait Core {
    type Error;
    fn apply(&mut self, entry: &Entry) -> Result<Step, Self::Error>;
    fn set_services(
        &mut self,
        ctx: &Context,
        services: Vec<PluginInfo>,
    ) -> Result<Step, Self::Error>;
    fn apply_actions(
        &mut self,
        ctx: &Context,
        service: &str,
        actions: Vec<Action>,
    ) -> Result<Step, Self::Error>;
    fn service_failed(
        &mut self,
        ctx: &Context,
        service: &str,
        events: Vec<Event>,
        reason: &str,
    ) -> Result<Step, Self::Error>;
}

/// The services plugins as the pipeline drives them.
pub trait Services {
    /// Runs `service` on `events`. `Err(reason)`: it failed and was rolled back to its
    /// state before this call. An unknown service answers no actions.
    fn handle(
        &mut self,
        service: &str,
        ctx: &Context,
        events: &[Event],
    ) -> Result<Vec<Action>, String>;
}

/// Where a run starts.
#[derive(Debug, Clone)]
pub enum Start {
    /// A committed entry for the logic.
    Entry(Entry),
    /// The services changed (an activation entry).
    SetServices(Context, Vec<PluginInfo>),
    /// An event straight to one service (a password hash the host committed).
    Event(Context, ServiceEvent),
}

/// A password hash a service asked for, for the host to compute off the apply path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashJob {
    pub service: String,
    pub id: u64,
    pub password: String,
    pub salt: Vec<u8>,
    pub algorithm: Option<String>,
}

/// A service that failed during the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceFailure {
    pub service: String,
    pub reason: String,
}

/// What a run produced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Done {
    /// Every output line of the run, in order; the sessions closed; the first error.
    pub outcome: Outcome,
    pub hash_jobs: Vec<HashJob>,
    pub failures: Vec<ServiceFailure>,
    /// Events still pending after [`MAX_ROUNDS`].
    pub dropped_events: usize,
}

/// Runs one start through the logic and the services; at most `hash_room` hash jobs
/// are returned.
pub fn run<C: Core, S: Services>(
    core: &mut C,
    services: &mut S,
    start: Start,
    hash_room: usize,
) -> Result<Done, C::Error> {
    let (ctx, first) = match start {
        Start::Entry(entry) => {
            let ctx = Context {
                index: entry.index,
                time_ms: entry.time_ms,
            };
            (ctx, core.apply(&entry)?)
        }
        Start::SetServices(ctx, infos) => (ctx, core.set_services(&ctx, infos)?),
        Start::Event(ctx, event) => (
            ctx,
            Step {
                outcome: Outcome::default(),
                events: vec![event],
            },
        ),
    };
    let mut done = Done::default();
    let mut queue = absorb(&mut done.outcome, first);
    for _ in 0..MAX_ROUNDS {
        if queue.is_empty() {
            break;
        }
        for (service, events) in group(std::mem::take(&mut queue)) {
            let step = match services.handle(&service, &ctx, &events) {
                Ok(actions) => {
                    let actions = take_hash_jobs(
                        &service,
                        actions,
                        &mut done.hash_jobs,
                        hash_room,
                        &mut queue,
                    );
                    if actions.is_empty() {
                        continue;
                    }
                    core.apply_actions(&ctx, &service, actions)?
                }
                Err(reason) => {
                    let step = core.service_failed(&ctx, &service, events, &reason)?;
                    done.failures.push(ServiceFailure {
                        service: service.clone(),
                        reason,
                    });
                    step
                }
            };
            queue.extend(absorb(&mut done.outcome, step));
        }
    }
    done.dropped_events = queue.len();
    Ok(done)
}

/// Adds a step's output to the run's; returns its events.
fn absorb(total: &mut Outcome, step: Step) -> Vec<ServiceEvent> {
    let o = step.outcome;
    total.lines.extend(o.lines);
    if !o.closed.is_empty() {
        total.closed.extend(o.closed);
        total.closed.sort_unstable();
        total.closed.dedup();
    }
    if total.error.is_none() {
        total.error = o.error;
    }
    step.events
}

/// Events per service, services in the order of their first event.
fn group(events: Vec<ServiceEvent>) -> Vec<(String, Vec<Event>)> {
    let mut groups: Vec<(String, Vec<Event>)> = Vec::new();
    for e in events {
        match groups.iter_mut().find(|(s, _)| *s == e.service) {
            Some((_, list)) => list.push(e.event),
            None => groups.push((e.service, vec![e.event])),
        }
    }
    groups
}

/// Moves `hash-password` actions out of `actions` into `jobs` while it holds fewer than
/// `hash_room`; the others are answered with [`HASH_BUSY`] in the next round (`queue`).
fn take_hash_jobs(
    service: &str,
    actions: Vec<Action>,
    jobs: &mut Vec<HashJob>,
    hash_room: usize,
    queue: &mut Vec<ServiceEvent>,
) -> Vec<Action> {
    actions
        .into_iter()
        .filter_map(|a| match a {
            Action::HashPassword {
                id,
                password,
                salt,
                algorithm,
            } => {
                let refusal =
                    unsplit_services::check_hash_request(&password, &salt, algorithm.as_deref())
                        .err()
                        .or_else(|| (jobs.len() >= hash_room).then(|| HASH_BUSY.to_owned()));
                if let Some(why) = refusal {
                    queue.push(ServiceEvent {
                        service: service.to_owned(),
                        event: Event::PasswordHashed {
                            id,
                            result: Err(why),
                        },
                    });
                } else {
                    jobs.push(HashJob {
                        service: service.to_owned(),
                        id,
                        password,
                        salt,
                        algorithm,
                    });
                }
                None
            }
            other => Some(other),
        })
        .collect()
}

impl Core for Server {
    type Error = Infallible;

    fn apply(&mut self, entry: &Entry) -> Result<Step, Infallible> {
        Ok(self.apply_step(entry))
    }

    fn set_services(
        &mut self,
        ctx: &Context,
        services: Vec<PluginInfo>,
    ) -> Result<Step, Infallible> {
        Ok(Server::set_services(self, ctx, services))
    }

    fn apply_actions(
        &mut self,
        ctx: &Context,
        service: &str,
        actions: Vec<Action>,
    ) -> Result<Step, Infallible> {
        Ok(Server::apply_actions(self, ctx, service, actions))
    }

    fn service_failed(
        &mut self,
        ctx: &Context,
        service: &str,
        events: Vec<Event>,
        reason: &str,
    ) -> Result<Step, Infallible> {
        Ok(Server::service_failed(self, ctx, service, events, reason))
    }
}

/// Native plugins by name: the [`Services`] of tests (a native plugin cannot trap).
#[derive(Default)]
pub struct NativeServices {
    pub plugins: std::collections::BTreeMap<String, Box<dyn unsplit_services::Plugin>>,
}

impl std::fmt::Debug for NativeServices {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.plugins.keys()).finish()
    }
}

impl NativeServices {
    pub fn add(&mut self, plugin: Box<dyn unsplit_services::Plugin>) {
        self.plugins.insert(plugin.info().name, plugin);
    }

    /// Every plugin's info, by name (what the logic is told with `set_services`).
    pub fn infos(&self) -> Vec<PluginInfo> {
        self.plugins.values().map(|p| p.info()).collect()
    }
}

impl Services for NativeServices {
    fn handle(
        &mut self,
        service: &str,
        ctx: &Context,
        events: &[Event],
    ) -> Result<Vec<Action>, String> {
        Ok(match self.plugins.get_mut(service) {
            Some(p) => p.handle(ctx, events.to_vec()),
            None => Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EntryKind;
    use unsplit_services::{EventKind, Plugin};

    /// Answers every message with a notice and every join with a forced nick change, and
    /// fails on the text `fail`.
    #[derive(Default)]
    struct Echo;

    impl Plugin for Echo {
        fn info(&self) -> PluginInfo {
            PluginInfo {
                name: "echo".into(),
                version: "1.0.0".into(),
                snapshot_format: 1,
                nick: "EchoServ".into(),
                description: "echo".into(),
                commands: vec!["ES".into()],
                subscriptions: vec![EventKind::Join, EventKind::NickChange],
                sasl: false,
            }
        }

        fn handle(&mut self, _ctx: &Context, events: Vec<Event>) -> Vec<Action> {
            events
                .into_iter()
                .flat_map(|e| match e {
                    Event::Message { from, text, .. } => vec![
                        Action::Notice {
                            to: from.session,
                            text: format!("you said {text}"),
                        },
                        Action::HashPassword {
                            id: 7,
                            password: text,
                            salt: b"saltsalt".to_vec(),
                            algorithm: None,
                        },
                    ],
                    Event::Join { user, .. } => vec![Action::ForceNick {
                        session: user.session,
                        nick: format!("{}_", user.nick),
                    }],
                    _ => Vec::new(),
                })
                .collect()
        }

        fn snapshot(&self) -> Vec<u8> {
            Vec::new()
        }

        fn restore(&mut self, _data: &[u8]) -> Result<(), String> {
            Ok(())
        }
    }

    /// `Echo`, but every call fails.
    struct Broken;

    impl Services for Broken {
        fn handle(&mut self, _: &str, _: &Context, _: &[Event]) -> Result<Vec<Action>, String> {
            Err("Panic: wasm trap".into())
        }
    }

    fn entry(index: u64, session: u64, kind: EntryKind) -> Entry {
        Entry {
            index,
            time_ms: 1_000 * index,
            session,
            kind,
        }
    }

    fn line(index: u64, session: u64, text: &str) -> Start {
        Start::Entry(entry(
            index,
            session,
            EntryKind::IrcLine(text.as_bytes().to_vec()),
        ))
    }

    fn setup(services: &mut impl Services) -> Server {
        let mut core = Server::new();
        let ctx = Context {
            index: 1,
            time_ms: 1_000,
        };
        let infos = vec![Echo.info()];
        run(&mut core, services, Start::SetServices(ctx, infos), 8).unwrap();
        let create = EntryKind::CreateSession {
            remote_addr: "127.0.0.1".into(),
        };
        run(&mut core, services, Start::Entry(entry(2, 9, create)), 8).unwrap();
        run(&mut core, services, line(3, 9, "NICK al"), 8).unwrap();
        run(&mut core, services, line(4, 9, "USER al 0 * :Al"), 8).unwrap();
        core
    }

    #[test]
    fn messages_actions_rounds_and_hash_jobs() {
        let mut services = NativeServices::default();
        services.add(Box::new(Echo));
        let mut core = setup(&mut services);
        let done = run(
            &mut core,
            &mut services,
            line(5, 9, "PRIVMSG echoserv :hi"),
            8,
        )
        .unwrap();
        let lines: Vec<&str> = done.outcome.lines.iter().map(|l| l.line.as_str()).collect();
        assert_eq!(
            lines,
            [":EchoServ!EchoServ@irc.unsplit NOTICE al :you said hi"]
        );
        assert_eq!(done.hash_jobs.len(), 1);
        assert_eq!(done.hash_jobs[0].service, "echo");
        // No room: the request is answered at once, in the same run.
        let done = run(
            &mut core,
            &mut services,
            line(8, 9, "PRIVMSG echoserv :x"),
            0,
        )
        .unwrap();
        assert!(done.hash_jobs.is_empty());
        // The alias, and a join whose forced nick change is a nick change (next round).
        let done = run(&mut core, &mut services, line(6, 9, "ES again"), 8).unwrap();
        assert_eq!(done.outcome.lines.len(), 1);
        let done = run(&mut core, &mut services, line(7, 9, "JOIN #c"), 8).unwrap();
        let last = &done.outcome.lines.last().unwrap().line;
        assert_eq!(last, ":al!al@unsplit/0x9 NICK :al_");
        core.check_invariants().unwrap();
    }

    #[test]
    fn a_failing_service_is_reported_and_the_entry_goes_on() {
        let mut core = setup(&mut Broken);
        let done = run(
            &mut core,
            &mut Broken,
            line(5, 9, "PRIVMSG EchoServ :hi"),
            8,
        )
        .unwrap();
        assert_eq!(done.failures.len(), 1);
        assert_eq!(done.failures[0].reason, "Panic: wasm trap");
        assert!(
            done.outcome.lines[0]
                .line
                .contains("EchoServ failed on your request"),
            "{:?}",
            done.outcome.lines
        );
        // The join itself happened.
        let done = run(&mut core, &mut Broken, line(6, 9, "JOIN #c"), 8).unwrap();
        assert!(done.outcome.lines[0].line.ends_with("JOIN #c"));
    }

    #[test]
    fn service_nicks_are_reserved() {
        let mut services = NativeServices::default();
        services.add(Box::new(Echo));
        let mut core = setup(&mut services);
        let done = run(&mut core, &mut services, line(5, 9, "NICK echoServ"), 8).unwrap();
        assert!(done.outcome.lines[0].line.contains(" 433 "));
    }
}
