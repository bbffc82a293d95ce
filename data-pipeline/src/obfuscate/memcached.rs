//! Memcached commands (`pkg/obfuscate/memcached.go` is the reference).

use std::borrow::Cow;

/// Obfuscates a memcached command: with `keep_command`, everything after the first `\r\n` (the
/// stored value of storage commands) is dropped and the command trimmed; without it the whole
/// command is replaced with "" (the agent then keeps an empty tag).
pub fn obfuscate_memcached(cmd: &str, keep_command: bool) -> Cow<'_, str> {
    if !keep_command {
        return Cow::Borrowed("");
    }
    let line = match cmd.find("\r\n") {
        Some(i) => &cmd[..i],
        None => cmd,
    };
    Cow::Borrowed(line.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_the_value() {
        assert_eq!(
            obfuscate_memcached("set k 0 60 5\r\nvalue", true),
            "set k 0 60 5"
        );
        assert_eq!(obfuscate_memcached("get k", false), "");
    }
}
