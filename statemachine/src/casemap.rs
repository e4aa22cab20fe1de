//! RFC 1459 case mapping (`CASEMAPPING=rfc1459`) and wildcard masks.

use unsplit_services::casefold_byte as fold_byte;

/// The case-folded form of a nick, channel name or mask; the key of every name index
/// (the same folding services key their state by).
pub(crate) use unsplit_services::casefold as fold;

/// Case-insensitive equality under RFC 1459 rules.
pub(crate) fn eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .all(|(x, y)| fold_byte(x) == fold_byte(y))
}

/// Matches `text` against a glob `mask` (`*` any run, `?` one character), case-insensitively.
/// Iterative with one backtrack point, so it is linear-ish and cannot blow the stack.
pub(crate) fn wildcard_match(mask: &str, text: &str) -> bool {
    let m: Vec<u8> = mask.bytes().map(fold_byte).collect();
    let t: Vec<u8> = text.bytes().map(fold_byte).collect();
    let (mut mi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if mi < m.len() && (m[mi] == b'?' || m[mi] == t[ti]) {
            mi += 1;
            ti += 1;
        } else if mi < m.len() && m[mi] == b'*' {
            star = Some((mi, ti));
            mi += 1;
        } else if let Some((smi, sti)) = star {
            mi = smi + 1;
            ti = sti + 1;
            star = Some((smi, sti + 1));
        } else {
            return false;
        }
    }
    while mi < m.len() && m[mi] == b'*' {
        mi += 1;
    }
    mi == m.len()
}

/// Brings a ban mask into `nick!user@host` form: `foo` → `foo!*@*`, `*@h` → `*!*@h`,
/// `n!u` → `n!u@*`.
pub(crate) fn normalize_mask(mask: &str) -> String {
    let (nick_user, host) = match mask.split_once('@') {
        Some((nu, h)) => (nu, if h.is_empty() { "*" } else { h }),
        None => (mask, "*"),
    };
    let (nick, user) = match nick_user.split_once('!') {
        Some((n, u)) => (n, if u.is_empty() { "*" } else { u }),
        None if mask.contains('@') => ("*", nick_user),
        None => (nick_user, "*"),
    };
    let nick = if nick.is_empty() { "*" } else { nick };
    let user = if user.is_empty() { "*" } else { user };
    format!("{nick}!{user}@{host}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_rfc1459_specials() {
        assert_eq!(fold("Foo[]\\~"), "foo{}|^");
        assert!(eq("NICK[a]", "nick{A}"));
        assert!(!eq("nick", "nick_"));
    }

    #[test]
    fn wildcards() {
        assert!(wildcard_match("*", ""));
        assert!(wildcard_match("a*b?d", "AxxbcD"));
        assert!(!wildcard_match("a*b?d", "axxbd"));
        assert!(wildcard_match("*!*@unsplit/0x1", "nick!user@unsplit/0x1"));
        assert!(wildcard_match("n[x]*", "N{X}yz"));
        assert!(!wildcard_match("abc", "abcd"));
        assert!(wildcard_match("**a**", "bab"));
    }

    #[test]
    fn normalizes_masks() {
        assert_eq!(normalize_mask("foo"), "foo!*@*");
        assert_eq!(normalize_mask("*@host"), "*!*@host");
        assert_eq!(normalize_mask("n!u"), "n!u@*");
        assert_eq!(normalize_mask("n!u@h"), "n!u@h");
        assert_eq!(normalize_mask("!@"), "*!*@*");
    }
}
