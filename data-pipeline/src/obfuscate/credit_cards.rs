//! Credit card numbers in tag values (`pkg/obfuscate/credit_cards.go` is the reference): a value
//! of 12 to 16 digits, optionally separated by spaces and dashes, starting with a known issuer
//! (IIN) prefix, and optionally passing the Luhn checksum, is replaced with `?`.

/// Tags the agent never inspects: they are known not to hold card numbers.
const ALLOWED_KEYS: [&str; 32] = [
    "_sample_rate",
    "_sampling_priority_v1",
    "account_id",
    "aws_account",
    "error",
    "error.msg",
    "error.type",
    "error.stack",
    "env",
    "graphql.field",
    "graphql.query",
    "graphql.type",
    "graphql.operation.name",
    "grpc.code",
    "grpc.method",
    "grpc.request",
    "http.status_code",
    "http.method",
    "runtime-id",
    "out.host",
    "out.port",
    "sampling.priority",
    "span.type",
    "span.name",
    "service.name",
    "service",
    "sql.query",
    "version",
    // Data Jobs Monitoring: values that often look like card numbers.
    "databricks_job_id",
    "databricks_job_run_id",
    "databricks_task_run_id",
    "config.spark_app_startTime",
];

/// Credit card detection settings.
#[derive(Debug, Clone, Default)]
pub struct CreditCardsConfig {
    /// Look for card numbers in tag values at all.
    pub enabled: bool,
    /// Also require the Luhn checksum (fewer false positives).
    pub luhn: bool,
    /// Tag keys whose values are never inspected, besides the agent's built-in list.
    pub keep_values: Vec<String>,
}

/// True when the value of tag `key` should be inspected: not on the agent's allow-list, not a
/// hidden `_`-prefixed tag, not in `keep_values`.
pub fn should_check_key(key: &str, keep_values: &[String]) -> bool {
    !(key.starts_with('_') || ALLOWED_KEYS.contains(&key) || keep_values.iter().any(|k| k == key))
}

/// Whether the first digits of a number form a known issuer prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Prefix {
    /// A complete, valid issuer prefix.
    Yes,
    /// Could become one with more digits.
    Maybe,
    /// Cannot be one.
    No,
}

fn card_prefix(n: u32) -> Prefix {
    use Prefix::*;
    if n > 699_999 {
        return No;
    }
    if n < 10 {
        return match n {
            1 | 4 => Yes,
            2 | 3 | 5 | 6 => Maybe,
            _ => No,
        };
    }
    if n < 100 {
        if (34..=39).contains(&n) || (51..=55).contains(&n) || n == 62 || n == 65 {
            return Yes;
        }
        if n == 30
            || n == 63
            || n == 64
            || n == 50
            || n == 60
            || (22..=27).contains(&n)
            || (56..=58).contains(&n)
            || (60..=69).contains(&n)
        {
            return Maybe;
        }
        return No;
    }
    if n < 1000 {
        if (300..=305).contains(&n) || (644..=649).contains(&n) || n == 309 || n == 636 {
            return Yes;
        }
        if (352..=358).contains(&n)
            || n == 501
            || n == 601
            || (222..=272).contains(&n)
            || (500..=509).contains(&n)
            || (560..=589).contains(&n)
            || (600..=699).contains(&n)
        {
            return Maybe;
        }
        return No;
    }
    if n < 10_000 {
        if (3528..=3589).contains(&n) || n == 5019 || n == 6011 {
            return Yes;
        }
        if (2221..=2720).contains(&n)
            || (5000..=5099).contains(&n)
            || (5600..=5899).contains(&n)
            || (6000..=6999).contains(&n)
        {
            return Maybe;
        }
        return No;
    }
    if n < 100_000 {
        if (22_210..=27_209).contains(&n)
            || (50_000..=50_999).contains(&n)
            || (56_000..=58_999).contains(&n)
            || (60_000..=69_999).contains(&n)
        {
            return Maybe;
        }
        return No;
    }
    if (222_100..=272_099).contains(&n)
        || (500_000..=509_999).contains(&n)
        || (560_000..=589_999).contains(&n)
        || (600_000..=699_999).contains(&n)
    {
        return Yes;
    }
    No
}

/// The issuer (IIN) check of the first digits of a number, as `(maybe, yes)`: `yes` when `n` is
/// a complete known prefix, `maybe` when more digits could make it one.
pub fn iin_prefix(n: u32) -> (bool, bool) {
    match card_prefix(n) {
        Prefix::Yes => (false, true),
        Prefix::Maybe => (true, false),
        Prefix::No => (false, false),
    }
}

fn luhn_valid(digits: &[u8]) -> bool {
    let mut sum = 0u32;
    for (i, &d) in digits.iter().rev().enumerate() {
        let mut v = u32::from(d);
        if i % 2 == 1 {
            v *= 2;
            if v > 9 {
                v = v % 10 + 1;
            }
        }
        sum += v;
    }
    sum % 10 == 0
}

/// True when `value` could be a credit card number (see the module docs). Never allocates.
///
/// The first test (a card number has at least 12 bytes and starts with a digit, a space or a
/// dash) is inlined into every caller: almost every value fails it, and the call it saves was
/// most of the check's cost in the loop over a span's tags (callgrind, bench
/// `send_processed_v04.realistic`: 3.4M -> 0.6M instructions per payload in the out-of-line
/// check, now `card_number_digits`).
#[inline(always)]
pub fn is_card_number(value: &str, luhn: bool) -> bool {
    let b = value.as_bytes();
    b.len() >= 12 && matches!(b[0], b'0'..=b'9' | b' ' | b'-') && card_number_digits(b, luhn)
}

/// The rest of [`is_card_number`], out of line, for values that passed its first test.
#[inline(never)]
fn card_number_digits(b: &[u8], luhn: bool) -> bool {
    let mut digits = [0u8; 16];
    let mut count = 0usize;
    let mut prefix = 0u32;
    let mut found = false;
    for &c in b {
        if c == b' ' || c == b'-' {
            continue;
        }
        if !c.is_ascii_digit() {
            return false;
        }
        if count == 16 {
            return false; // more than 16 digits
        }
        digits[count] = c - b'0';
        count += 1;
        if !found {
            prefix = prefix * 10 + u32::from(c - b'0');
            match card_prefix(prefix) {
                Prefix::Yes => found = true,
                Prefix::Maybe => {}
                Prefix::No => return false,
            }
        }
    }
    if count < 12 || !found {
        return false;
    }
    !luhn || luhn_valid(&digits[..count])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detection() {
        assert!(is_card_number("5105-1051-0510-5100", true));
        assert!(is_card_number(" 4111111111111111", true));
        assert!(!is_card_number("37828224631000521389798", false));
        assert!(!is_card_number("7712378231899", false));
        assert!(!is_card_number("   -  ", false));
        // the inline first test: at least 12 bytes, starting with a digit, space or dash
        assert!(!is_card_number("41111111111", false));
        assert!(is_card_number("411111111111", false));
        assert!(is_card_number("-411111111111", false));
        assert!(!is_card_number("x4111111111111111", false));
        assert!(!is_card_number("", false));
        assert!(!should_check_key("_dd.x", &[]));
        assert!(!should_check_key("env", &[]));
        assert!(!should_check_key("skip_me", &["skip_me".into()]));
        assert!(should_check_key("card.number", &[]));
    }
}
