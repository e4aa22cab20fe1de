//! Access flags: `F` founder, `f` edit the access list, `o` OP/DEOP, `O` auto-op on
//! join, `v` VOICE/DEVOICE, `V` auto-voice on join, `t` TOPIC. A founder has them all.

use serde::{Deserialize, Serialize};

/// The letters, in the order they are shown.
pub(crate) const LETTERS: &str = "FfoOvVt";

/// A set of flags.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub(crate) struct Flags(u8);

impl Flags {
    pub(crate) const NONE: Flags = Flags(0);
    /// `F`: every flag, and founder status.
    pub(crate) const FOUNDER: Flags = Flags(1);
    /// `f`: edit the access list.
    pub(crate) const ACCESS: Flags = Flags(1 << 1);
    /// `o`: OP and DEOP.
    pub(crate) const OP: Flags = Flags(1 << 2);
    /// `O`: auto-op on join.
    pub(crate) const AUTO_OP: Flags = Flags(1 << 3);
    /// `v`: VOICE and DEVOICE.
    pub(crate) const VOICE: Flags = Flags(1 << 4);
    /// `V`: auto-voice on join.
    pub(crate) const AUTO_VOICE: Flags = Flags(1 << 5);
    /// `t`: TOPIC.
    pub(crate) const TOPIC: Flags = Flags(1 << 6);
    pub(crate) const ALL: Flags = Flags(0x7f);

    /// The flag a letter names.
    pub(crate) fn letter(c: char) -> Option<Flags> {
        LETTERS.chars().position(|l| l == c).map(|i| Flags(1 << i))
    }

    pub(crate) fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }

    pub(crate) fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub(crate) fn is_founder(self) -> bool {
        self.contains(Flags::FOUNDER)
    }

    /// Allowed to do what `flag` allows: has it, or is a founder.
    pub(crate) fn allows(self, flag: Flags) -> bool {
        self.is_founder() || self.contains(flag)
    }

    fn union(self, other: Flags) -> Flags {
        Flags(self.0 | other.0)
    }

    fn without(self, other: Flags) -> Flags {
        Flags(self.0 & !other.0)
    }

    /// Only the defined flags (a restored snapshot could carry others).
    pub(crate) fn valid(self) -> bool {
        self.0 & !Flags::ALL.0 == 0
    }

    /// The letters of the flags, in order (`FfoOvVt`); empty for none.
    pub(crate) fn letters(self) -> String {
        LETTERS
            .chars()
            .enumerate()
            .filter(|&(i, _)| self.0 & (1 << i) != 0)
            .map(|(_, c)| c)
            .collect()
    }
}

impl std::fmt::Display for Flags {
    /// `+FfoOvVt`, or `(none)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.is_empty() {
            return f.write_str("(none)");
        }
        write!(f, "+{}", self.letters())
    }
}

/// A change of flags: `ov` sets exactly these, `+ov` adds, `-o` removes, and signs may
/// follow each other (`+o-v`; letters before any sign set exactly).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Change {
    set: Option<Flags>,
    add: Flags,
    remove: Flags,
}

/// Why a flags argument was refused; the texts are the notices.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum FlagsError {
    #[error(
        "Unknown flag {0}. Flags: F (founder), f (access list), o (op), O (auto-op), v (voice), V (auto-voice), t (topic)."
    )]
    Unknown(char),
    #[error("No flags given.")]
    Empty,
}

impl Change {
    pub(crate) fn parse(text: &str) -> Result<Change, FlagsError> {
        let mut change = Change {
            set: None,
            add: Flags::NONE,
            remove: Flags::NONE,
        };
        let mut sign: Option<bool> = None;
        let mut letters = 0usize;
        for c in text.chars() {
            match c {
                '+' => sign = Some(true),
                '-' => sign = Some(false),
                c => {
                    let flag = Flags::letter(c).ok_or(FlagsError::Unknown(c))?;
                    letters += 1;
                    match sign {
                        None => change.set = Some(change.set.unwrap_or_default().union(flag)),
                        Some(true) => {
                            change.add = change.add.union(flag);
                            change.remove = change.remove.without(flag);
                        }
                        Some(false) => {
                            change.remove = change.remove.union(flag);
                            change.add = change.add.without(flag);
                        }
                    }
                }
            }
        }
        if letters == 0 {
            return Err(FlagsError::Empty);
        }
        Ok(change)
    }

    pub(crate) fn apply(self, old: Flags) -> Flags {
        self.set.unwrap_or(old).union(self.add).without(self.remove)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(text: &str) -> Flags {
        Change::parse(text).unwrap().apply(Flags::NONE)
    }

    #[test]
    fn parses_and_shows() {
        assert_eq!(Flags::ALL.to_string(), "+FfoOvVt");
        assert_eq!(Flags::NONE.to_string(), "(none)");
        assert_eq!(flags("vo").to_string(), "+ov");
        assert_eq!(flags("+Ot").to_string(), "+Ot");
        let ov = flags("ov");
        assert_eq!(Change::parse("+t-o").unwrap().apply(ov).to_string(), "+vt");
        assert_eq!(Change::parse("t").unwrap().apply(ov).to_string(), "+t");
        assert_eq!(Change::parse("-ov").unwrap().apply(ov), Flags::NONE);
        assert_eq!(
            Change::parse("+o-o").unwrap().apply(Flags::NONE),
            Flags::NONE
        );
        assert_eq!(Change::parse("x"), Err(FlagsError::Unknown('x')));
        assert_eq!(Change::parse("+-"), Err(FlagsError::Empty));
        assert_eq!(Change::parse(""), Err(FlagsError::Empty));
    }

    #[test]
    fn named_flags_are_their_letters() {
        let named = [
            ('F', Flags::FOUNDER),
            ('f', Flags::ACCESS),
            ('o', Flags::OP),
            ('O', Flags::AUTO_OP),
            ('v', Flags::VOICE),
            ('V', Flags::AUTO_VOICE),
            ('t', Flags::TOPIC),
        ];
        for (letter, flag) in named {
            assert_eq!(Flags::letter(letter), Some(flag));
            assert_eq!(flag.letters(), letter.to_string());
        }
    }

    #[test]
    fn founder_allows_everything() {
        assert!(Flags::FOUNDER.allows(flags("t")));
        assert!(flags("o").allows(flags("o")));
        assert!(!flags("o").allows(flags("v")));
        assert!(Flags::ALL.valid());
        assert!(!Flags(0x80).valid());
    }
}
